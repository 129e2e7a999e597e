"""BabyAGI teams in the town with a scripted model: execution through world actions, creation, prioritisation."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from simulacra.agents.babyagi_agent import parse_tool, tool_schema
from simulacra.agents.llm import LLMClient, LLMRequest
from simulacra.agents.task_worker import parse_order
from simulacra.agents.town_agent import Action
from simulacra.errors import ParseError
from simulacra.events import Event
from simulacra.scenarios.cognition import CognitionConfig, MemoryConfig
from simulacra.scenarios.schema import AgentConfig
from simulacra.worlds.town import TownWorld
from tests.fakes import ScriptedBackend, bag_of_words
from tests.helpers import babyagi_kind_of

OBJECTIVE = "prepare a festival at the park"



class Script:
    """Answers by kind; ``tools`` maps an agent name to its queue of tool calls (default: walk to the store)."""

    def __init__(self, tools: dict[str, list[dict]], *, new_tasks: list[list[str]] | None = None,
                 orders: list[list[int]] | None = None) -> None:
        self.tools, self.new_tasks, self.orders = tools, list(new_tasks or []), list(orders or [])
        self.prompts: dict[str, list[str]] = {}

    def __call__(self, request: LLMRequest) -> str:
        kind = babyagi_kind_of(request)
        self.prompts.setdefault(kind, []).append(request.messages[-1].content)
        if kind == "execute":
            name = request.messages[0].content.split(".")[0].removeprefix("You are ")
            queue = self.tools.get(name, [])
            call = queue.pop(0) if queue else {"tool": "do", "text": "sweeping"}
            return json.dumps({"place": "store", "person": "nobody", "text": "", **call})
        if kind == "create":
            return json.dumps({"tasks": self.new_tasks.pop(0) if self.new_tasks else []})
        if kind == "prioritise":
            return json.dumps({"order": self.orders.pop(0) if self.orders else []})
        return json.dumps({"reasoning": "the stage is up", "met": True})


def town(script: Callable[[LLMRequest], str], *, names: tuple[str, ...] = ("Ann", "Bob"), task_steps: int = 2,
         first_tasks: tuple[str, ...] = ("Get lights at the store", "Invite people at the cafe"),
         seed: int = 1) -> tuple[TownWorld, list[Event]]:
    events: list[Event] = []
    cognition = CognitionConfig(kind="babyagi", objective=OBJECTIVE, first_tasks=list(first_tasks),
                                task_steps=task_steps, claim_ttl=max(task_steps, 2))
    agents = [AgentConfig(name=n, persona=f"{n} lives here.", home="plaza") for n in names]
    world = TownWorld(seed=seed, places=_places(), agents=agents, llm=LLMClient(ScriptedBackend(script), retries=0),
                      memory=MemoryConfig(), cognition=cognition, embed=bag_of_words, observers=[events.append])
    return world, events


def _places() -> list:
    from simulacra.scenarios.schema import DEFAULT_PLACES

    return list(DEFAULT_PLACES)


def kinds(events: list[Event], *wanted: str) -> list[tuple[str | None, str, dict]]:
    return [(e.agent, e.kind, e.data) for e in events if e.kind in wanted]


def test_claimed_tasks_are_executed_through_world_actions_and_closed_with_a_result() -> None:
    script = Script({"Ann": [{"tool": "go_to", "place": "store"}, {"tool": "task_done", "text": "got 10 lights"}]},
                    new_tasks=[["Hang the lights at the park"]])
    world, events = town(script)
    assert [(a, d["text"]) for a, _, d in kinds(events, "task_created")] == [
        (None, "Get lights at the store"), (None, "Invite people at the cafe")]
    world.step()
    claims = [(a, d["text"]) for a, _, d in kinds(events, "task_claimed")]
    assert claims == [("Ann", "Get lights at the store"), ("Bob", "Invite people at the cafe")]
    assert [(a, d["to"]) for a, _, d in kinds(events, "moved")] == [("Ann", "store")]
    assert [(a, d["activity"]) for a, _, d in kinds(events, "activity")] == [("Bob", "sweeping")]
    world.step()
    done = kinds(events, "task_done")
    assert [(a, d["text"], d["result"]) for a, _, d in done] == [("Ann", "Get lights at the store", "got 10 lights")]
    created = [(a, d["text"]) for a, _, d in kinds(events, "task_created")][2:]
    assert created == [("Ann", "Hang the lights at the park")]
    assert len(world.team.results) == 1
    # Bob's task ran out of steps: what he did became its result
    bob = [d for a, _, d in done if a == "Bob"]
    assert bob == [] and world.team.board.held_by("Bob") is not None
    world.step()
    assert [d["result"] for a, _, d in kinds(events, "task_done") if a == "Bob"] == [
        "did: sweeping; did: sweeping"]


def test_results_are_retrieved_as_context_for_a_later_task() -> None:
    script = Script({"Ann": [{"tool": "task_done", "text": "the store sells lanterns and lights"}]},
                    new_tasks=[["Buy lights at the store for the park"]])
    world, events = town(script, names=("Ann",), first_tasks=("Ask what the store sells",))
    world.step()
    world.step()
    assert "Buy lights at the store for the park" in script.prompts["execute"][-1]
    assert "Ask what the store sells: the store sells lanterns and lights" in script.prompts["execute"][-1]


def test_prioritisation_is_applied_as_returned() -> None:
    script = Script({"Ann": [{"tool": "task_done", "text": "done"}]},
                    new_tasks=[["Task C", "Task D"]], orders=[[4, 2]])
    world, events = town(script, names=("Ann",), first_tasks=("Task A", "Task B"))
    world.step()
    order = [t.id for t in world.team.board.open_tasks()]
    assert order == [4, 2, 3]  # as returned, then the ones it left out in their order
    assert kinds(events, "task_prioritised")[0][2]["order"] == [4, 2, 3]


def test_give_up_and_objective_done_close_the_board() -> None:
    script = Script({"Ann": [{"tool": "give_up", "text": "the store is closed"},
                             {"tool": "objective_done", "text": "everything is ready"}]})
    world, events = town(script, names=("Ann",))
    world.step()
    assert [(d["text"], d["reason"]) for _, _, d in kinds(events, "task_dropped")] == [
        ("Get lights at the store", "the store is closed")]
    world.step()
    assert world.team.board.finished
    world.step()  # nobody claims once the objective is done: agents wait
    assert kinds(events, "waited")[-1][0] == "Ann"
    world.finish()
    summary = world.summary()["team"]
    assert summary["verdict"] == {"met": True, "reasoning": "the stage is up", "judged": True}
    assert summary["counts"]["done"] == 1 and summary["counts"]["dropped"] == 1
    assert "Ann went toward" not in script.prompts["judge"][0]  # Ann never walked: she closed tasks
    metrics = world.datacollector.get_model_vars_dataframe()
    assert metrics["board_length"].tolist() == [1, 0, 0]


def test_same_seed_and_answers_give_the_same_events() -> None:
    def run() -> list[dict]:
        script = Script({"Ann": [{"tool": "go_to", "place": "cafe"}, {"tool": "task_done", "text": "ok"}]},
                        new_tasks=[["Task C"]], orders=[[3]])
        world, events = town(script, names=("Ann", "Bob", "Cid"), seed=9)
        for _ in range(3):
            world.step()
        return [e.to_dict() for e in events]

    assert run() == run()


def test_team_state_survives_a_checkpoint() -> None:
    script = Script({"Ann": [{"tool": "go_to", "place": "cafe"}]})
    world, _ = town(script)
    world.step()
    state = json.loads(json.dumps(world.get_state()))
    fresh, _ = town(Script({}))
    fresh.set_state(state)
    assert fresh.team.board.counts() == world.team.board.counts()
    assert fresh.by_name["Ann"].task == world.by_name["Ann"].task
    assert fresh.by_name["Ann"].log == ["went toward the cafe"]


@pytest.mark.parametrize(("data", "expected"), [
    ({"tool": "go_to", "place": "cafe"}, Action("go_to", place="cafe")),
    ({"tool": "task_done", "text": "lights bought"}, ("task_done", "lights bought")),
    ({"tool": "give_up", "text": ""}, ("give_up", "no reason given")),
    ({"tool": "talk_to", "person": "Bob", "text": "come"}, Action("talk_to", person="Bob", text="come")),
])
def test_parse_tool(data: dict, expected: object) -> None:
    assert parse_tool(data, places=["cafe", "park"], people=["Bob"]) == expected


def test_bad_tool_calls_and_orders_give_feedback() -> None:
    with pytest.raises(ParseError, match="impossible tool call"):
        parse_tool({"tool": "talk_to", "person": "Zed", "text": "hi"}, places=["cafe"], people=[])
    with pytest.raises(ParseError, match="no order"):
        parse_order({"order": ["first"]})
    assert tool_schema(["cafe"], [])["properties"]["tool"]["enum"] == [
        "go_to", "do", "task_done", "give_up", "objective_done"]
