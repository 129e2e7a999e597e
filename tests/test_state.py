"""The state contract (`agents.state.Stateful`): one round trip over every implementer, and store rewinds.

Every case builds an object A, drives it a little, snapshots it, builds a fresh B the same way (on the same
Chroma folder), restores B and compares. Worlds then step once more each, A first, as a run killed after the
snapshot and its resume would: B must emit the same events, send the LLM the same requests and end in the same
state, with nothing that A wrote in its extra step leaking into B.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import chromadb
import pytest
from chromadb.config import Settings

from simulacra.agents.babyagi_player import BabyAGIPlayer
from simulacra.agents.llm import LLMClient, LLMRequest, Message
from simulacra.agents.plan import HourBlock, Plan, PlannedAction
from simulacra.agents.voyager_agent import VoyagerAgent
from simulacra.events import Event
from simulacra.instruments.survey import Surveys
from simulacra.memory.answer_memory import AnswerMemory
from simulacra.memory.chroma_store import ChromaStore
from simulacra.memory.recent import RecentMemory
from simulacra.memory.scoring import RetrievalWeights
from simulacra.memory.skill_library import LIBRARY_FILE, SkillLibrary
from simulacra.memory.stream import MemoryStream
from simulacra.memory.task_board import TaskBoard
from simulacra.memory.task_results import TaskResults
from simulacra.scenarios.cognition import CognitionConfig, MemoryConfig
from simulacra.scenarios.instruments import SurveyConfig, SurveyItem
from simulacra.scenarios.schema import DEFAULT_PLACES, AgentConfig, ClockConfig, DiffusionConfig
from simulacra.worlds.alignment import AlignmentWorld
from simulacra.worlds.crafting import CraftingWorld
from simulacra.worlds.team import Team
from simulacra.worlds.town import TownWorld
from tests.fakes import ScriptedBackend, bag_of_words
from tests.test_alignment import QUESTIONS
from tests.test_alignment import script as society_script
from tests.test_generative import PLACES as GENERATIVE_PLACES
from tests.test_generative import START, brain
from tests.test_town import PLACES, who
from tests.test_voyager import MINE_LOG
from tests.test_voyager import purpose as voyager_purpose

T0 = datetime(2026, 2, 14, 9, 0)


def chroma(tmp_path: Path) -> Any:
    """The test's Chroma folder; every client on it sees the same collections, as a resumed run does."""
    return chromadb.PersistentClient(path=str(tmp_path / "chroma"), settings=Settings(anonymized_telemetry=False))


def client(script: Callable[[LLMRequest], str]) -> LLMClient:
    return LLMClient(ScriptedBackend(script), retries=0)


# -- scripted minds: answers depend on the request only, so A and B get the same answers ----------------------
def town_script(request: LLMRequest) -> str:
    props, name = request.schema["properties"], who(request)
    if "answer" in props:  # a survey item
        return json.dumps({"answer": props["answer"]["enum"][len(name) % len(props["answer"]["enum"])]})
    people = [p for p in props["person"]["enum"] if p != "nobody"]
    places = props["place"]["enum"]
    if name == "Ann" and people:
        call = {"action": "talk_to", "person": people[0], "text": "Come to the party at the cafe!"}
    elif name == "Bob":
        call = {"action": "go_to", "place": places[-1]}
    else:
        call = {"action": "do", "text": "reading"}
    return json.dumps({"action": "do", "place": places[0], "person": "nobody", "text": "", **call})


def babyagi_script(request: LLMRequest) -> str:
    props, prompt = request.schema["properties"], request.messages[-1].content
    if "tool" in props:
        worked = "What you did for this task so far" in prompt
        crafting = "mine" in props["tool"]["enum"]
        act = {"tool": "mine", "block": "tree", "count": 1} if crafting else \
            {"tool": "go_to", "place": props["place"]["enum"][0], "person": "nobody", "text": ""}
        return json.dumps({"tool": "task_done", "text": "done well"} if worked else act)
    if "tasks" in props:
        return json.dumps({"tasks": ["Mine 2 log", "Ask at the cafe"]})
    if "order" in props:
        return json.dumps({"order": []})
    return json.dumps({"reasoning": "enough", "met": True})


