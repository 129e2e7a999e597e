"""A team working one objective from one BabyAGI task board, inside a world (the town, the crafting world)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from simulacra.agents.llm import Message
from simulacra.agents.prompts import render
from simulacra.errors import ParseError
from simulacra.memory.task_board import TaskBoard, TaskStatus
from simulacra.memory.task_results import TaskResults
from simulacra.worlds.hooks import WorldHook

if TYPE_CHECKING:
    from simulacra.scenarios.cognition import CognitionConfig
    from simulacra.worlds.world import World

__all__ = ["JUDGE_SCHEMA", "Team"]

JUDGE_SCHEMA: dict[str, Any] = {"type": "object", "properties": {
    "reasoning": {"type": "string", "maxLength": 240}, "met": {"type": "boolean"}}, "required": ["reasoning", "met"]}


class Team(WorldHook):
    """The objective, the shared board, the result store, and the world-side steps of the BabyAGI loop.

    A hook the world attaches (`for_world`): the world calls `before_step` (claims that stalled expire), then its
    agents' phases, then `after_commit` (outcomes reach the board in agent order; closing agents prioritise
    concurrently), and `finish` (`judge`) at the end.
    """

    name = "team"

    def __init__(self, config: CognitionConfig, *, board: TaskBoard, results: TaskResults) -> None:
        """Seeds the board with the first tasks (BabyAGI starts from one).

        Args:
            config: The scenario's cognition section (objective, first tasks, limits).
            board: The empty board; its events should reach the world (``on_event``).
            results: Where finished tasks' results are stored and retrieved from.
        """
        self.objective = config.objective
        self.first_tasks = list(config.first_tasks) or [f"Make a plan for: {config.objective}"]
        self.top_k = config.results_top_k
        self.task_steps = config.task_steps
        self.board = board
        self.results = results
        self.verdict: dict[str, Any] | None = None
        self.actions: list[str] = []

    @classmethod
    def build(cls, config: CognitionConfig, *, client: Any, embed: Callable[..., Any], collection: str,
              on_event: Callable[[str, dict[str, Any]], None] | None = None) -> Team:
        """A team with a board and a result store in the Chroma ``client``."""
        board = TaskBoard(config.objective, embed=embed, max_length=config.max_tasks,
                          max_attempts=config.max_attempts, dedup_threshold=config.dedup_threshold,
                          claim_ttl=config.claim_ttl, on_event=on_event)
        return cls(config, board=board, results=TaskResults(client, embed=embed, collection=collection))

    @classmethod
    def for_world(cls, world: World, config: CognitionConfig, *, embed: Callable[..., Any] | None = None,
                  chroma: Any | None = None) -> Team:
        """A team for ``world`` (``cognition.kind: babyagi``), its board's events emitted by the world.

        Args:
            world: The world; its RNG names the result collection, its `World.board_event` emits board events.
            config: The objective, first tasks and board limits.
            embed: Texts to unit vectors; None: all-MiniLM-L6-v2 from the installed package.
            chroma: Where task results are stored; None: an in-memory Chroma.

        Returns:
            The team; attach it with `World.attach`.
        """
        import chromadb

        if embed is None:
            from simulacra.memory.embedder import Embedder

            embed = Embedder()
        return cls.build(config, client=chroma or chromadb.EphemeralClient(), embed=embed,
                         collection=f"results-{world.random.getrandbits(32):08x}", on_event=world.board_event)

    def start(self, world: World | None = None) -> None:
        """Puts the first tasks on the board (once, before step 1)."""
        if not self.board.tasks:
            self.board.add(self.first_tasks, by="objective", step=0)

    def before_step(self, world: World) -> None:
        """Claims held too long without progress go back to the board."""
        self.board.expire(world.steps)

    def after_commit(self, world: World) -> None:
        """Outcomes reach the board in agent order; agents that finished a task reorder the open tasks."""
        agents = list(world.by_name.values())
        for agent in agents:
            if agent.step_action:
                self.actions.append(f"{agent.name} {agent.step_action}")
            agent.settle()
        due = [a for a in agents if a.order == []]
        if not due:
            return
        world.phase("prioritise", due)
        for agent in due:
            if agent.order:
                self.board.prioritise(agent.order, by=agent.name, step=world.steps)

    def judge(self, world: World) -> dict[str, Any]:
        """An LLM judge's verdict on whether the objective was met (also kept in ``verdict``)."""
        done = [t for t in self.board.tasks if t.status is TaskStatus.DONE]
        failed = [t.text for t in self.board.tasks if t.status in (TaskStatus.FAILED, TaskStatus.DROPPED)]
        messages = [Message("system", render("babyagi", "judge_system")),
                    Message("user", render("babyagi", "judge", objective=self.objective, done=done, failed=failed,
                                           actions="; ".join(self.actions[-40:]) or "nothing",
                                           facts=world.facts()))]
        llm = world.llm_client()
        llm.context = {"step": world.steps, "phase": "judge"}
        outcome = llm.run(llm.structured(
            messages, schema=JUDGE_SCHEMA, parse=_verdict, seed=world.draw_seed(), purpose="judge", agent=None,
            fallback={"met": False, "reasoning": "the judge could not answer"}))
        self.verdict = {**outcome.value, "judged": outcome.ok}
        return self.verdict

    def finish(self, world: World) -> None:
        """The objective is judged (`judge`)."""
        self.judge(world)

    def step_counts(self) -> dict[str, Any]:
        """The board's length, for ``step_ended``."""
        return {"board_length": len(self.board)}

    def reporters(self) -> dict[str, Callable[[Any], int]]:
        """Running totals of the board for the world's DataCollector, and its length."""
        out: dict[str, Callable[[Any], int]] = {
            f"tasks_{k}": (lambda key: lambda w: self.board.counts()[key])(k)
            for k in ("created", "done", "failed", "dropped")}
        out["board_length"] = lambda w: len(self.board)
        return out

    def get_state(self) -> dict[str, Any]:
        """The board, the result store's count, the actions the judge will read, and its verdict, JSON-safe."""
        return {"board": self.board.get_state(), "results": self.results.get_state(), "actions": list(self.actions),
                "verdict": dict(self.verdict) if self.verdict is not None else None}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores `get_state` output; the result store is rewound (results stored later are deleted)."""
        self.board.set_state(state["board"])
        self.results.set_state(state["results"])
        self.actions = list(state["actions"])
        self.verdict = dict(state["verdict"]) if state.get("verdict") is not None else None

    def summary(self) -> dict[str, Any]:
        """Task statistics, every task with its outcome, and the judge's verdict."""
        return {"objective": self.objective, "counts": self.board.counts(), "finished": self.board.finished,
                "tasks": [t.to_dict() for t in self.board.tasks], "verdict": self.verdict,
                "results_collection": self.results.collection}


def _verdict(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or not isinstance(data.get("met"), bool):
        msg = "no boolean met"
        raise ParseError(msg, feedback='Reply with {"reasoning": "...", "met": true or false}.')
    return {"met": data["met"], "reasoning": str(data.get("reasoning", ""))}
