"""Voyager's automatic curriculum: the next task, from what the agent holds, did and failed to do."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from simulacra.errors import ParseError

__all__ = ["FIRST_TASK", "WARM_UP", "Curriculum", "Task", "task_progress"]

VERBS = ("mine", "craft", "smelt")
# How many completed tasks before a part of the observation enters the curriculum prompt. The paper warms the
# context up the same way (its table: inventory, position and tasks at once; health and time later), so an
# agent with nothing done is not distracted by details it cannot use yet.
WARM_UP: Mapping[str, int] = {"inventory": 0, "nearby blocks": 0, "completed tasks": 0, "failed tasks": 0,
                              "position": 0, "health": 3, "night": 3, "skills known": 5}


@dataclass(frozen=True)
class Task:
    """A curriculum task: mine, craft or smelt ``count`` of ``item``."""

    verb: str
    item: str
    count: int = 1

    @property
    def text(self) -> str:
        """How prompts and the event log say it, e.g. ``Mine 1 log``."""
        return f"{self.verb.capitalize()} {self.count} {self.item}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields plus the text."""
        return {"verb": self.verb, "item": self.item, "count": self.count, "text": self.text}


FIRST_TASK = Task("mine", "log", 1)  # the paper starts every run with "Mine 1 wood log"


class Curriculum:
    """Builds the curriculum context with warm-up, the task schema and its parser.

    The task is schema-constrained (verb, item of the tech tree, count) rather than free text, so even a small
    model proposes a task the world can check.
    """

    def __init__(self, items: Sequence[str], *, verbs: Mapping[str, Sequence[str]] | None = None,
                 warm_up: Mapping[str, int] = WARM_UP, max_count: int = 8) -> None:
        """Keeps the item names and the warm-up table.

        Args:
            items: Every item name of the tech tree.
            verbs: Verb → the items it can give (mine: block drops, craft: crafted, smelt: smelted); None: any.
            warm_up: Observation part → completed tasks needed before it is shown.
            max_count: The largest count a task may ask for.
        """
        self.items = sorted(items)
        self.verbs = {v: sorted(i) for v, i in verbs.items()} if verbs else None
        self.warm_up = dict(warm_up)
        self.max_count = max_count

    def context(self, observation: Mapping[str, Any], completed: int) -> dict[str, Any]:
        """The parts of ``observation`` that have warmed up after ``completed`` tasks, in `WARM_UP` order."""
        return {key: observation[key] for key, needed in self.warm_up.items()
                if completed >= needed and key in observation}

    def schema(self) -> dict[str, Any]:
        """JSON schema of a proposal."""
        return {"type": "object", "properties": {
            "reasoning": {"type": "string", "maxLength": 300},
            "verb": {"type": "string", "enum": list(VERBS)},
            "item": {"type": "string", "enum": self.items},
            "count": {"type": "integer", "minimum": 1, "maximum": self.max_count},
        }, "required": ["reasoning", "verb", "item", "count"]}

    def parse(self, data: Any) -> Task:
        """A proposal as a `Task`.

        Raises:
            ParseError: A field is missing or out of range (the feedback says which).
        """
        if not isinstance(data, dict):
            msg = "proposal is not an object"
            raise ParseError(msg, feedback='Reply with {"verb", "item", "count"}.')
        verb, item, count = data.get("verb"), data.get("item"), data.get("count", 1)
        if verb not in VERBS:
            msg = f"bad verb {verb!r}"
            raise ParseError(msg, feedback=f"verb must be one of {list(VERBS)}.")
        if item not in self.items:
            msg = f"bad item {item!r}"
            raise ParseError(msg, feedback=f"item must be one of {self.items}.")
        if self.verbs is not None and item not in self.verbs.get(verb, []):
            msg = f"cannot {verb} {item!r}"
            raise ParseError(msg, feedback=f"You cannot {verb} {item}; items you can {verb}: "
                             f"{', '.join(self.verbs.get(verb, []))}.")
        if not isinstance(count, int) or not 1 <= count <= self.max_count:
            msg = f"bad count {count!r}"
            raise ParseError(msg, feedback=f"count must be an integer 1 to {self.max_count}.")
        return Task(verb, item, count)


def task_progress(task: Task, player: str, changes: Sequence[Mapping[str, Any]]) -> int:
    """How many of the task's item the player gained in ``changes`` (the world's record of a skill run)."""
    return sum(int(c["delta"]) for c in changes if c["kind"] == "inventory" and c["player"] == player
               and c["item"] == task.item and int(c["delta"]) > 0)
