"""A player's body in the crafting world: where it stands, what it holds, its health and its ticks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mesa.discrete_space import CellAgent

from simulacra.agents.respondent import Recollection
from simulacra.worlds.crafting_bot import Bot
from simulacra.worlds.crafting_rules import MAX_HEALTH

if TYPE_CHECKING:
    from simulacra.worlds.crafting import CraftingWorld
    from simulacra.worlds.crafting_rules import Pos

__all__ = ["MAX_HEALTH", "Player"]


class Player(CellAgent):
    """A player's body: name, inventory, health, spawn point and what is left of this iteration's ticks.

    To give it a mind, subclass it and override `act` (`CraftingWorld.step` calls it once a step, players in a
    seeded shuffled order), then hand the class (or any factory) to the world as ``player_factory``.
    """

    model: CraftingWorld

    def __init__(self, model: CraftingWorld, *, name: str) -> None:
        """Creates the player; the world places it at its spawn point.

        Args:
            model: The world.
            name: Unique name.
        """
        super().__init__(model)
        self.name = name
        self.persona = ""
        self.inventory: Counter[str] = Counter()
        self.health = MAX_HEALTH
        self.ticks_left = model.tick_budget
        self.spawn: Pos = (0, 0)
        self.turns = 0
        self.milestones: dict[str, int] = {}
        self.obtained: set[str] = set()
        self.inbox: list[str] = []
        self.bot = Bot(self)

    @property
    def position(self) -> Pos:
        """The cell the player stands on, as (x, y)."""
        x, y = self.cell.coordinate
        return x, y

    def act(self) -> None:
        """One step of the mind; a plain player does nothing."""

    def recall(self, query: str, *, k: int) -> list[Recollection]:
        """What the body holds: health and inventory, milestones, the chat messages in its inbox."""
        held = ", ".join(f"{n} {item}" for item, n in sorted(self.inventory.items())) or "nothing"
        out = [Recollection(f"{self.name}:inventory", f"I hold {held}; my health is {self.health}/{MAX_HEALTH}.")]
        if self.milestones:
            out.append(Recollection(f"{self.name}:milestones", "Milestones I reached: " + ", ".join(self.milestones)))
        out += [Recollection(f"{self.name}:inbox:{n}", text) for n, text in enumerate(self.inbox[-k:])]
        return out

    def get_state(self) -> dict[str, Any]:
        """Returns a JSON-safe snapshot of the body."""
        return {"name": self.name, "position": list(self.position), "spawn": list(self.spawn),
                "health": self.health, "ticks_left": self.ticks_left, "turns": self.turns,
                "inventory": dict(sorted(self.inventory.items())),
                "milestones": dict(self.milestones), "obtained": sorted(self.obtained), "inbox": list(self.inbox)}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores a snapshot made by `get_state`."""
        self.cell = self.model.grid[tuple(state["position"])]
        self.spawn = (int(state["spawn"][0]), int(state["spawn"][1]))
        self.health, self.ticks_left, self.turns = int(state["health"]), int(state["ticks_left"]), int(state["turns"])
        self.inventory = Counter({k: int(v) for k, v in state["inventory"].items()})
        self.milestones = {k: int(v) for k, v in state["milestones"].items()}
        self.obtained, self.inbox = set(state["obtained"]), list(state["inbox"])
