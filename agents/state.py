"""The state contract: everything that lives across steps can be snapshotted and restored.

A run's snapshot (``snapshots/step-NNNNNN.json``) is the world's `Stateful.get_state`, which gathers the
states of its agents, their minds, plans, memories, boards and libraries, and the LLM client's counters.
Resuming or forking builds the same world afresh from the scenario and calls `Stateful.set_state` with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["Stateful"]


@runtime_checkable
class Stateful(Protocol):
    """Something whose state outlives a step.

    The contract every implementer keeps:

    | rule           | meaning                                                                             |
    |----------------|-------------------------------------------------------------------------------------|
    | JSON-safe      | ``json.loads(json.dumps(x.get_state())) == x.get_state()``                           |
    | restores       | ``set_state`` on a fresh object of the same configuration behaves as the original   |
    | rewinds stores | a Chroma- or file-backed object deletes what was written after its state was taken |
    | idempotent     | ``get_state`` changes nothing; ``set_state`` twice is the same as once               |
    """

    def get_state(self) -> dict[str, Any]:
        """Returns a JSON-safe snapshot."""
        ...

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores a snapshot made by `get_state` (and rewinds any store behind it)."""
        ...
