"""The web view's index and API, checked against the run folder's own record (events and snapshots)."""

from __future__ import annotations

import json
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
