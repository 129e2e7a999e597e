"""A BabyAGI agent (Nakajima 2023) in the town: works the team's task board through the town's actions.

Its tools are the town's actions (go to a place, talk to someone here, do an activity) plus closing the task
(`agents.task_worker`): each step an agent holding a claimed task asks the LLM for one tool call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulacra.agents.task_worker import TASK_TOOLS, TaskWorker, close_call
from simulacra.agents.town_agent import MAX_TEXT, NOBODY, Action, TownAgent, parse_action
from simulacra.errors import ParseError

if TYPE_CHECKING:
    from simulacra.worlds.team import Team
    from simulacra.worlds.town import TownWorld

__all__ = ["BabyAGIAgent", "parse_tool", "tool_schema"]


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
    """A town `Action`, or ``(tool, text)`` for ``task_done``/``give_up``/``objective_done``.

    Raises:
        ParseError: The call is impossible (its feedback says what is allowed).
    """
    if not isinstance(data, dict):
        msg = "not a JSON object"
        raise ParseError(msg, feedback='Reply with {"tool", "place", "person", "text"}.')
    if closing := close_call(data):
        return closing
    try:
        return parse_action({**data, "action": data.get("tool")}, places=places, people=people)
    except ParseError as err:
        msg = f"impossible tool call {data!r}"
        raise ParseError(msg, feedback=f"{err.feedback} Or close the task: task_done, give_up, "
                         "objective_done.") from err


class BabyAGIAgent(TaskWorker, TownAgent):
    """A townsperson driven by the team's task board instead of a goal of its own.

    Lifecycle per step, on top of `TownAgent`'s: `perceive` also claims a task; `decide` is the execution
    call; `commit` runs the creation step when the task closed; then `settle` and `prioritise`
    (`agents.task_worker.TaskWorker`).
    """

    model: TownWorld
    TASK_HINT = "something one person can do in town (go somewhere, talk to someone, do something)"

    def __init__(self, model: TownWorld, *, team: Team, task_steps: int = 3, **kwargs: Any) -> None:
        """Creates the agent.

        Args:
            model: The world.
            team: The shared board, result store and objective.
            task_steps: Steps an agent works on one task before its record becomes the result.
            **kwargs: `TownAgent`'s arguments.
        """
        super().__init__(model, **kwargs)
        self._start_work(team, task_steps)

    def perceive(self) -> None:
        """Looks around, then holds on to its task or claims the first open one."""
        super().perceive()
        claimed = self.claim()
        self.current = f"working on: {claimed.text}" if claimed else "waiting for a task"

    async def decide(self) -> None:
        """The execution step: one tool call for the task, with related results as context."""
        if not self.due() or self.task is None:
            if self.closing is None:
                self.pending = Action("wait", text=self.current)
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
        await self.create()

    def settle(self) -> None:
        """Writes the step's outcome to the board and the result store (sync, in agent order)."""
        if self.closing is not None:
            self.current = "finished a task"
        super().settle()

    def get_state(self) -> dict[str, Any]:
        """The town agent's snapshot plus the task it holds and what it did for it."""
        return {**super().get_state(), **self.work_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores a snapshot made by `get_state` (the board is restored by the world)."""
        super().set_state(state)
        self.restore_work(state)


def _describe(action: Action) -> str:
    if action.kind == "go_to":
        return f"went toward the {action.place}"
    if action.kind == "talk_to":
        return f'said to {action.person}: "{action.text}"'
    return f"did: {action.text}"
