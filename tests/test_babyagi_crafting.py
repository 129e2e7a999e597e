"""BabyAGI in the crafting world with a scripted model: the skill API as tools, tasks executed through it."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings

from simulacra.agents.babyagi_player import BabyAGIPlayer, parse_crafting_call
from simulacra.agents.llm import LLMClient, LLMRequest
from simulacra.agents.tools import ToolCall, tools_from_methods
from simulacra.errors import ParseError
from simulacra.events import Event
from simulacra.scenarios.cognition import CognitionConfig
from simulacra.worlds.crafting import CraftingWorld
from simulacra.worlds.crafting_bot import Bot
from tests.fakes import ScriptedBackend, bag_of_words
from tests.helpers import babyagi_kind_of

OBJECTIVE = "make a wooden pickaxe"



class Script:
    """Answers by kind; ``calls`` maps a player to its queue of tool calls (default: find a tree)."""

    def __init__(self, calls: dict[str, list[dict]], *, new_tasks: list[list[str]] | None = None) -> None:
        self.calls, self.new_tasks = calls, list(new_tasks or [])
        self.prompts: dict[str, list[str]] = {}
        self.schemas: list[dict] = []

    def __call__(self, request: LLMRequest) -> str:
        kind = babyagi_kind_of(request)
        self.prompts.setdefault(kind, []).append(request.messages[-1].content)
        if kind == "execute":
            self.schemas.append(request.schema)
            name = request.messages[0].content.split(".")[0].removeprefix("You are ")
            queue = self.calls.get(name, [])
            return json.dumps(queue.pop(0) if queue else {"tool": "find", "block": "tree"})
        if kind == "create":
            return json.dumps({"tasks": self.new_tasks.pop(0) if self.new_tasks else []})
        if kind == "prioritise":
            return json.dumps({"order": []})
        return json.dumps({"reasoning": "Steve holds a pickaxe", "met": True})


def world(script: Callable[[LLMRequest], str], chroma_dir: Path, *, players: tuple[str, ...] = ("Steve",),
          first_tasks: tuple[str, ...] = ("Mine 3 log", "Craft a crafting_table"), task_steps: int = 2,
          claim_ttl: int = 2, seed: int = 1) -> tuple[CraftingWorld, list[Event]]:
    events: list[Event] = []
    cognition = CognitionConfig(kind="babyagi", objective=OBJECTIVE, first_tasks=list(first_tasks),
                                task_steps=task_steps, claim_ttl=claim_ttl)

    def player(w: CraftingWorld, *, name: str) -> BabyAGIPlayer:
        return BabyAGIPlayer(w, name=name, team=w.team, task_steps=task_steps, persona="A player.")

    chroma = chromadb.PersistentClient(path=str(chroma_dir), settings=Settings(anonymized_telemetry=False))
    w = CraftingWorld(seed=seed, players=list(players), hazards=False, player_factory=player,
                      llm=LLMClient(ScriptedBackend(script), retries=0), observers=[events.append],
                      cognition=cognition, embed=bag_of_words, chroma=chroma)
    for name in players:
        w.put_block("tree", w.by_name[name].position[0], 1, count=9)
    return w, events


def kinds(events: list[Event], *wanted: str) -> list[tuple[str | None, str, dict]]:
    return [(e.agent, e.kind, e.data) for e in events if e.kind in wanted]


def test_the_tools_are_built_from_the_skill_api() -> None:
    tools = {t.name: t for t in Bot.tools(CraftingWorld(seed=0, players=["a"]).tech, 24)}
    assert list(tools) == list(Bot.TOOLS)
    for name, tool in tools.items():
        params = list(inspect.signature(getattr(Bot, name)).parameters.values())[1:]
        assert list(tool.parameters) == [p.name for p in params]
        assert tool.required == tuple(p.name for p in params if p.default is p.empty)
        assert tool.description == inspect.getdoc(getattr(Bot, name)).splitlines()[0]
    assert tools["mine"].signature() == "mine(block, count=1)"
    assert {"log", "tree", "iron_ore"} <= set(tools["mine"].parameters["block"]["enum"])
    assert tools["move_to"].parameters["x"] == {"type": "integer", "description": "Column, from 0.",
                                                "minimum": 0, "maximum": 23}
    assert tools["smelt"].parameters["fuel"]["enum"] == ["coal", "planks"] and "fuel" not in tools["smelt"].required


def test_a_method_whose_arguments_have_no_json_type_is_refused() -> None:
    class Api:
        def go(self, where: list) -> None:
            """Goes."""

    with pytest.raises(TypeError, match=re.escape("Api.go: parameter 'where' is annotated 'list'")):
        tools_from_methods(Api, ["go"])


@pytest.mark.parametrize(("data", "expected"), [
    ({"tool": "mine", "block": "log"}, ToolCall("mine", {"block": "log", "count": 1})),
    ({"tool": "move_to", "x": 3, "y": 0}, ToolCall("move_to", {"x": 3, "y": 0})),
    ({"tool": "smelt", "item": "iron_ingot", "count": 2}, ToolCall("smelt", {"item": "iron_ingot", "count": 2})),
    ({"tool": "task_done", "text": "3 logs mined"}, ("task_done", "3 logs mined")),
    ({"tool": "give_up", "text": ""}, ("give_up", "no reason given")),
    ({"tool": "craft", "item": "stick", "x": 3}, ToolCall("craft", {"item": "stick", "count": 1})),  # x: move_to's
])
def test_parse_crafting_call(data: dict, expected: object) -> None:
    tools = Bot.tools(CraftingWorld(seed=0, players=["a"]).tech, 24)
    assert parse_crafting_call(data, tools) == expected


@pytest.mark.parametrize(("data", "feedback"), [
    ({"tool": "fly"}, "Reply with {\"tool\": one of mine, craft, place, smelt, move_to"),
    ({"tool": "mine"}, "In your mine call, call: 'block' is a required property. Arguments of mine(block, count=1)"),
    ({"tool": "mine", "block": "gold"}, "In your mine call, block: 'gold' is not one of"),
    ({"tool": "move_to", "x": 30, "y": 0}, "In your move_to call, x: 30 is greater than the maximum of 23"),
    ({"tool": "craft", "item": "planks", "count": "4"}, "In your craft call, count: '4' is not of type 'integer'"),
])
def test_bad_tool_calls_give_feedback(data: dict, feedback: str) -> None:
    tools = Bot.tools(CraftingWorld(seed=0, players=["a"]).tech, 24)
    with pytest.raises(ParseError) as err:
        parse_crafting_call(data, tools)
    assert feedback in err.value.feedback


def test_tasks_are_executed_through_the_skill_api_and_results_stored(tmp_path: Path) -> None:
    script = Script({"Steve": [{"tool": "mine", "block": "log", "count": 3},
                               {"tool": "task_done", "text": "mined 3 log"}]}, new_tasks=[["Craft 4 planks"]])
    w, events = world(script, tmp_path)
    w.step()
    (agent, _, called), = kinds(events, "tool_called")
    assert agent == "Steve" and (called["tool"], called["args"], called["status"]) == (
        "mine", {"block": "log", "count": 3}, "ok")
    assert called["result"] == {"block": "tree", "mined": 3, "got": {"log": 3}}
    assert [c["item"] for c in called["changes"] if c["kind"] == "inventory"] == ["log"] * 3
    assert w.by_name["Steve"].inventory["log"] == 3
    assert w.by_name["Steve"].log == ['mine(block=\'log\', count=3) -> {"block": "tree", "got": {"log": 3}, '
                                      '"mined": 3}']
    w.step()
    done = kinds(events, "task_done")
    assert [(a, d["text"], d["result"]) for a, _, d in done] == [("Steve", "Mine 3 log", "mined 3 log")]
    assert [d["text"] for a, _, d in kinds(events, "task_created") if a == "Steve"] == ["Craft 4 planks"]
    assert len(w.team.results) == 1
    w.step()  # the next task's prompt holds the finished task's result and the tools with their arguments
    prompt = script.prompts["execute"][-1]
    assert "Your task: Craft a crafting_table" in prompt and "- Mine 3 log: mined 3 log" in prompt
    assert "- mine(block, count=1): Mines units from the nearest blocks" in prompt
    assert 'You hold: {"log": 3}' in prompt
    assert re.search(r"Blocks mine\(\) reaches from here: [^\n]*tree \(\d+ units\)", prompt)
    schema = script.schemas[-1]
    assert schema["required"] == ["tool"] and schema["properties"]["tool"]["enum"] == [
        *Bot.TOOLS, "task_done", "give_up", "objective_done"]
    assert set(schema["properties"]) == {"tool", "block", "count", "item", "fuel", "x", "y", "radius", "message",
                                         "text"}


def test_a_failed_call_is_recorded_and_shown_in_the_next_prompt(tmp_path: Path) -> None:
    script = Script({"Steve": [{"tool": "craft", "item": "wooden_pickaxe"}, {"tool": "mine", "block": "log"}]})
    w, events = world(script, tmp_path, first_tasks=("Craft a wooden_pickaxe",), task_steps=3, claim_ttl=3)
    w.step()
    (_, _, called), = kinds(events, "tool_called")
    assert called["status"] == "error" and called["result"] is None and called["changes"] == []
    assert "planks" in called["message"] and not w.by_name["Steve"].inventory
    w.step()
    assert f"- craft(item='wooden_pickaxe', count=1) -> failed: {called['message']}" in script.prompts["execute"][-1]


def test_a_task_whose_steps_run_out_closes_with_its_record(tmp_path: Path) -> None:
    script = Script({"Steve": [{"tool": "mine", "block": "log"}, {"tool": "craft", "item": "planks"}]})
    w, events = world(script, tmp_path)
    for _ in range(3):
        w.step()
    (_, _, done), = kinds(events, "task_done")
    assert done["result"].startswith("mine(block='log', count=1) -> ") and "; craft(item='planks', count=1) -> " \
        in done["result"]
    assert w.by_name["Steve"].inventory["planks"] == 4


def test_a_stalled_claim_expires_and_another_player_takes_the_task(tmp_path: Path) -> None:
    def script(request: LLMRequest) -> str:
        if babyagi_kind_of(request) == "execute" and request.messages[0].content.startswith("You are Steve"):
            return "not json"  # Steve stalls: every execution call fails
        return Script({})(request)

    w, events = world(script, tmp_path, players=("Steve", "Alex"), first_tasks=("Mine 3 log",), task_steps=1,
                      claim_ttl=1)
    for _ in range(3):
        w.step()
    assert [(a, d["text"]) for a, _, d in kinds(events, "claim_expired")] == [("Steve", "Mine 3 log")]
    assert any(a == "Alex" and d["text"] == "Mine 3 log" for a, _, d in kinds(events, "task_claimed"))
    assert [a for a, _, _ in kinds(events, "llm_failure")] == ["Steve", "Steve"]


def test_the_judge_sees_what_the_players_hold_and_the_summary_has_the_team(tmp_path: Path) -> None:
    script = Script({"Steve": [{"tool": "mine", "block": "log", "count": 2},
                               {"tool": "objective_done", "text": "enough wood"}]})
    w, _ = world(script, tmp_path)
    w.step()
    w.step()
    assert w.team.board.finished
    w.finish()
    assert "The world now: Steve holds {'log': 2}; milestones reached: none" in script.prompts["judge"][0]
    summary = w.summary()
    assert summary["team"]["verdict"] == {"met": True, "reasoning": "Steve holds a pickaxe", "judged": True}
    assert summary["team"]["counts"]["done"] == 1 and "tasks" not in summary
    metrics = w.datacollector.get_model_vars_dataframe()
    assert metrics["tasks_done"].tolist() == [0, 0, 1] and metrics["tool_called"].tolist() == [0, 1, 0]


def test_same_seed_and_answers_give_the_same_events(tmp_path: Path) -> None:
    def run(folder: str) -> list[dict]:
        script = Script({"Steve": [{"tool": "mine", "block": "log", "count": 2}, {"tool": "task_done", "text": "ok"}],
                         "Alex": [{"tool": "chat", "message": "I take the table"}]}, new_tasks=[["Craft planks"]])
        w, events = world(script, tmp_path / folder, players=("Steve", "Alex"), seed=5)
        for _ in range(3):
            w.step()
        return [e.to_dict() for e in events]

    assert run("a") == run("b")


def test_team_state_survives_a_checkpoint(tmp_path: Path) -> None:
    script = Script({"Steve": [{"tool": "mine", "block": "log"}]})
    w, _ = world(script, tmp_path / "a")
    w.step()
    state = json.loads(json.dumps(w.get_state()))
    fresh, _ = world(Script({}), tmp_path / "b")
    fresh.set_state(state)
    assert fresh.team.board.counts() == w.team.board.counts()
    assert fresh.by_name["Steve"].task == w.by_name["Steve"].task
    assert fresh.by_name["Steve"].log == w.by_name["Steve"].log and fresh.by_name["Steve"].inventory["log"] == 1
