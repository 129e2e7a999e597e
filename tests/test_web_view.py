"""The web view's index and API, checked against the run folder's own record (events and snapshots)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import run
from simulacra.web.memories import StoredMemories
from simulacra.web.run_index import RunIndex
from simulacra.web.server import make_app
from tests.conftest import ROOT
from tests.helpers import ignore_sigint, snapshot_world, tree_hashes


def lines(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()]


def test_town_frames_put_everyone_where_the_snapshots_do(town_recording: Path) -> None:
    index = RunIndex(town_recording)
    assert index.steps_done == 4 and index.status == "completed"
    for step in range(5):
        places = {a["name"]: a["place"] for a in snapshot_world(town_recording, step)["agents"]}
        assert index.frame_at(step)["where"] == places, step
    assert index.frame_at(1)["where"] != index.frame_at(4)["where"]  # people walked: the slider shows it


def test_town_talks_are_the_steps_said_events(town_recording: Path) -> None:
    index = RunIndex(town_recording)
    for step in range(1, 5):
        said = [[e["agent"], e["data"]["to"]] for e in lines(town_recording) if e["step"] == step
                and e["kind"] == "said"]
        assert index.frame_at(step)["talks"] == said


def test_crafting_frames_equal_the_snapshots(crafting_recording: Path) -> None:
    index = RunIndex(crafting_recording)
    moved = False
    for step in range(4):
        world, frame = snapshot_world(crafting_recording, step), index.frame_at(step)
        assert sorted(map(tuple, frame["blocks"])) == sorted(map(tuple, world["blocks"])), step
        for player in world["players"]:
            drawn = frame["players"][player["name"]]
            assert [drawn["x"], drawn["y"]] == player["position"]
            assert drawn["inventory"] == player["inventory"] and drawn["health"] == player["health"]
            moved |= player["position"] != snapshot_world(crafting_recording, 0)["players"][0]["position"]
    assert moved and index.frame_at(0)["blocks"] != index.frame_at(3)["blocks"]  # walked and mined


def test_the_society_frame_shows_each_answers_ratings_and_raters(tmp_path: Path) -> None:
    shutil.copy(Path("scenarios/alignment.yaml"), tmp_path / "scenario.yaml")
    start = {"agents": {"Ada": [0, 0], "Ben": [1, 0]}, "scale": 7, "scenario": "alignment", "steps": 2}
    interaction = {"mean_draft": 3, "mean_revision": 5, "question": "Q?", "ratings": [{"rater": "Ben", "rating": 3}]}
    asked = [{"survey": "s", "item": "knows", "type": "yes_no", "answer": a, "ok": True} for a in ("yes", "no", "yes")]
    mood = [{"survey": "s", "item": "mood", "type": "likert", "answer": a, "ok": True} for a in (2, 5)]
    events = [(0, None, "run_started", start), (1, "Ada", "interaction", interaction), (1, None, "step_ended", {}),
              *((2, "Ada", "survey_answer", d) for d in asked + mood), (2, None, "step_ended", {})]
    (tmp_path / "events.jsonl").write_text("".join(
        json.dumps({"agent": a, "data": d, "kind": k, "sim_time": "", "step": s}) + "\n" for s, a, k, d in events))
    index = RunIndex(tmp_path)
    assert index.frame_at(1)["ratings"] == {"Ada": {"draft": 3, "revised": 5, "question": "Q?"}}
    assert index.frame_at(1)["rated"] == [["Ben", "Ada"]]
    assert index.frame_at(2)["rated"] == [] and index.frame_at(2)["ratings"]["Ada"]["revised"] == 5
    assert index.frame_at(0)["cells"] == {"Ada": [0, 0], "Ben": [1, 0]}
    series = index.metric_series(2)
    assert series["survey.s.knows.yes"] == [[2, 0.6667]] and series["survey.s.mood.mean"] == [[2, 3.5]]


def test_steps_partition_the_log_and_a_range_reads_only_its_steps(town_recording: Path) -> None:
    index, events = RunIndex(town_recording), lines(town_recording)
    size = (town_recording / "events.jsonl").stat().st_size
    assert index.spans[0][0] == 0 and index.spans[-1][1] == size
    assert all(a[1] == b[0] for a, b in zip(index.spans, index.spans[1:], strict=False))
    got = index.events(2, 3, limit=10_000)
    assert [(e["step"], e["kind"], e["agent"]) for e in got] == [
        (e["step"], e["kind"], e["agent"]) for e in events if 2 <= e["step"] <= 3]
    assert index.events(2, 3, limit=3) == got[-3:]
    tom = index.events(0, 4, agent="Tom", limit=10_000)
    assert tom and {e["agent"] for e in tom} == {"Tom"}
    assert len(tom) == sum(e["agent"] == "Tom" for e in events)
    moves = index.events(0, 4, kind="moved", limit=10_000)
    assert len(moves) == sum(e["kind"] == "moved" for e in events) > 0
    assert all(isinstance(e["text"], str) and e["text"] for e in got)


def test_a_growing_log_is_indexed_as_whole_lines_arrive(town_recording: Path, tmp_path: Path) -> None:
    shutil.copy(town_recording / "scenario.yaml", tmp_path / "scenario.yaml")
    raw = (town_recording / "events.jsonl").read_bytes().splitlines(keepends=True)
    first_step2 = next(i for i, line in enumerate(raw) if json.loads(line)["step"] == 2)
    log = tmp_path / "events.jsonl"
    log.write_bytes(b"".join(raw[:first_step2]) + raw[first_step2][:20])  # step 2's first line half written
    index = RunIndex(tmp_path, live=True)
    assert index.steps_done == 1 and index.status == "running"
    at_one = index.frame_at(1)
    log.write_bytes(b"".join(raw))
    assert index.meta()["steps"] == 4 and index.status == "completed"
    assert index.frame_at(1) == at_one
    assert index.frame_at(4) == RunIndex(town_recording).frame_at(4)


def test_an_agents_details_come_from_its_own_events(town_recording: Path) -> None:
    index = RunIndex(town_recording)
    own = [e for e in lines(town_recording) if e["agent"] == "Isabella" and e["step"] <= 2]
    details = index.agent("Isabella", 2)
    assert details["persona"].startswith("Isabella Rodriguez runs Hobbs Cafe")
    assert details["memory_source"] == "events" and details["memories"]
    assert [m["step"] for m in details["memories"]] == sorted((m["step"] for m in details["memories"]), reverse=True)
    assert details["now"][0]["kind"] == [e for e in own if e["kind"] in ("decided", "activity", "waited", "moved",
                                                                           "said")][-1]["kind"]
    with pytest.raises(KeyError):
        index.agent("Nobody", 2)


def test_the_api_answers_and_refuses_in_json(town_recording: Path) -> None:
    client = TestClient(make_app(RunIndex(town_recording)))
    meta = client.get("/api/run").json()
    assert meta["agents"] == ["Isabella", "Klaus", "Maria", "Sam", "Tom"] and meta["steps"] == 4
    assert set(meta["layout"]) == {p["name"] for p in meta["places"]}
    assert all(0 <= v <= 1 for xy in meta["layout"].values() for v in xy)
    assert client.get("/api/frame?step=99").json()["step"] == 4  # clamped
    assert client.get("/api/frame?step=two").json() == {"error": "step='two' is not a whole number"}
    assert client.get("/api/frame?step=two").status_code == 400
    assert client.get("/api/agent?name=Nobody&step=1").status_code == 404
    series = client.get("/api/metrics?upto=2").json()["moved"]
    assert [s for s, _ in series] == [1, 2]
    assert "<svg id=\"world\"" in client.get("/").text
    assert "function drawTown" in client.get("/static/view.js").text


def test_memories_come_from_a_copy_of_the_runs_chroma_up_to_the_step(valentine_run: Path) -> None:
    before = tree_hashes(valentine_run)
    index, store = RunIndex(valentine_run), StoredMemories(valentine_run)
    try:
        client = TestClient(make_app(index, store))
        first = client.get("/api/agent?name=Isabella&step=1").json()
        last = client.get("/api/agent?name=Isabella&step=2").json()
    finally:
        store.close()
    assert first["memory_source"] == last["memory_source"] == "store"
    assert all(m["created"] <= index.sim_time(1) + ":00" for m in first["memories"])
    assert any(m["created"] > index.sim_time(1) + ":00" for m in last["memories"])
    assert all(re.fullmatch(r"Isabella:\d+", m["id"]) for m in last["memories"])
    assert tree_hashes(valentine_run) == before  # the run folder is a record: the view never writes it


@pytest.mark.parametrize(("make", "expected"), [
    (lambda d: d / "absent", "not a run folder (no events.jsonl)"),
    (lambda d: d, "not a run folder (no events.jsonl)"),
    (lambda d: (d / "events.jsonl").write_bytes(b"\x00\xff garbage\n") and d, "byte 0: not an event line"),
    (lambda d: (d / "events.jsonl").write_text('{"step": 1, "kind": "said", "agent": "A", "data": {}}\n') and d,
     "a step 1 event ('said') before run_started"),
    (lambda d: (d / "events.jsonl").write_text("[" * 100_000 + "\n") and d, "byte 0: not an event line"),
    (lambda d: (d / "events.jsonl").write_bytes(b"x" * (17 * 2**20)) and d, "byte 0: a line over 16 MB"),
])
def test_view_refuses_what_is_not_a_run_folder_in_one_line(tmp_path: Path, make: Any, expected: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    folder = make(tmp_path)
    assert run.main(["view", str(folder), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and err.startswith("error: ")


def test_view_refuses_a_run_folder_whose_scenario_is_gone(town_recording: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(town_recording / "events.jsonl", tmp_path / "events.jsonl")
    assert run.main(["view", str(tmp_path), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "not a readable run folder" in err and "scenario.yaml" in err and err.count("\n") == 1


def test_view_refuses_a_port_in_use_in_one_line(town_recording: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert run.main(["view", str(town_recording), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"--port {port}: cannot listen there" in err and f"--port {port + 1}" in err and err.count("\n") == 1


@pytest.mark.parametrize("port", ["70000", "taken"])
def test_a_run_with_a_view_it_cannot_open_leaves_no_run_folder(tmp_path: Path, port: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        number = str(taken.getsockname()[1]) if port == "taken" else port
        assert run.main([str(ROOT / "scenarios" / "town.yaml"), "--steps", "1", "--plain", "--out", str(out),
                         "--set", "llm.backend=dry", "--view", "--port", number]) == 2
    err = capsys.readouterr().err
    expected = f"--port {number}: cannot listen there" if port == "taken" else f"error: --port '{number}': not a port"
    assert expected in err and err.count("\n") == 1, err
    assert not out.exists()


def test_the_view_listens_on_loopback_unless_told(town_recording: Path) -> None:
    from simulacra.web.server import ViewServer

    server = ViewServer(town_recording, port=0)
    try:
        assert server.socket.getsockname()[0] == "127.0.0.1" and server.url.startswith("http://127.0.0.1:")
    finally:
        server.stop()


def test_ctrl_c_stops_the_view_even_where_sigint_was_ignored_at_start(town_recording: Path) -> None:
    """A shell starts background jobs (a script's, a CI job's) with SIGINT ignored, and Python then installs no
    handler for it; the view still stops on Ctrl-C, with exit status 0, from the moment it says so."""
    proc = subprocess.Popen([sys.executable, "run.py", "view", str(town_recording), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=ignore_sigint)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "(Ctrl-C to stop)" in first, first
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_sigterm_stops_the_view_and_removes_its_memory_copy(valentine_run: Path, tmp_path: Path) -> None:
    import httpx

    proc = subprocess.Popen([sys.executable, "run.py", "view", str(valentine_run), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = re.search(r"http://\S+/", first)
        assert url, first
        details = httpx.get(f"{url.group(0)}api/agent?name=Isabella&step=1", timeout=60).json()
        assert details["memories"] and all(m["id"].startswith("Isabella:") for m in details["memories"])
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith("simulacra-view-")]  # the copy it read
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("simulacra-view-")]


# -- a run folder is untrusted input ------------------------------------------------------------------------------
MARKUP = ('<img src=x onerror="window.__pwned=1">', "<script>window.__pwned=2</script>")
SCENARIOS = {"town": "town.yaml", "society": "alignment.yaml", "crafting": "voyager.yaml"}


def write_run(folder: Path, world: str, events: list[tuple[int, Any, str, Any]], *, sim_time: Any = "") -> Path:
    """A run folder of the world's shipped scenario and these (step, agent, kind, data) events."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path("scenarios") / SCENARIOS[world], folder / "scenario.yaml")
    (folder / "events.jsonl").write_text("".join(
        json.dumps({"agent": a, "data": d, "kind": k, "sim_time": sim_time, "step": s}) + "\n"
        for s, a, k, d in events))
    return folder


