"""The events a world emits; every run writes them, one JSON object per line, to ``events.jsonl``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO, Any

__all__ = ["Event", "EventKind", "EventLog"]


class EventKind(str, Enum):
    """Every kind of event, with what its ``data`` holds."""

    RUN_STARTED = "run_started"  # scenario, seed, steps, agents (where each starts); town: places; crafting:
    # size, blocks (counts), map ([kind, x, y, units] per block); society: the grid's settings
    OBSERVED = "observed"  # place, here (names), heard (utterances), nearby
    DECIDED = "decided"  # kind (go_to, talk_to, do, wait), place, person, text
    LLM_FAILURE = "llm_failure"  # purpose, attempts, error, fallback
    MOVED = "moved"  # from, to, destination, arrived
    MOVE_BLOCKED = "move_blocked"  # at, to, reason
    SAID = "said"  # to, text, place
    TALK_FAILED = "talk_failed"  # to, text, reason
    ACTIVITY = "activity"  # place, activity
    WAITED = "waited"  # place, doing
    PLANNED = "planned"  # level (day, hours, minutes, replanned), items
    REACTED = "reacted"  # choice (continue, talk, react), person, reaction
    CONVERSATION = "conversation"  # with, turns, place (each utterance is also a said event)
    REFLECTED = "reflected"  # questions, insights (text, evidence: memory ids)
    TASK_PROPOSED = "task_proposed"  # crafting: verb, item, count, text (the curriculum's next task)
    SKILL_WRITTEN = "skill_written"  # crafting: task, round, retrieved (skill ids), code, entry, explanation
    SKILL_RAN = "skill_ran"  # crafting: task, round, status, message, output, value, calls, changes
    CRITICISED = "criticised"  # crafting: task, round, success, reasoning, critique
    SKILL_ADDED = "skill_added"  # crafting: name, version, description, task
    TASK_COMPLETED = "task_completed"  # crafting: task, rounds
    TASK_FAILED = "task_failed"  # crafting: task, rounds, reason; babyagi: the task, agent, reason, final
    TASK_CREATED = "task_created"  # babyagi: the task (id, text, status, ...), agent (who proposed it)
    TASK_PRIORITISED = "task_prioritised"  # babyagi: order (open task ids), ignored, agent
    TASK_CLAIMED = "task_claimed"  # babyagi: the task, agent
    TASK_DONE = "task_done"  # babyagi: the task with its result, agent
    TASK_DROPPED = "task_dropped"  # babyagi: the task (id None for a refused proposal), agent, reason
    CLAIM_EXPIRED = "claim_expired"  # babyagi: the task back on the board, agent who stalled
    OBJECTIVE_DONE = "objective_done"  # babyagi: agent, reason
    TOOL_CALLED = "tool_called"  # babyagi in crafting: task_id, task, tool, args, status (ok, error), result,
    # message (why it failed), changes (world changes it made)
    HAZARD = "hazard"  # crafting: changes a night zombie or regeneration made (list of world changes)
    MILESTONE = "milestone"  # crafting: milestone, turn (the player's iterations so far)
    INTERACTION = "interaction"  # society: iteration, agent, question_id, category, question, recalled, draft,
    # ratings [{rater, rating, reason, global}], mean_draft, revised, revision_ratings, mean_revision,
    # observer_before {alignment, engagement}, observer_after
    INJECTED = "injected"  # town: to, text (news from the scenario's inject section, heard at that step)
    SURVEY_ANSWER = "survey_answer"  # survey, item, type, question, answer (None: failed), ok, attempts, error,
    # memories (ids of what the agent recalled for the question)
    STEP_ENDED = "step_ended"  # counts of this step, memory retrievals included (the metrics row)
    RUN_FINISHED = "run_finished"  # steps run, status (completed or interrupted)


@dataclass(frozen=True)
class Event:
    """One thing that happened."""

    step: int
    sim_time: str
    agent: str | None
    kind: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Returns the record written to ``events.jsonl`` (``data`` itself, not a copy: treat it as read-only)."""
        return {"step": self.step, "sim_time": self.sim_time, "agent": self.agent, "kind": self.kind,
                "data": self.data}


class EventLog:
    """Appends events to a JSON Lines file, flushed as they happen."""

    def __init__(self, path: Path) -> None:
        """Opens ``path`` for appending."""
        self.path = path
        self._file: IO[str] = path.open("a", encoding="utf-8")

    def __call__(self, event: Event) -> None:
        """Writes one event."""
        self._file.write(json.dumps(event.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")
        self._file.flush()

    def sync(self) -> int:
        """Makes what was written durable (fsync); returns the file's length in bytes."""
        self._file.flush()
        os.fsync(self._file.fileno())
        return os.fstat(self._file.fileno()).st_size

    def close(self) -> None:
        """Closes the file."""
        self._file.close()
