"""One run of a sweep, as a Ray worker (or the test's own process) runs it.

The task is safe to run again: a finished run is read back, a run cut short resumes from its newest
snapshot, a run with no snapshot starts over. That is what makes Ray's retry of a task whose worker or node
died a resume, and what ``sweep --resume`` relies on.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import zlib
from pathlib import Path
from typing import Any

from rich.console import Console

from simulacra.errors import RunStopped, SimError
from simulacra.events import Event, EventKind
from simulacra.runs.lineage import Lineage
from simulacra.runs.runner import RUN_FILES, Runner
from simulacra.runs.snapshots import Snapshots
from simulacra.sweeps.plan import RunSpec, SweepPlan

__all__ = ["StatusBoard", "execute", "run_id"]


class StatusBoard:
    """``DIR/status/<run>.json``: what a run is doing, written by its task and read by the sweep's view."""

    def __init__(self, folder: Path, run: str) -> None:
        """Points at ``folder/<run>.json``."""
        self.path = folder / f"{run}.json"

    def read(self) -> dict[str, Any]:
        """The last state written (empty if none, or if a kill tore the file)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def update(self, **changes: Any) -> dict[str, Any]:
        """Merges ``changes`` into the state and writes it atomically (a reader never sees half a file)."""
        state = {**self.read(), **changes, "updated": round(time.time(), 3)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, self.path)
        return state


def execute(spec_data: dict[str, Any], plan_data: dict[str, Any], sweep_dir: str) -> dict[str, Any]:
    """Runs (or finishes, or reads back) one run of a sweep; never raises for a run that fails.

    Args:
        spec_data: The run (`RunSpec.to_dict`).
        plan_data: The sweep (`SweepPlan.to_dict`).
        sweep_dir: The sweep folder; the run's folder is ``runs/<id>`` in it.

    Returns:
        ``{"id", "status", "attempts", "resumed_from", "error", "summary"}``; status is the run's
        (``completed``, ``stopped``) or ``failed`` with the error's one line.
    """
    spec = RunSpec.from_dict(spec_data)
    root = Path(sweep_dir)
    folder = root / "runs" / spec.id
    board = StatusBoard(root / "status", spec.id)
    before = board.read()
    attempts = int(before.get("attempts", 0)) + 1
    resumed = list(before.get("resumed_from", []))
    board.update(status="starting", attempts=attempts, pid=os.getpid(), node=socket.gethostname(), error=None)
    summary = _summary(folder)
    if summary.get("status") == "completed":
        board.update(status="completed", step=summary.get("steps"))
        return {"id": spec.id, "status": "completed", "attempts": attempts, "resumed_from": resumed, "error": None,
                "summary": summary}
    error = None
    plan = SweepPlan.from_manifest(plan_data)
    if plan.cwd is not None and plan.cwd.is_dir():
        os.chdir(plan.cwd)  # the scenario's relative paths mean what they meant where the sweep started
    try:
        (root / "logs").mkdir(exist_ok=True)
        with (root / "logs").joinpath(f"{spec.id}.log").open("a", encoding="utf-8") as log:
            runner, step = _runner(plan, spec, folder, Console(file=log, width=120, force_terminal=False))
            if step is not None:
                resumed.append(step)
            board.update(status="running", step=step or 0, total=runner.scenario.steps, resumed_from=resumed)
            runner.watchers.append(lambda event: _progress(board, event))
            summary = runner.run()
        status = summary.get("status", "failed")
    except RunStopped as err:
        status, error, summary = "stopped", str(err), _summary(folder)
    except SimError as err:
        status, error = "failed", str(err)
    except Exception as err:  # noqa: BLE001 - one run's bug is recorded, the sweep goes on
        status, error = "failed", f"{type(err).__name__}: {str(err)[:300]}"
    board.update(status=status, error=error)
    return {"id": spec.id, "status": status, "attempts": attempts, "resumed_from": resumed, "error": error,
            "summary": summary}


def _progress(board: StatusBoard, event: Event) -> None:
    if event.kind == EventKind.STEP_ENDED.value:
        board.update(step=event.step)


def _runner(plan: SweepPlan, spec: RunSpec, folder: Path, console: Console) -> tuple[Runner, int | None]:
    """A runner that resumes the run from its newest snapshot, or starts it over; and the step it resumes at."""
    scenario = plan.scenario_of(spec)
    snapshots = Snapshots(folder / RUN_FILES["snapshots"])
    # A snapshot of the last step without a summary: the kill came while the run was being closed. Going back
    # one snapshot redoes the last step from recorded answers and closes the run properly.
    for step in reversed(snapshots.steps()):
        if step < scenario.steps:
            break
        snapshots.path(step).unlink()
    steps = snapshots.steps()
    if steps and (folder / RUN_FILES["events"]).is_file():
        return Lineage(folder).resume(plain=True, console=console), steps[-1]
    if folder.exists():
        shutil.rmtree(folder)  # killed before its first snapshot: nothing to keep
    if plan.parent is not None:
        runner = Lineage(plan.parent).fork(folder, at=int(plan.at or 0), overrides=spec.overrides, plain=True,
                                           console=console)
        return runner, None
    return Runner(scenario, out=folder, plain=True, console=console, run_id=run_id(plan, spec)), None


def run_id(plan: SweepPlan, spec: RunSpec) -> str:
    """What names a sweep run's Chroma collections: the sweep's tag and a checksum of the run's id.

    Always 15 characters: collection names are cut to 40 (``<scenario>-<run id>``) and 30 (``answers-<run id>``)
    characters, and a cut that dropped the replica number would let two runs share a shared Chroma's collections.
    """
    return f"{plan.id}-{zlib.crc32(spec.id.encode()):08x}"


def _summary(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / RUN_FILES["summary"]).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
