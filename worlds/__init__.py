"""Worlds: one Mesa model per module, plus the run machinery that observes them.

Parts:
    TownWorld: named places on a network, LLM-driven townspeople.
    Runner: runs a scenario into a run folder with a live view.
    Event, EventKind, EventLog: the append-only event log.
    LiveView, PlainView: what people see while a run goes.
"""

from worlds.events import Event, EventKind, EventLog
from worlds.live_view import LiveView, PlainView
from worlds.runner import Runner
from worlds.town import TownWorld

__all__ = ["Event", "EventKind", "EventLog", "LiveView", "PlainView", "Runner", "TownWorld"]
