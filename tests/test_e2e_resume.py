"""Crash-safe runs on the embedded model: SIGKILL at a random step, resume, fork, replay (subprocesses).

Each scenario's recording is conftest's session fixture (RECORDINGS: its steps and overrides), made once a session and
read by that scenario's own e2e tests too. A second run answers from its recorded responses and is killed with SIGKILL
as soon as a randomly drawn step has ended (it may be inside the next step by then); `python run.py resume` must then
finish it with exactly the recorded events.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RECORDINGS, ROOT, recording_args, recording_fixture
from tests.helpers import kill_when

pytestmark = pytest.mark.e2e
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
SCENARIOS = ["town", "valentine", "voyager", "babyagi-crafting", "alignment"]  # each records 2 steps or more
KILL_SEED = 20261201
TOWN_STEPS, _ = RECORDINGS["town"]
AT = TOWN_STEPS - 2  # where the town's forks start


def python_run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], capture_output=True, text=True, env=ENV,
                          cwd=ROOT, timeout=timeout, check=False)


def steps_ended(run_dir: Path) -> int:
    path = run_dir / "events.jsonl"
    if not path.exists():
        return 0
    return path.read_bytes().count(b'"kind": "step_ended"')


def kill_at(command: list[str], run_dir: Path, step: int) -> int:
    """Starts ``command`` and SIGKILLs it once ``step`` steps have ended; returns the step it had reached."""
    code, err = kill_when(command, lambda: steps_ended(run_dir) >= step, env=ENV, cwd=ROOT)
    assert code == -signal.SIGKILL, f"the run ended before the kill: {err!r}"
    return steps_ended(run_dir)


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_run_killed_at_a_random_step_resumes_to_exactly_the_recorded_events(request, name, tmp_path) -> None:
    steps, _ = RECORDINGS[name]
    source = request.getfixturevalue(recording_fixture(name))
    out = tmp_path / "killed"
    at = random.Random(f"{KILL_SEED}-{name}").randint(1, steps - 1)
    command = [sys.executable, str(ROOT / "run.py"), *recording_args(name), "--out", str(out), "--replay", str(source)]
    reached = kill_at(command, out, at)
    assert reached < steps
    assert not (out / "summary.json").exists()
    names = sorted(p.name for p in (out / "snapshots").iterdir())
    snapshots = [n for n in names if n.endswith(".json")]  # a kill inside a write leaves a .json.tmp beside them
    assert snapshots and all(n.startswith("step-") for n in names)
    assert all(n.endswith(".json.tmp") for n in set(names) - set(snapshots))

    resumed = python_run("resume", str(out), "--plain")

    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (out / "events.jsonl").read_bytes() == (source / "events.jsonl").read_bytes()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["resumed_from"] == int(snapshots[-1][5:11])
    assert summary["steps"] == steps
    recorded_summary = json.loads((source / "summary.json").read_text())
    assert summary["llm"]["failures"] == recorded_summary["llm"]["failures"]  # the same fallbacks, no new ones
    assert summary["events"] == recorded_summary["events"]


def test_a_finished_run_resumed_with_more_steps_goes_on(town_run, tmp_path) -> None:
    out = tmp_path / "longer"
    first = python_run(*recording_args("town", steps=TOWN_STEPS - 1), "--out", str(out), "--replay", str(town_run))
    assert first.returncode == 0, first.stderr[-2000:]

    again = python_run("resume", str(out), "--steps", str(TOWN_STEPS), "--plain")

    assert again.returncode == 0, again.stderr[-2000:]
    longer = (out / "events.jsonl").read_bytes().splitlines()
    whole = (town_run / "events.jsonl").read_bytes().splitlines()
    assert json.loads(longer[0])["data"]["steps"] == TOWN_STEPS - 1  # run_started tells the plan it started with
    assert longer[1:] == whole[1:]  # then everything as in the run planned for all the steps
    assert json.loads((out / "summary.json").read_text())["resumed_from"] == TOWN_STEPS - 1
    nothing = python_run("resume", str(out), "--plain")
    assert nothing.returncode == 2
    assert nothing.stderr.strip().splitlines() == [
        f"error: {out}: the run has all {TOWN_STEPS} steps (snapshot of step {TOWN_STEPS}); give --steps N with "
        f"N > {TOWN_STEPS} to go on"]


def test_replay_is_identical_and_a_changed_log_shows_its_first_difference(town_run, tmp_path) -> None:
    source = town_run
    same = python_run("replay", str(source))
    assert same.returncode == 0, same.stderr[-2000:]
    assert same.stdout.startswith(f"{source}: replay identical")

    tampered = tmp_path / "tampered"
    subprocess.run(["cp", "-r", str(source), str(tampered)], check=True)
    lines = (tampered / "events.jsonl").read_text().splitlines(keepends=True)
    n = next(i for i, line in enumerate(lines) if json.loads(line).get("step") == 1)  # step 1's first line
    lines[n] = lines[n].replace('"step": 1', '"step": 7')
    (tampered / "events.jsonl").write_text("".join(lines))
    differs = python_run("replay", str(tampered))
    assert differs.returncode == 1
    assert f"line {n + 1} differs" in differs.stdout


def test_a_fork_shares_the_prefix_and_differs_after_an_override_that_matters(town_run, tmp_path) -> None:
    source = town_run
    parent_events = (source / "events.jsonl").read_bytes()
    same = python_run("fork", str(source), "--at", str(AT), "--out", str(tmp_path / "same"), "--plain")
    assert same.returncode == 0, same.stderr[-2000:]
    assert (tmp_path / "same" / "events.jsonl").read_bytes() == parent_events  # no override: the same run

    news = f"inject=[{{step: {AT + 1}, to: Klaus, text: 'Isabella tells you there is a fire at the store'}}]"
    fork = python_run("fork", str(source), "--at", str(AT), "--set", news, "--out", str(tmp_path / "child"), "--plain")

    assert fork.returncode == 0, fork.stderr[-2000:]
    child = (tmp_path / "child" / "events.jsonl").read_bytes()
    snapshot = json.loads((source / "snapshots" / f"step-{AT:06d}.json").read_text())
    prefix = snapshot["events_bytes"]
    assert child[:prefix] == parent_events[:prefix]
    assert child != parent_events
    after = [json.loads(line) for line in child[prefix:].splitlines()]
    assert after[0]["kind"] == "injected" and after[0]["agent"] == "Klaus"
    summary = json.loads((tmp_path / "child" / "summary.json").read_text())
    assert summary["parent"] == {"run": str(source), "step": AT, "overrides": [news]}
    assert (tmp_path / "child" / "scenario.yaml").read_text().startswith(f"# forked from {source} at step {AT}")
    again = python_run("replay", str(tmp_path / "child"))
    assert again.returncode == 0, again.stdout + again.stderr[-2000:]


def test_a_fork_refuses_a_field_that_cannot_change(town_run, tmp_path) -> None:
    refused = python_run("fork", str(town_run), "--at", str(AT), "--set", "clock.minutes_per_step=5",
                         "--out", str(tmp_path / "x"))
    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith("error: --set 'clock.minutes_per_step=5': 'clock.minutes_per_step' cannot change at a fork")
    assert not (tmp_path / "x").exists()


def test_a_fork_of_generative_agents_copies_and_rewinds_their_memories(valentine_run, tmp_path) -> None:
    from simulacra.memory.chroma_store import ChromaStore, open_client
    from simulacra.scenarios.loading import load_scenario
    from tests.fakes import bag_of_words

    source = valentine_run
    child = tmp_path / "child"
    news = "Isabella tells you that the Valentine party at Hobbs Cafe starts at 17:00"
    fork = python_run("fork", str(source), "--at", "1", "--out", str(child), "--plain",
                      "--set", f"inject=[{{step: 2, to: Maria, text: '{news}'}}]")

    assert fork.returncode == 0, fork.stderr[-2000:]
    summary = json.loads((child / "summary.json").read_text())
    store = ChromaStore(open_client(path=child / "chroma"), embed=bag_of_words, prefix="valentine-recorded")
    agents = [a.name for a in load_scenario(child / "scenario.yaml").agents]
    held = {name: store.load(name).texts for name in agents}
    assert sum(len(texts) for texts in held.values()) == summary["memory"]["memories"]  # the copy, rewound, then
    assert news in held["Maria"]  # grown by the child's own memories (the rewind itself: tests/test_state.py)
    assert "Maria" in summary["diffusion"]["knows"]
