"""A run's snapshots: ``snapshots/step-NNNNNN.json``, written atomically after every step, kept to a size budget.

By default every snapshot is kept, so a run can be forked or interviewed at any step, until together they pass
the budget (``outputs.snapshots_mb``); then the run thins them, each time dropping the older snapshot whose
neighbours lie closest together, so what stays is spread evenly over the run. The newest few always stay.

A snapshot holds everything a run needs to go on from the end of its step: the world's state (agents,
minds, memories, boards, libraries, both RNGs, the metrics so far), the LLM client's counters, the event
counts, and the length of ``events.jsonl`` at that moment, to which a resumed run cuts the log back.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from simulacra.errors import SimError

__all__ = ["SNAPSHOT_VERSION", "Snapshots"]

SNAPSHOT_VERSION = 1
MAX_BYTES = 1 << 30  # a snapshot of 10,000 generative agents stays far below this
_NAME = re.compile(r"^step-(\d{6,})\.json$")
ALWAYS_KEPT = 3  # the newest snapshots thinning never drops (resume goes on from the newest)
DEFAULT_BUDGET_MB = 256.0


class Snapshots:
    """The ``snapshots`` folder of one run."""

    def __init__(self, folder: Path, *, keep: int = 0, budget_mb: float = DEFAULT_BUDGET_MB) -> None:
        """Points at ``folder`` (created on the first write).

        Args:
            folder: ``<run>/snapshots``.
            keep: How many of the newest snapshots to keep; 0: no count limit.
            budget_mb: Megabytes all snapshots may take together; beyond it they are thinned; 0: no limit.
        """
        self.folder = folder
        self.keep = keep
        self.budget = int(budget_mb * 1024**2)

    def path(self, step: int) -> Path:
        """Where the snapshot of ``step`` lives."""
        return self.folder / f"step-{step:06d}.json"

    def steps(self) -> list[int]:
        """Steps that have a snapshot, oldest first."""
        if not self.folder.is_dir():
            return []
        found = (_NAME.match(p.name) for p in self.folder.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def write(self, step: int, snapshot: Mapping[str, Any]) -> Path:
        """Writes the snapshot of ``step`` atomically (temporary file, fsync, rename), then drops old ones.

        A crash at any moment leaves either the previous set of snapshots or the new one, never a torn file.

        Raises:
            OSError: The folder cannot be written (full disk, no permission); the older snapshots are intact.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.path(step)
        temporary = final.with_suffix(".json.tmp")
        blob = json.dumps({"version": SNAPSHOT_VERSION, **snapshot}, ensure_ascii=False, separators=(",", ":"))
        try:
            with temporary.open("w", encoding="utf-8") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temporary, final)
        except OSError:
            temporary.unlink(missing_ok=True)
            raise
        _fsync_dir(self.folder)
        if self.keep:
            for old in self.steps()[:-self.keep]:
                self.path(old).unlink(missing_ok=True)
        if self.budget:
            self.thin()
        return final

    def thin(self) -> list[int]:
        """Drops snapshots until all fit the budget, keeping the rest spread evenly over the run.

        Each time it drops the snapshot (not one of the newest `ALWAYS_KEPT`) whose neighbours lie closest
        together, the older one on a tie; step 0 goes last.

        Returns:
            The steps dropped.
        """
        sizes = {step: self._size(step) for step in self.steps()}
        total, dropped = sum(sizes.values()), []
        while total > self.budget and len(sizes) > ALWAYS_KEPT:
            steps = sorted(sizes)
            candidates = range(len(steps) - ALWAYS_KEPT)
            gap = [(steps[i + 1] - (steps[i - 1] if i else -len(steps) * max(steps)), i) for i in candidates]
            _, index = min(gap)
            step = steps[index]
            self.path(step).unlink(missing_ok=True)
            total -= sizes.pop(step)
            dropped.append(step)
        return dropped

    def _size(self, step: int) -> int:
        try:
            return self.path(step).stat().st_size
        except OSError:
            return 0

    def load(self, step: int | None = None) -> dict[str, Any]:
        """Reads the snapshot of ``step`` (None: the newest).

        The file is only read here; whether it fits the event log is `simulacra.runs.run_files.check_cut`'s job.

        Raises:
            SimError: There is none (the message lists the steps there are), the file is not a snapshot, or it
                holds another step than its name says.
        """
        steps = self.steps()
        if not steps:
            msg = f"{self.folder}: no snapshots (the run was made with outputs.snapshot_every: 0, or is not a run)"
            raise SimError(msg)
        if step is None:
            step = steps[-1]
        if step not in steps:
            msg = (f"{self.folder}: no snapshot of step {step}; there are: {_ranges(steps)} "
                   "(outputs.snapshots_keep and outputs.snapshots_mb limit what a run keeps)")
            raise SimError(msg)
        data = read_snapshot(self.path(step))
        if data["step"] != step:
            msg = (f"{self.path(step)}: a snapshot of step {data['step']} under the name of step {step}; it was "
                   "edited or renamed: remove it to go on from an earlier snapshot")
            raise SimError(msg)
        return data


def read_snapshot(path: Path) -> dict[str, Any]:
    """Reads and checks one snapshot file.

    Raises:
        SimError: Unreadable, too big, not JSON, or not a snapshot of this version.
    """
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            msg = f"{path}: {size} bytes is too big for a snapshot (limit {MAX_BYTES}); it is not one of ours"
            raise SimError(msg)
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as err:
        msg = f"{path}: cannot read the snapshot ({err.strerror})"
        raise SimError(msg) from err
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        msg = f"{path}: not a snapshot ({type(err).__name__}: {str(err)[:80]}); resume from another step with --at"
        raise SimError(msg) from err
    if not isinstance(data, dict) or data.get("version") != SNAPSHOT_VERSION or not isinstance(data.get("world"), dict):
        msg = f"{path}: not a snapshot of version {SNAPSHOT_VERSION} (no version/world fields)"
        raise SimError(msg)
    for key in ("step", "events_bytes"):
        if not isinstance(data.get(key), int) or isinstance(data.get(key), bool) or data[key] < 0:
            msg = f"{path}: not a snapshot ({key} is {data.get(key)!r}, expected a count)"
            raise SimError(msg)
    return data


def _fsync_dir(folder: Path) -> None:
    """Makes a rename in ``folder`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _ranges(steps: list[int]) -> str:
    """``[0, 1, 2, 5]`` → ``0-2, 5``."""
    out: list[str] = []
    start = prev = steps[0]
    for s in [*steps[1:], None]:
        if s is not None and s == prev + 1:
            prev = s
            continue
        out.append(f"{start}-{prev}" if prev > start else str(start))
        if s is not None:
            start = prev = s
    return ", ".join(out)
