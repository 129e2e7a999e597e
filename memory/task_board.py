"""BabyAGI's task list (Nakajima 2023) as a shared board: a bounded, prioritised task queue for a team of agents.

BabyAGI runs one loop: take the first task, execute it, store the result, create new tasks from the result,
reprioritise the list. A team shares the list here, so a task is *claimed* while an agent works on it; a claim that
is not finished within ``claim_ttl`` steps goes back to the board, and a task that keeps failing is given up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from simulacra.events import EventKind

__all__ = ["DEFAULT_CLAIM_TTL", "DEFAULT_DEDUP_THRESHOLD", "DEFAULT_MAX_ATTEMPTS", "DEFAULT_MAX_LENGTH", "EVENT_KINDS",
           "Task", "TaskBoard", "TaskStatus"]

DEFAULT_MAX_LENGTH = 20  # open + claimed tasks; BabyAGI's list grows without bound and drifts off the objective
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_DEDUP_THRESHOLD = 0.9  # cosine similarity at or above which a new task repeats a live one
DEFAULT_CLAIM_TTL = 3  # steps a claim may stay unfinished

EVENT_KINDS = ("task_created", "task_prioritised", "task_claimed", "task_done", "task_failed", "task_dropped",
               "claim_expired", "objective_done")

Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]
OnEvent = Callable[[str, dict[str, Any]], None]


class TaskStatus(StrEnum):
    """Where a task is in its life.

    ``open`` → ``claimed`` (one agent works on it) → ``done``, or ``dropped`` when the agent gives it up. A claim
    that expires or a failed attempt sends the task back to ``open`` and counts an attempt; at ``max_attempts``
    the task is ``failed`` instead. ``done``, ``failed`` and ``dropped`` are final.
    """

    OPEN = "open"
    CLAIMED = "claimed"
    DONE = "done"
    FAILED = "failed"
    DROPPED = "dropped"


LIVE = (TaskStatus.OPEN, TaskStatus.CLAIMED, TaskStatus.DONE)  # what a new task must not repeat


@dataclass(frozen=True)
class Task:
    """One task on the board (a snapshot: the board replaces it on every change).

    Attributes:
        id: Assigned by the board, increasing from 1; the LLM reorders tasks by these ids.
        text: What to do, whitespace-normalised.
        priority: The task's position on the board, 0 first.
        status: See `TaskStatus`.
        claimed_by: The agent holding (or, for a final task, last holding) the claim.
        claimed_at: The step of that claim.
        attempts: Expired claims and failures so far.
        result: What the agent reported when it completed the task.
        reason: Why the task last failed or was dropped.
        created_by: The agent (or the objective's owner) that proposed it.
        created_at: The step it was added.
        expired_from: The agent whose claim on it last expired; it may not claim it again in the step of expiry,
            so that another agent can take it over.
        expired_at: The step of that expiry.
    """

    id: int
    text: str
    priority: int
    status: TaskStatus = TaskStatus.OPEN
    claimed_by: str | None = None
    claimed_at: int | None = None
    attempts: int = 0
    result: str = ""
    reason: str = ""
    created_by: str = ""
    created_at: int = 0
    expired_from: str | None = None
    expired_at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields (the status as its plain string)."""
        return {**asdict(self), "status": self.status.value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        """The task that `to_dict` described.

        Raises:
            TypeError: A field is missing or unknown.
            ValueError: The status is not one of `TaskStatus`.
        """
        return cls(**{**data, "status": TaskStatus(data.get("status", ""))})


class TaskBoard:
    """A team's task list for one objective: add, prioritise, claim, complete, and checkpoint it.

    Every change is reported to ``on_event(kind, data)``, with ``kind`` one of `EVENT_KINDS` and ``data`` a
    JSON-safe dict: the task's fields plus ``agent``, ``step`` and, where there is one, ``reason``. A text that
    `add` refuses is reported as ``task_dropped`` with ``id`` None, its ``text`` and the reason.
    """

    def __init__(self, objective: str, *, embed: Embed | None = None, max_length: int = DEFAULT_MAX_LENGTH,
                 max_attempts: int = DEFAULT_MAX_ATTEMPTS, dedup_threshold: float = DEFAULT_DEDUP_THRESHOLD,
                 claim_ttl: int = DEFAULT_CLAIM_TTL, on_event: OnEvent | None = None) -> None:
        """Creates an empty board.

        Args:
            objective: What the team works towards.
            embed: Texts to vectors, for near-duplicate detection; None detects exact duplicates only.
            max_length: How many open + claimed tasks the board holds; more are dropped as "board full".
            max_attempts: Expired claims + failures after which a task is failed for good.
            dedup_threshold: Cosine similarity at or above which a new task is a near-duplicate.
            claim_ttl: Steps a claim may stay unfinished; `expire` reopens older claims.
            on_event: Called with ``(kind, data)`` after every change.

        Raises:
            ValueError: A limit is out of range.
        """
        for name, value, low in (("max_length", max_length, 1), ("max_attempts", max_attempts, 1),
                                 ("claim_ttl", claim_ttl, 0)):
            if value < low:
                msg = f"{name} must be at least {low}, got {value!r}"
                raise ValueError(msg)
        if not 0.0 < dedup_threshold <= 1.0:
            msg = f"dedup_threshold must be in (0, 1], got {dedup_threshold!r}; 1.0 drops only identical meanings"
            raise ValueError(msg)
        self.objective = objective
        self.max_length, self.max_attempts, self.claim_ttl = max_length, max_attempts, claim_ttl
        self.dedup_threshold = dedup_threshold
        self._embed, self._on_event = embed, on_event
        self._tasks: dict[int, Task] = {}
        self._order: list[int] = []
        self._next_id = 1
        self._vectors: dict[str, npt.NDArray[np.float32]] = {}  # by text: not state, recomputed after a restore
        self.finished, self.finish_reason = False, ""

    def __len__(self) -> int:
        """Open + claimed tasks (what `max_length` bounds)."""
        return sum(t.status in (TaskStatus.OPEN, TaskStatus.CLAIMED) for t in self._tasks.values())

    @property
    def tasks(self) -> list[Task]:
        """Every task ever added, in board order."""
        return [self._tasks[i] for i in self._order]

    @property
    def next_id(self) -> int:
        """The id the next added task gets."""
        return self._next_id

    def open_tasks(self) -> list[Task]:
        """The open tasks in priority order (what `claim` takes from the front of)."""
        return [t for t in self.tasks if t.status is TaskStatus.OPEN]

    def get(self, task_id: int) -> Task | None:
        """The task with that id, or None."""
        return self._tasks.get(task_id)

    def held_by(self, agent: str) -> Task | None:
        """The task ``agent`` has claimed and not finished, or None."""
        return next((t for t in self.tasks if t.status is TaskStatus.CLAIMED and t.claimed_by == agent), None)

    def counts(self) -> dict[str, int]:
        """How many tasks were created and how many are in each status."""
        counts = {"created": len(self._tasks)} | {s.value: 0 for s in TaskStatus}
        for task in self._tasks.values():
            counts[task.status.value] += 1
        return counts

    def add(self, texts: str | Sequence[str], *, by: str, step: int) -> list[Task]:
        """Appends new open tasks; refuses empty texts, repeats of live tasks, and anything over `max_length`.

        A repeat is a text equal to an open, claimed or done task's up to case and spacing, or, with an embedder,
        one whose cosine similarity to such a task is at least `dedup_threshold`. Failed and dropped tasks may be
        proposed again.

        Args:
            texts: The proposed tasks (a single string is one task).
            by: Who proposes them.
            step: The current step.

        Returns:
            The tasks actually added, in order.
        """
        cleaned = [" ".join(t.split()) for t in ([texts] if isinstance(texts, str) else texts)]
        self._cache_vectors([t for t in cleaned if t] + [t.text for t in self._live()])
        added: list[Task] = []
        for text in cleaned:
            reason = self._refusal(text)
            if reason:
                self._emit(EventKind.TASK_DROPPED,
                           {"id": None, "text": text, "agent": by, "step": step, "reason": reason})
                continue
            task = Task(self._next_id, text, len(self._order), created_by=by, created_at=step)
            self._tasks[task.id] = task
            self._order.append(task.id)
            self._next_id += 1
            added.append(task)
            self._emit(EventKind.TASK_CREATED, task.to_dict() | {"agent": by, "step": step})
        return added

    def prioritise(self, order: Sequence[int], *, by: str, step: int) -> list[Task]:
        """Reorders the open tasks exactly as an LLM returned them.

        Ids that are not on the board, not open, or repeated are ignored; open tasks missing from ``order`` follow
        the listed ones in their current relative order. Claimed and closed tasks keep their places on the board.

        Args:
            order: Task ids, first to do first.
            by: Who prioritised.
            step: The current step.

        Returns:
            The open tasks in their new order.
        """
        open_ids = [t.id for t in self.open_tasks()]
        valid = set(open_ids)
        listed = list(dict.fromkeys(i for i in order if not isinstance(i, bool) and i in valid))
        ignored = [i if isinstance(i, int | str) else repr(i)  # JSON-safe whatever the LLM's parser let through
                   for i in order if isinstance(i, bool) or i not in valid]
        new_order = listed + [i for i in open_ids if i not in set(listed)]
        slots = [pos for pos, i in enumerate(self._order) if i in valid]
        for pos, task_id in zip(slots, new_order, strict=True):
            self._order[pos] = task_id
        for pos, task_id in enumerate(self._order):
            if self._tasks[task_id].priority != pos:
                self._tasks[task_id] = replace(self._tasks[task_id], priority=pos)
        self._emit(EventKind.TASK_PRIORITISED, {"order": new_order, "ignored": ignored, "agent": by, "step": step})
        return self.open_tasks()

    def claim(self, agent: str, *, step: int) -> Task | None:
        """Gives ``agent`` the first open task; an agent holds one claim at a time.

        Args:
            agent: Who takes the task (not one whose claim on it expired in this step).
            step: The current step (the claim expires ``claim_ttl`` steps later).

        Returns:
            The agent's current claim if it holds one, else the newly claimed task; None when the objective is
            done or no task is open.
        """
        if self.finished:
            return None
        task = self.held_by(agent) or next((t for t in self.open_tasks()
                                            if (t.expired_from, t.expired_at) != (agent, step)), None)
        if task is None or task.status is TaskStatus.CLAIMED:  # nothing to do, or the agent's own claim
            return task
        task = self._put(task, status=TaskStatus.CLAIMED, claimed_by=agent, claimed_at=step)
        self._emit(EventKind.TASK_CLAIMED, task.to_dict() | {"agent": agent, "step": step})
        return task

    def expire(self, step: int) -> list[Task]:
        """Reopens claims older than ``claim_ttl`` steps, counting an attempt; fails tasks out of attempts.

        Args:
            step: The current step.

        Returns:
            The tasks whose claims expired, as they are now: open with reason "claim expired", or failed with
            reason "too many attempts".
        """
        changed: list[Task] = []
        for task in self.tasks:
            if task.status is TaskStatus.CLAIMED and step - (task.claimed_at or 0) > self.claim_ttl:
                agent = task.claimed_by
                task = self._attempt(task, reason="claim expired", final_reason="too many attempts")
                task = self._put(task, expired_from=agent, expired_at=step)
                if task.status is TaskStatus.FAILED:
                    self._emit(EventKind.TASK_FAILED, task.to_dict() | {"agent": agent, "step": step, "final": True})
                else:
                    self._emit(EventKind.CLAIM_EXPIRED, task.to_dict() | {"agent": agent, "step": step})
                changed.append(task)
        return changed

    def complete(self, task_id: int, *, agent: str, result: str, step: int) -> Task:
        """Marks the agent's claimed task done with its result.

        Returns:
            The done task.

        Raises:
            ValueError: No such task, or ``agent`` does not hold its claim.
        """
        task = self._put(self._claimed(task_id, agent, "complete"), status=TaskStatus.DONE, result=result)
        self._emit(EventKind.TASK_DONE, task.to_dict() | {"agent": agent, "step": step})
        return task

    def fail(self, task_id: int, *, agent: str, reason: str, step: int) -> Task:
        """Records a failed attempt: the task goes back to open, or is failed for good at ``max_attempts``.

        The ``task_failed`` event says which with ``final``; its task ``status`` is "open" or "failed".

        Returns:
            The task as it is now.

        Raises:
            ValueError: No such task, or ``agent`` does not hold its claim.
        """
        task = self._attempt(self._claimed(task_id, agent, "fail"), reason=reason, final_reason=reason)
        final = task.status is TaskStatus.FAILED
        self._emit(EventKind.TASK_FAILED, task.to_dict() | {"agent": agent, "step": step, "final": final})
        return task

    def give_up(self, task_id: int, *, agent: str, reason: str, step: int) -> Task:
        """Drops the agent's claimed task for good (it is impossible, pointless or already done by other means).

        Returns:
            The dropped task.

        Raises:
            ValueError: No such task, or ``agent`` does not hold its claim.
        """
        task = self._put(self._claimed(task_id, agent, "give up"), status=TaskStatus.DROPPED, reason=reason)
        self._emit(EventKind.TASK_DROPPED, task.to_dict() | {"agent": agent, "step": step})
        return task

    def objective_done(self, by: str, reason: str, step: int) -> None:
        """Marks the objective reached: later claims return None. A second call changes nothing.

        Args:
            by: Who declared it.
            reason: Why it is done.
            step: The current step.
        """
        if self.finished:
            return
        self.finished, self.finish_reason = True, reason
        self._emit(EventKind.OBJECTIVE_DONE, {"objective": self.objective, "agent": by, "reason": reason, "step": step,
                                      "counts": self.counts()})

    def get_state(self) -> dict[str, Any]:
        """Everything but the embeddings, JSON-safe."""
        return {"objective": self.objective, "next_id": self._next_id, "finished": self.finished,
                "finish_reason": self.finish_reason, "tasks": [t.to_dict() for t in self.tasks]}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores what `get_state` returned (from this board or another with the same settings).

        Raises:
            ValueError: ``state`` is not a task board's state.
        """
        try:
            tasks = [Task.from_dict(d) for d in state["tasks"]]
            next_id = int(state["next_id"])
            finished, reason, objective = bool(state["finished"]), str(state["finish_reason"]), state["objective"]
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            msg = f"not a task board state ({type(err).__name__}: {err}); give what TaskBoard.get_state returned"
            raise ValueError(msg) from err
        self._tasks = {t.id: t for t in tasks}
        self._order = [t.id for t in tasks]
        self._next_id = max([next_id, *(t.id + 1 for t in tasks)])
        self.finished, self.finish_reason, self.objective = finished, reason, objective

    def _live(self) -> list[Task]:
        return [t for t in self.tasks if t.status in LIVE]

    def _put(self, task: Task, **changes: Any) -> Task:
        task = replace(task, **changes)
        self._tasks[task.id] = task
        return task

    def _attempt(self, task: Task, *, reason: str, final_reason: str) -> Task:
        """Counts a failed attempt: the task goes back to open, or is failed for good at ``max_attempts``."""
        if task.attempts + 1 >= self.max_attempts:
            return self._put(task, status=TaskStatus.FAILED, attempts=task.attempts + 1, reason=final_reason)
        return self._put(task, status=TaskStatus.OPEN, attempts=task.attempts + 1, reason=reason, claimed_by=None,
                         claimed_at=None)

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        if self._on_event is not None:
            self._on_event(kind, data)

    def _claimed(self, task_id: int, agent: str, verb: str) -> Task:
        task = self._tasks.get(task_id)
        if task is None:
            msg = f"no task {task_id!r} on the board; ids run from 1 to {self._next_id - 1}"
            raise ValueError(msg)
        if task.status is TaskStatus.CLAIMED and task.claimed_by == agent:
            return task
        held = f"claimed by {task.claimed_by!r}" if task.status is TaskStatus.CLAIMED else f"{task.status}, not claimed"
        msg = f"{agent!r} cannot {verb} task {task_id}: it is {held}; only the agent holding the claim may {verb} it"
        raise ValueError(msg)

    def _refusal(self, text: str) -> str:
        """Why ``text`` cannot be added ("" if it can)."""
        if not text:
            return "empty"
        live = self._live()
        key = text.casefold()
        same = next((t for t in live if t.text.casefold() == key), None)
        if same is not None:
            return f"duplicate of task {same.id}"
        if self._embed is not None and live:
            vector = self._vectors[text]
            score, task = max(((float(vector @ self._vectors[t.text]), t) for t in live), key=lambda p: p[0])
            if score >= self.dedup_threshold:
                return f"near-duplicate of task {task.id} (similarity {score:.2f})"
        if len(self) >= self.max_length:
            return "board full"
        return ""

    def _cache_vectors(self, texts: Sequence[str]) -> None:
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if self._embed is None or not missing:
            return
        vectors = np.asarray(self._embed(missing), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        # Unit length, so a dot product is the cosine. The quotient is float32 already (numpy's stubs say float64):
        # astype without a copy only tells the type checker.
        vectors = (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32, copy=False)
        self._vectors.update(zip(missing, vectors, strict=True))
