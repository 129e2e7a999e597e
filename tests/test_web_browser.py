"""The web view in a real browser: Debian's headless Chromium, driven by Selenium through chromedriver.

The page is served on loopback for recorded town, crafting and valentine runs, and for a live run on the embedded
model. Screenshots go to tests/artifacts/ (kept out of git).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from simulacra.web.server import ViewServer
from tests.helpers import ignore_sigint, snapshot_world
from tests.test_web_view import MARKUP, write_markup_run

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# Without the background-networking flags Chromium keeps trying to reach Google's hosts on a closed network.
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1300")


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()



def wait(driver: webdriver.Chrome, script: str, timeout: float = 30) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: d.execute_script(script))


def open_page(driver: webdriver.Chrome, url: str) -> None:
    driver.get(url)
    wait(driver, "return document.body.dataset.ready || document.body.dataset.error")
    assert driver.execute_script("return document.body.dataset.error") is None


def slide(driver: webdriver.Chrome, step: int) -> None:
    """Moves the slider and waits for the page to draw that step (even the step already shown: drawn anew)."""
    driver.execute_script("delete document.body.dataset.step; const s = document.getElementById('slider');"
                          "s.value = arguments[0]; s.dispatchEvent(new Event('input'));", step)
    wait(driver, f"return document.body.dataset.step === '{step}'")


def places_in_log(run_dir: Path, step: int) -> dict[str, str]:
    """Where events.jsonl puts everyone after ``step``: run_started's places, then each moved event's ``to``."""
    where: dict[str, str] = {}
    for line in (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event["kind"] == "run_started":
            where = dict(event["data"]["agents"])
        elif event["kind"] == "moved" and event["step"] <= step:
            where[event["agent"]] = event["data"]["to"]
    return where


def table(driver: webdriver.Chrome) -> dict[str, str]:
    """The agents table, read in one script (row by row, a redraw in between would leave stale elements)."""
    return dict(driver.execute_script("return Array.from(document.querySelectorAll('#agents tbody tr'), "
                                      "(r) => [r.dataset.agent, r.querySelector('td.where').textContent]);"))


def shot(driver: webdriver.Chrome, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    return path


def test_the_town_page_shows_everyone_where_the_log_says(browser: webdriver.Chrome, town_recording: Path) -> None:
    with ViewServer(town_recording, port=0) as server:
        open_page(browser, server.url)
        assert browser.find_element(By.ID, "step").text == "4"
        for step in (4, 1, 3):
            slide(browser, step)
            places = places_in_log(town_recording, step)
            assert places == {a["name"]: a["place"] for a in snapshot_world(town_recording, step)["agents"]}
            assert table(browser) == places
            drawn = {a.get_attribute("data-agent"): a.get_attribute("data-place")
                     for a in browser.find_elements(By.CSS_SELECTOR, "#world g.agent")}
            assert drawn == places, step
        assert table(browser) != {a["name"]: a["place"] for a in snapshot_world(town_recording, 1)["agents"]}
        browser.find_element(By.CSS_SELECTOR, '#agents tr[data-agent="Klaus"]').click()
        wait(browser, "return document.body.dataset.agent === 'Klaus@3'")
        memories = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#memories li.memory")]
        assert memories and all("Klaus" in m for m in memories)
        assert "Klaus" in browser.find_element(By.ID, "agent-persona").text
        feed = browser.find_elements(By.CSS_SELECTOR, "#feed li[data-kind]")
        assert feed and {li.get_attribute("data-kind") for li in feed} >= {"observed", "step_ended"}
        assert browser.find_elements(By.CSS_SELECTOR, "#charts svg[data-metric='moved']")
        shot(browser, "web-town.png")


def test_the_crafting_page_draws_the_map_and_players_of_each_step(browser: webdriver.Chrome,
                                                                   crafting_recording: Path) -> None:
    with ViewServer(crafting_recording, port=0) as server:
        open_page(browser, server.url)
        for step in (3, 0, 2):
            slide(browser, step)
            world = snapshot_world(crafting_recording, step)
            blocks = browser.find_elements(By.CSS_SELECTOR, "#world rect.block")
            assert len(blocks) == len(world["blocks"])
            drawn = {a.get_attribute("data-agent"): [int(a.get_attribute("data-x")), int(a.get_attribute("data-y"))]
                     for a in browser.find_elements(By.CSS_SELECTOR, "#world g.agent")}
            assert drawn == {p["name"]: p["position"] for p in world["players"]}, step
        browser.find_element(By.CSS_SELECTOR, '#world g.agent[data-agent="Steve"] circle').click()
        wait(browser, "return document.body.dataset.agent === 'Steve@2'")
        tasks = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#agent-tasks li")]
        assert any("Mine 1 log" in t for t in tasks)
        shot(browser, "web-crafting.png")


def test_selecting_a_generative_agent_shows_its_memories_from_chroma(browser: webdriver.Chrome,
                                                                      valentine_run: Path) -> None:
    with ViewServer(valentine_run, port=0) as server:
        open_page(browser, server.url)
        browser.find_element(By.CSS_SELECTOR, '#agents tr[data-agent="Isabella"]').click()
        wait(browser, "return document.body.dataset.agent === 'Isabella@2'")
        ids = [li.get_attribute("data-id") for li in browser.find_elements(By.CSS_SELECTOR, "#memories li.memory")]
        stored = {m["id"] for m in server.memories.upto("Isabella", "", most=10_000) or []}
        assert ids and set(ids) <= stored
        assert "Chroma" in browser.find_element(By.ID, "memory-source").text
        shot(browser, "web-valentine.png")


def test_a_live_run_page_follows_the_steps(browser: webdriver.Chrome, tmp_path: Path) -> None:
    out = tmp_path / "live"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "run.py", "scenarios/town.yaml", "--steps", "2", "--out", str(out),
                             "--plain", "--view", "--port", "0", "--set", "llm.cache=false"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=ignore_sigint)  # as CI starts it: Ctrl-C must work all the same
    try:
        url, printed = _url(proc)
        open_page(browser, url)
        seen = []
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            step = browser.execute_script("return document.body.dataset.step")
            if not seen or seen[-1] != step:
                seen.append(step)
            if step == "2" and "completed" in browser.find_element(By.ID, "status").text:
                break
            time.sleep(0.3)
        assert seen[-1] == "2" and len(seen) >= 2, seen  # the counter moved while the page was open
        assert [int(s) for s in seen] == sorted(int(s) for s in seen)
        assert "live" in browser.find_element(By.ID, "status").text
        # The page says "completed" once run_ended is in the log; the runner still draws its plots after that, and
        # a Ctrl-C then is an interruption (exit 130). The view's own wait begins with the "run is over" line.
        deadline = time.monotonic() + 120
        while not any("the run is over" in line for line in printed) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert any("the run is over" in line for line in printed), printed[-5:]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("world", ["town", "society", "crafting"])
def test_markup_in_a_run_stays_text_on_the_page(browser: webdriver.Chrome, tmp_path: Path, world: str) -> None:
    """Names, kinds, texts, the clock and the society's scale all hold <img onerror> and <script>: none runs."""
    # Recorded before any page script runs (a DevTools script is outside the page's CSP): what the policy blocked.
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": "window.__blocked = []; "
                            "document.addEventListener('securitypolicyviolation', (e) => "
                            "window.__blocked.push(e.violatedDirective));"})
    with ViewServer(write_markup_run(tmp_path / "run", world), port=0) as server:
        open_page(browser, server.url)
        slide(browser, 1)
        browser.execute_script("document.querySelector('#agents tbody tr[data-agent]').click()")
        wait(browser, "return (document.body.dataset.agent || '').endsWith('@1')")
        assert browser.execute_script("return window.__pwned") is None
        assert not browser.find_elements(By.CSS_SELECTOR, "img, [onerror], script:not([src])")
        text = browser.find_element(By.TAG_NAME, "body").text
        assert MARKUP[0] in text and MARKUP[1] in text  # shown, as text
        assert set(table(browser)) == set(MARKUP)
        assert browser.execute_script("return window.__blocked") == []  # nothing needed blocking, not even a style


def _url(proc: subprocess.Popen[str]) -> tuple[str, list[str]]:
    """The live view's address, and a list that a thread fills with the lines printed after it."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if "web view: http://" in line:
            printed: list[str] = []
            # Read on, line by line: a full pipe would stall the run.
            threading.Thread(target=_read_on, args=(proc.stdout, printed), daemon=True).start()
            return line.split("web view: ", 1)[1].split()[0], printed
    msg = f"no web view line; exit {proc.wait()}"
    raise AssertionError(msg)


def _read_on(stream: Iterable[str], into: list[str]) -> None:
    for line in stream:
        into.append(line)
