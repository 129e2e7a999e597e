"""Worlds: one Mesa model per module, plus the run machinery that observes them.

Parts (each imported on first use, so ``import worlds.events`` does not load the runner and its worlds):
    TownWorld: named places on a network, LLM-driven townspeople.
    Runner: runs a scenario into a run folder with a live view.
    Event, EventKind, EventLog: the append-only event log.
    LiveView, PlainView: what people see while a run goes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from worlds.events import Event, EventKind, EventLog
    from worlds.live_view import LiveView, PlainView
    from worlds.runner import Runner
    from worlds.town import TownWorld

__all__ = ["Event", "EventKind", "EventLog", "LiveView", "PlainView", "Runner", "TownWorld"]

_HOME = {"Event": "worlds.events", "EventKind": "worlds.events", "EventLog": "worlds.events",
         "LiveView": "worlds.live_view", "PlainView": "worlds.live_view", "Runner": "worlds.runner",
         "TownWorld": "worlds.town"}


def __getattr__(name: str) -> Any:
    """Imports a part when it is first asked for (PEP 562)."""
    if name not in _HOME:
        msg = f"module 'worlds' has no attribute {name!r}; it holds {', '.join(__all__)}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(_HOME[name]), name)