def voyager_script(request: LLMRequest) -> str:
    kind = voyager_purpose(request)
    if kind == "skill":
        return json.dumps({"explanation": "chop", "code": MINE_LOG})
    if kind == "critic":
        return json.dumps({"reasoning": "checked", "success": True, "critique": ""})
    if kind == "describe":
        return json.dumps({"description": "mine a tree to collect wood logs"})
    return json.dumps({"reasoning": "more wood", "verb": "mine", "item": "log", "count": 1})


# -- builders: the same arguments every time, so a second build is what a resume builds ------------------------
def simple_town(tmp_path: Path) -> TownWorld:
    agents = [AgentConfig(name=n, persona=f"{n} is a neighbour", home=h) for n, h in
              (("Ann", "cafe"), ("Bob", "cafe"), ("Cid", "park"))]
    return TownWorld(seed=4, places=PLACES, agents=agents, llm=client(town_script), memory=MemoryConfig(recent=3),
                     diffusion=DiffusionConfig(keywords=["party"], place="cafe", start=datetime(2026, 2, 13),
                                               end=datetime(2026, 2, 15)))


def generative_town(tmp_path: Path) -> TownWorld:
    agents = [AgentConfig(name="Ann", persona="hosts parties", home="cafe", memories=["Ann plans a party"]),
              AgentConfig(name="Bob", persona="a poet", home="cafe")]
    store = ChromaStore(chroma(tmp_path), embed=bag_of_words, prefix="gen")
    return TownWorld(seed=5, places=GENERATIVE_PLACES, agents=agents, llm=client(brain()),
                     clock=ClockConfig(start=START), memory=MemoryConfig(), store=store, embed=bag_of_words,
                     cognition=CognitionConfig(kind="generative", plan_hours=2, reflection_threshold=20))


def babyagi_town(tmp_path: Path) -> TownWorld:
    cognition = CognitionConfig(kind="babyagi", objective="prepare a festival", task_steps=2, claim_ttl=2,
                                first_tasks=["Get lights at the store", "Invite people at the cafe", "Sweep"])
    agents = [AgentConfig(name=n, persona=f"{n} lives here.", home="plaza") for n in ("Ann", "Bob")]
    return TownWorld(seed=6, places=list(DEFAULT_PLACES), agents=agents, llm=client(babyagi_script),
                     memory=MemoryConfig(), cognition=cognition, embed=bag_of_words, chroma=chroma(tmp_path))


def voyager_crafting(tmp_path: Path) -> CraftingWorld:
    library = SkillLibrary(chroma(tmp_path), embed=bag_of_words, folder=tmp_path / "skills", collection="skills")

    def player(w: CraftingWorld, *, name: str) -> VoyagerAgent:
        return VoyagerAgent(w, name=name, persona="A player.", max_rounds=2)

    w = CraftingWorld(seed=7, players=["Steve", "Alex"], size=10, hazards=True, player_factory=player,
                      llm=client(voyager_script), library=library)
    for p in w.by_name.values():
        w.put_block("tree", p.position[0], 1, count=9)
    return w


def babyagi_crafting(tmp_path: Path) -> CraftingWorld:
    cognition = CognitionConfig(kind="babyagi", objective="make a wooden pickaxe", task_steps=2, claim_ttl=2,
                                first_tasks=["Mine 3 log", "Craft a crafting_table"])

    def player(w: CraftingWorld, *, name: str) -> BabyAGIPlayer:
        return BabyAGIPlayer(w, name=name, team=w.team, task_steps=2, persona="A player.")

    w = CraftingWorld(seed=8, players=["Steve", "Alex"], size=10, hazards=False, player_factory=player,
                      llm=client(babyagi_script), cognition=cognition, embed=bag_of_words, chroma=chroma(tmp_path))
    for p in w.by_name.values():
        w.put_block("tree", p.position[0], 1, count=9)
    return w


def plain_crafting(tmp_path: Path) -> CraftingWorld:
    return CraftingWorld(seed=9, players=["A", "B"], size=8, day_length=1)