def write_markup_run(folder: Path, world: str) -> Path:
    """A run whose every text field (names, places, kinds, texts, keys, clock, scale) holds markup."""
    img, script = MARKUP
    cell = {"town": "cafe", "society": [0, 0], "crafting": [1, 1]}[world]
    start = {"agents": {img: cell, script: cell}, "scenario": img, "seed": script, "steps": script, "scale": img,
             "size": 4, "map": [[img, 0, 0, 1]]}
    events = [(0, None, "run_started", start), (1, img, "moved", {"to": script, "from": img, "arrived": True}),
              (1, img, "said", {"to": script, "text": img}), (1, script, script, {img: script}),
              (1, img, "planned", {"level": img, "items": [script, {img: img}]}),
              (1, img, "interaction", {"mean_draft": img, "mean_revision": 2, "question": script,
                                       "ratings": [{"rater": script}]}),
              (1, img, "skill_ran", {"changes": [{"kind": "inventory", "item": img, "delta": 1, "player": img}]}),
              (1, None, "step_ended", {img: 1, script: 2})]
    return write_run(folder, world, events, sim_time=img)


def guarded(index: RunIndex, host: str = "127.0.0.1", port: int = 8765) -> TestClient:
    return TestClient(make_app(index, host=host, port=port), base_url=f"http://{host}:{port}")


