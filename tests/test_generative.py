"""Generative agents' control flow with a scripted LLM, a real (in-memory) Chroma and a fake embedder."""

import json
from datetime import datetime

from simulacra.agents.generative_agent import parse_reaction, reaction_schema
from simulacra.agents.llm import LLMClient
from simulacra.scenarios.cognition import CognitionConfig, MemoryConfig
from simulacra.scenarios.schema import AgentConfig, ClockConfig, DiffusionConfig, PlaceConfig
from simulacra.worlds.town import TownWorld
from tests.fakes import ScriptedBackend, bag_of_words

PLACES = [PlaceConfig(name="plaza", links=["cafe", "park"]), PlaceConfig(name="cafe", links=["plaza"]),
          PlaceConfig(name="park", links=["plaza"])]
START = datetime(2026, 2, 14, 16, 0)


def brain(*, talk: bool = True, say: str = "Come to my party at the cafe at five!", rating: int = 6):
    def script(request):
        props = request.schema["properties"]
        if "ratings" in props:
            return json.dumps({"ratings": [rating] * props["ratings"]["minItems"]})
        if "plan" in props:
            return json.dumps({"plan": ["open the cafe", "host the party"]})
        if "hours" in props:
            return json.dumps({"hours": [{"place": "cafe", "activity": "work at the cafe"}]
                               * props["hours"]["minItems"]})
        if "actions" in props:
            steps = [{"minutes": 15, "activity": "tidy up"}, {"minutes": 15, "activity": "read"}]
            return json.dumps({"actions": steps})
        if "choice" in props:
            people = [p for p in props["person"]["enum"] if p != "nobody"]
            if talk and "talk" in props["choice"]["enum"]:
                return json.dumps({"choice": "talk", "person": people[0], "reaction": ""})
            return json.dumps({"choice": "continue", "person": "nobody", "reaction": ""})
        if "utterance" in props:
            return json.dumps({"utterance": say, "end": False})
        if "questions" in props:
            return json.dumps({"questions": ["What matters to me?"] * props["questions"]["minItems"]})
        if "insights" in props:
            return json.dumps({"insights": [{"insight": "I care about my friends", "because": [1, 2]}]
                               * props["insights"]["minItems"]})
        raise AssertionError(f"unexpected schema {props}")

    return script


def build(chroma_store, *, agents, script, seed=3, **cognition):
    events = []
    client = LLMClient(ScriptedBackend(script), retries=0)
    world = TownWorld(
        seed=seed, places=PLACES, agents=agents, llm=client,
        clock=ClockConfig(start=START), memory=MemoryConfig(), store=chroma_store, embed=bag_of_words,
        observers=[events.append],
        cognition=CognitionConfig(kind="generative", plan_hours=2, **cognition),
        diffusion=DiffusionConfig(keywords=["party"], place="cafe", start=START, end=datetime(2026, 2, 14, 19)))
    return world, events


def of(events, kind):
    return [e for e in events if e.kind == kind]


ANN_BOB = [AgentConfig(name="Ann", persona="hosts parties", home="cafe", memories=["Ann plans a party"]),
           AgentConfig(name="Bob", persona="a poet", home="cafe")]


def test_first_step_plans_rates_and_stores(chroma_store) -> None:
    world, events = build(chroma_store, agents=ANN_BOB, script=brain(talk=False))
    world.step()
    levels = [(e.agent, e.data["level"]) for e in of(events, "planned")]
    assert levels == [("Ann", "day"), ("Ann", "hours"), ("Ann", "minutes"),
                      ("Bob", "day"), ("Bob", "hours"), ("Bob", "minutes")]
    ann = world.by_name["Ann"]
    assert ann.stream.nodes[0].text == "Ann plans a party"
    assert {n.importance for n in ann.stream.nodes} == {6}
    assert {n.kind for n in ann.stream.nodes} >= {"observation", "plan", "action"}
    assert chroma_store.load("Ann").texts == [n.text for n in ann.stream.nodes]
    assert [e.data["activity"] for e in of(events, "activity")] == ["tidy up", "tidy up"]


