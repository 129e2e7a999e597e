"""Voyager's self-verification: a schema-constrained verdict on whether a task was completed."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from simulacra.errors import ParseError

__all__ = ["CRITIC_SCHEMA", "Critic", "Verdict"]

CRITIC_SCHEMA: dict[str, Any] = {"type": "object", "properties": {
    "reasoning": {"type": "string", "maxLength": 400},
    "success": {"type": "boolean"},
    "critique": {"type": "string", "maxLength": 300},
}, "required": ["reasoning", "success", "critique"]}


@dataclass(frozen=True)
class Verdict:
    """The critic's answer: did the task succeed, why, and what to do otherwise."""

    success: bool
    reasoning: str = ""
    critique: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields."""
        return asdict(self)


class Critic:
    """Parses the critic's JSON; its prompt is ``critic`` in ``agents/prompts/voyager.yaml``."""

    schema = CRITIC_SCHEMA

    @staticmethod
    def parse(data: Any) -> Verdict:
        """The verdict.

        Raises:
            ParseError: ``success`` is not a boolean.
        """
        if not isinstance(data, dict) or not isinstance(data.get("success"), bool):
            msg = "no boolean success"
            raise ParseError(msg, feedback='Reply with {"reasoning", "success": true/false, '
                             '"critique"}.')
        return Verdict(data["success"], str(data.get("reasoning", "")), str(data.get("critique", "")))
