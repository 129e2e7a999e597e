"""The town: named places joined by streets, on a Mesa network space, peopled by LLM-driven agents."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mesa
import networkx as nx
from mesa.discrete_space import Network

from simulacra.agents.llm import LLMClient
from simulacra.agents.minds import Converses, Remembers
from simulacra.agents.prompts import render
from simulacra.agents.town_agent import TownAgent
from simulacra.events import EventKind
from simulacra.memory.scoring import RetrievalWeights
from simulacra.memory.store import VectorStore
from simulacra.memory.stream import Embed
from simulacra.scenarios.cognition import MINDS, CognitionConfig, MemoryConfig
from simulacra.scenarios.population import PerceptionConfig
from simulacra.scenarios.schema import AgentConfig, ClockConfig, DiffusionConfig, InjectConfig, PlaceConfig, TownConfig
from simulacra.worlds.diffusion import Diffusion
from simulacra.worlds.plots import plot_diffusion, plot_metrics, plot_tasks
from simulacra.worlds.world import Observer, World, WorldSetup, gather

if TYPE_CHECKING:
    from simulacra.worlds.team import Team

__all__ = ["TownWorld"]

COUNTED = ("said", "talk_failed", "moved", "move_blocked", "activity", "waited", "llm_failure", "planned",
           "reacted", "conversation", "reflected", "retrievals")


class TownWorld(World):
    """A small town (imitates Mesa's wolf-sheep split: this module is the model, agents/ the agents).

    A step: every agent perceives; all decisions are requested from the LLM concurrently; actions are
    applied in a seeded shuffled order, the world resolving conflicts (a full place, a listener who
    walked away); memory writes are committed; metrics are collected.
    """

    llm: LLMClient  # every townsperson asks it (`World` allows None for worlds without LLM-driven agents)

    def __init__(
        self,
        *,
        seed: int,
        places: Sequence[PlaceConfig],
        agents: Sequence[AgentConfig],
        llm: LLMClient,
        clock: ClockConfig | None = None,
        memory: MemoryConfig | None = None,
        cognition: CognitionConfig | None = None,
        diffusion: DiffusionConfig | None = None,
        store: VectorStore | None = None,
        embed: Embed | None = None,
        observers: Iterable[Observer] = (),
        chroma: Any | None = None,
        inject: Sequence[InjectConfig] = (),
        perception: PerceptionConfig | None = None,
        mind: type[TownAgent] | None = None,
    ) -> None:
        """Builds the map and the agents.

        Args:
            seed: Seeds Mesa's RNG, from which every shuffle and LLM sampling seed is drawn.
            places: The map.
            agents: Who lives here.
            llm: The client every agent asks.
            clock: Sim time of step 1 and minutes per step.
            memory: Memory settings.
            cognition: Simple or generative agents, and the generative settings.
            diffusion: News to track (who knows, who came) in the metrics.
            store: Where generative agents keep memories; None: an in-memory Chroma.
            embed: Texts to unit vectors; None: all-MiniLM-L6-v2 from the installed package.
            observers: Called with every event.
            chroma: The Chroma client where a BabyAGI team (``cognition.kind: babyagi``) stores task results;
                None: an in-memory one.
            inject: News that reaches an agent at the start of a step, as if someone had said it.
            perception: How many others an agent perceives by name, and how many streets away it sees.
            mind: Your town mind (a `TownAgent` subclass) for every agent, when ``cognition.kind`` names one.

        Raises:
            ValueError: ``cognition.kind`` names a mind of yours and ``mind`` is not given.
        """
        super().__init__(seed=seed, llm=llm, clock=clock, observers=observers)
        self.inject = list(inject)
        self._present: dict[str, list[TownAgent]] = {}
        self._paths: dict[tuple[str, str], list[str]] = {}
        self._sight: dict[str, list[str]] = {}
        self._shared: dict[tuple[str, str], str] = {}
        self.perception = perception or PerceptionConfig()
        self._places = {p.name: p for p in places}
        graph: nx.Graph[str] = nx.Graph()
        graph.add_nodes_from(self._places)
        graph.add_edges_from((p.name, link) for p in places for link in p.links)
        self.graph = graph
        self.space = Network(graph, random=self.random)
        memory = memory or MemoryConfig()
        self.cognition = cognition or CognitionConfig()
        self.by_name: dict[str, TownAgent] = {}
        self.last_talk: dict[frozenset[str], int] = {}
        self.team: Team | None = None
        if self.cognition.kind == "babyagi":
            from simulacra.worlds.team import Team  # Chroma is needed only by a team (and the vLLM venv has none)

            self.team = self.attach(Team.for_world(self, self.cognition, embed=embed, chroma=chroma))
        make = self._agent_factory(memory, store, embed, mind)
        for spec in agents:
            agent = make(spec)
            agent.cell = self.space[spec.start or spec.home]
            self.by_name[spec.name] = agent
        self.diffusion = Diffusion(diffusion, self) if diffusion else None
        reporters: dict[str, Any] = {k: _counter(k) for k in COUNTED}
        reporters.update({f"at_{p}": _occupancy(p) for p in self._places})
        if self.diffusion:
            reporters.update(self.diffusion.reporters())
        for hook in self.hooks:
            reporters.update(hook.reporters())
            hook.start(self)
        self.datacollector = mesa.DataCollector(
            model_reporters=reporters, agent_reporters={"name": "name", "place": "place", "doing": "current"})

    @classmethod
    def from_setup(cls, setup: WorldSetup) -> TownWorld:
        """The town of a run: its section, the run's client, its Chroma and encoder for the minds that store.

        Args:
            setup: The scenario, the client, the run's stores and identity.

        Returns:
            The town at step 0.
        """
        s, w = setup.scenario, setup.section_as(TownConfig)
        kind = s.cognition.kind
        llm = setup.llm_client()
        store = setup.store() if kind == "generative" else None
        embed = setup.embed if kind in ("generative", "babyagi") else None
        return cls(seed=s.seed, places=w.places, agents=s.population, llm=llm, clock=s.clock,
                   memory=s.memory, cognition=s.cognition, diffusion=w.diffusion, store=store, embed=embed,
                   observers=setup.observers, chroma=setup.chroma() if kind == "babyagi" else None, inject=s.inject,
                   perception=s.perception, mind=setup.mind)

    def _agent_factory(self, memory: MemoryConfig, store: VectorStore | None, embed: Embed | None,
                       mind: type[TownAgent] | None) -> Callable[[AgentConfig], TownAgent]:
        """How each agent is made: the one place the town picks a mind by ``cognition.kind``."""
        if self.cognition.kind not in MINDS:  # yours: a TownAgent subclass (the schema checked)
            if mind is None:
                msg = f"cognition.kind {self.cognition.kind!r} names a mind of yours: pass its class as mind="
                raise ValueError(msg)
            made = mind
            return lambda s: made(self, name=s.name, persona=s.persona, home=s.home, goal=s.goal,
                                  memory=memory.recent)
        if self.cognition.kind == "simple":
            return lambda s: TownAgent(self, name=s.name, persona=s.persona, home=s.home, goal=s.goal,
                                       memory=memory.recent)
        if self.cognition.kind == "babyagi":
            from simulacra.agents.babyagi_agent import BabyAGIAgent

            team = self.team
            if team is None:  # __init__ attaches a team before it makes a BabyAGI town's agents
                msg = "a BabyAGI town makes its agents after its team; this town has no team"
                raise RuntimeError(msg)
            return lambda s: BabyAGIAgent(self, team=team, task_steps=self.cognition.task_steps, name=s.name,
                                          persona=s.persona, home=s.home, goal=s.goal, memory=memory.recent)
        from simulacra.agents.generative_agent import GenerativeAgent
        from simulacra.memory.stream import MemoryStream

        if embed is None:
            from simulacra.memory.embedder import Embedder

            embed = Embedder()
        self._embed: Embed = embed
        if store is None:
            import chromadb

            from simulacra.memory.chroma_store import ChromaStore

            store = ChromaStore(chromadb.EphemeralClient(), embed=embed, prefix=f"run{self.random.getrandbits(32)}")
        r = memory.retrieval
        weights = RetrievalWeights(recency=r.recency, importance=r.importance, relevance=r.relevance, decay=r.decay)
        return lambda s: GenerativeAgent(
            self, name=s.name, persona=s.persona, home=s.home, goal=s.goal, memories=s.memories,
            stream=MemoryStream(s.name, store=store, embed=embed, weights=weights, top_k=r.top_k),
            cognition=self.cognition, recent=memory.recent)

    @property
    def place_names(self) -> list[str]:
        """All place names, in map order."""
        return list(self._places)

    def describe(self, place: str) -> str:
        """The place's description (or its kind)."""
        spec = self._places[place]
        return spec.description or spec.kind

    def links(self, place: str) -> list[str]:
        """Places one street away."""
        return sorted(self.graph.neighbors(place))

    def agents_at(self, place: str) -> list[TownAgent]:
        """Agents at a place, in creation order (kept until someone moves: every agent looks at every step)."""
        present = self._present.get(place)
        if present is None:
            present = self._present[place] = sorted(self.space[place].agents, key=lambda a: a.unique_id)
        return present

    def in_sight(self, place: str) -> list[str]:
        """Other places within ``perception.radius`` streets, nearest first, then in name order.

        Every agent asks every step and the map never changes: each place's answer is computed once.
        """
        if place not in self._sight:
            hops = nx.single_source_shortest_path_length(self.graph, place, cutoff=self.perception.radius)
            self._sight[place] = sorted((p for p in hops if p != place), key=lambda p: (hops[p], p))
        return self._sight[place]

    def attend(self, agent: TownAgent, present: list[TownAgent]) -> list[TownAgent]:
        """Whom ``agent`` perceives among those ``present`` at its place: at most ``perception.bandwidth`` others.

        The most salient first: who spoke to it, then who it perceived the step before (attention stays where it
        was), then others drawn with the world's seeded RNG. Only a crowd larger than the bandwidth draws from the
        RNG, so small worlds keep their random stream; the draw costs the same whatever the crowd's size. The
        chosen keep creation order.
        """
        bandwidth = self.perception.bandwidth
        if bandwidth is None or len(present) - 1 <= bandwidth:
            return [a for a in present if a is not agent]
        chosen: list[TownAgent] = []
        for name in (*agent.heard_from, *agent.observation.get("people", ())):
            other = self.by_name.get(name)
            if other is not None and other is not agent and other.place == agent.place and other not in chosen:
                chosen.append(other)
        chosen = chosen[:bandwidth]
        if len(chosen) < bandwidth:
            taken = {a.unique_id for a in chosen} | {agent.unique_id}
            drawn = self.random.sample(present, bandwidth - len(chosen) + len(taken))  # enough once taken are out
            chosen += [a for a in drawn if a.unique_id not in taken][:bandwidth - len(chosen)]
        return sorted(chosen, key=lambda a: a.unique_id)

    def shared_prompt(self, kind: str, template: str) -> str:
        """A prompt every agent of this world gets word for word (the rules, the places): rendered once."""
        key = (kind, template)
        if key not in self._shared:
            self._shared[key] = render(kind, template, places=self.place_names)
        return self._shared[key]

    def start_details(self) -> dict[str, Any]:
        """The map and where each agent starts."""
        return {"places": self.place_names, "agents": {a.name: a.place for a in self.by_name.values()}}

    def summary(self) -> dict[str, Any]:
        """Where everyone ended, news diffusion and memory figures."""
        out: dict[str, Any] = {"final_places": {a.name: a.place for a in self.by_name.values()}}
        if self.diffusion:
            out["diffusion"] = self.diffusion.summary()
        for hook in self.hooks:
            if (said := hook.summary()) is not None:
                out[hook.name] = said
        streams = [a.stream for a in self.by_name.values() if isinstance(a, Remembers)]
        if streams:
            out["memory"] = {"memories": sum(len(s) for s in streams), "retrievals": sum(s.retrievals for s in streams),
                             "reflections": sum(1 for s in streams for n in s.nodes if n.kind == "reflection")}
        return out

    def plots(self, metrics: Any, folder: Path, *, title: str) -> list[str]:
        """Actions and occupancy (metrics.png); who knows and came (diffusion.png); the task board (tasks.png)."""
        plot_metrics(metrics, folder / "metrics.png", title=title)
        written = ["metrics.png"]
        if self.diffusion:
            plot_diffusion(metrics, folder / "diffusion.png", title=title, agents=len(self.by_name))
            written.append("diffusion.png")
        if self.team:
            plot_tasks(metrics, folder / "tasks.png", title=title)
            written.append("tasks.png")
        return written

    def step(self) -> None:
        """Perceive; prepare and decide (concurrently); converse; apply (shuffled); commit; collect."""
        self.step_counts.clear()
        for hook in self.hooks:
            hook.before_step(self)
        retrievals = self._retrievals()
        for item in self.inject:
            if item.step == self.steps:
                agent = self.by_name[item.to]
                agent.hear(item.text)
                self.emit(EventKind.INJECTED, agent, {"to": item.to, "text": item.text})
        self.agents.do("perceive")
        for agent in self.agents:
            self.emit(EventKind.OBSERVED, agent, {"place": agent.place, **agent.observation})
        if self.cognition.kind == "generative":
            self._store_memories([a for a in self.agents if not len(a.stream) and a.stream.pending()])  # seeds
        self.phase("prepare")
        self.phase("decide")
        for agent in self.agents:
            if agent.pending is not None:
                self.emit(EventKind.DECIDED, agent, agent.pending.to_dict())
        self._converse()
        self.agents.shuffle_do("apply")
        if self.cognition.kind == "generative":
            self._store_memories(list(self.agents))
            self.phase("reflect")
        else:
            self.phase("commit")
        for hook in self.hooks:
            hook.after_commit(self)
        self.step_counts["retrievals"] = self._retrievals() - retrievals
        if self.diffusion:
            self.diffusion.update()
        self.datacollector.collect(self)
        counts: dict[str, Any] = {k: self.step_counts[k] for k in COUNTED}
        for hook in self.hooks:
            counts.update(hook.step_counts())
        self.emit(EventKind.STEP_ENDED, None, counts)

    def _store_memories(self, agents: list[Any]) -> None:
        """Rates the agents' new memories (LLM calls, all at once), then embeds them all in one encoder call.

        Generative agents embed every observation: one call per agent would run the encoder a thousand times a
        step in a town of a thousand; one call for all of them batches the work.
        """
        if not agents:
            return
        self.phase("rate", agents)
        texts = [text for a in agents for text in a.stream.pending()]
        vectors = self._embed(texts) if texts else None
        start = 0
        for agent in agents:
            count = len(agent.stream.pending())
            agent.stream.commit(agent.ratings, None if vectors is None else vectors[start:start + count])
            agent.ratings = []
            start += count

    def _retrievals(self) -> int:
        return sum(a.stream.retrievals for a in self.agents if isinstance(a, Remembers))

    def can_talk(self, speaker: str, listener: str) -> bool:
        """Whether the pair's conversation cooldown has passed."""
        last = self.last_talk.get(frozenset((speaker, listener)))
        return last is None or self.steps - last > self.cognition.dialogue_cooldown_steps

    def _converse(self) -> None:
        """Pairs up agents who chose to talk (shuffled, one conversation each) and runs the talks concurrently."""
        if not any(isinstance(a, Converses) and a.talk_intent for a in self.agents):
            return  # no shuffle either: the RNG stream of worlds without conversations stays as it was
        shuffled: Iterable[TownAgent] = self.agents.shuffle()  # the town's agents are all TownAgents
        intents = [(a, whom) for a in shuffled if isinstance(a, Converses) and (whom := a.talk_intent)]
        busy: set[str] = set()
        pairs = []
        for agent, whom in intents:
            other = self.by_name[whom]
            if agent.name in busy or other.name in busy or other.place != agent.place:
                reason = f"{other.name} is busy" if other.name in busy else f"{other.name} is at the {other.place}"
                if agent.name not in busy:
                    self.emit(EventKind.TALK_FAILED, agent, {"to": other.name, "text": "", "reason": reason})
                    agent.pending = None
                continue
            if not isinstance(other, Converses):  # a town's agents share one mind: one who talks, all do
                msg = f"{agent.name} chose to talk to {other.name}, whose mind does not converse (simulacra.Converses)"
                raise TypeError(msg)
            busy.update((agent.name, other.name))
            pairs.append((agent, other))
        self.llm.context = {"step": self.steps, "phase": "converse"}
        talks = self.llm.run(gather(a.dialogue.converse(a, b) for a, b in pairs))
        for (first, second), turns in zip(pairs, talks, strict=True):
            self.flush((first, second))
            for agent in (first, second):
                agent.pending = None
                agent.current = f"talking with {second.name if agent is first else first.name}"
            for turn in turns:
                self.emit(EventKind.SAID, self.by_name[turn.speaker], {"to": turn.listener, "text": turn.text,
                                                                       "place": first.place})
            self.last_talk[frozenset((first.name, second.name))] = self.steps
            self.emit(EventKind.CONVERSATION, first, {"with": second.name, "turns": len(turns),
                                                      "place": first.place})

    def walk(self, agent: TownAgent, destination: str) -> None:
        """Moves ``agent`` one street toward ``destination``; a full place or no road blocks it."""
        try:
            path = self._path(agent.place, destination)
        except nx.NetworkXNoPath:
            agent.destination = None
            self.emit(EventKind.MOVE_BLOCKED, agent, {"at": agent.place, "to": destination,
                                                      "reason": "no street leads there"})
            return
        nxt = path[1]
        capacity = self._places[nxt].capacity
        if capacity is not None and len(self.space[nxt].agents) >= capacity:
            agent.destination = None
            agent.remember("blocked", f"The {nxt} was full, so I could not go in.")
            self.emit(EventKind.MOVE_BLOCKED, agent, {"at": agent.place, "to": nxt, "reason": "full"})
            return
        origin = agent.place
        agent.cell = self.space[nxt]
        self._present.pop(origin, None)
        self._present.pop(nxt, None)
        arrived = nxt == destination
        agent.current = f"arrived at the {nxt}" if arrived else f"walking to the {destination}"
        if arrived:
            agent.destination = None
        agent.remember("moved", f"I walked from the {origin} to the {nxt}.")
        self.emit(EventKind.MOVED, agent, {"from": origin, "to": nxt, "destination": destination,
                                           "arrived": arrived})

    def _path(self, origin: str, destination: str) -> list[str]:
        """The shortest path between two places (the map never changes: each pair is searched once)."""
        key = (origin, destination)
        if key not in self._paths:
            self._paths[key] = nx.shortest_path(self.graph, origin, destination)
        return self._paths[key]

    def say(self, speaker: TownAgent, listener_name: str, text: str) -> None:
        """Delivers an utterance if the listener is still at the speaker's place."""
        listener = self.by_name[listener_name]
        if listener.place != speaker.place:
            self.emit(EventKind.TALK_FAILED, speaker, {"to": listener_name, "text": text,
                                                       "reason": f"{listener_name} is at the {listener.place}"})
            return
        listener.heard.append(f'{speaker.name} said to you: "{text}"')
        listener.heard_from.append(speaker.name)
        self.last_talk[frozenset((speaker.name, listener_name))] = self.steps
        speaker.current = f"talking with {listener_name}"
        speaker.remember("said", f'I said to {listener_name}: "{text}"')
        self.emit(EventKind.SAID, speaker, {"to": listener_name, "text": text, "place": speaker.place})

    def do_activity(self, agent: TownAgent, activity: str) -> None:
        """The agent does something where it is."""
        agent.current = activity
        agent.remember("activity", f"I was {activity} at the {agent.place}.")
        self.emit(EventKind.ACTIVITY, agent, {"place": agent.place, "activity": activity})

    def get_state(self) -> dict[str, Any]:
        """Returns a JSON-safe snapshot: step, RNGs, metrics, board (`World.get_state`), agents, conversations."""
        return {**super().get_state(), "agents": [a.get_state() for a in self.by_name.values()],
                "last_talk": sorted([sorted(pair), step] for pair, step in self.last_talk.items()),
                **({"diffusion": self.diffusion.get_state()} if self.diffusion else {})}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores a snapshot made by `get_state`."""
        super().set_state(state)
        for agent_state in state["agents"]:
            self.by_name[agent_state["name"]].set_state(agent_state)
        self.last_talk = {frozenset(pair): int(step) for pair, step in state.get("last_talk", [])}
        if self.diffusion and "diffusion" in state:
            self.diffusion.set_state(state["diffusion"])
        self._present.clear()  # the agents were put back where they were


def _counter(kind: str) -> Callable[[TownWorld], int]:
    return lambda world: world.step_counts[kind]


def _occupancy(place: str) -> Callable[[TownWorld], int]:
    return lambda world: len(world.space[place].agents)