def test_every_answer_carries_a_strict_content_security_policy(town_recording: Path) -> None:
    client = guarded(RunIndex(town_recording))
    for path, status in [("/", 200), ("/static/view.js", 200), ("/api/run", 200), ("/api/frame?step=x", 400),
                         ("/nowhere", 404)]:
        answer = client.get(path)
        csp = answer.headers["content-security-policy"]
        assert answer.status_code == status, path
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
    page = client.get("/").text  # nothing inline that the policy would block
    assert not re.search(r"<script(?![^>]*\bsrc=)", page) and "<style" not in page and "style=" not in page


@pytest.mark.parametrize(("host", "status"), [
    ("127.0.0.1:8765", 200), ("localhost:8765", 200), ("[::1]:8765", 200), ("LOCALHOST:8765", 200),
    ("attacker.example:8765", 400), ("127.0.0.1.nip.io:8765", 400), ("127.0.0.1:8766", 400), ("127.0.0.1", 400),
    ("", 400), ("localhost:8765:1", 400), ("[::1]", 400)])
def test_a_request_for_another_host_is_refused(town_recording: Path, host: str, status: int) -> None:
    answer = guarded(RunIndex(town_recording)).get("/api/run", headers={"host": host})
    assert answer.status_code == status
    if status == 400:  # one plain line, with the same headers as every answer
        assert answer.text.count("\n") == 1 and answer.headers["content-type"].startswith("text/plain")
        assert "content-security-policy" in answer.headers


