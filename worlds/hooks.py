"""What a world attaches to take part in its steps: `WorldHook`, the base of the BabyAGI `Team`.

A world keeps its hooks in ``world.hooks`` (`World.attach`) and calls each at fixed points:

| method          | when                                                   | default          |
|-----------------|--------------------------------------------------------|------------------|
| `reporters`     | the world builds its DataCollector (metrics columns)   | none             |
| `start`         | once, after the world is built, before step 1          | nothing          |
| `before_step`   | each step, before the agents' phases                   | nothing          |
| `after_commit`  | each step, after the agents acted and committed        | nothing          |
| `step_counts`   | each step, added to the ``step_ended`` event           | none             |
| `finish`        | once, after the last step of a completed run           | nothing          |
| `summary`       | ``summary.json``, under the hook's ``name``            | none             |
| `get_state`, `set_state` | snapshots, under the hook's ``name``          | nothing to keep  |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulacra.worlds.world import World

__all__ = ["WorldHook"]


class WorldHook:
    """Takes part in a world's steps; override what you need (see the module's table)."""

    name = "hook"  # its key in snapshots and summary.json: unique among a world's hooks

    def reporters(self) -> dict[str, Callable[[Any], Any]]:
        """Model reporters for the world's DataCollector."""
        return {}

    def start(self, world: World) -> None:
        """Once, before step 1."""

    def before_step(self, world: World) -> None:
        """Each step, before the agents' phases."""

    def after_commit(self, world: World) -> None:
        """Each step, after the agents acted and committed."""

    def step_counts(self) -> dict[str, Any]:
        """Figures added to this step's ``step_ended`` event."""
        return {}

    def finish(self, world: World) -> None:
        """Once, after the last step of a completed run."""

    def summary(self) -> dict[str, Any] | None:
        """What ``summary.json`` says of it (None: nothing)."""
        return None

    def get_state(self) -> dict[str, Any]:
        """A JSON-safe snapshot."""
        return {}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores `get_state` output."""
