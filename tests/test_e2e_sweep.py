"""Sweeps on a real Ray (2 CPUs) with the embedded model: a grid × replicas of a town of two, a worker killed
mid-run, an interrupted sweep resumed, arms forked from a parent on a ``ray start --head`` cluster, and
nothing Ray starts listening beyond loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from simulacra.sweeps.cluster import LOOPBACK_ENV, listening
from tests.conftest import ROOT
from tests.helpers import free_port

pytestmark = pytest.mark.e2e

TOWN = ROOT / "scenarios" / "town.yaml"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def _sweep(*args: str, wait: bool = True) -> subprocess.Popen[str] | subprocess.CompletedProcess[str]:
    command = [sys.executable, str(ROOT / "run.py"), "sweep", *args, "--plain"]
    if not wait:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV,
                                cwd=ROOT)
    return subprocess.run(command, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=900, check=False)


def _descendants(root: int) -> set[int]:
    parents = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid and p not in found]
        found.update(children)
        frontier += children
    return found


def _ray_pids() -> set[int]:
    pids = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"ray" in cmdline:  # GCS, raylet, workers, agents, the client server (port 10001), the dashboard
                pids.add(int(proc.name))
    return pids


def _watch(proc: subprocess.Popen[str], until: Callable[[], bool], seen: set[tuple[int, str, int]],
           timeout: float = 600) -> None:
    """Polls while ``proc`` runs: records what its process tree listens on; returns when ``until()`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        seen.update(listening(_descendants(proc.pid)))
        if until():
            return
        time.sleep(0.3)
    if not until():
        out = proc.stdout.read() if proc.poll() is not None and proc.stdout else ""
        pytest.fail(f"the sweep ended (rc {proc.returncode}) before the condition held: {out[-2000:]}")


def _status(folder: Path, run: str) -> dict:
    try:
        return json.loads((folder / "status" / f"{run}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _step_ends(run: Path) -> list[int]:
    lines = (run / "events.jsonl").read_text(encoding="utf-8").splitlines()
    return [e["step"] for e in map(json.loads, lines) if e["kind"] == "step_ended"]


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """2 cells × 2 replicas of a town of two, 4 steps each, on a local Ray: the first run's worker is killed mid-run,
    the sweep is interrupted (Ctrl-C) while the last run is under way, then resumed. What its processes
    listened on, the logs and statuses at each stage."""
    folder = tmp_path_factory.mktemp("sweep")
    out, town = folder / "grid", folder / "town2.yaml"
    scenario = yaml.safe_load(TOWN.read_text(encoding="utf-8"))
    town.write_text(yaml.safe_dump({**scenario, "agents": scenario["agents"][:2]}), encoding="utf-8")  # Isabella, Klaus
    # Two of the town's five, for four steps: what is checked here is the sweep's, and six town runs of two steps on
    # the model with five people took 200 s of the suite. Four steps: the Ctrl-C comes as the last run begins, and
    # the run must not end in the seconds the sweep takes to stop (with three, begun at step 1, it did). 2 CPUs a run:
    # one run at a time, so the kill, the Ctrl-C and what each leaves behind come in a known order. One llama.cpp
    # thread: the other test worker shares the 2 cores (two threads beside it made calls pass the timeout).
    proc = _sweep(str(town), "--steps", "4", "--grid", "llm.temperature=0.3,0.9", "--replicas", "2",
                  "--cpus-per-run", "2", "--set", "llm.n_threads=1", "--out", str(out), wait=False)
    seen: set[tuple[int, str, int]] = set()
    first, last = "c0-base-r0", "c1-base-r1"
    # Killed once its snapshot of step 1 is on disk (the status says step 1 as the step ends, before the snapshot).
    snapshot = out / "runs" / first / "snapshots" / "step-000001.json"
    _watch(proc, lambda: snapshot.exists() and _status(out, first).get("status") == "running", seen)
    os.kill(_status(out, first)["pid"], signal.SIGKILL)  # the worker dies mid-run; Ray retries the task
    begun = out / "runs" / last / "snapshots" / "step-000000.json"  # a run snapshots its start: it can resume
    _watch(proc, lambda: begun.exists() and _status(out, last).get("status") == "running", seen)
    proc.send_signal(signal.SIGINT)  # Ctrl-C the sweep while the last run is under way
    interrupted = proc.communicate(timeout=300)[0]
    before = {"returncode": proc.returncode, "output": interrupted, "first": _status(out, first),
              "first_log": (out / "runs" / first / "events.jsonl").read_bytes(),
              "frame": pd.read_parquet(out / "sweep.parquet")}
    resumed = _sweep("--resume", str(out))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    return {"out": out, "seen": seen, "before": before, "output": resumed.stdout}


def test_a_grid_sweep_runs_every_cell_and_replica(grid_sweep: dict) -> None:
    out, output = grid_sweep["out"], grid_sweep["output"]
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == ["c0-base-r0", "c0-base-r1", "c1-base-r0", "c1-base-r1"]
    frame = pd.read_parquet(out / "sweep.parquet")
    assert len(frame) == 4 and set(frame["status"]) == {"completed"}
    assert sorted(frame["grid.llm.temperature"]) == ["0.3", "0.3", "0.9", "0.9"]
    assert (frame["llm.calls"] > 0).all() and (frame["tokens"] > 0).all() and (frame["steps"] == 4).all()
    assert frame.groupby("replica")["seed"].nunique().tolist() == [1, 1]  # replicas share seeds across cells
    assert frame.loc[frame["replica"] == 0, "seed"].tolist() == [42, 42]  # replica 0 runs with the town's seed
    for run in runs:
        summary = json.loads((out / "runs" / run / "summary.json").read_text(encoding="utf-8"))
        assert summary["status"] == "completed" and _step_ends(out / "runs" / run) == [1, 2, 3, 4]
    page = (out / "sweep.md").read_text(encoding="utf-8")
    assert "4 runs: 4 completed." in page and "| llm.temperature=0.3 | base | 2 |" in page
    assert "| cell | arm | n | mean | 95 % CI |" in page and any((out / "plots").glob("*.png"))
    assert "4 runs (4 completed)" in output


def test_nothing_a_local_sweep_starts_listens_beyond_loopback(grid_sweep: dict) -> None:
    seen = grid_sweep["seen"]
    assert len({pid for pid, _, _ in seen}) >= 3  # Ray's GCS, raylet and workers were seen listening
    assert {address for _, address, _ in seen} <= {"127.0.0.1", "::1"}, seen


def test_a_killed_worker_resumes_and_an_interrupted_sweep_goes_on(grid_sweep: dict) -> None:
    out, before = grid_sweep["out"], grid_sweep["before"]
    assert before["returncode"] == 130, before["output"]
    assert "go on with: python run.py sweep --resume" in before["output"]
    first = before["first"]
    assert first["status"] == "completed" and first["attempts"] == 2 and first["resumed_from"][0] >= 1
    assert before["frame"].set_index("run").loc["c1-base-r1", "status"] == "interrupted"
    # After --resume: the killed run's log has each step once and was not touched again; the last run resumed.
    assert _step_ends(out / "runs" / "c0-base-r0") == [1, 2, 3, 4]
    assert (out / "runs" / "c0-base-r0" / "events.jsonl").read_bytes() == before["first_log"]
    assert _status(out, "c1-base-r1")["resumed_from"]
    page = (out / "sweep.md").read_text(encoding="utf-8")
    assert "run(s) had completed before this sweep --resume and were kept: c0-base-r0" in page
    assert "c0-base-r0: resumed from its snapshot of step" in page and "c1-base-r1: resumed from" in page



def test_arms_forked_from_a_parent_on_a_ray_start_cluster(grid_sweep: dict, tmp_path: Path) -> None:
    parent = grid_sweep["out"] / "runs" / "c0-base-r0"  # the run whose worker was killed: its snapshots hold
    ray = str(Path(sys.executable).parent / "ray")
    port = free_port()
    env = {**ENV, **LOOPBACK_ENV}
    start = subprocess.run([ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                            "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"],
                           capture_output=True, text=True, env=env, timeout=120, check=False)
    try:
        assert start.returncode == 0, start.stdout + start.stderr
        out = tmp_path / "arms"
        result = _sweep("--from", str(parent), "--at", "2", "--steps", "3", "--ray", f"127.0.0.1:{port}",
                        "--arm", "party:agents.0.goal=throw a party at the cafe tonight",
                        "--arm", "quiet:agents.0.goal=close the cafe early and read", "--out", str(out))
        listeners = listening(_ray_pids())
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    snapshot = json.loads((parent / "snapshots" / "step-000002.json").read_text(encoding="utf-8"))
    prefix = (parent / "events.jsonl").read_bytes()[: snapshot["events_bytes"]]
    for arm in ("c0-party-r0", "c0-quiet-r0"):
        log = (out / "runs" / arm / "events.jsonl").read_bytes()
        assert log.startswith(prefix) and len(log) > len(prefix)  # the parent's first 2 steps, byte for byte
        assert _step_ends(out / "runs" / arm) == [1, 2, 3]
        summary = json.loads((out / "runs" / arm / "summary.json").read_text(encoding="utf-8"))
        assert summary["parent"]["step"] == 2 and summary["parent"]["run"] == str(parent)
    frame = pd.read_parquet(out / "sweep.parquet")
    assert sorted(frame["arm"]) == ["party", "quiet"] and set(frame["status"]) == {"completed"}
    assert listeners and {address for _, address, _ in listeners} <= {"127.0.0.1", "::1"}, listeners
