"""A run's snapshots: ``snapshots/step-NNNNNN.json``, written atomically after every step, the newest K kept.

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


class Snapshots:
    """The ``snapshots`` folder of one run."""

    def __init__(self, folder: Path, *, keep: int = 3) -> None:
        """Points at ``folder`` (created on the first write).

        Args:
            folder: ``<run>/snapshots``.
            keep: How many of the newest snapshots to keep; 0 keeps all.
        """
        self.folder = folder
        self.keep = keep

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
        return final

    def load(self, step: int | None = None) -> dict[str, Any]:
        """Reads the snapshot of ``step`` (None: the newest).

        Raises:
            SimError: There is none, or the file is not a snapshot; the message lists the steps there are.
        """
        steps = self.steps()
        if not steps:
            msg = f"{self.folder}: no snapshots (the run was made with outputs.snapshot_every: 0, or is not a run)"
            raise SimError(msg)
        if step is None:
            step = steps[-1]
        if step not in steps:
            msg = (f"{self.folder}: no snapshot of step {step}; there are: {_ranges(steps)} "
                   "(outputs.snapshots_keep: 0 keeps every step)")
            raise SimError(msg)
        return read_snapshot(self.path(step))


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
