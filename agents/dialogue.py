"""Dialogue (Park et al. 2023, section 5.1): each utterance conditioned on memories about the other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from simulacra.agents.llm.base import WORST_CHARS_PER_TOKEN
from simulacra.errors import ParseError

if TYPE_CHECKING:
    from simulacra.memory.stream import MemoryStream
    from simulacra.worlds.town import TownWorld

__all__ = ["Dialogue", "Speaker", "Turn", "parse_utterance", "utterance_schema"]

T = TypeVar("T")

TEXT = 120


@dataclass(frozen=True)
class Turn:
    """One utterance."""

    speaker: str
    listener: str
    text: str

    def to_dict(self) -> dict[str, str]:
        """JSON-safe dict."""
        return asdict(self)


def utterance_schema() -> dict[str, Any]:
    """Schema of one utterance and whether the speaker ends the conversation."""
    return {"type": "object", "properties": {"utterance": {"type": "string", "maxLength": TEXT},
                                             "end": {"type": "boolean"}},
            "required": ["utterance", "end"], "additionalProperties": False}


def parse_utterance(data: Any) -> tuple[str, bool]:
    """The words and the end flag.

    Raises:
        ParseError: Nothing said.
    """
    text = str(data.get("utterance", "")).strip() if isinstance(data, dict) else ""
    if not text:
        msg = f"empty utterance in {data!r}"
        raise ParseError(msg, feedback='Write what is said in "utterance".')
    return text, bool(data.get("end"))


class Speaker(Protocol):
    """What a conversation asks of each side (a generative agent is one): who and where, a stream, the LLM."""

    name: str
    model: TownWorld
    stream: MemoryStream

    @property
    def place(self) -> str:
        """The name of the place the speaker is at."""
        ...

    async def ask(self, purpose: str, template: str, schema: dict[str, Any], parse: Callable[[Any], T], *,
                  fallback: T, max_tokens: int | None = None, **variables: Any) -> T:
        """One schema-constrained LLM call as the speaker; a failure falls back to ``fallback``."""
        ...


class Dialogue:
    """Runs a conversation of up to ``max_turns`` utterances between two agents at one place."""

    def __init__(self, *, max_turns: int, top_k: int) -> None:
        """Sets the length limit and how many memories condition each utterance."""
        self.max_turns = max_turns
        self.top_k = top_k

    async def converse(self, first: Speaker, second: Speaker) -> list[Turn]:
        """Alternates speakers from ``first``; both remember every utterance.

        Returns:
            The turns, in order (empty when the first utterance failed).
        """
        turns: list[Turn] = []
        now = first.model.sim_time()
        for i in range(self.max_turns):
            speaker, listener = (first, second) if i % 2 == 0 else (second, first)
            query = f"{listener.name} " + (turns[-1].text if turns else "")
            memories = [n.text for n in speaker.stream.retrieve(query, now, self.top_k)]
            said = await speaker.ask(f"dialogue_{i}", "dialogue", utterance_schema(), parse_utterance, fallback=None,
                                     max_tokens=TEXT // WORST_CHARS_PER_TOKEN + 16,
                                     time=speaker.model.clock_text(), place=speaker.place, other=listener.name,
                                     memories=memories, turns=[t.to_dict() for t in turns])
            if said is None:
                break
            text, end = said
            turns.append(Turn(speaker.name, listener.name, text))
            for agent in (speaker, listener):
                agent.stream.add("utterance", f'{speaker.name} said to {listener.name}: "{text}"', now)
            if end:
                break
        return turns
