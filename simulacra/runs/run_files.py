"""What the runner does to a run folder's files and the process around it: Ctrl-C, checking, cutting and copying.

Parts:
    CtrlC: the first Ctrl-C lets the step finish (and be snapshotted), a second interrupts at once.
    interruptible: Ctrl-C raises KeyboardInterrupt, even where SIGINT was ignored when Python started.
    show_kept: feeds a live view the events a resumed or forked run kept.
    check_cut: checks a snapshot against the event log it would cut, before anything changes.
    cut: cuts the event log back to a snapshot's length.
    check_run_part, copy_run_part: copy a run's ``chroma/`` or ``skills/`` folder, refusing links.
    end_line: ends a file's last line if a kill left it without its newline.
    fresh_dir: a new run folder's (or file's) name.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeGuard

from simulacra.errors import ScenarioError, SimError
from simulacra.events import Event
from simulacra.runs.live_view import LiveView

__all__ = ["CtrlC", "check_cut", "check_run_part", "copy_run_part", "cut", "end_line", "fresh_dir", "interruptible",
           "show_kept"]

MAX_PART_FILES = 200_000  # a run's chroma/ or skills/ holds a few dozen files; a fork copies them
MAX_PART_BYTES = 64 << 30  # a chroma/ of 10,000 generative agents stays far below this
_CHUNK = 1 << 20


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
def interruptible(*, sigterm: bool = False) -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt inside the block, even where SIGINT was ignored when Python started.

    A shell runs background jobs with SIGINT ignored and Python then installs no handler, so a sweep or a web
    view started that way (by a script, a CI job) could not be stopped with Ctrl-C or a supervisor's SIGINT.
    ``sigterm``: SIGTERM (``kill``, a supervisor's stop) raises it too, so what Ctrl-C cleans up it cleans up.
    The previous handlers come back on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handled = [signal.SIGINT, *([signal.SIGTERM] if sigterm else [])]
    previous = {number: signal.signal(number, signal.default_int_handler) for number in handled}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def show_kept(view: LiveView, path: Path) -> None:
    """Feeds a live view the events a resumed or forked run kept, so it knows the agents and the feed."""
    for line in path.read_text(encoding="utf-8", errors="replace").split("\n")[:-1]:
        try:
            view(Event(**json.loads(line)))
        except (ValueError, TypeError, KeyError, RecursionError):
            continue  # a damaged line only leaves the view short of it


def check_cut(path: Path, snapshot: Mapping[str, Any], *, where: Path, fix: str) -> None:
    """Checks that ``snapshot`` fits the event log at ``path``; reads the log up to the cut and changes nothing.

    The log up to ``events_bytes`` must be whole lines, each an event (a JSON object with an integer step that
    never goes down), one of them ``run_started`` (a world's construction may log events before it, as a task
    board's first tasks), and end at the snapshot's step: its last ``step_ended`` (or, in a world that records
    none, its last event) is of that step. What follows the cut (a torn line) is not read.

    Args:
        path: The event log (``events.jsonl``).
        snapshot: The snapshot (`simulacra.runs.snapshots.read_snapshot`).
        where: The snapshot's file, named in messages.
        fix: What to do instead, the end of every message.

    Raises:
        ScenarioError: One line naming the snapshot (or the log), what does not fit, and ``fix``.
    """
    size = path.stat().st_size if path.is_file() else 0
    at, step = snapshot.get("events_bytes"), snapshot.get("step")
    if not _count(at) or at < 1:
        msg = f"{where}: events_bytes is {at!r}, not a length of {path} (1 to {size} bytes); {fix}"
        raise ScenarioError(msg)
    if not _count(step):
        msg = f"{where}: step is {step!r}, not a step number; {fix}"
        raise ScenarioError(msg)
    if at > size:
        msg = (f"{path}: {size} bytes, but the snapshot was taken at {at}; the event log was lost or replaced, "
               "so the run cannot go on from it")
        raise ScenarioError(msg)
    try:
        ended = _ended_at(path, at, where=where, fix=fix)
    except OSError as err:
        msg = f"{path}: cannot read the event log ({err.strerror or err}); {fix}"
        raise ScenarioError(msg) from err
    if ended != step:
        msg = (f"{where}: the snapshot is of step {step}, but {path} up to byte {at} ends at step {ended}; the "
               f"snapshot or the log was edited; {fix}")
        raise ScenarioError(msg)


def _ended_at(path: Path, at: int, *, where: Path, fix: str) -> int:
    """The step the log's first ``at`` bytes end at (see `check_cut`), read line by line."""
    number, last, ended, started = 0, 0, None, False
    with path.open("rb") as fh:
        while fh.tell() < at:
            line = fh.readline(at - fh.tell())
            number += 1
            if not line.endswith(b"\n"):
                msg = (f"{where}: events_bytes {at} falls inside line {number} of {path}, not at a line's end; "
                       f"{fix}")
                raise ScenarioError(msg)
            event = _event(line, last)
            if isinstance(event, str):
                msg = f"{where}: line {number} of {path}, before the snapshot's cut at byte {at}, {event}; {fix}"
                raise ScenarioError(msg)
            if event["kind"] == "run_started":
                if started:
                    msg = f"{where}: line {number} of {path} is a second run_started, before the snapshot's cut; {fix}"
                    raise ScenarioError(msg)
                started = True
            last = event["step"]
            if event["kind"] == "step_ended":
                ended = last
    if not started:
        msg = f"{where}: {path} holds no run_started before the snapshot's cut at byte {at}; {fix}"
        raise ScenarioError(msg)
    return last if ended is None else ended


def _event(line: bytes, before: int) -> dict[str, Any] | str:
    """One line of the log as an event, or what is wrong with it (``before``: the previous event's step)."""
    try:
        event = json.loads(line)
    except (ValueError, RecursionError) as err:
        return f"is not JSON ({type(err).__name__}: {str(err)[:80]})"
    if not isinstance(event, dict):
        return f"is not an event (a {type(event).__name__}, not an object)"
    if not _count(event.get("step")) or event["step"] < before:
        return f"has step {event.get('step')!r}, not a step from {before} on"
    if not isinstance(event.get("kind"), str):
        return f"has kind {event.get('kind')!r}, not an event kind"
    return event


def _count(value: object) -> TypeGuard[int]:
    """Whether ``value`` is a whole number from 0 on (a JSON integer, not a boolean)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


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


def check_run_part(src: Path) -> list[tuple[Path, bool]]:
    """What `copy_run_part` would copy: every folder and plain file under ``src``, parents first.

    Args:
        src: A run's ``chroma/`` or ``skills/`` folder.

    Returns:
        (path, whether it is a folder) for each entry under ``src``.

    Raises:
        SimError: ``src`` or something in it is a symbolic link, or not a plain file or folder, or there is
            more than a run's store holds (`MAX_PART_FILES`, `MAX_PART_BYTES`).
    """
    if src.is_symlink():
        raise _link(src)
    if not src.is_dir():
        msg = f"{src}: not a folder; a run folder's {src.name}/ is one: remove what is there"
        raise SimError(msg)
    found: list[tuple[Path, bool]] = []
    total, folders = 0, [src]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                path = Path(entry.path)
                if entry.is_symlink():
                    raise _link(path)
                if entry.is_dir(follow_symlinks=False):
                    folders.append(path)
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
                else:
                    raise _not_plain(path)
                found.append((path, entry.is_dir(follow_symlinks=False)))
                if len(found) > MAX_PART_FILES or total > MAX_PART_BYTES:
                    raise _too_big(src)
    return found


def copy_run_part(src: Path, dst: Path) -> None:
    """Copies a run's ``chroma/`` or ``skills/`` folder to ``dst`` (a new folder), following no link.

    A run folder is untrusted input: a link in it (``skills/leak -> /etc``) would copy what it points at into
    the copy, so the whole tree is checked first (`check_run_part`) and nothing is copied if any entry is a
    link; each file is then opened without following a link, in case one was put there in between.

    Args:
        src: The folder to copy.
        dst: Where the copy goes; it must not exist (its parents are made).

    Raises:
        SimError: A link, something that is not a plain file or folder, or too much (nothing is copied).
        OSError: ``dst`` exists or cannot be written.
    """
    found = check_run_part(src)
    dst.mkdir(parents=True)
    total = 0
    for path, is_folder in found:
        target = dst / path.relative_to(src)
        if is_folder:
            target.mkdir()
        else:
            total = _copy_file(path, target, total=total, src=src)


def _copy_file(path: Path, target: Path, *, total: int, src: Path) -> int:
    """Copies one plain file without following a link; returns the bytes copied so far, this file's included."""
    try:
        # no link followed; a pipe put there in between does not block the open (the fstat below refuses it)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise (_link(path) if path.is_symlink() else err) from err
    with os.fdopen(fd, "rb") as source, target.open("xb") as copy:
        mode = os.fstat(source.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise _not_plain(path)
        while chunk := source.read(_CHUNK):
            total += len(chunk)
            if total > MAX_PART_BYTES:
                raise _too_big(src)
            copy.write(chunk)
    target.chmod(stat.S_IMODE(mode))
    return total


def _link(path: Path) -> SimError:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return SimError(f"{path}: a symbolic link in a run folder (-> {target}); a run folder holds no links: remove it")


def _not_plain(path: Path) -> SimError:
    return SimError(f"{path}: not a plain file or folder; a run folder holds no pipes, sockets or devices: remove it")


def _too_big(src: Path) -> SimError:
    return SimError(f"{src}: more than {MAX_PART_FILES:,} files or {MAX_PART_BYTES:,} bytes, more than a run's store "
                    "holds; it is not one of ours: remove it")


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
