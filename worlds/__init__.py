"""Worlds: one Mesa model per module, plus the run machinery that observes them.

Parts (each imported on first use, so ``import simulacra.worlds.events`` does not load the runner and its worlds):
    TownWorld: named places on a network, LLM-driven townspeople.
    Runner: runs a scenario into a run folder with a live view.
    Event, EventKind, EventLog: the append-only event log.
    LiveView, PlainView: what people see while a run goes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulacra.worlds.events import Event, EventKind, EventLog
    from simulacra.worlds.live_view import LiveView, PlainView
    from simulacra.worlds.runner import Runner
    from simulacra.worlds.town import TownWorld

__all__ = ["Event", "EventKind", "EventLog", "LiveView", "PlainView", "Runner", "TownWorld"]

_HOME = {"Event": "events", "EventKind": "events", "EventLog": "events", "LiveView": "live_view",
         "PlainView": "live_view", "Runner": "runner", "TownWorld": "town"}


def __getattr__(name: str) -> Any:
    """Imports a part when it is first asked for (PEP 562)."""
    if name not in _HOME:
        msg = f"module 'worlds' has no attribute {name!r}; it holds {', '.join(__all__)}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
