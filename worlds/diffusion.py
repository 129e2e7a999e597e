"""Information diffusion metrics (Park et al. 2023, section 7): who knows, who came, who talked with whom."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import combinations
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulacra.scenarios.schema import DiffusionConfig
    from simulacra.worlds.town import TownWorld

__all__ = ["Diffusion"]


class Diffusion:
    """Tracks one piece of news through the town.

    An agent *knows* when one of its memories contains a keyword (checked in the memories themselves, as
    the paper does by interviewing agents); it *attended* when it was at the place at any step within the
    event's time window; *density* is the share of agent pairs who have talked at least once.
    """

    def __init__(self, config: DiffusionConfig, world: TownWorld) -> None:
        """Watches ``world`` for ``config``'s news."""
        self.config = config
        self.world = world
        self.knows: set[str] = set()
        self.attended: set[str] = set()

    def update(self) -> None:
        """Re-checks memories and attendance after a step."""
        for agent in self.world.by_name.values():
            if agent.name not in self.knows and agent.mentions(self.config.keywords):
                self.knows.add(agent.name)
        now = self.world.sim_time()
        if self.config.start <= now < self.config.end:
            self.attended.update(a.name for a in self.world.agents_at(self.config.place))

    def density(self) -> float:
        """Pairs who talked / all pairs."""
        names = list(self.world.by_name)
        pairs = len(list(combinations(names, 2)))
        return len(self.world.last_talk) / pairs if pairs else 0.0

    def reporters(self) -> dict[str, Callable[[TownWorld], Any]]:
        """Model reporters for Mesa's DataCollector."""
        return {"knows": lambda w: len(self.knows), "attended": lambda w: len(self.attended),
                "density": lambda w: round(self.density(), 4)}

    def get_state(self) -> dict[str, Any]:
        """Who knows and who came so far, JSON-safe."""
        return {"knows": sorted(self.knows), "attended": sorted(self.attended)}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores `get_state` output."""
        self.knows, self.attended = set(state["knows"]), set(state["attended"])

    def summary(self) -> dict[str, Any]:
        """The outcome, for summary.json."""
        return {"keywords": self.config.keywords, "knows": sorted(self.knows), "attended": sorted(self.attended),
                "density": round(self.density(), 4), "agents": len(self.world.by_name)}
