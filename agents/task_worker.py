"""The BabyAGI mind (Nakajima 2023), whatever the world: work the team's task board through the world's tools.

A `TaskWorker` claims a task, executes it one tool call a step with related past results as context, and closes
it with ``task_done`` (a result), ``give_up`` (a reason) or ``objective_done``; a task whose ``task_steps`` run
out is closed with the record of what was done as its result. A finished task's result goes to the result store
(Chroma); the worker then proposes new tasks (creation) and the board's open tasks are reordered
(prioritisation), both schema-constrained calls. Board changes happen in the world's sync phases, in agent
order, so the board does not depend on which request finished first.

A world's agent kind mixes it into its body class (`agents.babyagi_agent.BabyAGIAgent` in the town,
`agents.babyagi_player.BabyAGIPlayer` in the crafting world) and supplies the world's tools.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from simulacra.agents.ask import ask
from simulacra.agents.respondent import Recollection
from simulacra.errors import ParseError

if TYPE_CHECKING:
    from simulacra.memory.task_board import Task
    from simulacra.worlds.team import Team
    from simulacra.worlds.world import World

__all__ = ["MAX_NEW_TASKS", "TASK_TOOLS", "TaskWorker", "close_call", "parse_order", "parse_tasks"]

TASK_TOOLS = ("task_done", "give_up", "objective_done")
MAX_NEW_TASKS = 3
MAX_RESULT = 300


def close_call(data: Any) -> tuple[str, str] | None:
    """``(tool, text)`` when the answer closes the task (``task_done``, ``give_up``, ``objective_done``)."""
    tool = data.get("tool") if isinstance(data, dict) else None
    if tool not in TASK_TOOLS:
        return None
    text = str(data.get("text") or "").strip()[:MAX_RESULT]
    return str(tool), text or ("done" if tool == "task_done" else "no reason given")


def parse_tasks(data: Any) -> list[str]:
    """New task texts (at most `MAX_NEW_TASKS`).

    Raises:
        ParseError: No list of strings.
    """
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        msg = "no task list"
        raise ParseError(msg, feedback='Reply with {"tasks": ["...", "..."]}.')
    return [t.strip() for t in tasks if t.strip()][:MAX_NEW_TASKS]


def parse_order(data: Any) -> list[int]:
    """Task ids in priority order, as returned (the board ignores ids it does not hold).

    Raises:
        ParseError: No list of integers.
    """
    order = data.get("order") if isinstance(data, dict) else None
    if not isinstance(order, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in order):
        msg = "no order"
        raise ParseError(msg, feedback='Reply with {"order": [task ids, most important first]}.')
    return order


if TYPE_CHECKING:

    class _Body:
        """What the body class that follows `TaskWorker` in the MRO provides (for the type checker only)."""

        name: str
        persona: str
        model: World

        def recall(self, query: str, *, k: int) -> list[Recollection]:
            """What the body holds that bears on ``query``."""
            raise NotImplementedError

else:
    _Body = object


class TaskWorker(_Body):
    """The BabyAGI loop's agent side, mixed into a world's agent class (before the body class).

    Lifecycle of a step: `claim` (sync, agent order) holds on to the task or claims the first open one; the
    world's execution call fills ``closing`` or performs a tool call and appends to ``log``; `create` (async)
    proposes new tasks when the task closed done; `settle` (sync, agent order, via `worlds.team.Team`) writes the
    outcome to the board and the result store; `prioritise` (async, the agents that finished) reorders the
    open tasks.

    The body class provides ``name``, ``persona``, ``model`` (the world), ``outbox`` and ``_seed`` (this step's
    sampling seed); the subclass calls `_start_work` in ``__init__`` and sets ``TASK_HINT`` (what one task can be
    in its world, for the creation prompt).
    """

    TASK_HINT = "something one agent can do"

    def _start_work(self, team: Team, task_steps: int) -> None:
        self.team = team
        self.task_steps = task_steps
        self.task: Task | None = None
        self.log: list[str] = []
        self.closing: tuple[str, str] | None = None
        self.new_tasks: list[str] = []
        self.order: list[int] | None = None
        self.step_action: str | None = None

    async def _ask(self, purpose: str, template: str, schema: dict[str, Any], parse: Any, *,
                   fallback: Any, **variables: Any) -> Any:
        return await ask(self, "babyagi", purpose, template, schema, parse, fallback=fallback,
                         system={"persona": self.persona, "objective": self.team.objective},
                         objective=self.team.objective, **variables)

    def recall(self, query: str, *, k: int) -> list[Recollection]:
        """The task held and what was done for it so far, then what the body holds (``super().recall``)."""
        out: list[Recollection] = []
        if self.task is not None:
            out.append(Recollection(f"{self.name}:task", f"My task: {self.task.text}"))
            out += [Recollection(f"{self.name}:task:{n}", f"For it I did: {line}") for n, line in enumerate(self.log)]
        return out + super().recall(query, k=k)  # the body class comes next in the MRO

    def claim(self) -> Task | None:
        """Holds on to its task or claims the first open one (a new task starts an empty log)."""
        claimed = self.team.board.claim(self.name, step=self.model.steps)
        if claimed is None or self.task is None or claimed.id != self.task.id:
            self.log = []
        self.task = claimed
        return claimed

    def due(self) -> bool:
        """Begins the execution step: False when there is no task or its steps ran out (then it closes)."""
        self.closing, self.step_action = None, None
        if self.task is None:
            return False
        if len(self.log) >= self.task_steps:
            self.closing = ("task_done", "; ".join(self.log))
            return False
        return True

    async def create(self) -> None:
        """The creation step: after a task closed done, propose new tasks from its result."""
        self.new_tasks = []
        if self.closing is None or self.closing[0] != "task_done" or self.task is None:
            return
        open_tasks = [t.text for t in self.team.board.open_tasks()]
        self.new_tasks = await self._ask(
            "create", "create", {"type": "object", "properties": {"tasks": {
                "type": "array", "items": {"type": "string", "maxLength": MAX_RESULT}, "maxItems": MAX_NEW_TASKS}},
                "required": ["tasks"]}, parse_tasks, fallback=[], task=self.task.text, result=self.closing[1],
            open_tasks=open_tasks, most=MAX_NEW_TASKS, hint=self.TASK_HINT)

    def settle(self) -> None:
        """Writes the step's outcome to the board and the result store (sync, in agent order)."""
        if self.closing is None or self.task is None:
            return
        board, step, name = self.team.board, self.model.steps, self.name
        tool, text = self.closing
        if tool == "give_up":
            board.give_up(self.task.id, agent=name, reason=text, step=step)
        elif tool == "objective_done":
            board.complete(self.task.id, agent=name, result=text, step=step)
            board.objective_done(name, text, step)
        else:
            done = board.complete(self.task.id, agent=name, result=text, step=step)
            self.team.results.add(done)
            board.add(self.new_tasks, by=name, step=step)
        self.task, self.log, self.closing = None, [], None
        self.order = [] if tool == "task_done" else None

    async def prioritise(self) -> None:
        """The prioritisation step over the board's open tasks."""
        tasks = [{"id": t.id, "text": t.text} for t in self.team.board.open_tasks()]
        if len(tasks) < 2:  # noqa: PLR2004 - nothing to order
            self.order = None
            return
        self.order = await self._ask(
            "prioritise", "prioritise", {"type": "object", "properties": {"order": {
                "type": "array", "items": {"type": "integer", "enum": [t["id"] for t in tasks]},
                "maxItems": len(tasks)}}, "required": ["order"]}, parse_order, fallback=None, tasks=tasks)

    def work_state(self) -> dict[str, Any]:
        """The task held (its id), what was done for it, and the last prioritisation's order, JSON-safe.

        ``order`` outlives a step: a prioritisation that returned an empty list leaves the agent due to
        prioritise again in the next step (`worlds.team.Team.after_commit`).
        """
        return {"task": self.task.id if self.task else None, "log": list(self.log),
                "order": list(self.order) if self.order is not None else None}

    def restore_work(self, state: Mapping[str, Any]) -> None:
        """Restores `work_state`'s snapshot (the board is restored first, by the world)."""
        self.task = self.team.board.get(state["task"]) if state.get("task") is not None else None
        self.log = list(state.get("log", []))
        self.order = [int(i) for i in state["order"]] if state.get("order") is not None else None
