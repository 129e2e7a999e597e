import json

import pytest

from simulacra.agents.llm import LLMClient
from simulacra.agents.llm.base import LLMRequest
from simulacra.agents.town_agent import Action, action_schema, parse_action
from simulacra.errors import ParseError
from simulacra.events import Event
from simulacra.scenarios.schema import AgentConfig, PlaceConfig
from simulacra.worlds.town import TownWorld
from tests.fakes import ScriptedBackend

PLACES = [
    PlaceConfig(name="plaza", links=["cafe", "park"]),
    PlaceConfig(name="cafe", links=["plaza"], capacity=2),
    PlaceConfig(name="park", links=["plaza"]),
]


def people(*specs: tuple[str, str]) -> list[AgentConfig]:
    return [AgentConfig(name=n, persona=f"{n} is a neighbour", home=h) for n, h in specs]


def build(script, agents, *, seed=1, retries=1) -> tuple[TownWorld, list[Event]]:
    events: list[Event] = []
    client = LLMClient(ScriptedBackend(script), retries=retries)
    world = TownWorld(seed=seed, places=PLACES, agents=agents, llm=client, observers=[events.append])
    return world, events


def who(request: LLMRequest) -> str:
    """The agent who asks: the persona, "You are X. ...", opens the user message (the system message is shared)."""
    return request.messages[1].content.split(".")[0].removeprefix("You are ")


def answer(action="do", place="plaza", person="nobody", text="reading"):
    return json.dumps({"action": action, "place": place, "person": person, "text": text})


def kinds(events, kind):
    return [(e.step, e.agent, e.data) for e in events if e.kind == kind]


@pytest.mark.parametrize(("data", "expected"), [
    ({"action": "go_to", "place": "cafe", "person": "nobody", "text": ""}, Action("go_to", place="cafe")),
    ({"action": "talk_to", "place": "cafe", "person": "B", "text": "hi"}, Action("talk_to", person="B", text="hi")),
    ({"action": "do", "place": "cafe", "person": "nobody", "text": "baking"}, Action("do", text="baking")),
])
def test_parse_action_accepts_possible_decisions(data, expected) -> None:
    assert parse_action(data, places=["cafe", "park"], people=["B"]) == expected


@pytest.mark.parametrize(("data", "feedback"), [
    ({"action": "go_to", "place": "moon"}, "You cannot go to 'moon'. Places you can go to: cafe, park."),
    ({"action": "talk_to", "person": "nobody", "text": "hi"},
     "To talk, set person to one of B and text to your words."),
    ({"action": "do", "text": " "}, 'Set text to the activity you do, e.g. "reading a book".'),
    ({"action": "fly"}, "Set action to go_to, talk_to or do."),
    ([1], "Reply with one JSON object with action, place, person and text."),
])
def test_parse_action_feedback(data, feedback) -> None:
    with pytest.raises(ParseError) as err:
        parse_action(data, places=["cafe", "park"], people=["B"])
    assert err.value.feedback == feedback


def test_schema_offers_only_real_options() -> None:
    schema = action_schema(["cafe"], [])
    assert schema["properties"]["action"]["enum"] == ["do", "go_to"]
    assert schema["properties"]["person"]["enum"] == ["nobody"]
    assert action_schema(["cafe"], ["B"])["properties"]["person"]["enum"] == ["B", "nobody"]


def test_walking_follows_the_streets_one_step_at_a_time() -> None:
    world, events = build(lambda r: answer("go_to", place="park"), people(("A", "cafe")))
    world.step()
    world.step()
    moves = kinds(events, "moved")
    assert moves == [
        (1, "A", {"from": "cafe", "to": "plaza", "destination": "park", "arrived": False}),
        (2, "A", {"from": "plaza", "to": "park", "destination": "park", "arrived": True}),
    ]
    # Walking on costs no LLM call: one decision at step 1 only.
    assert len(world.llm.backend.requests) == 1
    assert world.by_name["A"].place == "park"


def test_talk_is_heard_next_step_and_remembered() -> None:
    def script(r):
        return answer("talk_to", person="B", text="party at six") if who(r) == "A" else answer(text="knitting")

    world, events = build(script, people(("A", "park"), ("B", "park")))
    world.step()
    assert kinds(events, "said") == [(1, "A", {"to": "B", "text": "party at six", "place": "park"})]
    world.step()
    b_prompt = [r for r in world.llm.backend.requests if who(r) == "B"][-1].messages[1].content
    assert 'A said to you: "party at six"' in b_prompt
    assert any("party at six" in m.text for m in world.by_name["B"].memory.recent())


def test_conflict_listener_walks_away_before_talk() -> None:
    def script(r):
        if who(r) == "A":
            return answer("talk_to", person="B", text="wait!")
        return answer("go_to", place="plaza")

    outcomes = set()
    for seed in range(8):
        world, events = build(script, people(("A", "park"), ("B", "park")), seed=seed)
        world.step()
        said, failed = kinds(events, "said"), kinds(events, "talk_failed")
        assert len(said) + len(failed) == 1
        outcomes.add("said" if said else "failed")
        if failed:
            assert failed[0][2]["reason"] == "B is at the plaza"
    assert outcomes == {"said", "failed"}, "the shuffled apply order should decide who acts first"


def test_full_place_blocks_entry() -> None:
    world, events = build(lambda r: answer("go_to", place="cafe"),
                          people(("A", "plaza"), ("B", "plaza"), ("C", "plaza")))
    world.step()
    assert len(kinds(events, "moved")) == 2
    assert [d["reason"] for _, _, d in kinds(events, "move_blocked")] == ["full"]
    assert len(world.space["cafe"].agents) == 2


def test_llm_failure_falls_back_to_waiting() -> None:
    world, events = build(lambda r: "garbage", people(("A", "park")), retries=1)
    world.step()
    failure = kinds(events, "llm_failure")
    assert failure[0][2]["attempts"] == 2
    assert kinds(events, "decided")[0][2]["kind"] == "wait"
    assert [e.kind for e in events if e.agent == "A"][-1] == "waited"


def test_same_seed_same_transcript() -> None:
    def script(r):
        return answer("go_to", place="cafe") if r.seed % 2 else answer("do", text=f"task {r.seed % 7}")

    def transcript(seed):
        world, events = build(script, people(("A", "park"), ("B", "plaza"), ("C", "cafe")), seed=seed)
        for _ in range(4):
            world.step()
        return [e.to_dict() for e in events]

    assert transcript(3) == transcript(3)
    assert transcript(3) != transcript(4)


def test_state_round_trip() -> None:
    world, _ = build(lambda r: answer("go_to", place="park"), people(("A", "cafe"), ("B", "park")))
    world.step()
    state = json.loads(json.dumps(world.get_state()))
    other, _ = build(lambda r: answer(), people(("A", "cafe"), ("B", "park")))
    other.set_state(state)
    assert other.get_state() == world.get_state()
    assert other.by_name["A"].place == "plaza"
    assert other.random.random() == world.random.random()


def test_metrics_are_collected_each_step() -> None:
    world, _ = build(lambda r: answer("go_to", place="plaza"), people(("A", "cafe"), ("B", "park")))
    world.step()
    world.step()
    frame = world.datacollector.get_model_vars_dataframe()
    assert list(frame["moved"]) == [2, 0]
    assert list(frame["at_plaza"]) == [2, 2]
