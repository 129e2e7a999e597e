"""Worlds: one Mesa model per module, on a shared base, with the parts they are made of.

Parts (each imported on first use, so ``import simulacra.worlds.world`` does not load every world):
    World, WorldSetup: the base of every world, and what a world is built from (ours and yours alike).
    TownWorld: named places on a network, LLM-driven townspeople.
    CraftingWorld: a tech tree without a game, for Voyager and BabyAGI players.
    AlignmentWorld: a Stable-Alignment sandbox society on a grid.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulacra.worlds.alignment import AlignmentWorld
    from simulacra.worlds.crafting import CraftingWorld
    from simulacra.worlds.town import TownWorld
    from simulacra.worlds.world import World, WorldSetup

__all__ = ["AlignmentWorld", "CraftingWorld", "TownWorld", "World", "WorldSetup"]

_HOME = {"AlignmentWorld": "alignment", "CraftingWorld": "crafting", "TownWorld": "town", "World": "world",
         "WorldSetup": "world"}


def __getattr__(name: str) -> Any:
    """Imports a part when it is first asked for (PEP 562)."""
    if name not in _HOME:
        msg = f"module 'simulacra.worlds' has no attribute {name!r}; it holds {', '.join(__all__)}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
