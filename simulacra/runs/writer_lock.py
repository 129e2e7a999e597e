"""One writer per folder: the lock that a run, a resume, a fork's new folder and a sweep driver hold.

``DIR/.lock`` is locked with the operating system's file lock (``filelock``: ``flock`` on Linux and macOS), so the
kernel drops it when its holder dies, even by ``kill -9``: a crashed run never leaves its folder stuck. The holder
writes its pid, command and start time into the file; a second writer reads them and stops with one line naming
the holder. Readers (``view``, ``interview``, ``rate``, ``harvest``) never take it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import filelock

from simulacra.errors import SimError

__all__ = ["LOCK_FILE", "WriterLock"]

LOCK_FILE = ".lock"
MAX_HOLDER_BYTES = 4096  # what a holder writes is a few hundred bytes; a bigger file is not ours


class WriterLock:
    """The lock on one folder, held from `acquire` to `release` (or the end of a ``with`` block).

    Example:
        with WriterLock(run_dir, what="run"):
            ...  # write the run folder
    """

    def __init__(self, folder: Path, *, what: str = "run folder") -> None:
        """Nothing is locked until `acquire`.

        Args:
            folder: The folder one process at a time may write.
            what: What the folder holds, for the message a second writer gets ("run folder", "sweep folder").
        """
        self.folder = folder
        self.what = what
        self._lock = filelock.FileLock(folder / LOCK_FILE, timeout=0, fallback_to_soft=False,
                                       on_acquired=self._mark)

    @property
    def held(self) -> bool:
        """Whether this process holds the lock."""
        return self._lock.is_locked

    def acquire(self) -> WriterLock:
        """Takes the lock at once, creating the folder if need be.

        Returns:
            This lock.

        Raises:
            SimError: Another process (or another writer in this one) holds it; the message names its pid.
        """
        if self.held:
            return self
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
        except filelock.Timeout:
            raise SimError(self._busy()) from None
        except OSError as err:
            msg = (f"{self.folder}: cannot write the {self.what} ({err.strerror or err}); choose another --out or "
                   "free some space")
            raise SimError(msg) from err
        return self

    def release(self) -> None:
        """Lets the next writer in (the file stays; its contents name the last holder)."""
        if self.held:
            self._lock.release()

    def __enter__(self) -> WriterLock:
        """Takes the lock (`acquire`)."""
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        """Releases the lock."""
        self.release()

    def holder(self) -> dict[str, Any]:
        """What the current holder wrote (empty when unreadable: a holder that died while writing it)."""
        try:
            with (self.folder / LOCK_FILE).open("rb") as file:
                data = json.loads(file.read(MAX_HOLDER_BYTES))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _busy(self) -> str:
        holder = self.holder()
        pid = holder.get("pid")
        who = f"process {pid}" if isinstance(pid, int) else "another process"
        since = holder.get("since")
        when = f" since {since}" if isinstance(since, str) else ""
        command = holder.get("command")
        doing = f" ({command[:120]})" if isinstance(command, str) and command else ""
        return (f"{self.folder}: the {self.what} is being written by {who}{doing}{when}; wait for it to end "
                "or stop it, or give another folder")

    @staticmethod
    def _mark(fd: int) -> None:
        """Writes who holds the lock into the locked file (``filelock`` calls it once the lock is ours)."""
        # The program and its first argument only: later ones may carry secrets (``--set llm.api_key=...``).
        holder = {"pid": os.getpid(), "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:2]])[:500],
                  "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        data = json.dumps(holder).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
