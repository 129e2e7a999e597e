"""A server's concurrency cap shared by every process on a machine: the runs of a sweep on one node.

Each server has ``cap`` slot files under ``<temp>/simulacra-slots/<hash of its URL>/``; a request holds an
exclusive ``flock`` on one while it is in flight. The kernel drops a lock when its process dies, so a killed
run never leaks a slot (a counter in a shared file or a Ray actor would).
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["ServerSlots"]

POLL_S = (0.005, 0.05)  # first and longest wait between tries when every slot is taken


class ServerSlots:
    """At most ``cap`` requests in flight to each of some servers, counted across processes."""

    def __init__(self, urls: Sequence[str], cap: int, *, folder: Path | None = None) -> None:
        """Points at the slot files (made on first use).

        Args:
            urls: The servers, in the order requests prefer them.
            cap: Requests in flight per server, from all processes on this machine together.
            folder: Where slot folders live; None: the system's temp folder.
        """
        if cap < 1:
            msg = f"server slots: cap must be 1 or more, got {cap!r}"
            raise ValueError(msg)
        root = (folder or Path(tempfile.gettempdir())) / "simulacra-slots"
        self._folders = [root / hashlib.sha1(url.encode()).hexdigest()[:16] for url in urls]
        self.cap = cap

    def try_take(self, start: int = 0) -> tuple[int, int] | None:
        """Takes a free slot, trying the servers from ``start`` round; ``(server index, lock fd)`` or None."""
        count = len(self._folders)
        for k in range(count):
            index = (start + k) % count
            self._folders[index].mkdir(parents=True, exist_ok=True)
            for slot in range(self.cap):
                fd = os.open(self._folders[index] / f"slot-{slot}", os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                return index, fd
        return None

    async def take(self, start: int = 0) -> tuple[int, int]:
        """Waits for a free slot on any server (see `try_take`)."""
        wait = POLL_S[0]
        while True:
            taken = self.try_take(start)
            if taken is not None:
                return taken
            await asyncio.sleep(wait)
            wait = min(wait * 2, POLL_S[1])

    @staticmethod
    def give_back(fd: int) -> None:
        """Frees a slot `take` returned."""
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
