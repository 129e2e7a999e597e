"""What every Simulacra world shares: the LLM client, the clock, events, concurrent phases, run summaries.

Parts:
    World: the base of every world, yours included.
    WorldSetup: what every world is built from (`World.from_setup`), ours and yours: one road to a world.
    BUILT_IN_WORLDS: ``world.type`` -> the built-in world's class, by import path.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from random import Random
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

import mesa
import numpy as np

from simulacra.agents.llm import LLMClient
from simulacra.errors import ScenarioError
from simulacra.events import Event, EventKind
from simulacra.scenarios.schema import ClockConfig

if TYPE_CHECKING:
    from simulacra.memory.stream import Embed, MemoryStream
    from simulacra.scenarios.schema import AgentConfig, AnyWorldSection, Scenario
    from simulacra.scenarios.sections import Section
    from simulacra.worlds.hooks import WorldHook

__all__ = ["BUILT_IN_WORLDS", "World", "WorldSetup"]

EVENT_KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")  # a world's own event kinds: snake_case, up to 40 characters

Observer = Callable[[Event], None]
T = TypeVar("T")
H = TypeVar("H", bound="WorldHook")
S = TypeVar("S", bound="Section")


class World(mesa.Model):
    """A Mesa model whose agents think through one `LLMClient` and whose events go to observers.

    Subclasses build their space and agents, register agents in ``by_name`` and write ``step``; they run an
    LLM phase for all agents at once with `phase` (its requests reach the engine together) and report what
    they count per step in ``step_counts``. Override `start_details` and `summary` to add to the event log's
    ``run_started`` record and to ``summary.json``.
    """

    metrics_start = 1  # the step of the first metrics row (a world that collects before step 1 says 0)

    setup: WorldSetup | None = None  # what the world was built from (`WorldSetup.build` sets it)
    # Set by mesa.Model.__init__ (Mesa ships no types): the seeded RNGs every draw comes from.
    random: Random
    rng: np.random.Generator

    def __init__(self, *, seed: int, llm: LLMClient | None, clock: ClockConfig | None = None,
                 observers: Iterable[Observer] = ()) -> None:
        """Seeds the model and keeps the client.

        Args:
            seed: Seeds Mesa's RNG, from which every shuffle and LLM sampling seed is drawn.
            llm: The client every agent asks, or None for a world without LLM-driven agents.
            clock: Sim time of step 1 and minutes per step.
            observers: Called with every event.
        """
        super().__init__(seed=seed)
        self.clock = clock or ClockConfig()
        self.observers: list[Observer] = list(observers)
        self.llm = llm
        self.step_counts: Counter[str] = Counter()
        self.by_name: dict[str, Any] = {}
        self.hooks: list[WorldHook] = []  # e.g. a BabyAGI team (`worlds.team.Team`)

    @classmethod
    def from_setup(cls, setup: WorldSetup) -> Self:
        """Builds the world from a run's setup: ``cls(setup)``; a world with keyword arguments maps them here.

        Args:
            setup: The scenario, the client, the run's stores and identity.

        Returns:
            The world at step 0.
        """
        build = cast("Callable[[WorldSetup], Self]", cls)  # a world of yours takes the setup: YourWorld(setup)
        return build(setup)

    def llm_client(self) -> LLMClient:
        """``llm``, for what asks it.

        Raises:
            RuntimeError: The world was built without a client (``llm=None``).
        """
        if self.llm is None:
            msg = f"{type(self).__name__} has no LLM client (it was built with llm=None)"
            raise RuntimeError(msg)
        return self.llm

    def attach(self, hook: H) -> H:
        """Adds a hook that takes part in every step (see `worlds.hooks.WorldHook`); returns it."""
        self.hooks.append(hook)
        return hook

    def board_event(self, kind: str, data: dict[str, Any]) -> None:
        """Emits a task board event as the agent it names."""
        self.emit(kind, self.by_name.get(str(data.get("agent"))), data)

    def facts(self) -> str:
        """What the world's state says about an objective, for the team's judge (e.g. what the players hold)."""
        return ""

    def sim_time(self) -> datetime:
        """Sim time of the current step (step 1 starts at the clock's start)."""
        return self.clock.start + timedelta(minutes=self.clock.minutes_per_step * max(self.steps - 1, 0))

    def clock_text(self) -> str:
        """Sim time as people read it, e.g. ``Friday 08:10``."""
        return self.sim_time().strftime("%A %H:%M")

    def draw_seed(self) -> int:
        """Draws an LLM sampling seed from the world's RNG."""
        return self.random.getrandbits(31)

    def reseed(self, seed: int) -> None:
        """Re-seeds both RNGs in place (a fork with a new seed: the same past, fresh draws from here on).

        Args:
            seed: The new seed; draws after this call are those of a world seeded with it.
        """
        self.random.seed(seed)
        self.rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state

    def emit(self, kind: str | EventKind, agent: Any | None, data: dict[str, Any]) -> None:
        """Records an event and hands it to every observer.

        Args:
            kind: One of `EventKind`, or your world's own kind (snake_case, e.g. ``trade``); it is counted in
                ``summary.json`` and shown in the live and web views like ours.
            agent: Who it happened to (anything with a ``name``), or None for the world.
            data: JSON-safe details.

        Raises:
            ValueError: ``kind`` is not snake_case of at most 40 characters.
        """
        if isinstance(kind, EventKind):
            kind = kind.value
        elif not EVENT_KIND.match(kind):
            msg = f"event kind {kind!r}: write it in snake_case, at most 40 characters (e.g. 'trade')"
            raise ValueError(msg)
        self.step_counts[kind] += 1
        event = Event(self.steps, self.sim_time().isoformat(timespec="minutes"),
                      agent.name if agent else None, kind, data)
        for observer in self.observers:
            observer(event)

    def start_details(self) -> dict[str, Any]:
        """What ``run_started`` says about this world besides the scenario's name, seed and steps."""
        return {}

    def start(self, **details: Any) -> None:
        """Emits ``run_started`` with ``details`` and the world's `start_details`.

        Its ``agents`` name every agent (a world's `start_details` may say more of each, such as where it
        starts), so the web view draws any world's agents.
        """
        data = {**details, **self.start_details()}
        data.setdefault("agents", {name: {} for name in self.by_name})
        self.emit(EventKind.RUN_STARTED, None, data)

    def phase(self, method: str, agents: Iterable[Any] | None = None) -> list[Any]:
        """Awaits ``agent.method()`` for all agents at once, then emits their events in agent order.

        Returns:
            The agents' results, in agent order.
        """
        chosen = list(self.agents if agents is None else agents)
        llm = self.llm_client()
        llm.context = {"step": self.steps, "phase": method}
        results = llm.run(gather(getattr(a, method)() for a in chosen))
        self.flush(chosen)
        return results

    def flush(self, agents: Iterable[Any]) -> None:
        """Emits what ``agents`` put in their outboxes during an async phase, in the order given."""
        for agent in agents:
            for kind, data in agent.outbox:
                self.emit(kind, agent, data)
            agent.outbox.clear()

    def finish(self) -> None:
        """Called once after the last step of a completed run: each hook finishes (a team's objective is judged)."""
        for hook in self.hooks:
            hook.finish(self)

    def summary(self) -> dict[str, Any]:
        """World-specific figures for ``summary.json``."""
        return {}

    def plots(self, metrics: Any, folder: Any, *, title: str) -> list[str]:
        """Writes the world's PNG plots of ``metrics`` into ``folder``; returns their file names.

        By default ``metrics.png``: each numeric column of the DataCollector's model reporters over the steps.
        """
        from simulacra.worlds.plots import plot_columns

        plot_columns(metrics, folder / "metrics.png", title=title)
        return ["metrics.png"]

    def get_state(self) -> dict[str, Any]:
        """A JSON-safe snapshot of what every world has: step, both RNGs, the metrics so far, each hook's state.

        Subclasses add their space and agents (``{**super().get_state(), ...}``).
        """
        version, internal, gauss = self.random.getstate()
        collector = getattr(self, "datacollector", None)
        state: dict[str, Any] = {"steps": self.steps, "random": [version, list(internal), gauss],
                                 "rng": _plain(self.rng.bit_generator.state)}
        if collector is not None:
            state["metrics"] = {"model": _plain(collector.model_vars),
                                "agents": [[step, _plain(rows)] for step, rows in collector._agent_records.items()]}
        for hook in self.hooks:
            state[hook.name] = hook.get_state()
        return state

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores `get_state`'s part of a snapshot into a world built from the same scenario.

        Subclasses restore their own part after calling this (hooks come first: a team's agents look up
        their tasks on it).
        """
        self.steps = int(state["steps"])
        version, internal, gauss = state["random"]
        self.random.setstate((version, tuple(internal), gauss))
        self.rng.bit_generator.state = state["rng"]
        collector = getattr(self, "datacollector", None)
        if collector is not None and "metrics" in state:
            collector.model_vars = {k: list(v) for k, v in state["metrics"]["model"].items()}
            rows = state["metrics"]["agents"]
            collector._agent_records = {int(step): [tuple(r) for r in records] for step, records in rows}
        for hook in self.hooks:
            hook.set_state(state[hook.name])


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars, tuples and non-string keys turned into JSON's types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return value.item()
    return value


async def gather(coroutines: Iterable[Awaitable[T]]) -> list[T]:
    """``asyncio.gather`` into a list."""
    return list(await asyncio.gather(*coroutines))


# The built-in worlds, by ``world.type``: read-only, imported on demand. Yours are named by import path or entry
# point; both are built the same way, by `WorldSetup.build`.
BUILT_IN_WORLDS: Mapping[str, str] = MappingProxyType({
    "town": "simulacra.worlds.town:TownWorld",
    "crafting": "simulacra.worlds.crafting:CraftingWorld",
    "society": "simulacra.worlds.alignment:AlignmentWorld",
})


@dataclass
class WorldSetup:
    """What every world is built from, ours and yours: the scenario, the client, the run's stores and identity.

    `build` makes the world that ``world.type`` names as ``YourWorld.from_setup(setup)``; by default that is
    ``YourWorld(setup)``, whose ``__init__`` calls
    ``super().__init__(seed=setup.seed, llm=setup.llm, clock=setup.clock, observers=setup.observers)``.
    The setup owns what a run has one of: its id (which names every Chroma collection, so a resumed, forked or
    interviewed run finds its stores), its Chroma client, its encoder and its agents' memory streams.
    """

    scenario: Scenario
    llm: LLMClient | None
    observers: list[Observer]
    run_dir: Path
    run_id: str = ""  # the run's identity; empty: the run folder's name
    streams: dict[str, MemoryStream] = field(default_factory=dict, init=False, repr=False)
    _chroma: Any = field(default=None, init=False, repr=False)
    _embed: Embed | None = field(default=None, init=False, repr=False)
    _store: Any = field(default=None, init=False, repr=False)

    def build(self) -> World:
        """The world ``world.type`` names, built from this setup (`World.from_setup`).

        Raises:
            ScenarioError: Its class is not a `World` (the schema checks a user world by name only).
        """
        name = self.scenario.world.type
        if name in BUILT_IN_WORLDS:
            module, _, attr = BUILT_IN_WORLDS[name].partition(":")
            cls: type = getattr(importlib.import_module(module), attr)
        else:
            from simulacra.scenarios.schema import world_class

            cls = world_class(name)
        if not issubclass(cls, World):
            msg = f"world.type {name!r}: {cls.__qualname__} is not a simulacra.World subclass"
            raise ScenarioError(msg)
        world = cls.from_setup(self)
        world.setup = self
        return world

    @property
    def section(self) -> AnyWorldSection:
        """The scenario's ``world:`` mapping, validated by your world's ``section`` model."""
        return self.scenario.world

    def section_as(self, model: type[S]) -> S:
        """`section` as the ``model`` a world reads (a built-in world: its own, e.g. ``TownConfig``).

        Raises:
            TypeError: The scenario's section is another world's.
        """
        section = self.section
        if not isinstance(section, model):
            msg = (f"world.type {section.type!r}: its section is a {type(section).__name__}, not the "
                   f"{model.__name__} this world reads")
            raise TypeError(msg)
        return section

    def llm_client(self) -> LLMClient:
        """``llm``, for a world whose agents ask it.

        Raises:
            RuntimeError: The setup has no client (``llm=None``).
        """
        if self.llm is None:
            msg = f"world.type {self.scenario.world.type!r} needs an LLM client; this setup has none (llm=None)"
            raise RuntimeError(msg)
        return self.llm

    @property
    def seed(self) -> int:
        """The scenario's seed."""
        return self.scenario.seed

    @property
    def clock(self) -> ClockConfig:
        """The scenario's clock."""
        return self.scenario.clock

    @property
    def agents(self) -> list[AgentConfig]:
        """Everyone the scenario names (``agents``): name, persona, goal, seed memories."""
        return self.scenario.population

    @property
    def mind(self) -> type | None:
        """The mind class ``cognition.kind`` names when it is yours (an import path or entry point), else None.

        The one place a user's mind is looked up; a built-in world picks among its own kinds in one place too.
        """
        from simulacra.scenarios.cognition import MINDS, mind_class

        kind = self.scenario.cognition.kind
        return None if kind in MINDS else mind_class(kind)

    @property
    def prefix(self) -> str:
        """What every Chroma collection of the run is named after: the scenario and the run's id."""
        return f"{self.scenario.name}-{self.run_id or self.run_dir.name}"

    def collection(self, kind: str, *, most: int = 60) -> str:
        """The name of the run's Chroma collection of ``kind`` (``skills``, ``answers``...), at most ``most`` long.

        A name that would be longer is cut and ends in a checksum of the whole, so runs that share a Chroma
        server never share a collection.
        """
        name = f"{kind}-{self.prefix}"
        if len(name) <= most:
            return name
        return f"{name[:most - 9]}-{zlib.crc32(name.encode()):08x}"

    def chroma(self) -> Any:
        """The run's Chroma client, opened once: the scenario's server or folder, else ``<run folder>/chroma``."""
        if self._chroma is None:
            from simulacra.memory.chroma_store import open_client

            m = self.scenario.memory
            self._chroma = open_client(path=Path(m.chroma_path) if m.chroma_path else self.run_dir / "chroma",
                                       url=m.chroma_url)
        return self._chroma

    @property
    def embed(self) -> Embed:
        """The run's one encoder (the shipped all-MiniLM-L6-v2), loaded on first use."""
        if self._embed is None:
            from simulacra.memory.embedder import Embedder

            self._embed = Embedder()
        return self._embed

    def memory_stream(self, agent: str) -> MemoryStream:
        """A new memory stream (Park et al. 2023) for ``agent``, kept in the run's Chroma.

        It retrieves with the scenario's ``memory.retrieval`` weights; its memories are embedded by the shipped
        all-MiniLM-L6-v2. All streams of a run share one store and one encoder; the setup keeps each in
        ``streams``, so instruments (interviews, surveys) can ask an agent whose mind has no ``recall``.
        """
        from simulacra.memory.scoring import RetrievalWeights
        from simulacra.memory.stream import MemoryStream

        r = self.scenario.memory.retrieval
        weights = RetrievalWeights(recency=r.recency, importance=r.importance, relevance=r.relevance, decay=r.decay)
        stream = MemoryStream(agent, store=self.store(), embed=self.embed, weights=weights, top_k=r.top_k)
        self.streams[agent] = stream
        return stream

    def store(self) -> Any:
        """The run's store of memory streams (`memory.chroma_store.ChromaStore`), made on first use."""
        if self._store is None:
            from simulacra.memory.chroma_store import ChromaStore

            self._store = ChromaStore(self.chroma(), embed=self.embed, prefix=self.prefix[:40])
        return self._store
