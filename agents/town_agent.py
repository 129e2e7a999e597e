"""A townsperson: perceives who and what is near, asks the LLM what to do, and acts through the world."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from mesa.discrete_space import CellAgent

from simulacra.agents.ask import ask_as
from simulacra.agents.llm.base import Message
from simulacra.agents.prompts import render
from simulacra.agents.respondent import Recollection
from simulacra.errors import ParseError
from simulacra.events import EventKind
from simulacra.memory import RecentMemory

if TYPE_CHECKING:
    from simulacra.worlds.town import TownWorld

__all__ = ["Action", "TownAgent", "action_schema"]

ActionKind = Literal["go_to", "talk_to", "do", "wait"]
NOBODY = "nobody"
MAX_TEXT = 100


@dataclass(frozen=True)
class Action:
    """What an agent decided to do this step."""

    kind: ActionKind
    place: str | None = None
    person: str | None = None
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-safe dict."""
        return {"kind": self.kind, "place": self.place, "person": self.person, "text": self.text}


def action_schema(places: list[str], people: list[str]) -> dict[str, Any]:
    """The JSON schema of a decision, built so the engine's grammar can only name real options.

    Args:
        places: Places the agent may walk to (not the one it is at).
        people: Agents at the same place; talking is offered only when there is someone.

    Returns:
        A flat object schema (it works with grammars, JSON modes and function calling alike).
    """
    kinds = ["talk_to", "do", "go_to"] if people else ["do", "go_to"]
    return {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": kinds},
            "place": {"type": "string", "enum": places},
            "person": {"type": "string", "enum": [*people, NOBODY] if people else [NOBODY]},
            "text": {"type": "string", "maxLength": MAX_TEXT},
        },
        "required": ["action", "place", "person", "text"],
        "additionalProperties": False,
    }


def parse_action(data: Any, *, places: list[str], people: list[str]) -> Action:
    """Checks a decoded decision against what is possible right now.

    Raises:
        ParseError: The decision is impossible; its feedback says why and what is allowed.
    """
    if not isinstance(data, dict):
        msg = f"expected a JSON object, got {type(data).__name__}"
        raise ParseError(msg, feedback="Reply with one JSON object with action, place, person and text.")
    kind, text = data.get("action"), str(data.get("text") or "").strip()[:MAX_TEXT]
    if kind == "go_to" and data.get("place") in places:
        return Action("go_to", place=data["place"])
    if kind == "talk_to" and data.get("person") in people and text:
        return Action("talk_to", person=data["person"], text=text)
    if kind == "do" and text:
        return Action("do", text=text)
    msg = f"impossible decision {data!r}"
    feedback = {
        "go_to": f"You cannot go to {data.get('place')!r}. Places you can go to: {', '.join(places)}.",
        "talk_to": (f"To talk, set person to one of {', '.join(people)} and text to your words."
                    if people else "Nobody is here to talk to. Choose go_to or do."),
        "do": "Set text to the activity you do, e.g. \"reading a book\".",
    }.get(str(kind), "Set action to go_to, talk_to or do.")
    raise ParseError(msg, feedback=feedback)


def _crowd_line(shown: list[str], total: int, place: str) -> str:
    """'Ann, Bob and 10 others at the cafe': the names shown, and how many of the ``total`` there are not."""
    rest = total - len(shown)
    if not shown:
        return f"{rest} {'person' if rest == 1 else 'people'} at the {place}"
    if rest:
        return f"{', '.join(shown)} and {rest} {'other' if rest == 1 else 'others'} at the {place}"
    return f"{', '.join(shown)} at the {place}"


