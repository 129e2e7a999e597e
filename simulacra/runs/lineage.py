"""Runs that start from other runs: resume one after a kill, replay one from its recorded answers, fork one.

Each builds a `Runner` from a run folder: the scenario it recorded (``scenario.yaml``), one of its
snapshots, and the answers it recorded (``llm_calls.jsonl``), which a resumed or forked run reuses for
every request that is the same, so the part before the snapshot is never paid for twice.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from simulacra.errors import ScenarioError, SimError
from simulacra.runs.run_files import check_cut, check_run_part, copy_run_part
from simulacra.runs.runner import RUN_FILES, Origin, Runner, run_seed
from simulacra.runs.snapshots import Snapshots
from simulacra.scenarios.bounded import load_json, read_text
from simulacra.scenarios.loading import load_scenario
from simulacra.scenarios.overrides import fork_refusal, parse_override
from simulacra.scenarios.schema import Scenario

__all__ = ["Lineage", "first_difference"]

MAX_FIRST_LINE = 16_000_000  # run_started holds the scenario and, in a crafting world, its map
COPIED = ("chroma", "skills")  # a run's own stores, copied into a fork (then rewound to the snapshot)


class Lineage:
    """One run folder, as the start of a resume, a replay or a fork."""

    def __init__(self, run_dir: Path) -> None:
        """Checks that ``run_dir`` is a run folder.

        Raises:
            SimError: It is not one (no scenario.yaml and events.jsonl).
        """
        self.run_dir = run_dir
        for name in (RUN_FILES["scenario"], RUN_FILES["events"]):
            if not (run_dir / name).is_file():
                msg = f"{run_dir}: not a run folder (no {name}); give a folder that python run.py FILE wrote"
                raise SimError(msg)
        self.snapshots = Snapshots(run_dir / RUN_FILES["snapshots"])

    def scenario(self, overrides: Sequence[str] = ()) -> Scenario:
        """The scenario the run recorded, with ``overrides`` applied."""
        return load_scenario(self.run_dir / RUN_FILES["scenario"], list(overrides))

    def seed(self, scenario: Scenario) -> int:
        """The run's own seed: a reseeded fork's new one (its newest snapshot's lineage), else the scenario's.

        Instruments draw their sampling seeds from it, so a fork with ``--set seed=S`` is asked with S.
        """
        steps = self.snapshots.steps()
        run = self.snapshots.load(steps[-1]).get("run", {}) if steps else _summary(self.run_dir)
        return run_seed(scenario, run if isinstance(run, dict) else {})

    def resume(self, *, steps: int | None = None, plain: bool = False, console: Console | None = None,
               replay: Path | None = None) -> Runner:
        """A runner that goes on from the newest snapshot, in the same folder.

        The snapshot is checked against the event log (`check_cut`) when the run starts, after the world is
        restored from it and before the log, ``scenario.yaml`` or a snapshot changes.

        Args:
            steps: A new total of steps (a finished run goes on); None keeps the scenario's.
            plain: Plain lines instead of the live view.
            console: Where to draw.
            replay: A run whose recorded answers are reused too (`replay` resumes a replayed run that grew).

        Raises:
            SimError: No snapshot, a snapshot past the run's steps, or nothing left to run.
        """
        snapshot = self._snapshot(None)
        scenario = self.scenario([f"steps={steps}"] if steps is not None else [])
        if snapshot["step"] >= scenario.steps:
            msg = (f"{self.run_dir}: the run has all {scenario.steps} steps (snapshot of step {snapshot['step']}); "
                   f"give --steps N with N > {snapshot['step']} to go on")
            raise SimError(msg)
        origin = Origin("resume", snapshot, sources=(self.run_dir / RUN_FILES["llm_calls"],),
                        where=self.snapshots.path(snapshot["step"]))
        return Runner(scenario, out=self.run_dir, replay=replay, plain=plain, console=console, origin=origin)

    def fork(self, out: Path, *, at: int, overrides: Sequence[str] = (), steps: int | None = None,
             replay: Path | None = None, plain: bool = False, console: Console | None = None) -> Runner:
        """A runner for a new run in ``out`` that starts from this run's snapshot of step ``at``.

        The new run's event log up to ``at`` is this run's, byte for byte; its Chroma folder and skill
        library are copies, rewound to the snapshot when the world is restored.

        Args:
            out: The new run folder (must not hold a run).
            at: The step whose snapshot the fork starts from.
            overrides: ``--set`` overrides; only `scenarios.overrides.FORKABLE` fields may change.
            steps: A new total of steps; None keeps the scenario's.
            replay: A run whose recorded answers are reused (a fork's replay).
            plain: Plain lines instead of the live view.
            console: Where to draw.

        Raises:
            SimError: A field that cannot change at a fork, no such snapshot, one that does not fit the event
                log (`check_cut`), a link in ``chroma/`` or ``skills/``, a shared Chroma, or ``out`` in use;
                ``out`` is left as it was.
        """
        for item in overrides:
            why = fork_refusal(item)
            if why:
                raise ScenarioError(why)
        sets = [*overrides, *([f"steps={steps}"] if steps is not None else [])]
        seeds = [o for o in sets if parse_override(o)[0] == ["seed"]]  # `seed =5` too: one parser
        reseed = self.scenario(seeds).seed if seeds else None  # validated as any seed is
        scenario = self.scenario([o for o in sets if o not in seeds])
        if scenario.memory.chroma_url or scenario.memory.chroma_path:
            msg = (f"{self.run_dir}: the run keeps its memories in a shared Chroma (memory.chroma_url/chroma_path); "
                   "a fork copies the run's own chroma/ folder, so fork a run made without them")
            raise SimError(msg)
        snapshot = self._snapshot(at)
        if snapshot["step"] >= scenario.steps:
            msg = f"--at {at}: the fork has nothing to run ({scenario.steps} steps); give --steps N with N > {at}"
            raise SimError(msg)
        if out.exists() and any(out.iterdir()):
            msg = f"--out {str(out)!r} is not empty; a fork needs a new folder"
            raise SimError(msg)
        events = self.run_dir / RUN_FILES["events"]
        check_cut(events, snapshot, where=self.snapshots.path(at), fix="fork from another --at step")
        parts = [(self.run_dir / name, out / name) for name in COPIED
                 if (self.run_dir / name).is_dir() or (self.run_dir / name).is_symlink()]
        for src, _ in parts:
            check_run_part(src)  # a link refused before `out` is made
        origin = Origin("fork", snapshot, parent=self.run_dir, overrides=tuple(overrides),
                        sources=(self.run_dir / RUN_FILES["llm_calls"],), where=self.snapshots.path(at),
                        reseed=reseed)
        runner = Runner(scenario, out=out, replay=replay, plain=plain, console=console, origin=origin)
        runner.claim()  # held until the fork's run ends; a second fork into `out` stops here
        try:
            with events.open("rb") as log, (out / RUN_FILES["events"]).open("wb") as copy:
                copy.write(log.read(snapshot["events_bytes"]))
            for src, dst in parts:
                copy_run_part(src, dst)
        except BaseException:
            runner.lock.release()
            raise
        return runner

    def _snapshot(self, at: int | None) -> dict[str, Any]:
        """The snapshot of step ``at`` (None: the newest), refused if it is past the steps the run recorded.

        Raises:
            SimError: No such snapshot, not a snapshot, or one of a step the run never reached.
        """
        snapshot = self.snapshots.load(at)
        recorded = self.scenario().steps
        if snapshot["step"] > recorded:
            msg = (f"{self.snapshots.path(snapshot['step'])}: a snapshot of step {snapshot['step']}, past the "
                   f"run's {recorded} steps (scenario.yaml); it was edited: remove it to go on from an earlier one")
            raise SimError(msg)
        return snapshot

    def _steps_at_start(self) -> int | None:
        """The steps ``run_started`` recorded (a run resumed with a larger --steps has more now); None if unread."""
        with (self.run_dir / RUN_FILES["events"]).open("rb") as file:
            first = file.readline(MAX_FIRST_LINE)
        try:
            event = json.loads(first)
            steps = event["data"]["steps"] if event.get("kind") == "run_started" else None
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        return steps if isinstance(steps, int) and not isinstance(steps, bool) and steps > 0 else None

    def replay(self, *, console: Console | None = None) -> tuple[bool, str]:
        """Runs this finished run again from its recorded answers into a temporary folder and compares logs.

        Returns:
            (True, "") when the new ``events.jsonl`` equals the recorded one byte for byte, else (False, the
            first line that differs, both versions).

        Raises:
            SimError: The run has not finished, or (a fork) its parent's snapshot is gone.
        """
        summary = _summary(self.run_dir)
        if summary.get("status") != "completed":
            msg = f"{self.run_dir}: the run has not completed (status {summary.get('status')!r}); resume it first"
            raise SimError(msg)
        quiet = console or Console(quiet=True)
        with tempfile.TemporaryDirectory(prefix="simulacra-replay-") as tmp:
            out = Path(tmp) / "run"
            parent = summary.get("parent")
            if parent:
                runner = Lineage(Path(parent["run"])).fork(
                    out, at=int(parent["step"]), overrides=[*parent["overrides"], "llm.cache=false"],
                    steps=self.scenario().steps, replay=self.run_dir, plain=True, console=quiet)
                runner.run()
            else:
                # A run resumed with a larger --steps began with fewer: its run_started says how many. It is
                # replayed as it was made, that many steps, then resumed to its total.
                total, began = self.scenario().steps, self._steps_at_start()
                grown = began is not None and began < total
                sets = ["llm.cache=false", *([f"steps={began}"] if grown else [])]
                Runner(self.scenario(sets), out=out, replay=self.run_dir, plain=True, console=quiet).run()
                if grown:
                    Lineage(out).resume(steps=total, plain=True, console=quiet, replay=self.run_dir).run()
            recorded = (self.run_dir / RUN_FILES["events"]).read_bytes()
            again = (out / RUN_FILES["events"]).read_bytes()
        if recorded == again:
            return True, ""
        return False, first_difference(recorded, again)


def first_difference(a: bytes, b: bytes) -> str:
    """Where two event logs part: the line number and both lines (shortened)."""
    left, right = a.splitlines(), b.splitlines()
    for n, (x, y) in enumerate(zip(left, right, strict=False), start=1):
        if x != y:
            return f"line {n} differs:\n  recorded: {x[:300].decode(errors='replace')}\n  replayed: " \
                   f"{y[:300].decode(errors='replace')}"
    n = min(len(left), len(right)) + 1
    longer, which = (left, "recorded") if len(left) > len(right) else (right, "replayed")
    return f"line {n}: only the {which} log goes on: {longer[n - 1][:300].decode(errors='replace')}"


def _summary(run_dir: Path) -> dict[str, Any]:
    """The run's ``summary.json`` (empty when it has none), read within bounds."""
    path = run_dir / RUN_FILES["summary"]
    if not path.exists():
        return {}
    data = load_json(read_text(path, what="run summary", limit=16_000_000), path, problem="not a run summary",
                     fix="the run folder is damaged")
    return data if isinstance(data, dict) else {}
