"""How fast the web view opens a run folder: a 3-step town run and a 1,000-agent one, in headless Chromium.

    .venv/bin/python bench/web_bench.py [--big-steps 3] [--repeat 3]

Records town.yaml (5 agents, 3 steps) and town-1k.yaml (1,000 agents) on the dry backend, then for each folder:
the seconds `python run.py view` takes to index it before it serves (`RunIndex`), the page's load time in
Debian's Chromium (navigation to the first drawn step: frame, agents table, feed and charts), a slider move to
step 1, and selecting an agent; plus the bytes of the page's API answers against the size of events.jsonl, and
once, cold, the seconds from starting `python run.py view` (imports and index) to the page drawn.
Least of ``--repeat`` (noise only adds). Writes bench/results/web_view.{md,json}.
Goal (issue 16): a 1,000-agent run folder opens in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import run  # noqa: E402
from simulacra.web.server import ViewServer  # noqa: E402
from tests.test_web_browser import CHROMEDRIVER, CHROMIUM, FLAGS  # noqa: E402


def record(scenario: str, steps: int, out: Path) -> Path:
    """A dry run of the scenario into ``out``."""
    status = run.main([str(ROOT / "scenarios" / scenario), "--steps", str(steps), "--out", str(out), "--plain",
                       "--set", "llm.backend=dry", "--set", "llm.model=estimate"])
    if status != 0:
        msg = f"{scenario}: exit {status}"
        raise RuntimeError(msg)
    return out


def measure(driver: Any, run_dir: Path, repeat: int) -> dict[str, Any]:
    """Index, load, slide and select times (least of ``repeat``), and what the page fetched."""
    rows: dict[str, list[float]] = {"index_s": [], "load_s": [], "slide_s": [], "select_s": []}
    fetched = 0
    for _ in range(repeat):
        started = time.perf_counter()
        server = ViewServer(run_dir, port=0)
        rows["index_s"].append(time.perf_counter() - started)
        with server:
            started = time.perf_counter()
            driver.get(server.url)
            _until(driver, "return document.body.dataset.ready === '1'")
            rows["load_s"].append(time.perf_counter() - started)
            fetched = driver.execute_script(
                "return performance.getEntriesByType('resource').filter(e => e.name.includes('/api/'))"
                ".reduce((n, e) => n + e.transferSize, 0)")
            started = time.perf_counter()
            driver.execute_script("const s = document.getElementById('slider'); s.value = 1;"
                                  "s.dispatchEvent(new Event('input'));")
            _until(driver, "return document.body.dataset.step === '1'")
            rows["slide_s"].append(time.perf_counter() - started)
            name = server.index.meta()["agents"][-1]
            started = time.perf_counter()
            driver.execute_script("select(arguments[0])", name)
            _until(driver, f"return document.body.dataset.agent === '{name}@1'")
            rows["select_s"].append(time.perf_counter() - started)
        driver.get("about:blank")
    rows["cold_s"] = [cold(driver, run_dir)]
    meta = ViewServer(run_dir, port=0)
    try:
        agents, steps = len(meta.index.meta()["agents"]), meta.index.steps_done
    finally:
        meta.stop()
    return {"agents": agents, "steps": steps, "events_bytes": (run_dir / "events.jsonl").stat().st_size,
            "api_bytes_on_load": fetched, **{k: round(min(v), 3) for k, v in rows.items()}}


def cold(driver: Any, run_dir: Path) -> float:
    """Seconds from starting ``python run.py view`` (imports, index) to the page drawn in the browser."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "run.py", "view", str(run_dir), "--port", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        url = next(line for line in proc.stdout if "http://" in line).split(": ", 1)[1].split()[0]
        driver.get(url)
        _until(driver, "return document.body.dataset.ready === '1'")
        return time.perf_counter() - started
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        driver.get("about:blank")


def _until(driver: Any, script: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not driver.execute_script(script):
        if time.monotonic() > deadline:
            msg = f"timed out: {script}"
            raise TimeoutError(msg)
        time.sleep(0.02)


def main() -> None:
    """Records, measures and writes the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-steps", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    results = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for scenario, steps in (("town.yaml", 3), ("town-1k.yaml", args.big_steps)):
                folder = record(scenario, steps, Path(tmp) / scenario.removesuffix(".yaml"))
                results.append({"scenario": scenario, **measure(driver, folder, args.repeat)})
                print(json.dumps(results[-1]), flush=True)
    finally:
        driver.quit()
    write(results, args)


def write(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """bench/results/web_view.json and .md."""
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    import chromadb
    import starlette

    info = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {_cores()} cores",
            "python": platform.python_version(), "starlette": starlette.__version__, "chromadb": chromadb.__version__,
            "repeat": args.repeat}
    (out / "web_view.json").write_text(json.dumps({"info": info, "results": results}, indent=2) + "\n")
    lines = [f"# Web view: opening a run folder ({info['date']}, {info['machine']}, least of {args.repeat})", "",
             "| scenario | agents | steps | events.jsonl | index (s) | page load (s) | API bytes on load | "
             "slider to step 1 (s) | select an agent (s) | `run.py view` start to drawn page (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['scenario']} | {r['agents']:,} | {r['steps']} | {r['events_bytes'] / 1e6:.2f} MB | "
              f"{r['index_s']} | {r['load_s']} | {r['api_bytes_on_load']:,} | {r['slide_s']} | {r['select_s']} | "
              f"{r['cold_s']} |"
              for r in results]
    (out / "web_view.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _cores() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
