"""Population scale: bounded perception, prefix-friendly prompts, one encoder call per step, generated crowds."""

import json
import os
import re

import pytest

from simulacra.agents.llm import LLMClient
from simulacra.agents.llm.base import LLMRequest
from simulacra.errors import ScenarioError
from simulacra.scenarios.loading import load_scenario
from simulacra.scenarios.population import CrowdConfig, PerceptionConfig, crowd_agents
from simulacra.scenarios.schema import AgentConfig, PlaceConfig
from simulacra.worlds.town import TownWorld
from tests.conftest import MINIMAL, ROOT
from tests.fakes import ScriptedBackend, bag_of_words
from tests.test_generative import brain
from tests.test_generative import build as build_generative

PLACES = [PlaceConfig(name="plaza", links=["cafe", "park"]), PlaceConfig(name="cafe", links=["plaza"]),
          PlaceConfig(name="park", links=["plaza", "pond"]), PlaceConfig(name="pond", links=["park"])]


def crowd_at(place: str, count: int, *, first: str = "Ann") -> list[AgentConfig]:
    return [AgentConfig(name=first, persona=f"{first} is the observer", home=place)] + [
        AgentConfig(name=f"P{i:02d}", persona=f"P{i:02d} is a neighbour", home=place) for i in range(count)]


def reading(request: LLMRequest) -> str:
    return json.dumps({"action": "do", "place": "plaza", "person": "nobody", "text": "reading"})


def town(agents, *, seed=1, script=reading, **perception) -> tuple[TownWorld, ScriptedBackend]:
    backend = ScriptedBackend(script)
    world = TownWorld(seed=seed, places=PLACES, agents=agents, llm=LLMClient(backend, retries=0),
                      perception=PerceptionConfig(**perception))
    return world, backend


def decide_of(backend: ScriptedBackend, name: str) -> LLMRequest:
    return next(r for r in backend.requests if r.messages[1].content.startswith(f"You are {name}."))


def test_a_place_of_51_lists_8_and_42_others() -> None:
    world, backend = town(crowd_at("cafe", 50))
    world.step()
    ann = world.by_name["Ann"]
    assert len(ann.observation["people"]) == 8 and ann.observation["unseen"] == 42
    request = decide_of(backend, "Ann")
    assert re.search(r"Here with you: (P\d\d \(just starting the day\), ){7}P\d\d \(just starting the day\) and 42 "
                     r"others\.", request.messages[1].content)
    assert request.schema["properties"]["person"]["enum"] == [*ann.observation["people"], "nobody"]


def test_without_a_bandwidth_everyone_is_listed() -> None:
    world, backend = town(crowd_at("cafe", 50), bandwidth=None)
    world.step()
    assert len(world.by_name["Ann"].observation["people"]) == 50
    assert "others" not in decide_of(backend, "Ann").messages[1].content


def test_who_spoke_is_perceived_and_attention_stays() -> None:
    world, _ = town(crowd_at("cafe", 30), seed=5)
    world.step()
    ann = world.by_name["Ann"]
    before = list(ann.observation["people"])
    speaker = next(f"P{i:02d}" for i in range(30) if f"P{i:02d}" not in before)
    world.say(world.by_name[speaker], "Ann", "hello")
    world.step()
    now = ann.observation["people"]
    assert speaker in now and len(now) == 8
    assert len(set(before) & set(now)) == 7  # the speaker took one place; the others stayed in view


def test_perception_is_seeded_and_small_places_draw_nothing() -> None:
    def seen(seed: int) -> list[str]:
        world, _ = town(crowd_at("cafe", 30), seed=seed)
        world.step()
        return world.by_name["Ann"].observation["people"]

    assert seen(3) == seen(3)
    assert len({tuple(seen(s)) for s in range(4)}) > 1
    world, _ = town(crowd_at("cafe", 8))  # 8 others: all perceived, the RNG untouched
    state = world.random.getstate()
    for agent in world.agents:
        world.attend(agent, world.agents_at(agent.place))
    assert world.random.getstate() == state


def test_nearby_names_people_while_the_bandwidth_lasts() -> None:
    agents = crowd_at("plaza", 5) + [AgentConfig(name=f"C{i}", persona="x", home="cafe") for i in range(4)] + [
        AgentConfig(name=f"K{i}", persona="x", home="park") for i in range(3)] + [
        AgentConfig(name="Far", persona="x", home="pond")]
    world, _ = town(agents)
    ann = world.by_name["Ann"]
    ann.perceive()
    assert ann.observation["nearby"] == ["C0, C1, C2 and 1 other at the cafe", "3 people at the park"]
    world, _ = town(agents, radius=2, bandwidth=20)
    world.by_name["Ann"].perceive()
    assert world.by_name["Ann"].observation["nearby"] == [
        "C0, C1, C2, C3 at the cafe", "K0, K1, K2 at the park", "Far at the pond"]
    world, _ = town(agents, radius=0)
    world.by_name["Ann"].perceive()
    assert world.by_name["Ann"].observation["nearby"] == []


