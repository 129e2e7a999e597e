"""What the runner does to a run folder's files and the process around it: Ctrl-C, cutting and ending logs.

Parts:
    CtrlC: the first Ctrl-C lets the step finish (and be snapshotted), a second interrupts at once.
    interruptible: Ctrl-C raises KeyboardInterrupt, even where SIGINT was ignored when Python started.
    show_kept: feeds a live view the events a resumed or forked run kept.
    cut: cuts the event log back to a snapshot's length.
    end_line: ends a file's last line if a kill left it without its newline.
    fresh_dir: a new run folder's (or file's) name.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from simulacra.errors import ScenarioError
from simulacra.events import Event
from simulacra.runs.live_view import LiveView

__all__ = ["CtrlC", "cut", "end_line", "fresh_dir", "interruptible", "show_kept"]


class CtrlC:
    """Ctrl-C during the steps: the first lets the step finish and be snapshotted, a second interrupts at once.

    Installed only in the main thread (where Python delivers signals); the previous handler comes back on exit.
    """

    def __init__(self) -> None:
        self.pressed = False
        self._previous: Any = None

    def __enter__(self) -> CtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._press)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _press(self, signum: int, frame: Any) -> None:
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt inside the block, even where SIGINT was ignored when Python started.

    A shell runs background jobs with SIGINT ignored and Python then installs no handler, so a sweep or a web
    view started that way (by a script, a CI job) could not be stopped with Ctrl-C or a supervisor's SIGINT.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def show_kept(view: LiveView, path: Path) -> None:
    """Feeds a live view the events a resumed or forked run kept, so it knows the agents and the feed."""
    for line in path.read_text(encoding="utf-8", errors="replace").split("\n")[:-1]:
        try:
            view(Event(**json.loads(line)))
        except (ValueError, TypeError, KeyError, RecursionError):
            continue  # a damaged line only leaves the view short of it


def cut(path: Path, size: int) -> None:
    """Cuts ``path`` back to ``size`` bytes: what followed the snapshot, a torn last line included, goes.

    Raises:
        ScenarioError: The file is shorter than the snapshot says (it was lost or replaced).
    """
    have = path.stat().st_size if path.exists() else 0
    if have < size:
        msg = (f"{path}: {have} bytes, but the snapshot was taken at {size}; the event log was lost or replaced, "
               "so the run cannot go on from it")
        raise ScenarioError(msg)
    with path.open("r+b") as fh:
        fh.truncate(size)
        fh.flush()
        os.fsync(fh.fileno())


def end_line(path: Path) -> None:
    """Ends a file's last line if a kill left it without its newline."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) != b"\n":
            fh.write(b"\n")


def fresh_dir(parent: Path, name: str, *, suffix: str = "") -> Path:
    """``parent/<name><YYYYmmdd-HHMMSS><suffix>``, with ``-2``, ``-3``... before the suffix when that is taken.

    Args:
        parent: The folder it goes in.
        name: What the name starts with (``town-`` for a run folder, empty for an interview's file).
        suffix: What it ends with (``.jsonl``).
    """
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate, n = parent / f"{name}{stamp}{suffix}", 1
    while candidate.exists():
        n += 1
        candidate = parent / f"{name}{stamp}-{n}{suffix}"
    return candidate