def society(tmp_path: Path) -> AlignmentWorld:
    agents = [AgentConfig(name=f"A{i}", persona=f"Person {i}.") for i in range(5)]
    memory = AnswerMemory(chroma(tmp_path), embed=bag_of_words, prefix="answers")
    return AlignmentWorld(seed=10, agents=agents, llm=client(society_script), questions=QUESTIONS, askers=3,
                          memory=memory)


def stream(tmp_path: Path) -> MemoryStream:
    store = ChromaStore(chroma(tmp_path), embed=bag_of_words, prefix="mem")
    return MemoryStream("Ann", store=store, embed=bag_of_words, weights=RetrievalWeights(), top_k=2)


def library(tmp_path: Path) -> SkillLibrary:
    return SkillLibrary(chroma(tmp_path), embed=bag_of_words, folder=tmp_path / "skills", collection="lib")


def answers(tmp_path: Path) -> AnswerMemory:
    memory = AnswerMemory(chroma(tmp_path), embed=bag_of_words, prefix="ans")
    memory.track(["A0", "A1"])
    return memory


def results(tmp_path: Path) -> TaskResults:
    return TaskResults(chroma(tmp_path), embed=bag_of_words, collection="results")


def team(tmp_path: Path) -> Team:
    config = CognitionConfig(kind="babyagi", objective="bake", first_tasks=["Buy flour", "Bake bread"])
    return Team.build(config, client=chroma(tmp_path), embed=bag_of_words, collection="team-results")


def surveyed_town(tmp_path: Path) -> TownWorld:
    world = simple_town(tmp_path)
    item = SurveyItem(name="knows", type="yes_no", question="Do you know about the party?")
    world.surveys = Surveys([SurveyConfig(name="party", at=[1, 2], items=[item])], total_steps=3, seed=4)
    return world


# -- drivers: what happens before the snapshot -------------------------------------------------------------
def drive_surveys(world: TownWorld) -> None:
    for _ in range(2):
        world.step()
        world.surveys.ask(world, world.steps)
    assert len(world.surveys.answers) == 6



def steps(n: int) -> Callable[[Any], None]:
    def drive(world: Any) -> None:
        for _ in range(n):
            world.step()

    return drive


def drive_plan(plan: Plan) -> None:
    plan.day = ["open the cafe", "bake"]
    plan.hours = [HourBlock(T0, "cafe", "open the cafe"), HourBlock(T0 + timedelta(hours=1), "cafe", "bake")]
    plan.actions = [PlannedAction(T0, 15, "unlock"), PlannedAction(T0 + timedelta(minutes=15), 45, "brew")]


def drive_recent(memory: RecentMemory) -> None:
    for i in range(4):
        memory.add("Friday 09:00", "observation", f"saw {i}")
    memory.commit()
    memory.add("Friday 09:10", "heard", "pending")


def drive_stream(s: MemoryStream) -> None:
    s.add("observation", "the cafe opens", T0)
    s.add("observation", "Bob reads a poem", T0)
    s.commit([4, 7])
    s.retrieve("cafe", T0 + timedelta(hours=1), k=1)  # touched: reaches the store only at the next commit
    s.add("plan", "pending plan", T0)


def drive_board(board: TaskBoard) -> None:
    board.add(["Buy flour", "Bake bread", "Sell bread"], by="objective", step=0)
    first = board.claim("Ann", step=1)
    board.complete(first.id, agent="Ann", result="got flour", step=1)
    board.claim("Bob", step=1)
    board.prioritise([3, 2], by="Ann", step=1)


def drive_library(lib: SkillLibrary) -> None:
    lib.add("mine_log", MINE_LOG, "mine a tree", task="Mine 1 log", agent="Steve", iteration=1)
    lib.add("mine_log", MINE_LOG.replace("1", "2"), "mine two logs", task="Mine 2 log", agent="Alex", iteration=2)
    lib.add("craft_planks", "def craft_planks(bot):\n    bot.craft('planks', 4)\n", "make planks", iteration=2)
    lib.retrieve("wood")


def drive_answers(memory: AnswerMemory) -> None:
    memory.add("A0", question="How to help?", answer="Ask first.", rating=5.5, step=1)
    memory.add("A0", question="How to share?", answer="Offer half.", rating=4.0, step=2)