def test_prompt_length_is_flat_from_10_to_1000_agents() -> None:
    lengths = {}
    for count in (10, 1000):
        world, backend = town(crowd_at("cafe", count - 1) + [
            AgentConfig(name=f"Q{i}", persona="x", home="plaza") for i in range(count)])
        world.step()
        lengths[count] = len(decide_of(backend, "Ann").messages[1].content)
    assert lengths[1000] - lengths[10] < 40  # only "and 990 others" and the longer counts; not 990 names


def test_shared_prefix_is_byte_identical_across_all_decide_prompts() -> None:
    agents = crowd_at("cafe", 6) + [AgentConfig(name="Zed", persona="Zed sells fish.", home="pond", goal="sell")]
    world, backend = town(agents)
    world.step()
    systems = {r.messages[0].content for r in backend.requests}
    assert len(backend.requests) == 8 and len(systems) == 1
    system = systems.pop()
    assert "Places in town: plaza, cafe, park, pond." in system and "Zed" not in system
    for request in backend.requests:
        name = request.messages[1].content.split(".")[0].removeprefix("You are ")
        persona = next(a.persona for a in agents if a.name == name)
        assert request.messages[1].content.startswith(f"You are {name}. {persona}")


def test_generative_prompts_share_the_task_and_end_with_the_person(chroma_store) -> None:
    agents = [AgentConfig(name=n, persona=f"{n} is a {job}", home="cafe") for n, job in
              (("Ann", "baker"), ("Bob", "poet"), ("Cid", "nurse"))]
    world, _ = build_generative(chroma_store, agents=agents, script=brain())
    world.step()
    requests = world.llm.backend.requests
    assert len({r.messages[0].content for r in requests}) == 1
    by_task: dict[str, set[str]] = {}
    for request in requests:
        user = request.messages[1].content
        task, _, rest = user.partition("\nThe person: ")
        assert rest.split(".")[0] in {"Ann", "Bob", "Cid"}, user
        by_task.setdefault(json.dumps(sorted(request.schema["properties"])), set()).add(task)
    assert {len(tasks) for tasks in by_task.values()} <= {1, 2}  # importance: one wording per batch size
    assert len(by_task) >= 5


def test_one_encoder_call_stores_every_agents_memories(chroma_store) -> None:
    calls: list[int] = []

    def embed(texts):
        calls.append(len(texts))
        return bag_of_words(texts)

    agents = [AgentConfig(name=n, persona="a neighbour", home="cafe", memories=[f"{n} likes tea"])
              for n in ("Ann", "Bob", "Cid", "Dee")]
    world, _ = build_generative(chroma_store, agents=agents, script=brain(talk=False))
    world._embed = embed
    for agent in world.agents:
        agent.stream._embed = embed
    world.step()
    stored = sum(len(a.stream) for a in world.agents)
    batches = [n for n in calls if n > 1]
    # Step 1 stores the seed memories with the first observations before planning, then the step's memories.
    assert len(batches) == 2 and sum(batches) == stored > 8
    assert all(n == 1 for n in calls if n <= 1)  # everything else is a retrieval query


def test_crowd_names_are_unique_seeded_and_housed() -> None:
    crowd = CrowdConfig(count=2000, seed=9, homes=["a", "b"])
    people = crowd_agents(crowd, seed=0, places=["a", "b", "c"], taken=["Ada Berg"])
    assert len({p["name"] for p in people}) == 2000 and "Ada Berg" not in {p["name"] for p in people}
    assert {p["home"] for p in people} == {"a", "b"}
    assert people == crowd_agents(crowd, seed=1, places=["a", "b", "c"], taken=["Ada Berg"])  # crowd.seed wins
    other = crowd_agents(CrowdConfig(count=2000, seed=10), seed=0, places=["a"], taken=[])
    assert [p["name"] for p in other] != [p["name"] for p in people]
    assert all(p["persona"].startswith(p["name"] + " is ") for p in people)


def test_crowd_in_a_scenario(tmp_path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(MINIMAL.replace("world: {type: town}", "world: {type: town, crowd: {count: 30}}"))
    scenario = load_scenario(path)
    assert len(scenario.population) == len(scenario.agents) + 30
    path.write_text(MINIMAL.replace("world: {type: town}", "world: {type: town, crowd: {count: 3, homes: [moon]}}"))
    with pytest.raises(ScenarioError, match=re.escape(f"{path}:3: world.crowd.homes[0]: unknown place 'moon'; allowed: "
                                                      "plaza, cafe, park, store")):
        load_scenario(path)


@pytest.mark.parametrize("name", ["town-1k", "valentine-100"])
def test_scale_scenarios_run_one_step_on_dry(name: str, tmp_path) -> None:
    from simulacra.runs.runner import Runner

    scenario = load_scenario(ROOT / "scenarios" / f"{name}.yaml",
                             ["steps=1", "llm.backend=dry", f"outputs.dir={tmp_path}", "outputs.plots=false"])
    assert len(scenario.population) == {"town-1k": 1000, "valentine-100": 100}[name]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    Runner(scenario, out=tmp_path / "run", plain=True).run()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    decided = [e for e in events if e["kind"] == "decided"]
    assert summary["status"] == "completed" and summary["llm"]["failures"] == 0
    assert len({e["agent"] for e in events if e["kind"] == "observed"}) == len(scenario.population)
    assert decided and summary["llm"]["prompt_tokens"] > 0