@pytest.mark.parametrize(("bound", "header", "allowed"), [
    ("192.0.2.5", "192.0.2.5:8765", True), ("192.0.2.5", "localhost:8765", False),
    ("view.example", "view.example:8765", True), ("view.example", "other.example:8765", False),
    ("0.0.0.0", "10.1.2.3:8765", True), ("0.0.0.0", "[fe80::1]:8765", True), ("0.0.0.0", "evil.example:8765", False),
    ("::", "localhost:8765", True), ("::1", "[::1]:8765", True), ("::1", "evil.example:8765", False)])
def test_a_bind_answers_to_its_own_names_only(bound: str, header: str, allowed: bool) -> None:
    from simulacra.web.guard import Guard

    assert Guard(lambda *a: None, host=bound, port=8765).allows(header) is allowed  # type: ignore[arg-type, return-value]


def test_the_api_names_the_run_folder_but_not_where_it_lies(town_recording: Path) -> None:
    client = guarded(RunIndex(town_recording))
    meta = client.get("/api/run").json()
    assert meta["run_name"] == town_recording.name and "run_dir" not in meta
    assert meta["provenance"]["model_id"] == "dry:estimate" and meta["provenance"]["simulacra_version"]  # manifest
    for path in ("/api/run", "/api/frame?step=2", "/api/events?first=0&last=4", "/api/agent?name=Tom&step=2"):
        assert str(town_recording.parent) not in client.get(path).text, path