def drive_results(store: TaskResults) -> None:
    store.add((1, "Buy flour", "got 2 kg", "Ann", 1))
    store.add((2, "Bake bread", "two loaves", "Bob", 2))


def drive_team(t: Team) -> None:
    t.start()
    task = t.board.claim("Ann", step=1)
    t.results.add(t.board.complete(task.id, agent="Ann", result="got flour", step=1))
    t.actions.append("Ann went to the store")
    t.verdict = {"met": False, "reasoning": "no bread yet", "judged": True}


def drive_client(llm: LLMClient) -> None:
    for seed in (1, 2):
        llm.run(llm.structured([Message("user", "hi")], schema={"type": "object"}, parse=lambda d: d, seed=seed,
                               fallback=None, purpose="test"))


@dataclass(frozen=True)
class Case:
    """How to build an implementer, drive it, and (for parts of a world) which world part comes first.

    ``pick`` takes the object out of what ``build`` made (an agent out of its world); ``prepare`` restores
    what the world restores before that part (the board, before agents look their tasks up on it).
    """

    build: Callable[[Path], Any]
    drive: Callable[[Any], None]
    pick: Callable[[Any], Any] = lambda built: built
    prepare: Callable[[Any, Any], None] | None = None

    @property
    def world(self) -> bool:
        return self.build in WORLDS and self.pick is Case.pick


def agent(name: str) -> Callable[[Any], Any]:
    return lambda world: world.by_name[name]


def board_first(a: Any, b: Any) -> None:
    b.team.board.set_state(a.team.board.get_state())


WORLDS = (simple_town, generative_town, babyagi_town, voyager_crafting, babyagi_crafting, plain_crafting, society)

CASES = [
    pytest.param(Case(simple_town, steps(3)), id="town-simple"),
    pytest.param(Case(generative_town, steps(2)), id="town-generative"),
    pytest.param(Case(babyagi_town, steps(3)), id="town-babyagi"),
    pytest.param(Case(voyager_crafting, steps(2)), id="crafting-voyager"),
    pytest.param(Case(babyagi_crafting, steps(3)), id="crafting-babyagi"),
    pytest.param(Case(plain_crafting, steps(2)), id="crafting-plain"),
    pytest.param(Case(society, steps(2)), id="sandbox-society"),
    pytest.param(Case(simple_town, steps(2), agent("Ann")), id="agent-town"),
    pytest.param(Case(generative_town, steps(2), agent("Ann")), id="agent-generative"),
    pytest.param(Case(babyagi_town, steps(2), agent("Ann"), board_first), id="agent-babyagi-town"),
    pytest.param(Case(voyager_crafting, steps(2), agent("Steve")), id="agent-voyager"),
    pytest.param(Case(babyagi_crafting, steps(2), agent("Steve"), board_first), id="agent-babyagi-crafting"),
    pytest.param(Case(plain_crafting, steps(2), agent("A")), id="agent-player"),
    pytest.param(Case(society, steps(1), agent("A4")), id="agent-social"),
    pytest.param(Case(simple_town, steps(3), lambda w: w.diffusion), id="diffusion"),
    pytest.param(Case(surveyed_town, drive_surveys, lambda w: w.surveys), id="surveys"),
    pytest.param(Case(lambda _: Plan(), drive_plan), id="plan"),
    pytest.param(Case(lambda _: RecentMemory(3), drive_recent), id="recent-memory"),
    pytest.param(Case(stream, drive_stream), id="memory-stream"),
    pytest.param(Case(lambda _: TaskBoard("bake", embed=bag_of_words), drive_board), id="task-board"),
    pytest.param(Case(library, drive_library), id="skill-library"),
    pytest.param(Case(answers, drive_answers), id="answer-memory"),
    pytest.param(Case(results, drive_results), id="task-results"),
    pytest.param(Case(team, drive_team), id="team"),
    pytest.param(Case(lambda _: client(lambda r: "{}"), drive_client), id="llm-client"),
]


def record(world: Any) -> list[Event]:
    """Events the world emits from now on."""
    events: list[Event] = []
    world.observers.append(events.append)
    return events


