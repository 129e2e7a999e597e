"""The crafting world's rules and records: hazard and tick constants, cells, blocks and recorded changes.

`worlds.crafting` (the world), `worlds.crafting_bot` (the skill API) and `worlds.player` (a player's body) all
build on this module, which imports none of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Block", "Change", "Pos", "cell_distance", "cells_around"]

MAX_HEALTH = 20  # a player's health at the start and after a respawn
LAVA = "lava"
REGEN = 2
ZOMBIE_CHANCE = 0.5
ZOMBIE_DAMAGE = 6
LAVA_DAMAGE = 8
LAVA_CHANCE = 0.5  # of lava next to a diamond_ore block
HARD_CHANCE = 0.2
STATION_REACH = 2  # a placed crafting_table or furnace within this distance can be used
MINE_RADIUS = 8  # mine() looks this far for the block kind asked
CRAFT_TICKS = 1  # a batch
SMELT_TICKS = 5  # an item
Pos = tuple[int, int]


@dataclass
class Block:
    """A deposit on the map: its kind and the units left."""

    kind: str
    count: int


@dataclass(frozen=True)
class Change:
    """One recorded effect on the world.

    ``kind`` says what changed: ``inventory`` (``item`` by ``delta``), ``block`` (units of the block ``item`` at
    x, y), ``health`` (``item`` is ``zombie_slain``, delta 0, when a sword fought a zombie off), ``position``
    (``delta`` cells walked to x, y) or ``milestone`` (``item`` reached).
    ``action`` is the call or hazard behind it: move, mine, craft, smelt, place, zombie, lava, seal, death,
    respawn.
    """

    step: int
    player: str | None
    action: str
    kind: str
    item: str
    delta: int
    x: int | None = None
    y: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-safe dict."""
        return asdict(self)


def cell_distance(a: Pos, b: Pos) -> int:
    """Steps between two cells, diagonal steps included."""
    return max(abs(a[0] - b[0]), abs(a[1] - b[1]))


def cells_around(x: int, y: int, size: int) -> list[Pos]:
    """The up to 8 cells next to (x, y) on a ``size`` map."""
    return [(x + dx, y + dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
            if (dx or dy) and 0 <= x + dx < size and 0 <= y + dy < size]
