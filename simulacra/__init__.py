"""Simulacra: societies of LLM-driven agents on Mesa.

The distribution installs one root package. Its parts live in the repository's top-level folders:
``simulacra.agents`` (agents/), ``simulacra.worlds`` (worlds/: Mesa worlds and their parts), ``simulacra.memory``
(memory/) and ``simulacra.scenarios`` (scenarios/). What drives worlds lives here: ``simulacra.runs`` (runner,
snapshots, resume/replay/fork, live view), ``simulacra.instruments`` (surveys, interviews, raters),
``simulacra.data`` (harvest), ``simulacra.sweeps`` (Ray), ``simulacra.web`` (the web view), ``simulacra.testing``
(`WorldContract`, the checks every world passes); ``simulacra.errors`` and ``simulacra.events`` are the ground floor
every layer imports; ``simulacra.cli`` is the command line (``simulacra`` or ``python run.py``).

The public API, what your own worlds and minds are written against (each imported on first use, so
``import simulacra`` loads nothing heavy):
    World: the base of a world, a ``mesa.Model`` (`World.phase` asks all agents' minds at once, `World.emit`
        records an event, your own kinds included).
    WorldSetup: what every world is built from, ours and yours (`World.from_setup`): the scenario, its section,
        the LLM client, the run's id, Chroma client, encoder and memory streams.
    WorldSection: the base of your world's section of a scenario (its fields, validated like ours).
    Event, EventKind: the event log's records and our kinds.
    MemoryStream: an agent's memories in Chroma, retrieved by recency, importance and relevance.
    LLMClient, Backend, Message: the client agents ask, the base of an engine, a chat message.
    ParseError: what your ``parse`` raises for an answer that does not fit (its feedback goes to the retry).
    ask_as, purpose_seed: the one way an agent asks its world's model (schema-bound, failures recorded).
    TownAgent: the town's agent, the base of your own town mind.
    Remembers, Converses, TakesTurns, Learns: the mind protocols the built-in worlds look for.
    Recalls, Recollection: what instruments (interviews, surveys) ask of a mind: ``recall(query, k=...)``; a mind
        without it is asked through the memory stream its world made with ``setup.memory_stream(name)``.
    Scenario, load_scenario: a validated scenario file.
    find_class: how a name in a scenario becomes your class (`simulacra.plugins`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulacra.agents.ask import ask_as, purpose_seed
    from simulacra.agents.llm import Backend, LLMClient, Message
    from simulacra.agents.minds import Converses, Learns, Remembers, TakesTurns
    from simulacra.agents.respondent import Recalls, Recollection
    from simulacra.agents.town_agent import TownAgent
    from simulacra.errors import ParseError
    from simulacra.events import Event, EventKind
    from simulacra.memory.stream import MemoryStream
    from simulacra.plugins import find_class
    from simulacra.scenarios.loading import load_scenario
    from simulacra.scenarios.schema import Scenario
    from simulacra.scenarios.sections import WorldSection
    from simulacra.worlds.world import World, WorldSetup

_HOME = {
    "World": "worlds.world", "WorldSetup": "worlds.world", "WorldSection": "scenarios.sections",
    "Event": "events", "EventKind": "events", "MemoryStream": "memory.stream",
    "LLMClient": "agents.llm", "Backend": "agents.llm", "Message": "agents.llm", "ParseError": "errors",
    "ask_as": "agents.ask", "purpose_seed": "agents.ask",
    "TownAgent": "agents.town_agent", "Remembers": "agents.minds", "Converses": "agents.minds",
    "TakesTurns": "agents.minds", "Learns": "agents.minds", "Recalls": "agents.respondent",
    "Recollection": "agents.respondent", "Scenario": "scenarios.schema",
    "load_scenario": "scenarios.loading", "find_class": "plugins",
}
__all__ = [
    "Backend", "Converses", "Event", "EventKind", "LLMClient", "Learns", "MemoryStream", "Message", "ParseError",
    "Recalls", "Recollection", "Remembers", "Scenario", "TakesTurns", "TownAgent", "World", "WorldSection",
    "WorldSetup", "ask_as", "find_class", "load_scenario", "purpose_seed",
]


def __getattr__(name: str) -> Any:
    """Imports a part of the public API when it is first asked for (PEP 562)."""
    if name not in _HOME:
        msg = f"module 'simulacra' has no attribute {name!r}; its public API is {', '.join(__all__)}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