def one_more_step(world: Any) -> tuple[list[dict[str, Any]], list[Any], dict[str, Any]]:
    """The next step's events, LLM requests and the state after it."""
    events = record(world)
    backend = world.llm.backend if world.llm is not None else None
    sent = len(backend.requests) if backend is not None else 0
    world.step()
    requests = [(r.messages, r.schema, r.seed) for r in backend.requests[sent:]] if backend is not None else []
    return [e.to_dict() for e in events], requests, world.get_state()


@pytest.mark.parametrize("case", CASES)
def test_state_round_trip(case: Case, tmp_path: Path) -> None:
    built = case.build(tmp_path)
    case.drive(built)
    a = case.pick(built)
    state = a.get_state()
    assert json.loads(json.dumps(state)) == state
    assert a.get_state() == state  # taking a snapshot changes nothing
    after_a = one_more_step(a) if case.world else None  # A runs on past the snapshot, then is abandoned
    fresh = case.build(tmp_path)
    b = case.pick(fresh)
    if case.prepare is not None:
        case.prepare(built, fresh)
    b.set_state(state)
    assert b.get_state() == state
    b.set_state(state)  # twice is the same as once
    assert b.get_state() == state
    if after_a is not None:
        after_b = one_more_step(b)
        assert after_b[0] == after_a[0]  # the events
        assert after_b[1] == after_a[1]  # what the LLM was asked (a replay's cache keys)
        assert after_b[2] == after_a[2]  # the state after the step


# -- rewinds: what an abandoned step wrote to Chroma or the skills folder is gone after set_state -----------
def test_stream_rewind_deletes_newer_memories_and_restores_last_access(tmp_path: Path) -> None:
    a = stream(tmp_path)
    drive_stream(a)
    state = a.get_state()
    a.retrieve("poem", T0 + timedelta(hours=5), k=2)  # the abandoned step: accesses, then a commit
    a.add("observation", "a secret from the abandoned step", T0 + timedelta(hours=5))
    a.commit([9, 9])
    store = ChromaStore(chroma(tmp_path), embed=bag_of_words, prefix="mem")
    assert len(store.load("Ann").ids) == 4
    b = MemoryStream("Ann", store=store, embed=bag_of_words, weights=RetrievalWeights(), top_k=2)
    b.set_state(state)
    stored = store.load("Ann")
    assert stored.ids == ["Ann:0", "Ann:1"] == [n.id for n in b.nodes]
    assert [m["last_access"] for m in stored.metadatas] == [(T0 + timedelta(hours=1)).isoformat(), T0.isoformat()]
    assert [n.last_access for n in b.nodes] == [T0 + timedelta(hours=1), T0]
    assert not b.mentions(["secret"])
    assert b.pending() == ["pending plan"]
    assert b.get_state() == state


def test_stream_refuses_a_store_that_lacks_the_snapshots_memories(tmp_path: Path) -> None:
    a = stream(tmp_path)
    drive_stream(a)
    other = ChromaStore(chroma(tmp_path), embed=bag_of_words, prefix="elsewhere")
    b = MemoryStream("Ann", store=other, embed=bag_of_words, weights=RetrievalWeights())
    with pytest.raises(ValueError, match="the store holds 0 memories of 'Ann' before seq 2, the snapshot 2"):
        b.set_state(a.get_state())


def test_skill_library_rewind_deletes_newer_versions_and_rewrites_the_folder(tmp_path: Path) -> None:
    a = library(tmp_path)
    a.add("mine_log", MINE_LOG, "mine a tree", iteration=1)
    a.add("craft_planks", "def craft_planks(bot):\n    pass\n", "make planks", iteration=1)
    state = a.get_state()
    mirror = (tmp_path / "skills" / LIBRARY_FILE).read_text(encoding="utf-8")
    a.add("mine_log", MINE_LOG.replace("1", "3"), "mine three logs", iteration=2)  # the abandoned step
    a.add("smelt_iron", "def smelt_iron(bot):\n    pass\n", "smelt iron", iteration=2)
    b = library(tmp_path)
    b.set_state(state)
    collection = chroma(tmp_path).get_collection("lib", embedding_function=None)
    got = collection.get(include=["metadatas"])
    assert sorted(zip(got["ids"], (m["latest"] for m in got["metadatas"]), strict=True)) == [
        ("craft_planks.v1", True), ("mine_log.v1", True)]
    assert (tmp_path / "skills" / LIBRARY_FILE).read_text(encoding="utf-8") == mirror
    assert sorted(p.name for p in (tmp_path / "skills" / "code").iterdir()) == ["craft_planks.v1.py", "mine_log.v1.py"]
    assert [s.id for s in b.retrieve("mine a tree", k=1)] == ["mine_log.v1"]
    assert b.add("mine_log", MINE_LOG, "again").version == 2
    assert "smelt_iron" not in b


