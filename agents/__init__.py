"""Agents: their bodies (Mesa agents), minds, prompts and the LLM layer they call.

Parts (imported on first use, so ``import simulacra.errors`` does not load the agents):
    TownAgent: a townsperson who perceives, decides through the LLM, moves, talks and acts.
    Action: one decided action.
    llm: the LLM layer (backends, client, cache).
    prompts: prompt templates.
    errors: SimError and its kinds.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulacra.agents.town_agent import Action, TownAgent

__all__ = ["Action", "TownAgent"]


def __getattr__(name: str) -> Any:
    """Imports a part when it is first asked for (PEP 562)."""
    if name not in __all__:
        msg = f"module 'agents' has no attribute {name!r}; it holds {', '.join(__all__)}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(".town_agent", __name__), name)
