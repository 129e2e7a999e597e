"""Plans of a generative agent (Park et al. 2023, section 4.3): broad strokes, hours, then 5-15 minute actions.

This module holds the plan's state and the schemas and parsers of the three planning answers; the agent
makes the LLM calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from simulacra.errors import ParseError

__all__ = [
    "ACTION_MINUTES",
    "HourBlock",
    "Plan",
    "PlannedAction",
    "day_plan_schema",
    "decompose_schema",
    "hourly_schema",
    "parse_day_plan",
    "parse_decomposition",
    "parse_hourly",
]

ACTION_MINUTES = (5, 10, 15)
TEXT = 40


@dataclass(frozen=True)
class HourBlock:
    """One hour of the schedule."""

    start: datetime
    place: str
    activity: str


@dataclass(frozen=True)
class PlannedAction:
    """A 5-15 minute action."""

    start: datetime
    minutes: int
    activity: str

    @property
    def end(self) -> datetime:
        """When it ends."""
        return self.start + timedelta(minutes=self.minutes)


def day_plan_schema(min_items: int = 3, max_items: int = 6) -> dict[str, Any]:
    """Schema of the broad-strokes plan."""
    return {"type": "object", "properties": {"plan": {
        "type": "array", "items": {"type": "string", "maxLength": 80}, "minItems": min_items, "maxItems": max_items}},
        "required": ["plan"], "additionalProperties": False}


def parse_day_plan(data: Any) -> list[str]:
    """The plan's items, stripped, empty ones dropped.

    Raises:
        ParseError: No item left.
    """
    items = [str(x).strip() for x in (data or {}).get("plan", []) if str(x).strip()] if isinstance(data, dict) else []
    if not items:
        msg = f"empty day plan {data!r}"
        raise ParseError(msg, feedback='List 3 to 6 short items in "plan", e.g. "go to the cafe for lunch".')
    return items


def hourly_schema(places: list[str], hours: int) -> dict[str, Any]:
    """Schema of the hourly schedule: exactly ``hours`` entries, each at a real place."""
    entry = {"type": "object", "properties": {"place": {"type": "string", "enum": places},
                                              "activity": {"type": "string", "maxLength": TEXT}},
             "required": ["place", "activity"], "additionalProperties": False}
    return {"type": "object", "properties": {"hours": {"type": "array", "items": entry, "minItems": hours,
                                                       "maxItems": hours}},
            "required": ["hours"], "additionalProperties": False}


def parse_hourly(data: Any, *, start: datetime, places: list[str], hours: int) -> list[HourBlock]:
    """One block per hour from ``start`` (the hour the schedule begins), in order.

    Raises:
        ParseError: Wrong number of entries, an unknown place or an empty activity.
    """
    entries = data.get("hours") if isinstance(data, dict) else None
    if not isinstance(entries, list) or len(entries) != hours:
        msg = f"expected {hours} hourly entries, got {entries!r}"
        raise ParseError(msg, feedback=f'Give exactly {hours} entries in "hours", one per hour.')
    blocks = []
    for i, entry in enumerate(entries):
        place, activity = entry.get("place"), str(entry.get("activity", "")).strip()
        if place not in places or not activity:
            msg = f"hour {i + 1}: bad entry {entry!r}"
            raise ParseError(msg, feedback=f"Entry {i + 1} needs a place among {', '.join(places)} and an activity.")
        blocks.append(HourBlock(start + timedelta(hours=i), place, activity))
    return blocks


def decompose_schema() -> dict[str, Any]:
    """Schema of a decomposition into 5, 10 or 15 minute actions."""
    action = {"type": "object", "properties": {"minutes": {"type": "integer", "enum": list(ACTION_MINUTES)},
                                               "activity": {"type": "string", "maxLength": TEXT}},
              "required": ["minutes", "activity"], "additionalProperties": False}
    return {"type": "object", "properties": {"actions": {"type": "array", "items": action, "minItems": 2,
                                                         "maxItems": 8}},
            "required": ["actions"], "additionalProperties": False}


def parse_decomposition(data: Any, *, start: datetime, total_minutes: int) -> list[PlannedAction]:
    """Actions laid end to end from ``start``, fitted to exactly ``total_minutes``.

    Actions past the end are dropped, the one crossing it is shortened, and the last one is stretched
    when the answer falls short, so the plan always covers the block.

    Raises:
        ParseError: No usable action.
    """
    raw = data.get("actions") if isinstance(data, dict) else None
    items = [(int(a["minutes"]), str(a["activity"]).strip()) for a in raw or []
             if isinstance(a, dict) and a.get("minutes") in ACTION_MINUTES and str(a.get("activity", "")).strip()]
    if not items:
        msg = f"no usable action in {data!r}"
        raise ParseError(msg, feedback='List actions of 5, 10 or 15 minutes in "actions", each with an activity.')
    actions: list[PlannedAction] = []
    used = 0
    for minutes, activity in items:
        if used >= total_minutes:
            break
        minutes = min(minutes, total_minutes - used)
        actions.append(PlannedAction(start + timedelta(minutes=used), minutes, activity))
        used += minutes
    if used < total_minutes:
        last = actions[-1]
        actions[-1] = PlannedAction(last.start, last.minutes + total_minutes - used, last.activity)
    return actions


class Plan:
    """The agent's plan for the day: broad strokes, hourly blocks, and the current block's actions."""

    def __init__(self) -> None:
        """Starts empty; the agent plans on its first step."""
        self.day: list[str] = []
        self.hours: list[HourBlock] = []
        self.actions: list[PlannedAction] = []

    def block_at(self, now: datetime) -> HourBlock | None:
        """The hourly block covering ``now``."""
        return next((b for b in self.hours if b.start <= now < b.start + timedelta(hours=1)), None)

    def action_at(self, now: datetime) -> PlannedAction | None:
        """The small action covering ``now``."""
        return next((a for a in self.actions if a.start <= now < a.end), None)

    def needs_day(self, now: datetime) -> bool:
        """Whether there is no schedule covering ``now``."""
        return self.block_at(now) is None

    def replace_from(self, now: datetime, actions: list[PlannedAction]) -> None:
        """Re-plans: drops actions from ``now`` on and puts ``actions`` in their place."""
        self.actions = [a for a in self.actions if a.end <= now] + actions

    def get_state(self) -> dict[str, Any]:
        """JSON-safe state."""
        return {"day": list(self.day),
                "hours": [[b.start.isoformat(), b.place, b.activity] for b in self.hours],
                "actions": [[a.start.isoformat(), a.minutes, a.activity] for a in self.actions]}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores `get_state` output."""
        self.day = list(state["day"])
        self.hours = [HourBlock(datetime.fromisoformat(s), p, a) for s, p, a in state["hours"]]
        self.actions = [PlannedAction(datetime.fromisoformat(s), int(m), a) for s, m, a in state["actions"]]