def test_a_library_loaded_at_construction_is_not_doubled_on_resume(tmp_path: Path) -> None:
    parent = SkillLibrary(chroma(tmp_path), embed=bag_of_words, folder=tmp_path / "parent", collection="parent")
    parent.add("mine_log", MINE_LOG, "mine a tree")
    parent.add("mine_log", MINE_LOG.replace("1", "2"), "mine two logs")

    def resumable() -> SkillLibrary:  # what the runner builds: the run's library, loaded from the parent's
        lib = library(tmp_path)
        lib.load(tmp_path / "parent")
        return lib

    a = resumable()
    a.add("craft_planks", "def craft_planks(bot):\n    pass\n", "make planks")
    state = a.get_state()
    mirror = (tmp_path / "skills" / LIBRARY_FILE).read_text(encoding="utf-8")
    b = resumable()  # loads the parent's skills into a collection and a folder that already hold them
    b.set_state(state)
    assert (tmp_path / "skills" / LIBRARY_FILE).read_text(encoding="utf-8") == mirror
    assert len(mirror.splitlines()) == 3
    assert chroma(tmp_path).get_collection("lib", embedding_function=None).count() == 3
    assert [s.id for s in b.retrieve("mine logs", k=2)] == ["mine_log.v2", "craft_planks.v1"]


def test_answer_memory_rewind_deletes_newer_answers_of_every_agent(tmp_path: Path) -> None:
    a = answers(tmp_path)
    a.add("A0", question="How to help?", answer="Ask first.", rating=5.5, step=1)
    state = a.get_state()
    a.add("A0", question="How to share?", answer="Offer half.", rating=4.0, step=2)  # the abandoned step
    a.add("A1", question="How to help?", answer="A secret.", rating=6.0, step=2)
    b = AnswerMemory(chroma(tmp_path), embed=bag_of_words, prefix="ans")
    b.set_state(state)
    assert b.get_state() == state == {"counts": {"A0": 1, "A1": 0}}
    assert b.recall("A1", "How to help?") is None
    assert b.recall("A0", "How to share?", min_similarity=0.0)["answer"] == "Ask first."
    b.add("A0", question="How to share?", answer="Offer a third.", rating=5.0, step=2)
    assert b.recall("A0", "How to share?")["answer"] == "Offer a third."


def test_task_results_rewind_deletes_newer_results(tmp_path: Path) -> None:
    a = results(tmp_path)
    drive_results(a)
    state = a.get_state()
    a.add((3, "Sell bread", "a secret", "Ann", 3))  # the abandoned step
    b = results(tmp_path)
    assert len(b) == 3  # a reopened collection counts what it holds, the abandoned result too
    b.set_state(state)
    assert len(b) == 2
    assert chroma(tmp_path).get_collection("results", embedding_function=None).count() == 2
    assert all("secret" not in r["result"] for r in b.retrieve("Sell bread"))
    assert b.add((3, "Sell bread", "sold", "Ann", 3)) == "r2.task3"


def test_team_rewind_rewinds_its_result_store(tmp_path: Path) -> None:
    a = team(tmp_path)
    drive_team(a)
    state = a.get_state()
    a.actions.append("Bob baked")  # the abandoned step
    task = a.board.claim("Bob", step=2)
    a.results.add(a.board.complete(task.id, agent="Bob", result="bread", step=2))
    b = team(tmp_path)
    b.set_state(state)
    assert (len(b.results), b.actions, b.board.counts()["done"]) == (1, ["Ann went to the store"], 1)
    assert b.get_state() == state
