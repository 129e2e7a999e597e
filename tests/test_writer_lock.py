"""One writer per run folder and per sweep folder, with real processes: a second writer gets one line naming the
holder's pid and exit 2; a holder killed with SIGKILL leaves nothing stuck; readers work beside a writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from simulacra.errors import SimError
from simulacra.runs.writer_lock import LOCK_FILE, WriterLock
from tests.conftest import ROOT

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
FOREVER = "100000"  # steps: the run is still going when the test is done with it
DRY = ("--set", "llm.backend=dry", "--set", "llm.model=estimate")


def cli(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "run.py"), *args]


def holder_pid(folder: Path) -> int | None:
    try:
        return json.loads((folder / LOCK_FILE).read_text()).get("pid")
    except (OSError, ValueError):
        return None


@contextmanager
def writing(command: list[str], folder: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Starts ``command`` and yields once it holds ``folder``'s lock (and a snapshot is written); kills it after."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, cwd=ROOT)
    try:
        while proc.poll() is None and not (holder_pid(folder) == proc.pid and any(folder.glob("snapshots/*.json"))):
            time.sleep(0.01)
        assert proc.poll() is None, f"the writer ended early: {proc.stderr.read()[-2000:]!r}"  # type: ignore[union-attr]
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)


def second(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli(*args), capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=300, check=False)


def assert_refused(done: subprocess.CompletedProcess[str], folder: Path, pid: int, what: str = "run folder") -> None:
    assert done.returncode == 2, done.stdout[-1000:] + done.stderr[-2000:]
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {folder}: the {what} is being written by process {pid} (")
    assert line.endswith("; wait for it to end or stop it, or give another folder")


def newest_step(run: Path) -> int:
    return max(int(p.name[5:11]) for p in (run / "snapshots").glob("step-*.json"))


def test_a_second_lock_on_a_folder_names_the_holder(tmp_path: Path) -> None:
    with WriterLock(tmp_path / "run") as first:
        with pytest.raises(SimError, match=f"is being written by process {os.getpid()} "):
            WriterLock(tmp_path / "run").acquire()
        assert first.held
    assert not first.held
    with WriterLock(tmp_path / "run"):  # released: the next writer gets it
        pass


def test_a_resume_during_the_run_and_two_resumes_at_once_are_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with writing(cli("scenarios/town.yaml", "--steps", FOREVER, "--plain", "--out", str(run), *DRY), run) as proc:
        assert_refused(second("resume", str(run), "--plain"), run, proc.pid)
        fresh = second("scenarios/town.yaml", "--steps", "2", "--plain", "--out", str(run), *DRY)
        assert fresh.returncode == 2
        assert fresh.stderr.startswith(f"error: --out {str(run)!r} already holds a run (events.jsonl)")
        reader = second("interview", str(run), "--all", "Where are you?")  # beside the writer
        assert reader.returncode == 0, reader.stderr[-2000:]
        assert "Where are you?" in reader.stdout
    # killed with SIGKILL inside a step: nothing is stuck, a resume goes on
    with writing(cli("resume", str(run), "--plain"), run) as first:
        assert_refused(second("resume", str(run), "--plain"), run, first.pid)
    done = second("resume", str(run), "--plain", "--steps", str(newest_step(run) + 2))
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in events].count("run_finished") == 1
    steps = [e["step"] for e in events]
    assert steps == sorted(steps)  # one writer at a time: the steps never go backwards


def test_a_fork_into_a_folder_being_written_is_refused(tmp_path: Path) -> None:
    parent, child = tmp_path / "parent", tmp_path / "child"
    made = second("scenarios/town.yaml", "--steps", "2", "--plain", "--out", str(parent), *DRY)
    assert made.returncode == 0, made.stderr[-2000:]
    with writing(cli("fork", str(parent), "--at", "1", "--steps", FOREVER, "--out", str(child), "--plain"),
                 child) as proc:
        refused = second("fork", str(parent), "--at", "1", "--out", str(child), "--plain")
        assert refused.returncode == 2
        assert refused.stderr.startswith(f"error: --out {str(child)!r} is not empty")
        assert_refused(second("resume", str(child), "--plain"), child, proc.pid)


def test_a_second_sweep_driver_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    command = cli("sweep", "scenarios/town.yaml", "--steps", FOREVER, "--out", str(out), "--plain",
                  "--max-parallel", "1", *DRY)
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, cwd=ROOT)
    try:
        while proc.poll() is None and not (holder_pid(out) == proc.pid and any(out.glob("runs/*/snapshots/*.json"))):
            time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read()[-2000:]  # type: ignore[union-attr]
        assert_refused(second("sweep", "--resume", str(out), "--plain"), out, proc.pid, what="sweep folder")
    finally:
        proc.send_signal(signal.SIGINT)  # the driver stops its runs and its Ray (Ctrl-C, exit 130)
        assert proc.wait(timeout=120) == 130
