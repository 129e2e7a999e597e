"""A sweep: every run of a `SweepPlan` as a Ray task, watched live, summarised with confidence intervals.

A sweep folder holds ``sweep.json`` (the plan), ``runs/<id>/`` (each run's folder, as ``python run.py``
writes it), ``status/<id>.json`` (what each run's task last did), ``logs/<id>.log`` (each run's plain
lines), and, at the end, ``sweep.parquet``, ``sweep.md`` and ``plots/``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console

from simulacra.errors import RunStopped, SimError
from simulacra.runs.run_files import interruptible
from simulacra.runs.writer_lock import WriterLock
from simulacra.sweeps.cluster import Cluster
from simulacra.sweeps.plan import RunSpec, SweepPlan
from simulacra.sweeps.report import SweepReport
from simulacra.sweeps.task import StatusBoard, _summary, execute
from simulacra.sweeps.view import SweepView

__all__ = ["Sweep"]

POLL_S = 0.5


class Sweep:
    """One sweep folder and the runs still to do in it."""

    def __init__(self, plan: SweepPlan, out: Path, *, resume: bool = False, address: str | None = None,
                 max_parallel: int | None = None, cpus_per_run: float = 1.0, retries: int = 2,
                 plain: bool = False, console: Console | None = None) -> None:
        """Prepares the folder (a new sweep) or reads what is done in it (``resume``).

        Args:
            plan: The runs.
            out: The sweep folder.
            resume: Go on with the sweep in ``out`` (finished runs are kept).
            address: A Ray cluster to join; None starts a local instance sized to this machine.
            max_parallel: Runs at once; None: the cluster's CPUs over ``cpus_per_run``.
            cpus_per_run: CPUs Ray reserves for each run (and llama.cpp's threads, unless ``--set``).
            retries: Times a run whose worker or node died is started again (from its newest snapshot).
            plain: Plain lines instead of the live table.
            console: Where to draw.

        Raises:
            SimError: A new sweep's ``out`` is not empty, or another driver runs the sweep in ``out``.
        """
        if not resume and out.exists() and any(out.iterdir()):
            msg = (f"--out {str(out)!r} is not empty; give a new folder, or go on with: "
                   f"python run.py sweep --resume {out}")
            raise SimError(msg)
        if max_parallel is not None and max_parallel < 1:
            msg = f"--max-parallel {max_parallel}: give 1 or more"
            raise SimError(msg)
        self.lock = WriterLock(out, what="sweep folder").acquire()  # held until `run` ends: one driver a folder
        self.plan, self.out, self.address = plan, out.resolve(), address
        self.max_parallel, self.cpus_per_run, self.retries = max_parallel, cpus_per_run, retries
        self.console = console or Console()
        self.plain = plain
        self.runs = plan.runs()
        if not resume:
            self.out.mkdir(parents=True, exist_ok=True)
            plan.write(self.out)
        self.kept = [spec.id for spec in self.runs
                     if _summary(self.out / "runs" / spec.id).get("status") == "completed"]

    @classmethod
    def resume(cls, out: Path, **options: Any) -> Sweep:
        """The sweep in ``out``, to go on with (see `__init__` for ``options``).

        Raises:
            SimError: ``out`` is not a sweep folder.
        """
        return cls(SweepPlan.read(out), out, resume=True, **options)

    def run(self) -> dict[str, Any]:
        """Runs every run not yet completed, then writes the summary files.

        Returns:
            ``{"out", "runs", "statuses", "wall_s", "files"}``.

        Raises:
            RunStopped: Ctrl-C (exit 130): the runs' snapshots are kept; ``sweep --resume`` goes on.
        """
        try:
            return self._run()
        finally:
            self.lock.release()

    def _run(self) -> dict[str, Any]:
        started = time.perf_counter()
        results: dict[str, dict[str, Any]] = {}
        todo = [spec for spec in self.runs if spec.id not in self.kept]
        interrupted = False
        with SweepView(self.console, self.runs, plain=self.plain) as view, interruptible():
            try:
                if todo:
                    with Cluster(self.address, cpus=None) as cluster:
                        results = self._execute(cluster, todo, view)
            except KeyboardInterrupt:
                interrupted = True
            view.update(self._states())
            self.console.print(view.totals(self._states()), highlight=False)
        rows = [self._row(spec, results.get(spec.id)) for spec in self.runs]
        report = SweepReport(rows, grid_keys=[key for key, _ in self.plan.grid])
        files = report.write(self.out, title=f"sweep {self.out.name}", notes=self._notes(rows))
        statuses = report.frame["status"].value_counts().to_dict()
        if interrupted:
            msg = (f"sweep interrupted (Ctrl-C); runs keep their snapshots; go on with: "
                   f"python run.py sweep --resume {self.out}")
            raise RunStopped(msg, exit_status=130)
        return {"out": str(self.out), "runs": len(self.runs), "statuses": statuses,
                "wall_s": round(time.perf_counter() - started, 2), "files": [str(f) for f in files]}

    def _execute(self, cluster: Cluster, todo: list[RunSpec], view: SweepView) -> dict[str, dict[str, Any]]:
        """Keeps at most the parallel limit of tasks in flight until every run has an outcome."""
        task = cluster.remote(execute, cpus=self.cpus_per_run, retries=self.retries)
        parallel = self.max_parallel or max(1, int(cluster.total_cpus() // self.cpus_per_run))
        plan = self.plan.to_dict()
        queue = list(todo)
        inflight: dict[Any, RunSpec] = {}  # by the task's object reference
        results: dict[str, dict[str, Any]] = {}
        while queue or inflight:
            while queue and len(inflight) < parallel:
                spec = queue.pop(0)
                StatusBoard(self.out / "status", spec.id).update(status="queued", error=None)
                inflight[task.remote(spec.to_dict(), plan, str(self.out))] = spec
            for ref in cluster.wait(list(inflight), timeout=POLL_S):
                spec = inflight.pop(ref)
                result, why = cluster.get(ref)
                if result is None:  # every attempt's worker died
                    StatusBoard(self.out / "status", spec.id).update(status="lost", error=why)
                    result = {"id": spec.id, "status": "lost", "error": why}
                results[spec.id] = result
            view.update(self._states())
        return results

    def _states(self) -> dict[str, dict[str, Any]]:
        return {spec.id: StatusBoard(self.out / "status", spec.id).read() for spec in self.runs}

    def _row(self, spec: RunSpec, result: dict[str, Any] | None) -> dict[str, Any]:
        """A run's row: its task's result, or (a kept run, a run never reached) its folder and status board."""
        state = StatusBoard(self.out / "status", spec.id).read()
        summary = (result or {}).get("summary") or _summary(self.out / "runs" / spec.id)
        status = (result or {}).get("status") or ("completed" if summary.get("status") == "completed"
                                                  else state.get("status", "not started"))
        if status in ("queued", "starting", "running"):
            status = "interrupted"
        return {"run": spec.id, "cell": spec.cell, "cell_index": spec.cell_index, "arm": spec.arm,
                "replica": spec.replica, "seed": spec.seed, "status": status,
                "attempts": int(state.get("attempts", 0)), "resumed_from": state.get("resumed_from", []),
                "error": (result or {}).get("error") or state.get("error"), "summary": summary}

    def _notes(self, rows: list[dict[str, Any]]) -> list[str]:
        """What happened beyond plain runs: kept runs, retries and resumes, failures."""
        notes = []
        if self.kept:
            notes.append(f"{len(self.kept)} run(s) had completed before this sweep --resume and were kept: "
                         f"{', '.join(self.kept[:20])}")
        for row in rows:
            if row["resumed_from"]:
                steps = ", ".join(str(s) for s in row["resumed_from"])
                notes.append(f"{row['run']}: resumed from its snapshot of step {steps} "
                             f"({row['attempts']} attempt(s)); {row['status']}")
            if row["status"] not in ("completed",):
                notes.append(f"{row['run']}: {row['status']}" + (f": {row['error']}" if row["error"] else ""))
        return notes
