"""Snapshots, resume and stops on a scripted model: full disk, Ctrl-C, a dead engine, hostile run folders."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulacra.errors import BackendError, SimError
from simulacra.runs.snapshots import Snapshots, read_snapshot
from tests.conftest import ROOT

SCENARIO = """\
name: snap
seed: 3
steps: 6
world: {type: town}
agents:
  - {name: A, persona: a baker, home: cafe}
  - {name: B, persona: a poet, home: park}
  - {name: C, persona: a nurse, home: plaza}
llm: {backend: tests.fakes:ScriptedBackend, model: tests.test_snapshots:engine, cache: false, retries: 1,
      backoff_s: 0, down_after_s: 0.01}
"""

# The scenario runs run.py on a scripted, seeded engine instead of llama.cpp (the town stays real); each launch says
# how the engine behaves in its process: SNAP_DELAY (seconds before each answer), SNAP_FAIL_AFTER (requests answered
# before it "dies" for good; -1: never), SNAP_FLAKY (every this many requests one fails, as a flaky server's; 0: never).
_counts = {"asked": 0, "answered": 0}


def engine(request) -> str:  # noqa: ANN001 - an LLMRequest
    """The town's answers drawn from the request's seed, as slow, mortal or flaky as the launch says."""
    time.sleep(float(os.environ.get("SNAP_DELAY", "0")))
    _counts["asked"] += 1
    if _counts["answered"] == int(os.environ.get("SNAP_FAIL_AFTER", "-1")):
        time.sleep(0.02)
        msg = "connection refused"
        raise BackendError(msg)
    flaky = int(os.environ.get("SNAP_FLAKY", "0"))
    if flaky and _counts["asked"] % flaky == 0:
        msg = "HTTP 503 from a flaky server"
        raise BackendError(msg)
    _counts["answered"] += 1
    place = ["plaza", "cafe", "park", "store"][request.seed % 4]
    kind = ["go_to", "do"][request.seed % 2]
    return json.dumps({"action": kind, "place": place, "person": "nobody", "text": f"thinking {request.seed % 7}"})


def knitting(request) -> str:  # noqa: ANN001 - an LLMRequest
    text = f"knitting {request.seed % 5}"
    return json.dumps({"action": "do", "place": "plaza", "person": "nobody", "text": text})


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "snap.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path


def launch(*args: str, delay: float = 0.0, fsize: int | None = None, fail_after: int = -1, flaky: int = 0,
           wait: bool = True) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    """``python run.py ARGS`` at the repository's root (where tests.fakes imports), the engine set as `engine` says."""
    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    command = [sys.executable, "run.py", *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SNAP_DELAY": str(delay), "SNAP_FAIL_AFTER": str(fail_after),
           "SNAP_FLAKY": str(flaky)}
    if not wait:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                cwd=ROOT, preexec_fn=limit)
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, preexec_fn=limit, timeout=120,
                          check=False)


@pytest.fixture
def uninterrupted(scenario: Path, tmp_path: Path) -> bytes:
    done = launch(str(scenario), "--out", str(tmp_path / "whole"), "--plain")
    assert done.returncode == 0, done.stderr
    return (tmp_path / "whole" / "events.jsonl").read_bytes()


def test_snapshots_are_written_whole_and_the_newest_k_kept(tmp_path: Path) -> None:
    snaps = Snapshots(tmp_path / "snapshots", keep=2)
    for step in range(5):
        snaps.write(step, {"step": step, "events_bytes": 10 * step, "world": {"steps": step}})
    (tmp_path / "snapshots" / "step-000009.json.tmp").write_text("{torn")  # a write a kill cut short
    assert snaps.steps() == [3, 4]
    assert snaps.load()["world"] == {"steps": 4}
    assert snaps.load(3)["events_bytes"] == 30
    with pytest.raises(SimError, match=re.escape("no snapshot of step 1; there are: 3-4")):
        snaps.load(1)
    every = Snapshots(tmp_path / "all", keep=0)
    for step in (0, 1, 2, 5):
        every.write(step, {"step": step, "events_bytes": 0, "world": {}})
    assert every.steps() == [0, 1, 2, 5]
    with pytest.raises(SimError, match=re.escape("there are: 0-2, 5")):
        every.load(4)


