"""A generative agent (Park et al. 2023): memory stream in Chroma, planning, reacting, dialogue, reflection."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from simulacra.agents.ask import ask_as, purpose_seed
from simulacra.agents.dialogue import Dialogue
from simulacra.agents.llm.base import Message
from simulacra.agents.plan import (
    HourBlock,
    Plan,
    PlannedAction,
    day_plan_schema,
    decompose_schema,
    hourly_schema,
    parse_day_plan,
    parse_decomposition,
    parse_hourly,
)
from simulacra.agents.prompts import render
from simulacra.agents.reflection import Reflection
from simulacra.agents.respondent import Recollection, recall_from
from simulacra.agents.town_agent import Action, TownAgent
from simulacra.errors import ParseError
from simulacra.events import EventKind

if TYPE_CHECKING:
    from simulacra.memory.stream import MemoryStream
    from simulacra.scenarios.cognition import CognitionConfig
    from simulacra.worlds.town import TownWorld

__all__ = ["GenerativeAgent", "parse_reaction", "reaction_schema"]

T = TypeVar("T")
# Small models favour the first option offered; talking first gives news a chance to spread.
CHOICES = ("talk", "react", "continue")
# The react decision's fallback: go on with the plan.
_CONTINUE: tuple[str, str | None, str] = ("continue", None, "")


def reaction_schema(people: list[str]) -> dict[str, Any]:
    """Schema of the react decision; talking is offered only when someone is free to talk."""
    return {"type": "object", "properties": {
        "choice": {"type": "string", "enum": list(CHOICES) if people else ["react", "continue"]},
        "person": {"type": "string", "enum": [*people, "nobody"]},
        "reaction": {"type": "string", "maxLength": 60}},
        "required": ["choice", "person", "reaction"], "additionalProperties": False}


def parse_reaction(data: Any, people: list[str]) -> tuple[str, str | None, str]:
    """(choice, person, reaction) of a react decision.

    Raises:
        ParseError: Talking to nobody, or reacting with no reaction.
    """
    choice = data.get("choice") if isinstance(data, dict) else None
    if choice == "continue":
        return "continue", None, ""
    if choice == "talk" and data.get("person") in people:
        return "talk", data["person"], ""
    reaction = str(data.get("reaction", "")).strip() if isinstance(data, dict) else ""
    if choice == "react" and reaction:
        return "react", None, reaction
    msg = f"impossible reaction {data!r}"
    raise ParseError(msg, feedback=f"Choose continue; talk with person one of {', '.join(people) or 'nobody'}; "
                                   "or react with a reaction.")


class GenerativeAgent(TownAgent):
    """A townsperson with the full architecture; the world drives it through the same phases as `TownAgent`.

    | phase      | what it does                                                                      |
    |------------|-----------------------------------------------------------------------------------|
    | `perceive` | observations of who is here and what they do become memories                      |
    | `prepare`  | plans the day (broad strokes, then hours) and decomposes the current hour         |
    | `decide`   | when something new is seen: retrieve, then continue the plan, talk, or react      |
    | (world)    | conversations run for the agents who chose to talk                                |
    | `apply`    | walks to the plan's place or does the planned action                              |
    | `commit`   | rates new memories (batched), stores them in Chroma, reflects when due            |
    """

    def __init__(self, model: TownWorld, *, name: str, persona: str, home: str | None, goal: str,
                 memories: list[str], stream: MemoryStream, cognition: CognitionConfig, recent: int) -> None:
        """Creates the agent with its seed memories (rated and stored on its first step)."""
        super().__init__(model, name=name, persona=persona, home=home, goal=goal, memory=0)
        self.stream = stream
        self.cognition = cognition
        self.recent = recent
        self.plan = Plan()
        top_k = stream.top_k
        self.reflection = Reflection(threshold=cognition.reflection_threshold, recent=cognition.reflection_recent,
                                     questions=cognition.reflection_questions,
                                     insights=cognition.reflection_insights, top_k=top_k)
        self.dialogue = Dialogue(max_turns=cognition.dialogue_turns, top_k=top_k)
        self.talk_intent: str | None = None
        self.ratings: list[int] = []  # of the pending memories, between `rate` and the world's commit
        self._seen: dict[str, str] = {}
        self._salient = False
        self._last_action = ""
        for text in memories:
            stream.add("observation", text, model.sim_time())

    # -- the LLM, for this agent and its components ---------------------------------------------------
    async def ask(self, purpose: str, template: str, schema: dict[str, Any], parse: Callable[[Any], T], *,
                  fallback: T, max_tokens: int | None = None, **variables: Any) -> T:
        """One schema-constrained call with this agent's persona; a failure is reported and falls back.

        Args:
            purpose: Label for the call log (and the seed: each purpose gets its own sampling seed).
            template: The prompt in ``agents/prompts/generative.yaml``.
            schema: The JSON schema the engine enforces.
            parse: Turns the JSON into a value; raises `ParseError` with feedback.
            fallback: Returned when every attempt fails.
            max_tokens: Room for the answer; None uses ``llm.max_tokens``.
            **variables: The template's variables.

        Returns:
            The parsed value or the fallback.
        """
        # Shared text first (the system message and the task, the same for every agent), the persona last.
        who = render("generative", "who", name=self.name, persona=self.persona, goal=self.goal)
        messages = [
            Message("system", self.model.shared_prompt("generative", "system")),
            Message("user", render("generative", template, name=self.name, who=who, **variables)),
        ]
        return await ask_as(self, messages, schema=schema, parse=parse, fallback=fallback, purpose=purpose,
                            seed=purpose_seed(self._seed, purpose), max_tokens=max_tokens)

    def hear(self, text: str) -> None:
        """Injected news: heard this step (so the step is salient) and kept in the memory stream."""
        super().hear(text)
        self.stream.add("observation", text, self.model.sim_time())

    # -- phases ----------------------------------------------------------------------------------------
    def perceive(self) -> None:
        """Observes the place; new sights become memories and make the step salient."""
        self._look()
        now = self.model.sim_time()
        here = {name: self.model.by_name[name].current for name in self.observation["people"]}  # the perceived
        fresh = {n: doing for n, doing in here.items() if self._seen.get(n) != doing}
        for name, doing in fresh.items():
            self.stream.add("observation", f"{name} is {doing} at the {self.place}", now)
        # React to who arrives (and to being spoken to), not to every change of activity: each reaction is an
        # LLM call, and at a busy place activities change every step.
        self._salient = any(n not in self._seen for n in here) or bool(self.heard)
        self._seen = here
        self.heard.clear()
        self._seed = self.model.draw_seed()

    async def prepare(self) -> None:
        """Plans the day when needed, decomposes the current hour (the world has stored the seed memories)."""
        now = self.model.sim_time()
        if self.plan.needs_day(now):
            await self._plan_day()
        block = self.plan.block_at(now)
        if block and self.plan.action_at(now) is None:
            remaining = int((block.start + timedelta(hours=1) - now).total_seconds() // 60)
            await self._decompose(block, now, remaining, first="", level="minutes")

    async def decide(self) -> None:
        """Continues the plan, or (when something new is seen) retrieves and decides whether to react."""
        self.talk_intent = None
        if self.destination and self.destination != self.place:
            self.pending = Action("go_to", place=self.destination)
            return
        now = self.model.sim_time()
        if self._salient:
            free = [n for n in self.observation["people"] if self.model.can_talk(self.name, n)]
            memories = self.stream.retrieve("; ".join(self.observation["here"]), now)
            choice, person, reaction = await self.ask(
                "react", "react", reaction_schema(free), lambda d: parse_reaction(d, free),
                fallback=_CONTINUE, time=self.model.clock_text(), place=self.place,
                planned=self._planned(now), seen=self.observation["here"], unseen=self.observation.get("unseen", 0),
                heard=self.observation["heard"],
                memories=[m.text for m in memories], talk_options=free)
            self.outbox.append((EventKind.REACTED, {"choice": choice, "person": person, "reaction": reaction}))
            if choice == "talk" and person:
                self.talk_intent = person
                self.pending = Action("talk_to", person=person)
                return
            if choice == "react":
                block = self.plan.block_at(now)
                end = block.start + timedelta(hours=1) if block else now + timedelta(minutes=30)
                remaining = max(int((end - now).total_seconds() // 60), 5)
                await self._decompose(block or HourBlock(now, self.place, reaction), now, remaining, first=reaction,
                                      level="replanned")
        block = self.plan.block_at(now)
        if block and block.place != self.place:
            self.pending = Action("go_to", place=block.place)
        else:
            self.pending = Action("do", text=self._planned(now))

    async def commit(self) -> None:
        """Rates and stores this step's memories; reflects when enough importance piled up.

        A town does the same in three phases (`rate`, then one encoder call for every agent's memories, then
        `reflect`); this is the one-agent form.
        """
        await self._commit_memories()
        await self.reflect()

    async def rate(self) -> None:
        """Rates the memories of this step (in batches of ``cognition.importance_batch``); `ratings` holds them."""
        texts = self.stream.pending()
        ratings: list[int] = []
        size = self.cognition.importance_batch
        for start in range(0, len(texts), size):
            chunk = texts[start:start + size]
            ratings += await self.ask(f"importance_{start}", "importance", importance_schema(len(chunk)),
                                      partial(parse_ratings, count=len(chunk)), fallback=[3] * len(chunk),
                                      max_tokens=4 * len(chunk) + 16,
                                      memories=chunk)
        self.ratings = ratings

    async def reflect(self) -> None:
        """Reflects when enough importance piled up (the insights are stored with the next step's memories)."""
        if self.reflection.due(self):
            result = await self.reflection.run(self)
            if result:
                self.outbox.append((EventKind.REFLECTED, result))

    def remember(self, kind: str, text: str) -> None:
        """World feedback becomes memory: utterances as such, everything else as actions (once per change)."""
        if kind == EventKind.SAID:
            self.stream.add("utterance", text, self.model.sim_time())
        elif text != self._last_action:
            self._last_action = text
            self.stream.add("action", text, self.model.sim_time())

    def recall(self, query: str, *, k: int) -> list[Recollection]:
        """The paper's retrieval (recency + importance + relevance) for ``query``, reading only.

        Memories not yet stored come after the retrieved ones (up to ``k`` in all): before the first step they
        are the seed memories, which the agent holds but has not rated yet.
        """
        return recall_from(self.stream, self.name, query, self.model.sim_time(), k=k)

    def mentions(self, keywords: list[str]) -> bool:
        """Whether any memory mentions one of ``keywords``."""
        return self.stream.mentions(keywords)

    # -- helpers ---------------------------------------------------------------------------------------
    def _planned(self, now: Any) -> str:
        action, block = self.plan.action_at(now), self.plan.block_at(now)
        return action.activity if action else (block.activity if block else self.current)

    async def _plan_day(self) -> None:
        now = self.model.sim_time()
        remembered = [n.text for n in self.stream.retrieve(f"{self.name}'s plans for today", now)]
        day = await self.ask("plan_day", "day_plan", day_plan_schema(), parse_day_plan,
                             fallback=[self.goal or "go about the day"], max_tokens=160, day=f"{now:%A %B %d}",
                             time=self.model.clock_text(), memories=remembered)
        start = now.replace(minute=0, second=0, microsecond=0)
        hours = self.cognition.plan_hours
        places = self.model.place_names
        labels = [f"{start + timedelta(hours=i):%H:%M}" for i in range(hours)]
        fallback = [HourBlock(start + timedelta(hours=i), self.place, day[min(i, len(day) - 1)]) for i in range(hours)]
        blocks = await self.ask("plan_hours", "hourly", hourly_schema(places, hours),
                                lambda d: parse_hourly(d, start=start, places=places, hours=hours),
                                fallback=fallback, max_tokens=24 * hours + 24, time=self.model.clock_text(), plan=day,
                                places=places,
                                hours=labels)
        self.plan.day, self.plan.hours, self.plan.actions = day, blocks, []
        schedule = "; ".join(f"{b.start:%H:%M} {b.activity} at the {b.place}" for b in blocks)
        self.stream.add("plan", f"My plan for {now:%A}: {'; '.join(day)}", now)
        self.stream.add("plan", f"My schedule: {schedule}", now)
        self.outbox.append((EventKind.PLANNED, {"level": "day", "items": day}))
        self.outbox.append((EventKind.PLANNED, {"level": "hours", "items": [f"{b.start:%H:%M} {b.place}: {b.activity}"
                                                                    for b in blocks]}))

    async def _decompose(self, block: HourBlock, now: Any, minutes: int, *, first: str, level: str) -> None:
        fallback = [PlannedAction(now, minutes, first or block.activity)]
        actions = await self.ask(
            f"plan_{level}", "decompose", decompose_schema(),
            lambda d: parse_decomposition(d, start=now, total_minutes=minutes), fallback=fallback, max_tokens=200,
            start=f"{now:%H:%M}", minutes=minutes, place=block.place, activity=block.activity, first=first)
        if first:
            actions = [PlannedAction(now, actions[0].minutes, first), *actions[1:]]
        self.plan.replace_from(now, actions)
        steps = "; ".join(f"{a.start:%H:%M} {a.activity} ({a.minutes} min)" for a in actions)
        self.stream.add("plan", f"From {now:%H:%M} I will: {steps}", now)
        self.outbox.append((EventKind.PLANNED, {"level": level, "items": [
            f"{a.start:%H:%M} {a.activity} ({a.minutes} min)" for a in actions]}))

    async def _commit_memories(self) -> None:
        await self.rate()
        self.stream.commit(self.ratings)
        self.ratings = []

    def get_state(self) -> dict[str, Any]:
        """JSON-safe snapshot: body, plan and stream state (memories themselves live in the store)."""
        return {**super().get_state(), "plan": self.plan.get_state(), "stream": self.stream.get_state(),
                "seen": dict(self._seen), "last_action": self._last_action}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores a snapshot made by `get_state`."""
        super().set_state(state)
        self.plan.set_state(state["plan"])
        self.stream.set_state(state["stream"])
        self._seen = dict(state["seen"])
        self._last_action = state["last_action"]


def importance_schema(count: int) -> dict[str, Any]:
    """Schema of ``count`` ratings on the paper's 1-10 scale."""
    return {"type": "object", "properties": {"ratings": {
        "type": "array", "items": {"type": "integer", "enum": list(range(1, 11))}, "minItems": count,
        "maxItems": count}}, "required": ["ratings"], "additionalProperties": False}


def parse_ratings(data: Any, count: int) -> list[int]:
    """Exactly ``count`` integers from 1 to 10.

    Raises:
        ParseError: Wrong count or out of range.
    """
    ratings = data.get("ratings") if isinstance(data, dict) else None
    if not isinstance(ratings, list) or len(ratings) != count or not all(
            isinstance(r, int) and not isinstance(r, bool) and 1 <= r <= 10 for r in ratings):
        msg = f"expected {count} ratings from 1 to 10, got {ratings!r}"
        raise ParseError(msg, feedback=f'Give exactly {count} integers from 1 to 10 in "ratings".')
    return ratings
