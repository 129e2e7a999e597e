"""The smallest world of one's own: agents toss coins, ask the model nothing and remember nothing."""

from __future__ import annotations

import mesa
from pydantic import Field

from simulacra import World, WorldSection, WorldSetup


class CoinSection(WorldSection):
    """How likely heads is."""

    heads: float = Field(0.5, ge=0, le=1, description="Chance of heads.")


class Tosser(mesa.Agent):
    """Tosses a coin each step; it has a name and nothing to recall."""

    def __init__(self, world: CoinWorld, name: str) -> None:
        super().__init__(world)
        self.name, self.heads = name, 0


class CoinWorld(World):
    """Each step every agent tosses a coin (the world's RNG) and the world reports the heads."""

    section = CoinSection

    def __init__(self, setup: WorldSetup) -> None:
        super().__init__(seed=setup.seed, llm=setup.llm, clock=setup.clock, observers=setup.observers)
        for agent in setup.agents:
            self.by_name[agent.name] = Tosser(self, agent.name)
        self.datacollector = mesa.DataCollector(model_reporters={"heads": lambda m: sum(
            a.heads for a in m.by_name.values())})

    def step(self) -> None:
        """Tosses, records, emits."""
        for tosser in self.by_name.values():
            heads = self.random.random() < self.setup.section.heads
            tosser.heads += heads
            self.emit("tossed", tosser, {"heads": heads})
        self.datacollector.collect(self)

    def get_state(self) -> dict:
        """Ours, plus each tosser's heads."""
        return {**super().get_state(), "heads": {n: a.heads for n, a in self.by_name.items()}}

    def set_state(self, state: dict) -> None:
        """Restores `get_state`'s snapshot."""
        super().set_state(state)
        for name, heads in state["heads"].items():
            self.by_name[name].heads = heads
