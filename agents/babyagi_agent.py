"""A BabyAGI agent (Nakajima 2023) in the town: works the team's task board through the world's actions.

Each step an agent holding a claimed task asks the LLM for one tool call: a town action (go to a place, talk
to someone here, do an activity), or ``task_done`` with the result, or ``give_up`` with the reason. A task
whose ``task_steps`` run out is closed with the record of what was done as its result. A finished task's
result goes to the result store (Chroma); the agent then proposes new tasks (creation) and the board's open
tasks are reordered (prioritisation), both schema-constrained calls. Board changes happen in the world's
sync phases, in agent order, so the board does not depend on which request finished first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agents.ask import ask
from agents.errors import ParseError
from agents.town_agent import MAX_TEXT, NOBODY, Action, TownAgent, parse_action

if TYPE_CHECKING:
    from memory.task_board import Task
    from worlds.team import Team
    from worlds.town import TownWorld

__all__ = ["BabyAGIAgent", "parse_order", "parse_tasks", "parse_tool", "tool_schema"]

TASK_TOOLS = ("task_done", "give_up", "objective_done")
MAX_NEW_TASKS = 3


def tool_schema(places: list[str], people: list[str]) -> dict[str, Any]:
    """The world's actions plus closing the task, as one flat schema."""
    tools = ["talk_to", "go_to", "do", *TASK_TOOLS] if people else ["go_to", "do", *TASK_TOOLS]
    return {"type": "object", "properties": {
        "tool": {"type": "string", "enum": tools},
        "place": {"type": "string", "enum": places},
        "person": {"type": "string", "enum": [*people, NOBODY] if people else [NOBODY]},
        "text": {"type": "string", "maxLength": MAX_TEXT},
    }, "required": ["tool", "place", "person", "text"], "additionalProperties": False}


def parse_tool(data: Any, *, places: list[str], people: list[str]) -> Action | tuple[str, str]:
    """A town `Action`, or ``(tool, text)`` for ``task_done``/``give_up``.

    Raises:
        ParseError: The call is impossible (its feedback says what is allowed).
    """
    if not isinstance(data, dict):
        msg = "not a JSON object"
        raise ParseError(msg, feedback='Reply with {"tool", "place", "person", "text"}.')
    tool, text = data.get("tool"), str(data.get("text") or "").strip()[:MAX_TEXT]
    if tool in TASK_TOOLS:
        return (str(tool), text or ("done" if tool == "task_done" else "no reason given"))
    try:
        return parse_action({**data, "action": tool}, places=places, people=people)
    except ParseError as err:
        msg = f"impossible tool call {data!r}"
        raise ParseError(msg, feedback=f"{err.feedback} Or close the task: task_done, give_up, "
                         "objective_done.") from err


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


class BabyAGIAgent(TownAgent):
    """A townsperson driven by the team's task board instead of a goal of its own.

    Lifecycle per step, on top of `TownAgent`'s: `perceive` also claims a task; `decide` is the execution
    call; `commit` proposes new tasks when the task closed; `settle` (sync, agent order) writes the outcome to
    the board and the result store; `prioritise` (async, the closing agents) reorders the open tasks.
    """

    model: TownWorld

    def __init__(self, model: TownWorld, *, team: Team, task_steps: int = 3, **kwargs: Any) -> None:
        """Creates the agent.

        Args:
            model: The world.
            team: The shared board, result store and objective.
            task_steps: Steps an agent works on one task before its record becomes the result.
            **kwargs: `TownAgent`'s arguments.
        """
        super().__init__(model, **kwargs)
        self.team = team
        self.task_steps = task_steps
        self.task: Task | None = None
        self.log: list[str] = []
        self.closing: tuple[str, str] | None = None
        self.new_tasks: list[str] = []
        self.order: list[int] | None = None
        self.step_action: str | None = None

    async def _ask(self, purpose: str, template: str, schema: dict[str, Any], parse: Any, *, fallback: Any,
                   **variables: Any) -> Any:
        return await ask(self, "babyagi", purpose, template, schema, parse, fallback=fallback,
                         system={"persona": self.persona, "objective": self.team.objective},
                         objective=self.team.objective, **variables)

    def perceive(self) -> None:
        """Looks around, then holds on to its task or claims the first open one."""
        super().perceive()
        claimed = self.team.board.claim(self.name, step=self.model.steps)
        if claimed is None or self.task is None or claimed.id != self.task.id:
            self.log = []
        self.task = claimed
        self.current = f"working on: {claimed.text}" if claimed else "waiting for a task"

    async def decide(self) -> None:
        """The execution step: one tool call for the task, with related results as context."""
        self.closing, self.step_action = None, None
        if self.task is None:
            self.pending = Action("wait", text=self.current)
            return
        if len(self.log) >= self.task_steps:
            self.closing = ("task_done", "; ".join(self.log))
            return
        world = self.model
        places = [p for p in world.place_names if p != self.place]
        people = self.observation["people"]
        context = self.team.results.retrieve(self.task.text, self.team.top_k)
        choice = await self._ask(
            "execute", "execute", tool_schema(places, people),
            lambda data: parse_tool(data, places=places, people=people), fallback=Action("wait", text=self.current),
            time=world.clock_text(), place=self.place, place_description=world.describe(self.place),
            here=self.observation["here"], heard=self.observation["heard"], task=self.task.text, context=context,
            done_so_far=self.log, places=places, talk_options=bool(people))
        if isinstance(choice, tuple):
            self.closing = choice
        else:
            self.pending = choice
            self.step_action = _describe(choice)
            self.log.append(self.step_action)

    async def commit(self) -> None:
        """Memory commit; after a finished task, the creation step proposes new tasks."""
        await super().commit()
        self.new_tasks = []
        if self.closing is None or self.closing[0] != "task_done" or self.task is None:
            return
        open_tasks = [t.text for t in self.team.board.open_tasks()]
        self.new_tasks = await self._ask(
            "create", "create", {"type": "object", "properties": {"tasks": {
                "type": "array", "items": {"type": "string", "maxLength": MAX_TEXT}, "maxItems": MAX_NEW_TASKS}},
                "required": ["tasks"]}, parse_tasks, fallback=[], task=self.task.text, result=self.closing[1],
            open_tasks=open_tasks, most=MAX_NEW_TASKS)

    def settle(self) -> None:
        """Writes the step's outcome to the board and the result store (sync, in agent order)."""
        if self.closing is None or self.task is None:
            return
        board, step = self.team.board, self.model.steps
        tool, text = self.closing
        if tool == "give_up":
            board.give_up(self.task.id, agent=self.name, reason=text, step=step)
        elif tool == "objective_done":
            board.complete(self.task.id, agent=self.name, result=text, step=step)
            board.objective_done(self.name, text, step)
        else:
            done = board.complete(self.task.id, agent=self.name, result=text, step=step)
            self.team.results.add(done)
            board.add(self.new_tasks, by=self.name, step=step)
        self.task, self.log, self.closing = None, [], None
        self.current = "finished a task"
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

    def get_state(self) -> dict[str, Any]:
        """The town agent's snapshot plus the task it holds and what it did for it."""
        return {**super().get_state(), "task": self.task.id if self.task else None, "log": list(self.log)}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores a snapshot made by `get_state` (the board is restored by the team)."""
        super().set_state(state)
        self.task = self.team.board.get(state["task"]) if state.get("task") is not None else None
        self.log = list(state.get("log", []))


def _describe(action: Action) -> str:
    if action.kind == "go_to":
        return f"went toward the {action.place}"
    if action.kind == "talk_to":
        return f'said to {action.person}: "{action.text}"'
    return f"did: {action.text}"
