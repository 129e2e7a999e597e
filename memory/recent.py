"""A bounded stream of an agent's most recent observations."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

__all__ = ["MemoryRecord", "RecentMemory"]


@dataclass(frozen=True)
class MemoryRecord:
    """One remembered thing."""

    sim_time: str
    kind: str
    text: str

    def to_dict(self) -> dict[str, str]:
        """Returns a JSON-safe dict (a snapshot holds thousands of agents' records: no deep copy)."""
        return {"sim_time": self.sim_time, "kind": self.kind, "text": self.text}


class RecentMemory:
    """The last ``capacity`` records, oldest first.

    Writes made during a step are buffered and only become visible at `commit`, so no agent sees
    another's half-finished step; the world commits every agent's memory at the end of a step.
    """

    def __init__(self, capacity: int) -> None:
        """Creates an empty memory.

        Args:
            capacity: How many records are kept (and shown in prompts).
        """
        self.capacity = capacity
        self._records: deque[MemoryRecord] = deque(maxlen=max(capacity, 1))
        self._pending: list[MemoryRecord] = []

    def add(self, sim_time: str, kind: str, text: str) -> None:
        """Buffers a record until `commit`."""
        self._pending.append(MemoryRecord(sim_time, kind, text))

    def commit(self) -> None:
        """Makes the buffered records visible."""
        if self.capacity:
            self._records.extend(self._pending)
        self._pending.clear()

    def recent(self) -> list[MemoryRecord]:
        """Returns the committed records, oldest first."""
        return list(self._records) if self.capacity else []

    def get_state(self) -> dict[str, Any]:
        """Returns a JSON-safe snapshot."""
        return {
            "capacity": self.capacity,
            "records": [r.to_dict() for r in self._records],
            "pending": [r.to_dict() for r in self._pending],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores a snapshot made by `get_state`."""
        self.capacity = int(state["capacity"])
        self._records = deque((MemoryRecord(**r) for r in state["records"]), maxlen=max(self.capacity, 1))
        self._pending = [MemoryRecord(**r) for r in state["pending"]]
