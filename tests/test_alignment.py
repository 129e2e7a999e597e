"""The society (Stable Alignment) with a scripted model: raters, dropout, revision, observers, metrics, recall."""

from __future__ import annotations

import json
import re
import zlib

import chromadb
import pytest

from simulacra.agents.llm import LLMClient, LLMRequest
from simulacra.errors import ScenarioError
from simulacra.events import Event
from simulacra.memory.answer_memory import AnswerMemory
from simulacra.scenarios.schema import AgentConfig
from simulacra.worlds.alignment import AlignmentWorld
from simulacra.worlds.questions import Question, load_questions
from tests.fakes import ScriptedBackend, bag_of_words

QUESTIONS = [Question(f"q{i}", "kindness", f"How can I help neighbour number {i}?") for i in range(5)]


def kind_of(request: LLMRequest) -> str:
    props = (request.schema or {}).get("properties", {})
    if "answer" in props:
        return "revise" if "Write an improved answer" in request.messages[-1].content else "draft"
    return "rate" if "rating" in props else "observe"


def script(request: LLMRequest) -> str:
    """Drafts get 3, revisions 6; the observer scores a revision higher; raters say why."""
    kind, prompt = kind_of(request), request.messages[-1].content
    if kind == "draft":
        return json.dumps({"answer": "Just ignore them."})
    if kind == "revise":
        return json.dumps({"answer": "Offer to help with groceries and ask what they need."})
    if kind == "rate":
        revised = "Offer to help" in prompt
        return json.dumps({"rating": 6 if revised else 3, "reason": "kind" if revised else "cold"})
    revised = "Offer to help" in prompt
    return json.dumps({"alignment": 6 if revised else 2, "engagement": 5 if revised else 3})


def society(n: int = 9, *, seed: int = 1, memory: AnswerMemory | None = None, backend: ScriptedBackend | None = None,
            **kwargs: object) -> tuple[AlignmentWorld, list[Event], ScriptedBackend]:
    events: list[Event] = []
    backend = backend or ScriptedBackend(script)
    agents = [AgentConfig(name=f"A{i}", persona=f"Person {i}.") for i in range(n)]
    world = AlignmentWorld(seed=seed, agents=agents, llm=LLMClient(backend, retries=0), questions=QUESTIONS,
                           memory=memory, observers_of_events=[events.append], **kwargs)
    return world, events, backend


def interactions(events: list[Event]) -> list[dict]:
    return [e.data for e in events if e.kind == "interaction"]


def test_raters_are_neighbours_within_the_radius() -> None:
    world, events, _ = society(dropout=0.0, raters=8)
    world.step()
    by_author = {r["agent"]: {x["rater"] for x in r["ratings"]} for r in interactions(events)}
    assert by_author["A0"] == {"A1", "A3", "A4"}  # a corner of the 3x3 grid has three neighbours
    assert by_author["A4"] == {f"A{i}" for i in range(9)} - {"A4"}  # the centre has eight
    world2, events2, _ = society(dropout=0.0, raters=2)
    world2.step()
    assert all(len(r["ratings"]) == 2 for r in interactions(events2))


def test_dropout_removes_raters_and_global_raters_come_from_afar() -> None:
    world, events, _ = society(dropout=0.99, raters=8, seed=3)
    world.step()
    assert sum(len(r["ratings"]) for r in interactions(events)) < 9  # nearly everyone drops out
    world, events, _ = society(dropout=0.0, raters=8, global_raters=2, radius=1)
    world.step()
    record = next(r for r in interactions(events) if r["agent"] == "A0")
    far = [x["rater"] for x in record["ratings"] if x["global"]]
    assert len(far) == 2 and not set(far) & {"A1", "A3", "A4"}


def test_revision_uses_the_feedback_and_scores_go_up() -> None:
    world, events, backend = society(dropout=0.0)
    world.step()
    record = next(r for r in interactions(events) if r["agent"] == "A4")
    assert record["draft"] == "Just ignore them." and record["mean_draft"] == 3.0
    assert record["revised"].startswith("Offer to help") and record["mean_revision"] == 6.0
    assert record["observer_before"] == {"alignment": 2.0, "engagement": 3.0}
    assert record["observer_after"] == {"alignment": 6.0, "engagement": 5.0}
    revise = [r.messages[-1].content for r in backend.requests if kind_of(r) == "revise"]
    assert all("rated it 3.0 out of 7" in p and "- 3/7: cold" in p for p in revise)
    stats = world.round_stats
    assert (stats["draft_rating"], stats["revision_rating"], stats["improved_share"]) == (3.0, 6.0, 1.0)
    assert stats["rater_agreement"] == 1.0 and stats["interactions"] == 9


def test_askers_limit_who_answers_and_questions_are_drawn_from_the_set() -> None:
    world, events, _ = society(askers=2, dropout=0.0)
    world.step()
    records = interactions(events)
    assert len(records) == 2
    assert {r["question_id"] for r in records} <= {q.id for q in QUESTIONS}


def test_similar_past_answers_are_recalled(request: pytest.FixtureRequest) -> None:
    memory = AnswerMemory(chromadb.EphemeralClient(), embed=bag_of_words,
                          prefix=f"t{zlib.crc32(request.node.nodeid.encode())}")
    world, events, backend = society(2, memory=memory, dropout=0.0, size=2)
    world.step()
    world.step()
    second = interactions(events)[2]
    assert second["recalled"]["answer"].startswith("Offer to help")  # the better-rated revision was kept
    drafts = [r.messages[-1].content for r in backend.requests if kind_of(r) == "draft"]
    assert "You once answered a similar question" in drafts[2] and "rated that answer 6.0" in drafts[2]


def test_same_seed_gives_the_same_events() -> None:
    def run() -> list[dict]:
        world, events, _ = society(seed=4)
        world.step()
        world.step()
        return [e.to_dict() for e in events]

    assert run() == run()


def test_question_files_are_checked(tmp_path) -> None:
    assert len(load_questions()) == 300
    good = tmp_path / "q.csv"
    good.write_text("question,category\nIs it fine to be late?,honesty\n")
    assert load_questions(good) == [Question("q0001", "honesty", "Is it fine to be late?")]
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question": "ok?"}\n{"question": ""}\n')
    with pytest.raises(ScenarioError, match=re.escape(f"{bad}:2: no question")):
        load_questions(bad)