def test_snapshots_past_the_budget_are_thinned_evenly_and_the_newest_stay(tmp_path: Path) -> None:
    snaps = Snapshots(tmp_path / "snapshots", budget_mb=0)
    for step in range(21):
        snaps.write(step, {"step": step, "events_bytes": 0, "world": {"pad": "x" * 1000}})
    assert snaps.steps() == list(range(21))  # no budget: every step stays
    snaps.budget = 11 * snaps.path(20).stat().st_size  # room for 11 of the 21
    assert len(snaps.thin()) == 10
    kept = snaps.steps()
    assert len(kept) == 11 and kept[0] == 0 and kept[-3:] == [18, 19, 20], kept
    gaps = [b - a for a, b in zip(kept[:-3], kept[1:-2], strict=True)]
    assert max(gaps) <= 2 * 18 / 8, kept  # spread over the run: no hole wider than twice the even gap
    snaps.write(21, {"step": 21, "events_bytes": 0, "world": {"pad": "x" * 1000}})  # each write thins again
    assert len(snaps.steps()) == 11 and snaps.steps()[-3:] == [19, 20, 21]


@pytest.mark.parametrize(("content", "message"), [
    (b"\xff\xfe\x00junk", "not a snapshot (UnicodeDecodeError"),
    (b"[" * 100_000, "not a snapshot (RecursionError"),
    (b'{"version": 1, "world": {}, "step": -1, "events_bytes": 0}', "not a snapshot (step is -1, expected a count)"),
    (b'{"version": 7, "world": {}}', "not a snapshot of version 1"),
    (b"", "not a snapshot (JSONDecodeError"),
])
def test_a_damaged_snapshot_is_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "step-000001.json"
    path.write_bytes(content)
    with pytest.raises(SimError) as err:
        read_snapshot(path)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_resume_of_a_folder_that_is_not_a_run_is_one_line(tmp_path: Path) -> None:
    done = launch("resume", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: {tmp_path}: not a run folder (no scenario.yaml); give a folder that python run.py FILE wrote"]


def test_a_full_disk_stops_the_run_with_its_last_snapshot_intact_and_resume_finishes_it(
        scenario: Path, tmp_path: Path, uninterrupted: bytes) -> None:
    out = tmp_path / "full"
    biggest = (tmp_path / "whole" / "llm_calls.jsonl").stat().st_size  # the call log fills the "disk" first
    stopped = launch(str(scenario), "--out", str(out), "--plain", fsize=biggest * 2 // 3)

    assert stopped.returncode == 3, stopped.stderr
    [line] = stopped.stderr.splitlines()
    assert re.fullmatch(rf"error: cannot write the run folder \(File too large\); the run stopped, its snapshot of "
                        rf"step (\d) is intact; resume with: python run.py resume {re.escape(str(out))}", line)
    step = int(re.search(r"step (\d)", line).group(1))
    assert read_snapshot(out / "snapshots" / f"step-{step:06d}.json")["step"] == step

    resumed = launch("resume", str(out), "--plain")
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "events.jsonl").read_bytes() == uninterrupted


def test_an_unwritable_run_folder_is_refused_at_the_start(scenario: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    done = launch(str(scenario), "--out", str(blocker / "run"), "--plain")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: {blocker / 'run'}: cannot write the run folder (Not a directory); choose another --out or free "
        "some space"]


def test_ctrl_c_finishes_the_step_snapshots_it_and_says_how_to_resume(scenario: Path, tmp_path: Path,
                                                                      uninterrupted: bytes) -> None:
    out = tmp_path / "ctrl-c"
    proc = launch(str(scenario), "--out", str(out), "--plain", delay=0.2, wait=False)
    while b'"kind": "step_ended"' not in ((out / "events.jsonl").read_bytes() if (out / "events.jsonl").exists()
                                         else b""):
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 130
    [line] = stderr.splitlines()
    step = json.loads((out / "events.jsonl").read_text().splitlines()[-2])["step"]  # before run_finished
    assert line.startswith(f"error: interrupted (Ctrl-C); the run stopped, its snapshot of step {step} is intact")
    assert 1 <= step < 6
    assert line.endswith(f"is intact; resume with: python run.py resume {out}")
    assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"
    resumed = launch("resume", str(out), "--plain")
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "events.jsonl").read_bytes() == uninterrupted


def test_an_engine_that_stays_down_stops_the_run_with_exit_3_and_resume_finishes_it(
        scenario: Path, tmp_path: Path, uninterrupted: bytes) -> None:
    out = tmp_path / "down"
    stopped = launch(str(scenario), "--out", str(out), "--plain", fail_after=7)

    assert stopped.returncode == 3, stopped.stderr
    [line] = stopped.stderr.splitlines()
    assert line.startswith("error: the LLM backend is unreachable (")
    assert line.endswith(f"is intact; resume with: python run.py resume {out}")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "stopped"
    assert summary["llm"]["errors"] >= 2
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    assert events[-1]["kind"] == "run_finished" and events[-1]["data"]["status"] == "stopped"

    resumed = launch("resume", str(out), "--plain")
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "events.jsonl").read_bytes() == uninterrupted


