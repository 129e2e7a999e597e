"""The Voyager loop with a scripted model: curriculum, skill writing, sandboxed runs, critic, retries, library."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable

import chromadb
import pytest

from simulacra.agents.curriculum import WARM_UP, Curriculum, Task
from simulacra.agents.llm import LLMClient, LLMRequest
from simulacra.agents.voyager_agent import VoyagerAgent, parse_skill
from simulacra.errors import ParseError
from simulacra.events import Event
from simulacra.memory.skill_library import SkillLibrary
from simulacra.worlds.crafting import CraftingWorld
from tests.fakes import ScriptedBackend, bag_of_words

MINE_LOG = "def mine_log(bot):\n    bot.mine('tree', 1)\n"
NEEDS_IRON = "def mine_log(bot):\n    bot.mine('diamond_ore', 1)\n"
PLANKS = "def make_planks(bot):\n    mine_log(bot)\n    bot.craft('planks', 4)\n"


def purpose(request: LLMRequest) -> str:
    props = (request.schema or {}).get("properties", {})
    return next(p for key, p in (("verb", "curriculum"), ("code", "skill"), ("success", "critic"),
                                 ("description", "describe")) if key in props)


def prompt(request: LLMRequest) -> str:
    return request.messages[-1].content


class Script:
    """Answers per purpose from queues; records every prompt by purpose."""

    def __init__(self, *, skills: list[str], verdicts: list[bool] | None = None,
                 tasks: list[dict] | None = None) -> None:
        self.skills, self.verdicts, self.tasks = list(skills), list(verdicts or []), list(tasks or [])
        self.prompts: dict[str, list[str]] = {}

    def __call__(self, request: LLMRequest) -> str:
        kind = purpose(request)
        self.prompts.setdefault(kind, []).append(prompt(request))
        if kind == "skill":
            return json.dumps({"explanation": "do it", "code": self.skills.pop(0)})
        if kind == "critic":
            ok = self.verdicts.pop(0) if self.verdicts else True
            return json.dumps({"reasoning": "checked", "success": ok, "critique": "" if ok else "mine more"})
        if kind == "describe":
            return json.dumps({"description": "mine a tree to collect wood logs"})
        return json.dumps({"reasoning": "next", **self.tasks.pop(0)})


def world(script: Callable[[LLMRequest], str], request: pytest.FixtureRequest, *, library: bool = True,
          max_rounds: int = 4, players: tuple[str, ...] = ("Steve",),
          seed: int = 1) -> tuple[CraftingWorld, list[Event]]:
    events: list[Event] = []
    lib = SkillLibrary(chromadb.EphemeralClient(), embed=bag_of_words,
                       collection=f"s{zlib.crc32(request.node.nodeid.encode())}-{seed}") if library else None

    def player(w: CraftingWorld, *, name: str) -> VoyagerAgent:
        return VoyagerAgent(w, name=name, persona="A player.", max_rounds=max_rounds)

    w = CraftingWorld(seed=seed, players=list(players), hazards=False, player_factory=player,
                      llm=LLMClient(ScriptedBackend(script), retries=0), observers=[events.append], library=lib)
    w.put_block("tree", w.by_name[players[0]].position[0], 1, count=9)
    return w, events


def kinds(events: list[Event], *wanted: str) -> list[tuple[str, dict]]:
    return [(e.kind, e.data) for e in events if e.kind in wanted]


def test_a_failed_round_feeds_back_and_a_verified_skill_is_stored_and_reused(request: pytest.FixtureRequest) -> None:
    script = Script(skills=[NEEDS_IRON, MINE_LOG, PLANKS], tasks=[{"verb": "craft", "item": "planks", "count": 4}])
    w, events = world(script, request)
    w.step()  # round 1: the error comes back from the world, no critic call
    ran = kinds(events, "skill_ran")[-1][1]
    assert (ran["status"], ran["task"]) == ("error", "Mine 1 log")
    assert "needs iron_pickaxe" in ran["message"]
    assert "critic" not in script.prompts
    w.step()  # round 2: the prompt holds the failed code, its error and the critique
    second = script.prompts["skill"][1]
    assert "diamond_ore" in second and "needs iron_pickaxe" in second and "Fix the code." in second
    assert kinds(events, "task_completed") == [("task_completed", {"task": "Mine 1 log", "rounds": 2})]
    assert [(s.name, s.version, s.task) for s in w.library.latest().values()] == [("mine_log", 1, "Mine 1 log")]
    w.step()  # the curriculum now proposes; the skill prompt shows the stored skill, and the code calls it
    assert "completed tasks: ['Mine 1 log']" in script.prompts["curriculum"][0]
    assert MINE_LOG.strip() in script.prompts["skill"][2]
    assert kinds(events, "skill_written")[-1][1]["retrieved"] == ["mine_log.v1"]
    steve = w.by_name["Steve"]
    assert steve.completed == ["Mine 1 log", "Craft 4 planks"]
    assert steve.inventory["planks"] == 4 and steve.inventory["log"] == 1  # 2 logs mined, 1 made planks
    assert sorted(w.library.latest()) == ["make_planks", "mine_log"]
    metrics = w.datacollector.get_model_vars_dataframe()
    assert metrics["tasks_completed"].tolist() == [0, 0, 1, 2] and metrics["skills"].tolist() == [0, 0, 1, 2]


def test_a_task_is_given_up_after_max_rounds(request: pytest.FixtureRequest) -> None:
    script = Script(skills=[NEEDS_IRON, NEEDS_IRON, MINE_LOG], tasks=[{"verb": "mine", "item": "log", "count": 1}])
    w, events = world(script, request, max_rounds=2)
    w.step()
    w.step()
    assert kinds(events, "task_failed") == [("task_failed", {"task": "Mine 1 log", "rounds": 2,
                                                             "reason": kinds(events, "criticised")[-1][1]["critique"]})]
    w.step()
    assert "failed tasks: ['Mine 1 log']" in script.prompts["curriculum"][0]
    assert w.by_name["Steve"].completed == ["Mine 1 log"]


def test_the_critic_can_reject_a_run_that_went_through(request: pytest.FixtureRequest) -> None:
    script = Script(skills=[MINE_LOG, MINE_LOG], verdicts=[False, True])
    w, events = world(script, request)
    w.step()
    assert kinds(events, "criticised")[0][1]["success"] is False
    w.step()
    assert "mine more" in script.prompts["skill"][1]
    assert [d["rounds"] for _, d in kinds(events, "task_completed")] == [2]


def test_without_a_library_nothing_is_stored_or_retrieved(request: pytest.FixtureRequest) -> None:
    script = Script(skills=[MINE_LOG, PLANKS.replace("mine_log(bot)", "bot.mine('tree', 1)")],
                    tasks=[{"verb": "craft", "item": "planks", "count": 4}])
    w, events = world(script, request, library=False)
    w.step()
    w.step()
    assert kinds(events, "skill_added") == [] and "describe" not in script.prompts
    assert all(d["retrieved"] == [] for _, d in kinds(events, "skill_written"))
    assert w.by_name["Steve"].completed == ["Mine 1 log", "Craft 4 planks"]
    assert "skill_library" not in w.summary()


def test_a_hostile_skill_fails_its_round_and_the_run_goes_on(request: pytest.FixtureRequest) -> None:
    script = Script(skills=["def evil(bot):\n    return open('/etc/passwd').read()\n", MINE_LOG])
    w, events = world(script, request)
    w.step()
    w.step()
    statuses = [d["status"] for _, d in kinds(events, "skill_ran")]
    assert statuses == ["forbidden", "ok"]
    assert w.by_name["Steve"].completed == ["Mine 1 log"]


def test_same_seed_and_answers_give_the_same_event_log(request: pytest.FixtureRequest) -> None:
    def run() -> list[dict]:
        script = Script(skills=[NEEDS_IRON, MINE_LOG, MINE_LOG, PLANKS],
                        tasks=[{"verb": "craft", "item": "planks", "count": 4}])
        w, events = world(script, request, players=("Steve", "Alex"), seed=5)
        for _ in range(2):
            w.step()
        w.library._collection._client.delete_collection(w.library._collection.name)  # the next run starts empty
        return [e.to_dict() for e in events]

    first, second = run(), run()
    assert first == second
    assert [e["kind"] for e in first].count("skill_ran") == 4


def test_curriculum_context_warms_up_with_completed_tasks() -> None:
    curriculum = Curriculum(["log", "planks"])
    observation = {key: key.upper() for key in WARM_UP}
    assert "health" not in curriculum.context(observation, completed=0)
    assert "health" in curriculum.context(observation, completed=3)
    assert list(curriculum.context(observation, completed=10)) == list(WARM_UP)
    assert curriculum.parse({"verb": "craft", "item": "planks", "count": 2}) == Task("craft", "planks", 2)
    with pytest.raises(ParseError, match="bad item 'wood'"):
        curriculum.parse({"verb": "craft", "item": "wood", "count": 2})


@pytest.mark.parametrize(("code", "entry", "error"), [
    ("def helper(bot):\n    pass\n\ndef main(bot):\n    helper(bot)\n", "main", None),
    ("def f(bot:\n", None, "code does not parse: line 1"),
    ("x = 1\n", None, "no function of bot"),
    ("def f(a, b):\n    pass\n", None, "no function of bot"),
])
def test_parse_skill_takes_the_last_function_as_entry(code: str, entry: str | None, error: str | None) -> None:
    if error:
        with pytest.raises(ParseError, match=error):
            parse_skill({"code": code})
    else:
        assert parse_skill({"code": code, "explanation": "x"}).entry == entry


def test_a_run_that_gains_nothing_fails_without_asking_the_critic(request: pytest.FixtureRequest) -> None:
    script = Script(skills=["def look(bot):\n    return bot.inventory()\n", MINE_LOG])
    w, events = world(script, request)
    w.step()
    verdict = kinds(events, "criticised")[0][1]
    assert (verdict["success"], verdict["critique"]) == (False, "The program ran, but your inventory gained 0 of 1 "
                                                                "log. Call the API so that it gets them.")
    assert "critic" not in script.prompts
    w.step()
    assert len(script.prompts["critic"]) == 1 and w.by_name["Steve"].completed == ["Mine 1 log"]


def test_the_curriculum_only_accepts_tasks_the_world_can_do() -> None:
    curriculum = Curriculum(["log", "planks"], verbs={"mine": ["log"], "craft": ["planks"], "smelt": []})
    with pytest.raises(ParseError, match="cannot mine 'planks'") as caught:
        curriculum.parse({"verb": "mine", "item": "planks", "count": 1})
    assert caught.value.feedback == "You cannot mine planks; items you can mine: log."
