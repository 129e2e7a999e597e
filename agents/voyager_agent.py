"""A Voyager agent (Wang et al. 2023): curriculum → skill code → sandboxed run → critic → skill library.

One simulation step is one round for every agent: propose a task if it has none, write a skill for it
(prompted with the skill API, the top-5 retrieved skills, and on retries the previous code, its error and the
critique), run it in the sandbox against the world, let the critic judge the world's change, then learn: a
verified skill is described and stored in the library; a task that failed ``max_rounds`` rounds is given up.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from simulacra.agents.ask import ask
from simulacra.agents.critic import Critic, Verdict
from simulacra.agents.curriculum import FIRST_TASK, Curriculum, Task, task_progress
from simulacra.agents.respondent import Recollection
from simulacra.errors import ParseError
from simulacra.events import EventKind
from simulacra.worlds.player import Player

if TYPE_CHECKING:
    from simulacra.agents.sandbox import SandboxResult
    from simulacra.worlds.crafting import CraftingWorld

__all__ = ["SKILL_SCHEMA", "Attempt", "SkillDraft", "VoyagerAgent", "parse_skill"]

T = TypeVar("T")
SKILL_SCHEMA: dict[str, Any] = {"type": "object", "properties": {
    "explanation": {"type": "string", "maxLength": 300},
    "code": {"type": "string"},  # capped by max_tokens: llama.cpp cannot build a grammar for a long maxLength
}, "required": ["explanation", "code"]}
DESCRIBE_SCHEMA: dict[str, Any] = {"type": "object", "properties": {
    "description": {"type": "string", "maxLength": 300}}, "required": ["description"]}


@dataclass(frozen=True)
class SkillDraft:
    """Code the agent wrote: ``entry`` is its last top-level function (earlier ones are its helpers)."""

    code: str
    entry: str
    explanation: str = ""


@dataclass
class Attempt:
    """One round's outcome, fed back into the next round's prompt."""

    code: str
    status: str
    message: str
    output: str = ""
    critique: str = ""


def parse_skill(data: Any) -> SkillDraft:
    """The written skill, checked to be Python that defines a function of ``bot``.

    Raises:
        ParseError: Not valid Python, or no top-level function with one parameter (feedback says which).
    """
    code = data.get("code") if isinstance(data, dict) else None
    if not isinstance(code, str) or not code.strip():
        msg = "no code"
        raise ParseError(msg, feedback='Reply with {"explanation": "...", "code": "def name(bot): ..."}.')
    try:
        tree = ast.parse(code)
    except SyntaxError as err:
        where = f"line {err.lineno}: {err.msg}"
        msg = f"code does not parse: {where}"
        raise ParseError(msg, feedback=f"Your code has a syntax error at {where}.") from err
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    if not functions or len(functions[-1].args.args) != 1:
        msg = "no function of bot"
        raise ParseError(msg, feedback="Define a function that takes one argument: def name(bot):")
    return SkillDraft(code, functions[-1].name, str(data.get("explanation", "")))


class VoyagerAgent(Player):
    """A player whose mind is Voyager's loop; `CraftingWorld.step` drives its phases.

    Phases: `propose`, `write`, `criticise`, `learn` are async (all agents' LLM calls go out together); `act`
    (running the skill) is sync and called by the world in a shuffled order, since skills change the shared map.
    """

    model: CraftingWorld
    PHASES_BEFORE = ("propose", "write")
    PHASES_AFTER = ("criticise", "learn")

    def __init__(self, model: CraftingWorld, *, name: str, persona: str = "", max_rounds: int = 4,
                 top_k: int = 5) -> None:
        """Creates the player and its mind.

        Args:
            model: The world (it holds the sandbox and the skill library).
            name: Unique name.
            persona: A line about the player, in every prompt.
            max_rounds: Rounds of write → run → critique before a task is given up (paper: 4).
            top_k: Skills retrieved for a task (paper: 5).
        """
        super().__init__(model, name=name)
        self.persona = persona
        self.max_rounds, self.top_k = max_rounds, top_k
        tech = model.tech
        self.curriculum = Curriculum(tech.items, verbs={
            "mine": [r.drop for r in tech.resources.values() if r.density > 0],
            "craft": [r.item for r in tech.recipes.values() if not r.smelted],
            "smelt": [r.item for r in tech.recipes.values() if r.smelted]})
        self.task: Task | None = None
        self.round = 0
        self.draft: SkillDraft | None = None
        self.result: SandboxResult | None = None
        self.verdict: Verdict | None = None
        self.previous: Attempt | None = None
        self.completed: list[str] = []
        self.failed: list[str] = []
        self.outbox: list[tuple[str, dict[str, Any]]] = []
        self._before: dict[str, int] = {}
        self._changes: list[dict[str, Any]] = []
        self._seed = 0

    @property
    def current(self) -> str:
        """What the live view shows."""
        return f"{self.task.text} (round {self.round + 1})" if self.task else "choosing a task"

    async def ask(self, purpose: str, template: str, schema: dict[str, Any], parse: Callable[[Any], T], *,
                  fallback: T, **variables: Any) -> T:
        """One schema-constrained call with this agent's persona; a failure is reported and falls back."""
        return await ask(self, "voyager", purpose, template, schema, parse, fallback=fallback,
                         system={"persona": self.persona}, **variables)

    def observation(self) -> dict[str, Any]:
        """What the curriculum may see (before warm-up filtering); reads the world without spending ticks."""
        x, y = self.position
        near = sorted(((max(abs(bx - x), abs(by - y)), b.kind) for (bx, by), b in self.model.blocks.items()
                       if max(abs(bx - x), abs(by - y)) <= 8))
        kinds = list(dict.fromkeys(kind for _, kind in near))
        return {"inventory": dict(sorted(self.inventory.items())) or "empty", "nearby blocks": kinds or "none",
                "completed tasks": self.completed[-10:] or "none", "failed tasks": self.failed[-10:] or "none",
                "position": f"x={x}, y={y} (y is depth)", "health": f"{self.health}/20",
                "night": self.model.is_night, "skills known": sorted(self.model.library.latest())
                if self.model.library is not None else "none"}

    def recall(self, query: str, *, k: int) -> list[Recollection]:
        """The body's holdings, the task at hand, the tasks completed and failed, the skills it can call."""
        out = super().recall(query, k=k)
        if self.task:
            out.append(Recollection(f"{self.name}:task", f"I am working on: {self.task.text} (round {self.round + 1})"))
        out += [Recollection(f"{self.name}:completed:{n}", f"I completed: {t}") for n, t in
                enumerate(self.completed[-k:])]
        out += [Recollection(f"{self.name}:failed:{n}", f"I failed at: {t}") for n, t in enumerate(self.failed[-k:])]
        if self.model.library is not None and self.model.library.latest():
            out.append(Recollection(f"{self.name}:skills", "Skills I can call: " + ", ".join(
                sorted(self.model.library.latest())[:20])))
        return out

    # -- phases ----------------------------------------------------------------------------------------
    def begin(self) -> None:
        """Draws this step's sampling seed (sync, in agent order, so runs are reproducible)."""
        self._seed = self.model.draw_seed()

    async def propose(self) -> None:
        """Picks the next task when there is none: the first is fixed, later ones come from the curriculum."""
        if self.task is not None:
            return
        if not self.completed and not self.failed:
            task = FIRST_TASK
        else:
            context = self.curriculum.context(self.observation(), len(self.completed))
            task = await self.ask("curriculum", "curriculum", self.curriculum.schema(), self.curriculum.parse,
                                  fallback=FIRST_TASK, rules=self.model.tech.describe(), context=context)
        self.task, self.round, self.previous = task, 0, None
        self.outbox.append((EventKind.TASK_PROPOSED, task.to_dict()))

    async def write(self) -> None:
        """Writes the skill for the task, with retrieved skills and the last round's feedback."""
        if self.task is None:
            return
        library = self.model.library
        skills = library.retrieve(self.task.text, self.top_k) if library is not None else []
        bot_view = self.observation()
        self.draft = await self.ask(
            "skill", "skill", SKILL_SCHEMA, parse_skill, fallback=None, api=self.model.api_docs,
            rules=self.model.tech.describe(), skills=skills,
            task=self.task.text, inventory=bot_view["inventory"], nearby=bot_view["nearby blocks"],
            previous=self.previous)
        self.outbox.append((EventKind.SKILL_WRITTEN, {
            "task": self.task.text, "round": self.round + 1, "retrieved": [s.id for s in skills],
            "code": self.draft.code if self.draft else None, "entry": self.draft.entry if self.draft else None,
            "explanation": self.draft.explanation if self.draft else ""}))

    def act(self) -> None:
        """Runs the draft in the sandbox against the world (sync: skills change the shared map)."""
        world = self.model
        bot = world.begin_turn(self)
        self._before = dict(self.inventory)
        mark = len(world.changes)
        if self.draft is None:
            self.result = None
            self._changes = []
            return
        library = {s.name: s.code for s in world.library.latest().values()} if world.library is not None else {}
        library.pop(self.draft.entry, None)  # the draft replaces its own older version
        self.result = world.sandbox.run(self.draft.code, bot.api(), entry=self.draft.entry, library=library)
        self._changes = world.changes_since(mark)
        data = {k: v for k, v in self.result.to_dict().items() if k != "seconds"}  # wall time would break replay
        world.emit(EventKind.SKILL_RAN, self, {"task": self.task.text if self.task else None, "round": self.round + 1,
                                       **data, "changes": self._changes})

    async def criticise(self) -> None:
        """The critic judges a run that went through and gained what the task asks for.

        A run that failed is its own critique, and so is one that ran but did not gain the task's items (the
        world's record says so): the LLM critic is asked only when the environment does not already say no.
        """
        gained = task_progress(self.task, self.name, self._changes) if self.task else 0
        if self.result is None or self.result.status != "ok":
            message = self.result.message if self.result else "no valid code was written"
            self.verdict = Verdict(False, "the program did not run to the end", message)
        elif self.task is not None and gained < self.task.count:
            self.verdict = Verdict(False, "the world's record shows too little gained",
                                   f"The program ran, but your inventory gained {gained} of {self.task.count} "
                                   f"{self.task.item}. Call the API so that it gets them.")
        else:
            self.verdict = await self.ask(
                "critic", "critic", Critic.schema, Critic.parse, fallback=Verdict(False, "", "the critic failed"),
                task=self.task.text if self.task else "", before=self._before or "empty",
                after=dict(self.inventory) or "empty", changes=_brief(self._changes),
                output=self.result.output[-800:] or "none")
        self.outbox.append((EventKind.CRITICISED, {
            "task": self.task.text if self.task else None, "round": self.round + 1, **self.verdict.to_dict()}))

    async def learn(self) -> None:
        """Stores a verified skill and closes the task, or prepares the next round, or gives the task up."""
        task, verdict = self.task, self.verdict
        if task is None or verdict is None:
            return
        if verdict.success and self.draft is not None:
            library = self.model.library
            if library is not None:
                description = await self.ask("describe", "describe", DESCRIBE_SCHEMA, _description,
                                             fallback=self.draft.explanation or task.text, code=self.draft.code,
                                             task=task.text)
                skill = library.add(self.draft.entry, self.draft.code, description, task=task.text, agent=self.name,
                                    iteration=self.model.steps)
                self.outbox.append((EventKind.SKILL_ADDED, {"name": skill.name, "version": skill.version,
                                                    "description": skill.description, "task": task.text}))
            self.completed.append(task.text)
            self.outbox.append((EventKind.TASK_COMPLETED, {"task": task.text, "rounds": self.round + 1}))
            self.task = None
            return
        self.previous = Attempt(self.draft.code if self.draft else "(none)", self.result.status if self.result
                                else "error", self.result.message if self.result else "no valid code",
                                self.result.output[-500:] if self.result else "", verdict.critique)
        self.round += 1
        if self.round >= self.max_rounds:
            self.failed.append(task.text)
            self.outbox.append((EventKind.TASK_FAILED, {"task": task.text, "rounds": self.round,
                                                "reason": verdict.critique[:300]}))
            self.task = None

    def get_state(self) -> dict[str, Any]:
        """The body's snapshot plus the mind's (task, round, tasks done and failed, last feedback)."""
        previous = self.previous.__dict__ if self.previous else None
        return {**super().get_state(), "task": self.task.to_dict() if self.task else None, "round": self.round,
                "completed": list(self.completed), "failed": list(self.failed), "previous": previous}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores a snapshot made by `get_state`."""
        super().set_state(state)
        task = state.get("task")
        self.task = Task(task["verb"], task["item"], task["count"]) if task else None
        self.round = int(state.get("round", 0))
        self.completed, self.failed = list(state.get("completed", [])), list(state.get("failed", []))
        self.previous = Attempt(**state["previous"]) if state.get("previous") else None


def _description(data: Any) -> str:
    text = data.get("description") if isinstance(data, dict) else None
    if not isinstance(text, str) or not text.strip():
        msg = "no description"
        raise ParseError(msg, feedback='Reply with {"description": "..."}.')
    return text.strip()


def _brief(changes: list[dict[str, Any]]) -> str:
    """Changes summed per kind and item, e.g. ``{"inventory log": 3, "block tree": -3}``."""
    totals: dict[str, int] = {}
    for c in changes:
        if c["kind"] in ("inventory", "block", "milestone"):
            key = f"{c['kind']} {c['item']}"
            totals[key] = totals.get(key, 0) + int(c["delta"])
    return json.dumps(totals) if totals else "nothing changed"