@pytest.mark.parametrize("world", ["town", "society", "crafting"])
def test_markup_in_every_field_is_served_as_json_data(tmp_path: Path, world: str) -> None:
    img, script = MARKUP
    client = guarded(RunIndex(write_markup_run(tmp_path / "run", world)))
    meta = client.get("/api/run").json()
    assert meta["scenario"] == img and set(meta["agents"]) == {img, script} and script in meta["kinds"]
    assert meta["total_steps"] is None  # not a number: left out
    answers = [client.get("/api/events?first=0&last=1&limit=2000"), client.get("/api/frame?step=1"),
               client.get("/api/agent", params={"name": img, "step": 1}), client.get("/api/metrics?upto=1")]
    assert all(a.status_code == 200 and a.headers["content-type"] == "application/json" for a in answers)
    events, frame, agent, metrics = (a.json() for a in answers)
    assert {e["kind"] for e in events["events"]} >= {script, "said"} and frame["sim_time"] == img
    assert any(img in e["text"] for e in events["events"]) and agent["plan"][0]["level"] == img
    assert set(metrics) == {img, script}
    if world == "society":
        assert frame["scale"] is None and frame["ratings"][img]["draft"] is None  # not numbers: left out


def test_the_page_script_never_parses_data_as_html() -> None:
    static = Path("simulacra/web/static")
    script = (static / "view.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    assert not re.search(r"setAttribute\(\s*[\"'](on|style|href|src)", script)


def test_a_step_number_from_the_log_costs_one_entry_not_one_per_step(tmp_path: Path) -> None:
    far = 10**12
    run_dir = write_run(tmp_path, "town", [
        (0, None, "run_started", {"agents": {"Tom": "cafe"}, "steps": 2}),
        (1, "Tom", "moved", {"to": "park"}), (far, None, "step_ended", {"n": 1}),
        (3, "Tom", "moved", {"to": "library"})])
    index = RunIndex(run_dir)
    assert index.steps_done == far
    assert len(index.step_numbers) == len(index.spans) == len(index.frames) == len(index.sim_times) == 3
    assert index.frame_at(far // 2) == {**index.frame_at(1), "step": far // 2}  # the newest step before it
    assert index.frame_at(far)["where"] == {"Tom": "library"}  # a late step 3 is kept with step 10**12
    assert [e["kind"] for e in index.events(2, far)] == ["step_ended", "moved"]
    assert index.events(2, far - 1) == [] and index.metric_series(far) == {"n": [[far, 1]]}
    client = guarded(index)
    assert client.get("/api/run").json()["steps"] == far
    assert client.get(f"/api/frame?step={far * 10}").json()["step"] == far


@pytest.mark.parametrize("world", ["town", "society", "crafting"])
def test_data_of_the_wrong_shape_is_skipped_or_shown_as_text(tmp_path: Path, world: str) -> None:
    start = {"agents": ["Tom"], "size": "big", "map": "none", "scale": [7], "steps": "two"}
    junk: list[Any] = [None, "text", 7, [1, 2], {"to": 5, "changes": [{"kind": "block", "x": "1", "y": None}],
                                                 "ratings": 3, "status": 9, "items": "x", "level": {}},
                       {"changes": "all", "ratings": [None, {"rater": 5}], "ok": True, "survey": 1, "item": []}]
    kinds = ["moved", "said", "skill_ran", "tool_called", "hazard", "interaction", "step_ended", "survey_answer",
             "run_finished", "planned", "observed", "reflected", "criticised"]
    events: list[tuple[int, Any, str, Any]] = [(0, None, "run_started", start)]
    events += [(1, agent, kind, data) for kind in kinds for data in junk for agent in ("Tom", {"a": 1}, None)]
    events += [(2, "Tom", "step_ended", {"nan": float("nan"), "big": 1e308 * 10, "ok": 3})]
    client = guarded(RunIndex(write_run(tmp_path, world, events, sim_time=["not", "a", "time"])))
    for path in ("/api/run", "/api/frame?step=1", "/api/frame?step=2", "/api/events?first=0&last=2&limit=2000",
                 "/api/agent?name=Tom&step=2", "/api/metrics?upto=2"):
        assert client.get(path).status_code == 200, path
    described = client.get("/api/events?first=1&last=1&limit=2000").json()["events"]
    assert len(described) == len(kinds) * len(junk) * 3 and all(isinstance(e["text"], str) for e in described)
    metrics = client.get("/api/metrics?upto=2").json()  # NaN and 1e309 are read as null: no number to chart
    assert metrics["ok"] == [[2, 3]] and "nan" not in metrics and "big" not in metrics


@pytest.mark.parametrize(("args", "expected"), [
    (["--host", ""], "error: --host '': empty; give the address to listen on"),
    (["--host", "  "], "error: --host '  ': empty"),
    (["--port", "70000"], "error: --port '70000': not a port; give a whole number 0..65535"),
    (["--port", "-1"], "error: --port '-1': not a port"),
    (["--port", "http"], "error: --port 'http': not a port"),
])
def test_view_refuses_a_bad_host_or_port_in_one_line(tmp_path: Path, args: list[str], expected: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["view", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected) and err.count("\n") == 1, err


@pytest.mark.parametrize(("host", "warns"), [
    ("127.0.0.1", False), ("127.0.0.2", False), ("localhost", False), ("::1", False), ("[::1]", False),
    ("0.0.0.0", True), ("::", True), ("192.168.1.5", True), ("view.example", True)])
def test_a_host_beyond_loopback_is_warned_about(host: str, warns: bool) -> None:
    from simulacra.web.guard import exposure_warning

    line = exposure_warning(host)
    assert (line is not None) is warns
    if line is not None:
        assert line.startswith(f"warning: --host {host}: ") and "anyone who can reach it can read this run" in line
        assert "\n" not in line


def test_the_server_prints_the_warning_line_once(town_recording: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from simulacra.web import server as web_server

    real_bind = web_server._bind
    monkeypatch.setattr(web_server, "_bind", lambda host, port: real_bind("127.0.0.1", port))  # bind loopback only
    view = web_server.ViewServer(town_recording, host="0.0.0.0", port="0")
    try:
        err = capsys.readouterr().err
        assert err.startswith("warning: --host 0.0.0.0: not a loopback address") and err.count("\n") == 1
    finally:
        view.stop()
