"""An agent answers a question in its own voice: a survey item (a typed answer) or an interview question.

The agent says what it holds about the question (`Recalls.recall`: a generative agent retrieves from its memory
stream with the paper's scoring, without touching last-access times; other minds list what they keep), and the
engine is held to the item's answer schema. Asking draws nothing from the world's RNG: seeds come from
`instrument_seed`, so a survey never changes what the simulation does next.

Parts:
    Recollection: one thing an agent holds (a memory, a task, an item), with an id.
    Recalls: what a mind offers to be asked: ``name``, ``persona`` and ``recall``.
    Response: what an agent answered, with the recollections it used.
    answer_schema, parse_answer, answer_format: a survey item's answer: its schema, its check, how it is asked for.
    INTERVIEW: the item an interview question is asked as (free text, up to 240 characters).
    instrument_seed: a sampling seed from names, not from the world's RNG.
    respond: asks one agent one question.
    respondent, StreamRespondent: an agent as an instrument asks it (its own recall, or its world's stream of it).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from jsonschema import Draft202012Validator

from simulacra.agents.llm import Message
from simulacra.agents.prompts import render
from simulacra.errors import ParseError, SimError
from simulacra.scenarios.instruments import SurveyItem

if TYPE_CHECKING:
    from collections.abc import Callable

    from simulacra.agents.llm import LLMClient
    from simulacra.memory.stream import MemoryStream

__all__ = ["INTERVIEW", "Recalls", "Recollection", "Response", "StreamRespondent", "answer_format", "recall_from",
           "answer_schema", "instrument_seed", "parse_answer", "respond", "respondent"]

MAX_ENUM = 200  # a whole-number range this wide or narrower is sent as an enum
INTERVIEW = SurveyItem(name="interview", question="(asked by the interviewer)", type="text", max_length=240)


@dataclass(frozen=True)
class Recollection:
    """One thing an agent holds: a memory of its stream (its Chroma id), a task, an item, a past answer."""

    id: str
    text: str


@runtime_checkable
class Recalls(Protocol):
    """A mind that can be asked: it has a name and a persona and says what it holds about a question."""

    name: str
    persona: str

    def recall(self, query: str, *, k: int) -> list[Recollection]:
        """What the agent holds that bears on ``query``, at most ``k`` things, most relevant first.

        Reading only: nothing the agent holds changes (no last-access update, no retrieval counted).
        """
        ...


@dataclass(frozen=True)
class Response:
    """One answer: the value (None when every attempt failed), and what the agent recalled for it."""

    agent: str
    question: str
    answer: Any
    ok: bool
    attempts: int
    error: str | None
    memories: tuple[Recollection, ...]
    seed: int


def instrument_seed(*parts: object) -> int:
    """A sampling seed made from ``parts`` (scenario seed, instrument, step, agent, question)."""
    return zlib.crc32(":".join(str(p) for p in parts).encode()) % 2**31


def answer_schema(item: SurveyItem) -> dict[str, Any]:
    """The JSON schema of an answer to ``item``: ``{"answer": ...}`` held to its type and range."""
    answer: dict[str, Any]
    if item.type == "likert":
        answer = {"type": "integer", "enum": list(range(1, item.scale + 1))}
    elif item.type == "choice":
        answer = {"type": "string", "enum": list(item.options)}
    elif item.type == "yes_no":
        answer = {"type": "string", "enum": ["yes", "no"]}
    elif item.type == "number" and item.integer and item.max - item.min <= MAX_ENUM:  # type: ignore[operator]
        # llama.cpp's grammars ignore minimum/maximum; an enum of the whole numbers holds the engine to the range
        answer = {"type": "integer", "enum": list(range(math.ceil(item.min), math.floor(item.max) + 1))}  # type: ignore[arg-type]
    elif item.type == "number":
        answer = {"type": "integer" if item.integer else "number", "minimum": item.min, "maximum": item.max}
    else:
        answer = {"type": "string", "minLength": 1, "maxLength": item.max_length}
    return {"type": "object", "properties": {"answer": answer}, "required": ["answer"], "additionalProperties": False}


def answer_format(item: SurveyItem) -> str:
    """How the answer is asked for, in the prompt."""
    if item.type == "likert":
        if item.labels:
            points = "; ".join(f"{n} = {label}" for n, label in enumerate(item.labels, start=1))
            return f"Answer with one whole number from 1 to {item.scale}: {points}."
        return f"Answer with one whole number from 1 (lowest) to {item.scale} (highest)."
    if item.type == "choice":
        return f"Answer with exactly one of: {', '.join(item.options)}."
    if item.type == "yes_no":
        return 'Answer "yes" or "no".'
    if item.type == "number":
        kind = "a whole number" if item.integer else "a number"
        return f"Answer with {kind} from {item.min:g} to {item.max:g}."
    return f"Answer in a sentence or two (at most {item.max_length} characters)."


def parse_answer(item: SurveyItem, data: Any) -> Any:
    """The answer to ``item`` in ``data``, checked against `answer_schema`.

    Returns:
        An int (likert; number with ``integer``), a float (number), or a str (choice, yes_no, text).

    Raises:
        ParseError: Not an object with one answer of the right type and range; the feedback says what is allowed.
    """
    errors = sorted(Draft202012Validator(answer_schema(item)).iter_errors(data), key=lambda e: list(e.path))
    value: Any = data.get("answer") if isinstance(data, dict) else None  # JSON; the schema checked its type
    if isinstance(value, bool):  # JSON true is not a number here, whatever Python thinks
        errors = errors or ["a boolean is not an answer"]
    if errors:
        first = errors[0]
        why = getattr(first, "message", str(first))
        msg = f"answer to {item.name!r} refused: {why[:200]}"
        raise ParseError(msg, feedback=f"That answer is not allowed ({why[:120]}). {answer_format(item)} "
                                       'Reply as JSON: {"answer": ...}.')
    if item.type == "number":
        return int(value) if item.integer else float(value)
    if item.type == "text":
        return str(value).strip()
    return value


async def respond(agent: Recalls, client: LLMClient, *, question: str, item: SurveyItem, template: str,
                  time: str, k: int, seed: int, purpose: str) -> Response:
    """Asks ``agent`` ``question`` with what it recalls about it; the engine is held to ``item``'s schema.

    Args:
        agent: The mind asked.
        client: The LLM client (its cache and retries apply).
        question: The question's text.
        item: The answer's type (`INTERVIEW` for an interview).
        template: ``survey`` or ``interview`` (``agents/prompts/instruments.yaml``).
        time: The sim time as people read it.
        k: How many recollections go into the prompt.
        seed: The sampling seed (`instrument_seed`).
        purpose: Label for the call log.

    Returns:
        The response; a failed call gives ``answer=None`` and ``ok=False`` (never an exception, but
        `agents.errors.BackendDown` when the engine is gone).
    """
    memories = tuple(agent.recall(question, k=k))
    messages = [
        Message("system", render("instruments", "system", name=agent.name, persona=agent.persona)),
        Message("user", render("instruments", template, name=agent.name, time=time, question=question,
                               memories=[m.text for m in memories], format=answer_format(item))),
    ]
    room = item.max_length // 3 + 24 if item.type == "text" else 24
    outcome = await client.structured(messages, schema=answer_schema(item), parse=lambda d: parse_answer(item, d),
                                      seed=seed, fallback=None, purpose=purpose, agent=agent.name, max_tokens=room)
    return Response(agent.name, question, outcome.value, outcome.ok, outcome.attempts, outcome.error, memories, seed)


class StreamRespondent:
    """A mind without ``recall`` made askable by the memory stream its world keeps for it (`WorldSetup.streams`).

    A world of yours whose agents keep their memories in ``setup.memory_stream(name)`` needs nothing more to be
    interviewed and surveyed: this reads the stream with the paper's scoring, touching nothing.
    """

    def __init__(self, agent: Any, stream: MemoryStream, now: Callable[[], Any]) -> None:
        """Wraps ``agent`` (its ``name`` and ``persona``) and ``stream``; ``now`` gives the world's sim time."""
        self.agent, self.stream, self._now = agent, stream, now
        self.name: str = agent.name
        self.persona: str = str(getattr(agent, "persona", ""))

    def recall(self, query: str, *, k: int) -> list[Recollection]:
        """The stream's retrieval for ``query`` (reading only), then memories not yet stored, up to ``k``."""
        return recall_from(self.stream, self.name, query, self._now(), k=k)