class TownAgent(CellAgent):
    """Body on the town's network (a Mesa cell agent) plus a simple mind: recent memory and one LLM call.

    Lifecycle per step (the world calls these in order): `perceive` (all agents), `prepare` and `decide`
    (all at once, concurrently), `apply` (in a seeded shuffled order), `commit` (memory writes become
    visible). Async phases put their events in `outbox`; the world emits them in agent order, so the event
    log does not depend on which request finished first.
    """

    def __init__(self, model: TownWorld, *, name: str, persona: str, home: str | None, goal: str,
                 memory: int) -> None:
        """Creates the agent; the world places it.

        Args:
            model: The world.
            name: Unique name.
            persona: Who they are.
            home: Their home place (a scenario's townspeople always have one; None: none was given).
            goal: What they want today.
            memory: How many recent observations to keep.
        """
        super().__init__(model)
        self.name = name
        self.persona = persona
        self.home = home
        self.goal = goal
        self.memory = RecentMemory(memory)
        self.current = "just starting the day"
        self.destination: str | None = None
        self.heard: list[str] = []
        self.heard_from: list[str] = []  # who spoke to the agent since it last perceived: it pays them attention
        self.pending: Action | None = None
        self.outbox: list[tuple[str, dict[str, Any]]] = []
        self._seed = 0
        self.observation: dict[str, Any] = {}

    @property
    def place(self) -> str:
        """The name of the place the agent is at."""
        return str(self.cell.coordinate)

    def _look(self) -> None:
        """Fills `observation`: who is here and what they do, who is nearby, what was said to us.

        At most ``perception.bandwidth`` others are perceived by name (`TownWorld.attend`); the rest of the people
        here are counted in ``unseen`` ("and N others"), and nearby places list names while the bandwidth lasts,
        then only how many people are there. The work is the same in a crowd of ten and of ten thousand.
        """
        world = self.model
        present = world.agents_at(self.place)
        seen = world.attend(self, present)
        budget = world.perception.bandwidth
        left = None if budget is None else max(budget - len(seen), 0)
        nearby = []
        for place in world.in_sight(self.place):
            there = world.agents_at(place)
            if there:
                shown = there if left is None else there[:left]
                nearby.append(_crowd_line([a.name for a in shown], len(there), place))
                left = None if left is None else left - len(shown)
        unseen = len(present) - 1 - len(seen)
        self.observation = {
            "here": [f"{a.name} ({a.current})" for a in seen],
            "people": [a.name for a in seen],
            "nearby": nearby,
            "heard": list(self.heard),
            **({"unseen": unseen} if unseen else {}),
        }

    def perceive(self) -> None:
        """Looks around and remembers what it saw and heard."""
        self._look()
        world = self.model
        time = world.clock_text()
        seen = "; ".join(self.observation["here"]) or "nobody"
        self.memory.add(time, "observation", f"At the {self.place} I saw {seen}.")
        for line in self.heard:
            self.memory.add(time, "heard", line)
        self.heard.clear()
        self.heard_from.clear()
        self._seed = world.draw_seed()

    async def decide(self) -> None:
        """Chooses this step's action (an LLM call unless the agent is walking somewhere).

        Emits nothing: requests finish in any order, so the world reports decisions in agent order.
        """
        if self.destination and self.destination != self.place:
            self.pending = Action("go_to", place=self.destination)
            return
        world = self.model
        places = [p for p in world.place_names if p != self.place]
        people = self.observation["people"]
        # The system message is the same for every agent of the world (a prefix the engine caches once); the
        # persona and the situation come last.
        messages = [
            Message("system", world.shared_prompt("town", "system")),
            Message("user", render(
                "town", "decide", name=self.name, persona=self.persona, goal=self.goal, time=world.clock_text(),
                place=self.place, place_description=world.describe(self.place), here=self.observation["here"],
                unseen=self.observation.get("unseen", 0), people=people, nearby=self.observation["nearby"],
                heard=self.observation["heard"], memories=self.memory.recent(), current=self.current)),
        ]
        self.pending = await ask_as(self, messages, schema=action_schema(places, people), seed=self._seed,
                                    parse=lambda data: parse_action(data, places=places, people=people),
                                    fallback=Action("wait", text=self.current), purpose="decide",
                                    fallback_label="wait")

    async def prepare(self) -> None:
        """Nothing to prepare: a simple agent does not plan."""

    def apply(self) -> None:
        """Carries out the pending action through the world, which resolves conflicts."""
        action, self.pending = self.pending, None
        if action is None:
            return
        world = self.model
        if action.kind == "go_to" and action.place:
            self.destination = action.place
            world.walk(self, action.place)
        elif action.kind == "talk_to" and action.person:
            world.say(self, action.person, action.text)
        elif action.kind == "do":
            world.do_activity(self, action.text)
        else:
            world.emit(EventKind.WAITED, self, {"place": self.place, "doing": self.current})

    async def commit(self) -> None:
        """Makes this step's memory writes visible."""
        self.memory.commit()

    def mentions(self, keywords: list[str]) -> bool:
        """Whether any remembered record mentions one of ``keywords`` (case-insensitive)."""
        words = [k.lower() for k in keywords]
        return any(w in r.text.lower() for r in self.memory.recent() for w in words)

    def recall(self, query: str, *, k: int) -> list[Recollection]:
        """What a simple mind holds: all of its recent memory (``memory.recent`` records), newest first.

        It keeps nothing else to search, so ``k`` does not cut it.
        """
        records = list(enumerate(self.memory.recent()))
        return [Recollection(f"{self.name}:recent:{n}", f"{r.sim_time}: {r.text}") for n, r in reversed(records)]

    def hear(self, text: str) -> None:
        """Something reaches the agent from outside (a scenario's injected news); it is perceived this step."""
        self.heard.append(text)

    def remember(self, kind: str, text: str) -> None:
        """Buffers a memory at the current sim time."""
        self.memory.add(self.model.clock_text(), kind, text)

    def get_state(self) -> dict[str, Any]:
        """Returns a JSON-safe snapshot of the mind and position."""
        return {
            "name": self.name, "place": self.place, "current": self.current, "destination": self.destination,
            "heard": list(self.heard), "heard_from": list(self.heard_from), "memory": self.memory.get_state(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores a snapshot made by `get_state`."""
        self.cell = self.model.space[state["place"]]
        self.current = state["current"]
        self.destination = state["destination"]
        self.heard = list(state["heard"])
        self.heard_from = list(state.get("heard_from", []))  # snapshots before bounded perception lack it
        self.memory.set_state(state["memory"])
