"""A BabyAGI player (Nakajima 2023) in the crafting world: works the team's task board through the skill API.

Its tools are the crafting world's skill API (`worlds.crafting_bot.Bot.TOOLS`: find, nearby, move_to, mine,
craft, smelt, place, chat), offered with schemas built from the API's own signatures and docstrings, plus closing
the task (`agents.task_worker`). Each step a player holding a claimed task chooses one tool call (all players'
calls go to the LLM together); the world then performs the calls in a seeded shuffled order, since they change
the shared map, and what each call returned, or why it failed, goes into the task's record.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from simulacra.agents.task_worker import MAX_RESULT, TaskWorker, close_call
from simulacra.agents.tools import Tool, ToolCall, call_schema, parse_call
from simulacra.events import EventKind
from simulacra.worlds.crafting_rules import MINE_RADIUS, cell_distance
from simulacra.worlds.player import Player

if TYPE_CHECKING:
    from simulacra.worlds.crafting import CraftingWorld
    from simulacra.worlds.team import Team

__all__ = ["CLOSE_TOOLS", "BabyAGIPlayer", "parse_crafting_call"]

CLOSE_TOOLS = tuple(Tool(name, text, {"text": {"type": "string", "maxLength": MAX_RESULT, "description": text}},
                         ("text",)) for name, text in (
    ("task_done", "the task is done; text: the result, what was achieved"),
    ("give_up", "the task cannot be done; text: why"),
    ("objective_done", "the whole objective is met; text: how")))
HEARD = 3  # chat messages shown


def parse_crafting_call(data: Any, tools: list[Tool]) -> ToolCall | tuple[str, str]:
    """A skill-API `ToolCall`, or ``(tool, text)`` for closing the task.

    Raises:
        ParseError: Not a call of a known tool, or bad arguments (the feedback says which).
    """
    return close_call(data) or parse_call(data, tools)


class BabyAGIPlayer(TaskWorker, Player):
    """A player driven by the team's task board; `CraftingWorld.step` runs its phases.

    Per step: `begin` (sync, player order) draws the sampling seed and claims a task; `execute` (async) chooses
    a tool call; `act` (sync, shuffled) performs it through the player's `Bot`; `create` (async) proposes new
    tasks after a finished one; the team then settles the board and the finishing players `prioritise`.
    """

    model: CraftingWorld
    PHASES_BEFORE = ("execute",)
    PHASES_AFTER = ("create",)
    TASK_HINT = ("something one player can do with a few calls of find, move_to, mine, craft, smelt or place, "
                 "e.g. 'Mine 3 log' or 'Craft a wooden_pickaxe'")

    def __init__(self, model: CraftingWorld, *, name: str, team: Team, task_steps: int = 3, persona: str = "") -> None:
        """Creates the player and its mind.

        Args:
            model: The world (its ``tools`` are what the player can call).
            name: Unique name.
            team: The shared board, result store and objective.
            task_steps: Tool calls a player makes for one task before its record becomes the result.
            persona: A line about the player, in every prompt.
        """
        super().__init__(model, name=name)
        self.persona = persona
        self.outbox: list[tuple[str, dict[str, Any]]] = []
        self._seed = 0
        self.call: ToolCall | None = None
        self.current = "waiting for a task"
        self._start_work(team, task_steps)

    def begin(self) -> None:
        """Draws this step's sampling seed and holds on to its task or claims the first open one."""
        self._seed = self.model.draw_seed()
        claimed = self.claim()
        self.current = f"task {claimed.id}: {claimed.text}" if claimed else "waiting for a task"

    def view(self) -> dict[str, Any]:
        """What the execution prompt shows of the world (read without spending ticks).

        Blocks within `mine`'s reach are named by kind only (mine walks to them); for the nearest block of each
        other kind the prompt gives its cell, for ``move_to``.
        """
        x, y = self.position
        reach: dict[str, int] = {}
        farther: dict[str, str] = {}
        for (bx, by), block in sorted(self.model.blocks.items(), key=lambda i: (cell_distance(i[0], (x, y)), i[0])):
            if cell_distance((bx, by), (x, y)) <= MINE_RADIUS:
                reach[block.kind] = reach.get(block.kind, 0) + block.count
            elif block.kind not in reach and block.kind not in farther:
                farther[block.kind] = f"{block.kind} at x={bx}, y={by}"
        return {"x": x, "y": y, "health": self.health, "night": self.model.is_night,
                "inventory": json.dumps(dict(sorted(self.inventory.items()))) if self.inventory else "nothing",
                "reach": ", ".join(f"{k} ({n} units)" for k, n in reach.items()) or "none",
                "farther": "; ".join(farther.values()) or "none", "heard": self.inbox[-HEARD:]}

    async def execute(self) -> None:
        """The execution step: one tool call for the task, with related results as context."""
        self.call = None
        if not self.due() or self.task is None:
            return
        world, tools = self.model, self.model.tools
        context = self.team.results.retrieve(self.task.text, self.team.top_k)
        choice = await self._ask(
            "execute", "execute_crafting", call_schema([*tools, *CLOSE_TOOLS]),
            lambda data: parse_crafting_call(data, tools), fallback=None, **self.view(),
            rules=world.tech.describe(), task=self.task.text, context=context, done_so_far=self.log, tools=tools)
        self.inbox.clear()
        if isinstance(choice, tuple):
            self.closing = choice
        else:
            self.call = choice

    def act(self) -> None:
        """Performs the chosen call through the player's bot (sync: it changes the shared map)."""
        world = self.model
        bot = world.begin_turn(self)
        if self.call is None or self.task is None:
            return
        mark = len(world.changes)
        try:
            result, status, message = bot.call(self.call), "ok", ""
        except (ValueError, TypeError) as err:
            result, status, message = None, "error", str(err)
        shown = json.dumps(result, sort_keys=True)[:200] if status == "ok" else f"failed: {message}"
        self.step_action = f"{self.call} -> {shown}"
        self.log.append(self.step_action)
        self.current = f"task {self.task.id}: {self.call}"
        world.emit(EventKind.TOOL_CALLED, self, {"task_id": self.task.id, "task": self.task.text, **self.call.to_dict(),
                                         "status": status, "result": result, "message": message,
                                         "changes": world.changes_since(mark)})

    def get_state(self) -> dict[str, Any]:
        """The body's snapshot plus the task it holds, what it did for it, and what the live view shows."""
        return {**super().get_state(), **self.work_state(), "current": self.current}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores a snapshot made by `get_state` (the board is restored by the world)."""
        super().set_state(state)
        self.restore_work(state)
        self.current = str(state.get("current", self.current))
