"""A member of a Stable-Alignment society (Liu et al. 2023): answers, rates neighbours, revises."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from mesa.discrete_space import CellAgent

from simulacra.agents.ask import ask
from simulacra.agents.respondent import Recollection
from simulacra.errors import ParseError

if TYPE_CHECKING:
    from simulacra.worlds.alignment import AlignmentWorld

__all__ = ["ANSWER_SCHEMA", "SocialAgent", "parse_answer", "parse_rating", "rating_schema"]

T = TypeVar("T")

MAX_ANSWER = 400
ANSWER_SCHEMA: dict[str, Any] = {"type": "object", "properties": {
    "answer": {"type": "string", "maxLength": MAX_ANSWER}}, "required": ["answer"]}


def rating_schema(scale: int) -> dict[str, Any]:
    """A rating from 1 to ``scale`` with a one-sentence reason."""
    return {"type": "object", "properties": {
        "rating": {"type": "integer", "minimum": 1, "maximum": scale},
        "reason": {"type": "string", "maxLength": 200}}, "required": ["rating", "reason"]}


def parse_answer(data: Any) -> str:
    """The answer text.

    Raises:
        ParseError: No non-empty answer.
    """
    answer = data.get("answer") if isinstance(data, dict) else None
    if not isinstance(answer, str) or not answer.strip():
        msg = "no answer"
        raise ParseError(msg, feedback='Reply with {"answer": "..."}.')
    return answer.strip()


def parse_rating(data: Any, scale: int) -> tuple[int, str]:
    """``(rating, reason)``.

    Raises:
        ParseError: The rating is not an integer from 1 to ``scale``.
    """
    rating = data.get("rating") if isinstance(data, dict) else None
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= scale:
        msg = f"bad rating {rating!r}"
        raise ParseError(msg, feedback=f"rating must be an integer from 1 to {scale}.")
    return rating, str(data.get("reason", "")).strip()


class SocialAgent(CellAgent):
    """A persona on the sandbox grid; the world decides who asks and who rates, and calls these."""

    model: AlignmentWorld

    def __init__(self, model: AlignmentWorld, *, name: str, persona: str) -> None:
        """Creates the agent; the world places it on the grid.

        Args:
            model: The world.
            name: Unique name.
            persona: Who they are; in every prompt.
        """
        super().__init__(model)
        self.name, self.persona = name, persona
        self.outbox: list[tuple[str, dict[str, Any]]] = []
        self._seed = 0

    def begin(self) -> None:
        """Draws this step's sampling seed (sync, in agent order)."""
        self._seed = self.model.draw_seed()

    def get_state(self) -> dict[str, Any]:
        """Name and grid cell, JSON-safe (the sampling seed is drawn afresh each step; answers live in the world)."""
        return {"name": self.name, "position": list(self.cell.coordinate)}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores a snapshot made by `get_state`."""
        self.cell = self.model.grid[tuple(state["position"])]

    def recall(self, query: str, *, k: int) -> list[Recollection]:
        """Its past answer to the question most like ``query`` and how it was rated (the world's answer memory)."""
        memory = self.model.memory
        past = memory.recall(self.name, query, min_similarity=0.0) if memory is not None else None
        if past is None:
            return []
        return [Recollection(f"{self.name}:answer", f"Asked {past['question']!r}, I answered {past['answer']!r} "
                                                    f"(rated {past['rating']})")]

    async def _ask(self, purpose: str, template: str, schema: dict[str, Any], parse: Callable[[Any], T], *,
                   fallback: T, **variables: Any) -> T:
        return await ask(self, "alignment", purpose, template, schema, parse, fallback=fallback,
                         system={"persona": self.persona}, **variables)

    async def draft(self, question: str, recalled: dict[str, Any] | None) -> str:
        """A first answer, with its own similar past answer (and its rating) recalled into the prompt."""
        return await self._ask("draft", "draft", ANSWER_SCHEMA, parse_answer, fallback="I am not sure.",
                               question=question, recalled=recalled)

    async def rate(self, author: str, question: str, answer: str, *, phase: str) -> tuple[int, str] | None:
        """A neighbour's rating and reason, or None when the call failed (the rating is then left out)."""
        scale = self.model.scale
        return await self._ask(f"rate:{author}:{phase}", "rate", rating_schema(scale),
                               lambda data: parse_rating(data, scale), fallback=None, author=author,
                               question=question, answer=answer)

    async def revise(self, question: str, draft: str, mean: float | None, feedback: list[dict[str, Any]]) -> str:
        """An improved answer from the mean rating and the reasons; the draft if the call fails."""
        return await self._ask("revise", "revise", ANSWER_SCHEMA, parse_answer, fallback=draft, question=question,
                               draft=draft, mean="none" if mean is None else f"{mean:.1f}", feedback=feedback)