def test_agents_walk_to_the_place_their_schedule_names(chroma_store) -> None:
    agents = [AgentConfig(name="Cy", persona="a runner", home="park")]
    world, events = build(chroma_store, agents=agents, script=brain(talk=False))
    world.step()
    world.step()
    assert [(e.data["to"], e.data["destination"]) for e in of(events, "moved")] == [("plaza", "cafe"),
                                                                                  ("cafe", "cafe")]


def test_conversation_alternates_is_remembered_and_cools_down(chroma_store) -> None:
    world, events = build(chroma_store, agents=ANN_BOB, script=brain(), dialogue_turns=3,
                          dialogue_cooldown_steps=5)
    world.step()
    talks = of(events, "conversation")
    assert len(talks) == 1 and talks[0].data["turns"] == 3
    speakers = [(e.agent, e.data["to"]) for e in of(events, "said")]
    first, second = speakers[0]
    assert speakers == [(first, second), (second, first), (first, second)]
    for name in ("Ann", "Bob"):
        utterances = [n for n in world.by_name[name].stream.nodes if n.kind == "utterance"]
        assert len(utterances) == 3
    assert not world.can_talk("Ann", "Bob")
    world.step()
    assert len(of(events, "conversation")) == 1, "the cooldown keeps the pair from talking again"


def test_news_spreads_through_conversation(chroma_store) -> None:
    world, _ = build(chroma_store, agents=ANN_BOB, script=brain())
    world.step()
    assert world.diffusion.knows == {"Ann", "Bob"}
    assert world.diffusion.attended == {"Ann", "Bob"}
    assert world.diffusion.density() == 1.0
    frame = world.datacollector.get_model_vars_dataframe()
    assert frame[["knows", "attended", "density"]].iloc[-1].tolist() == [2, 2, 1.0]


def test_reflection_fires_over_the_threshold_and_cites_evidence(chroma_store) -> None:
    world, events = build(chroma_store, agents=ANN_BOB[:1], script=brain(talk=False, rating=9),
                          reflection_threshold=20, reflection_insights=2)
    world.step()
    reflected = of(events, "reflected")
    assert len(reflected) == 1
    assert reflected[0].data["questions"] == ["What matters to me?"] * 3
    ann = world.by_name["Ann"]
    assert ann.stream.importance_since_reflection == 0
    world.step()
    reflections = [n for n in ann.stream.nodes if n.kind == "reflection"]
    assert [r.text for r in reflections] == ["I care about my friends"] * 2
    ids = {n.id for n in ann.stream.nodes}
    assert all(r.evidence and set(r.evidence) <= ids for r in reflections)


def test_importance_is_rated_in_batches(chroma_store) -> None:
    world, _ = build(chroma_store, agents=ANN_BOB[:1], script=brain(talk=False), importance_batch=2)
    world.step()
    calls = [r for r in world.llm.backend.requests if "ratings" in r.schema["properties"]]
    sizes = [r.schema["properties"]["ratings"]["minItems"] for r in calls]
    assert all(size <= 2 for size in sizes)
    assert sum(sizes) == len(world.by_name["Ann"].stream)


def test_reaction_parsing() -> None:
    assert reaction_schema([])["properties"]["choice"]["enum"] == ["react", "continue"]
    assert reaction_schema(["Bob"])["properties"]["choice"]["enum"] == ["talk", "react", "continue"]
    assert parse_reaction({"choice": "talk", "person": "Bob"}, ["Bob"]) == ("talk", "Bob", "")
    assert parse_reaction({"choice": "react", "reaction": "wave"}, []) == ("react", None, "wave")


def test_same_seed_same_events_and_state_round_trip(chroma_store) -> None:
    import chromadb

    from simulacra.memory.chroma_store import ChromaStore

    def transcript(prefix):
        store = ChromaStore(chromadb.EphemeralClient(), embed=bag_of_words, prefix=prefix)
        world, events = build(store, agents=ANN_BOB, script=brain(), seed=11)
        for _ in range(3):
            world.step()
        return world, [e.to_dict() for e in events]

    world_a, a = transcript("det-a")
    _, b = transcript("det-b")
    assert a == b
    state = json.loads(json.dumps(world_a.get_state()))
    assert state["agents"][0]["plan"]["hours"][0][1] == "cafe"