def recall_from(stream: MemoryStream, name: str, query: str, now: Any, *, k: int) -> list[Recollection]:
    """What ``stream`` holds on ``query`` at ``now``, at most ``k`` things.

    The paper's retrieval (reading only) first, then the memories not yet stored (before the first step, the seed
    memories).
    """
    nodes = stream.retrieve(query, now, k, touch=False)
    held = [Recollection(n.id, n.text) for n in nodes]
    pending = [Recollection(f"{name}:pending:{i}", text) for i, text in enumerate(stream.pending())]
    return (held + pending)[:k]


def respondent(world: Any, agent: Any) -> Recalls:
    """``agent`` as an instrument asks it: its own ``recall``, else the memory stream its world keeps for it.

    Args:
        world: The agent's world (a `simulacra.World`; its ``setup.streams`` hold the streams it made).
        agent: Anything with a ``name``.

    Raises:
        SimError: One line: the mind can be asked neither way; it names the protocol to implement.
    """
    if isinstance(agent, Recalls):
        return agent
    setup = getattr(world, "setup", None)
    stream = getattr(setup, "streams", {}).get(getattr(agent, "name", None))
    if stream is not None:
        return StreamRespondent(agent, stream, world.sim_time)
    msg = (f"agent {getattr(agent, 'name', agent)!r} ({type(agent).__name__}) cannot be asked: its mind has no "
           "recall(query, *, k) -> list[Recollection] and no memory stream of setup.memory_stream(name); "
           "implement the simulacra.Recalls protocol (name, persona, recall)")
    raise SimError(msg)