def test_a_damaged_run_folder_is_one_line_for_resume_fork_and_replay(
        scenario: Path, tmp_path: Path, uninterrupted: bytes) -> None:
    whole = tmp_path / "whole"
    events = whole / "events.jsonl"
    events.write_bytes(uninterrupted[:100])  # the log lost most of what the snapshots say it held
    cut = launch("resume", str(whole), "--steps", "8")
    assert cut.returncode == 2
    taken = read_snapshot(whole / "snapshots" / "step-000006.json")["events_bytes"]
    assert cut.stderr.splitlines() == [f"error: {events}: 100 bytes, but the snapshot was taken at {taken}; the event "
                                       "log was lost or replaced, so the run cannot go on from it"]

    edited = whole / "snapshots" / "step-000006.json"
    edited.write_text(json.dumps({**read_snapshot(edited), "events_bytes": 50, "world": {"steps": "six"}}))
    misfit = launch("resume", str(whole), "--steps", "8")
    assert misfit.returncode == 2
    assert misfit.stderr.splitlines() == [f"error: {edited}: the snapshot does not fit the run's scenario (ValueError: "
                                          "invalid literal for int() with base 10: 'six'); resume from another step "
                                          "or start the run again"]
    assert events.read_bytes() == uninterrupted[:100]  # nothing in the folder changed
    assert json.loads((whole / "summary.json").read_text())["status"] == "completed"

    (whole / "snapshots" / "step-000004.json").write_bytes(b"\x00\x01junk")
    fork = launch("fork", str(whole), "--at", "4", "--out", str(tmp_path / "child"))
    assert fork.returncode == 2
    assert fork.stderr.splitlines()[0].startswith(f"error: {whole / 'snapshots' / 'step-000004.json'}: not a snapshot")
    assert len(fork.stderr.splitlines()) == 1

    for step in range(4):  # as a run thinned to its budget (outputs.snapshots_mb) or told snapshots_keep: 3
        (whole / "snapshots" / f"step-{step:06d}.json").unlink()
    gone = launch("fork", str(whole), "--at", "2", "--out", str(tmp_path / "child"))
    assert gone.stderr.splitlines() == [f"error: {whole / 'snapshots'}: no snapshot of step 2; there are: 4-6 "
                                        "(outputs.snapshots_keep and outputs.snapshots_mb limit what a run keeps)"]

    laughs_yaml = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 8)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    (whole / "scenario.yaml").write_text(laughs_yaml)
    laughs = launch("replay", str(whole))
    assert laughs.returncode == 2
    [line] = laughs.stderr.splitlines()
    assert line.startswith(f"error: {whole / 'scenario.yaml'}")
    assert not (tmp_path / "child").exists()


def test_the_live_view_of_a_resumed_run_knows_the_agents_from_the_kept_log(scenario: Path, tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from simulacra.runs.lineage import Lineage
    from simulacra.runs.runner import Runner
    from simulacra.scenarios.loading import load_scenario

    out = tmp_path / "live"
    scripted = load_scenario(scenario, ["steps=2", "llm.model=tests.test_snapshots:knitting"])
    Runner(scripted, out=out, plain=True, console=Console(quiet=True)).run()
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=120)

    summary = Lineage(out).resume(steps=3, console=terminal).run()

    assert summary["status"] == "completed" and summary["resumed_from"] == 2
    drawn = screen.getvalue()
    rows = [line for line in drawn.splitlines() if re.search(r"│ [ABC] +│ \w+ +│ knitting", line)]
    assert {row.split("│")[1].strip() for row in rows} == {"A", "B", "C"}  # the table, rebuilt from run_started
    assert "3/3" in drawn


def test_a_run_that_met_engine_failures_replays_them_at_the_same_attempts(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "flaky"
    done = launch(str(scenario), "--out", str(out), "--plain", "--set", "llm.down_after_s=60", flaky=3)
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["llm"]["errors"] >= 5 and summary["llm"]["failures"] >= 1  # some calls ran out of retries

    again = launch("replay", str(out), flaky=2)  # a different flakiness: the engine is never asked

    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.startswith(f"{out}: replay identical")
