"""Reflection (Park et al. 2023, section 4.2): salient questions, then insights citing their evidence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simulacra.agents.llm.base import WORST_CHARS_PER_TOKEN
from simulacra.errors import ParseError

if TYPE_CHECKING:
    from simulacra.agents.generative_agent import GenerativeAgent
    from simulacra.memory.stream import MemoryNode

__all__ = ["Insight", "Reflection", "insights_schema", "parse_insights", "parse_questions", "questions_schema"]

TEXT = 100  # characters of an insight
QUESTION = 80  # characters of a question
CITED = 3  # statements an insight may cite


@dataclass(frozen=True)
class Insight:
    """A reflection and the ids of the memories it rests on."""

    text: str
    evidence: tuple[str, ...]


def questions_schema(count: int) -> dict[str, Any]:
    """Schema of exactly ``count`` questions."""
    return {"type": "object", "properties": {"questions": {
        "type": "array", "items": {"type": "string", "maxLength": QUESTION}, "minItems": count, "maxItems": count}},
        "required": ["questions"], "additionalProperties": False}


def parse_questions(data: Any) -> list[str]:
    """The non-empty questions.

    Raises:
        ParseError: None left.
    """
    items = [str(q).strip() for q in data.get("questions", [])] if isinstance(data, dict) else []
    items = [q for q in items if q]
    if not items:
        msg = f"no question in {data!r}"
        raise ParseError(msg, feedback='Write the questions as strings in "questions".')
    return items


def insights_schema(count: int, statements: int) -> dict[str, Any]:
    """Schema of ``count`` insights, each citing statement numbers 1..``statements``."""
    insight = {"type": "object", "properties": {
        "insight": {"type": "string", "maxLength": TEXT},
        "because": {"type": "array", "items": {"type": "integer", "enum": list(range(1, statements + 1))},
                    "minItems": 1, "maxItems": CITED}},
        "required": ["insight", "because"], "additionalProperties": False}
    return {"type": "object", "properties": {"insights": {"type": "array", "items": insight, "minItems": count,
                                                          "maxItems": count}},
            "required": ["insights"], "additionalProperties": False}


def parse_insights(data: Any, statements: list[MemoryNode]) -> list[Insight]:
    """Insights with their citations turned into memory ids (numbers out of range are dropped).

    Raises:
        ParseError: No insight that cites a real statement.
    """
    out = []
    for item in data.get("insights", []) if isinstance(data, dict) else []:
        text = str(item.get("insight", "")).strip() if isinstance(item, dict) else ""
        cited = [n for n in item.get("because", []) if isinstance(n, int) and 1 <= n <= len(statements)] \
            if isinstance(item, dict) else []
        if text and cited:
            out.append(Insight(text, tuple(dict.fromkeys(statements[n - 1].id for n in cited))))
    if not out:
        msg = f"no insight citing a statement in {data!r}"
        raise ParseError(msg, feedback=f'Each insight needs text and "because": statement numbers 1 to '
                                       f'{len(statements)}.')
    return out


class Reflection:
    """Reflects when the importance of memories since the last reflection exceeds a threshold."""

    def __init__(self, *, threshold: int, recent: int, questions: int, insights: int, top_k: int) -> None:
        """Sets the trigger and the sizes (paper: 150, 100 recent memories, 3 questions, 5 insights)."""
        self.threshold = threshold
        self.recent = recent
        self.questions = questions
        self.insights = insights
        self.top_k = top_k

    def due(self, agent: GenerativeAgent) -> bool:
        """Whether enough importance piled up."""
        return agent.stream.importance_since_reflection > self.threshold

    async def run(self, agent: GenerativeAgent) -> dict[str, Any] | None:
        """Asks the questions, retrieves per question, infers insights and stores them as reflections.

        Returns:
            What was asked and concluded (for the event log), or None when the LLM gave nothing usable.
        """
        recent = agent.stream.recent(self.recent)
        asked = await agent.ask("reflect_questions", "questions", questions_schema(self.questions), parse_questions,
                                fallback=None, max_tokens=self.questions * (QUESTION // WORST_CHARS_PER_TOKEN + 6) + 16,
                                memories=[n.text for n in recent], count=self.questions)
        if asked is None:
            return None
        now = agent.model.sim_time()
        found: dict[str, MemoryNode] = {}
        for question in asked:
            for node in agent.stream.retrieve(question, now, self.top_k):
                found.setdefault(node.id, node)
        statements = list(found.values())
        insights = await agent.ask("reflect_insights", "insights", insights_schema(self.insights, len(statements)),
                                   lambda d: parse_insights(d, statements), fallback=None,
                                   max_tokens=self.insights * (TEXT // WORST_CHARS_PER_TOKEN + 20) + 16,
                                   memories=[n.text for n in statements], count=self.insights)
        agent.stream.importance_since_reflection = 0
        if insights is None:
            return None
        for insight in insights:
            agent.stream.add("reflection", insight.text, now, evidence=insight.evidence)
        return {"questions": asked, "insights": [{"text": i.text, "evidence": list(i.evidence)} for i in insights]}
