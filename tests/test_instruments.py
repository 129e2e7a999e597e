"""Surveys and interviews on a scripted model: answer schemas, the survey schedule, its figures and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import datasets
import pandas as pd
import pytest
from jsonschema import Draft202012Validator

import run
from simulacra.agents.llm import LLMClient
from simulacra.agents.respondent import Recollection, answer_schema, parse_answer, respond
from simulacra.errors import ParseError, ScenarioError
from simulacra.scenarios.instruments import SurveyItem
from simulacra.scenarios.loading import load_scenario
from tests.fakes import ScriptedBackend, engine_sets
from tests.helpers import tree_hashes

LIKERT = SurveyItem(name="mood", question="How are you?", type="likert", scale=5)
CHOICE = SurveyItem(name="where", question="Where?", type="choice", options=["cafe", "park"])
NUMBER = SurveyItem(name="people", question="How many?", type="number", min=0, max=10, integer=True)
WIDE = SurveyItem(name="steps", question="How many steps?", type="number", min=0, max=50000, integer=True)
REAL = SurveyItem(name="hours", question="Hours?", type="number", min=0.5, max=2.5)
YES_NO = SurveyItem(name="knows", question="Do you know?", type="yes_no")
TEXT = SurveyItem(name="news", question="News?", type="text", max_length=20)


@pytest.mark.parametrize(("item", "good", "bad"), [
    (LIKERT, [1, 3, 5], [0, 6, 2.5, "3", True, None]),
    (CHOICE, ["cafe", "park"], ["moon", "Cafe", "", 1]),
    (NUMBER, [0, 7, 10], [-1, 11, 2.5, "4", True]),
    (WIDE, [0, 12345, 50000], [-1, 50001, 2.5, True]),
    (REAL, [0.5, 1.25, 2.5], [0.4, 2.6, "1"]),
    (YES_NO, ["yes", "no"], ["maybe", "Yes", True, 1]),
    (TEXT, ["a party at six", "x"], ["", "y" * 21, 5]),
])
def test_every_response_type_refuses_out_of_range_answers(item: SurveyItem, good: list, bad: list) -> None:
    validator = Draft202012Validator(answer_schema(item))
    for value in good:
        assert parse_answer(item, {"answer": value}) == value
        assert validator.is_valid({"answer": value})
    for value in bad:
        with pytest.raises(ParseError, match=re.escape(f"answer to {item.name!r} refused")):
            parse_answer(item, {"answer": value})
    with pytest.raises(ParseError):
        parse_answer(item, {"answer": good[0], "extra": 1})
    with pytest.raises(ParseError):
        parse_answer(item, ["not", "an", "object"])


def test_whole_number_ranges_go_to_the_engine_as_enums() -> None:
    # llama.cpp's grammar ignores minimum/maximum: a small whole-number range is listed instead
    assert answer_schema(NUMBER)["properties"]["answer"] == {"type": "integer", "enum": list(range(11))}
    assert answer_schema(WIDE)["properties"]["answer"] == {"type": "integer", "minimum": 0, "maximum": 50000}


class Mind:
    """A stand-in respondent: a name, a persona and fixed recollections."""

    name = "Ana"
    persona = "a baker"

    def recall(self, query: str, *, k: int) -> list[Recollection]:
        return [Recollection("Ana:0", "I baked bread.")][:k]


def test_an_out_of_range_answer_is_retried_with_feedback_then_kept() -> None:
    answers = iter(['{"answer": 9}', '{"answer": 4}'])
    backend = ScriptedBackend(lambda request: next(answers))
    client = LLMClient(backend, retries=2)
    response = client.run(respond(Mind(), client, question="How are you?", item=LIKERT, template="survey",
                                  time="Friday 14:00", k=3, seed=5, purpose="survey:t:mood"))
    client.close()
    assert (response.answer, response.ok, response.attempts) == (4, True, 2)
    assert response.memories == (Recollection("Ana:0", "I baked bread."),)
    retry = backend.requests[1].messages[-1].content
    assert "That answer is not allowed (9 is not one of [1, 2, 3, 4, 5])" in retry and "from 1 (lowest) to 5" in retry
    assert "I baked bread." in backend.requests[0].messages[1].content
    assert backend.requests[0].schema == answer_schema(LIKERT)


def test_answers_that_stay_out_of_range_give_a_recorded_failure() -> None:
    client = LLMClient(ScriptedBackend(lambda request: '{"answer": "maybe"}'), retries=1)
    response = client.run(respond(Mind(), client, question="Do you know?", item=YES_NO, template="survey",
                                  time="Friday 14:00", k=3, seed=5, purpose="survey:t:knows"))
    client.close()
    assert (response.answer, response.ok, response.attempts) == (None, False, 2)
    assert "refused" in (response.error or "")


# -- surveys in a run --------------------------------------------------------------------------------------

TOWN = """\
name: surveyed
seed: 4
steps: 3
world: {type: town}
agents:
  - {name: A, persona: a baker, home: cafe}
  - {name: B, persona: a poet, home: park}
  - {name: C, persona: a nurse, home: plaza}
llm: {cache: false}
outputs: {snapshots_keep: 0}
"""

SURVEY = """
surveys:
  - name: checkin
    at: [1, 3]
    remember: REMEMBER
    items:
      - {name: mood, type: likert, scale: 5, question: How are you?}
      - {name: where, type: choice, options: [cafe, park, plaza], question: Where are you?}
      - {name: people, type: number, min: 0, max: 10, integer: true, question: How many people did you see?}
      - {name: knows, type: yes_no, question: Do you know about the fair?}
      - {name: news, type: text, question: What is new?}
"""


def scripted(request) -> str:
    """A seeded stand-in for the model: a town action, or an answer of the type a survey schema asks."""
    answer = request.schema["properties"].get("answer") if request.schema else None
    if answer is None:
        place = ["plaza", "cafe", "park", "store"][request.seed % 4]
        return json.dumps({"action": ["go_to", "do"][request.seed % 2], "place": place, "person": "nobody",
                           "text": f"thinking {request.seed % 7}"})
    if "enum" in answer:
        return json.dumps({"answer": answer["enum"][request.seed % len(answer["enum"])]})
    if answer["type"] in ("integer", "number"):
        return json.dumps({"answer": answer["minimum"] + request.seed % 3})
    return json.dumps({"answer": f"heard {request.seed % 5}"})


@pytest.fixture
def scripted_runs():  # noqa: ANN201 - a factory
    """Runs a scenario text through run.main with the scripted model; returns the run folder."""
    sets = [arg for item in engine_sets("tests.test_instruments:scripted") for arg in ("--set", item)]

    def _run(text: str, folder: Path) -> Path:
        scenario = folder.with_suffix(".yaml")
        scenario.write_text(text, encoding="utf-8")
        assert run.main([str(scenario), "--out", str(folder), "--plain", *sets]) == 0
        return folder

    return _run


def events(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


def test_a_survey_at_steps_1_and_3_writes_answers_metrics_and_a_plot(scripted_runs, tmp_path: Path) -> None:
    folder = scripted_runs(TOWN + SURVEY.replace("REMEMBER", "false"), tmp_path / "run")
    answers = [e for e in events(folder) if e["kind"] == "survey_answer"]
    assert [(e["step"], e["agent"], e["data"]["item"]) for e in answers[:6]] == [
        (1, "A", "mood"), (1, "A", "where"), (1, "A", "people"), (1, "A", "knows"), (1, "A", "news"), (1, "B", "mood")]
    assert len(answers) == 2 * 3 * 5 and {e["step"] for e in answers} == {1, 3}
    assert all(e["data"]["ok"] for e in answers)
    metrics = pd.read_parquet(folder / "metrics.parquet").set_index("step")
    for step in (1, 3):
        rows = [e for e in answers if e["step"] == step]
        moods = [e["data"]["answer"] for e in rows if e["data"]["item"] == "mood"]
        assert metrics.loc[step, "survey.checkin.mood.mean"] == pytest.approx(sum(moods) / 3)
        yes = sum(e["data"]["answer"] == "yes" for e in rows if e["data"]["item"] == "knows")
        assert metrics.loc[step, "survey.checkin.knows.yes"] == pytest.approx(yes / 3)
        places = [e["data"]["answer"] for e in rows if e["data"]["item"] == "where"]
        assert metrics.loc[step, "survey.checkin.where.cafe"] == pytest.approx(places.count("cafe") / 3)
        assert metrics.loc[step, "survey.checkin.news.n"] == 3
    assert metrics["survey.checkin.mood.mean"].isna().tolist() == [False, True, False]
    assert (folder / "survey-checkin.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["surveys"]["checkin"]["people"]["steps"]) == {"1", "3"}


def test_asking_leaves_no_trace_unless_remember_is_true(scripted_runs, tmp_path: Path) -> None:
    plain = events(scripted_runs(TOWN, tmp_path / "plain"))
    asked = events(scripted_runs(TOWN + SURVEY.replace("REMEMBER", "false"), tmp_path / "asked"))
    assert [e for e in asked if e["kind"] != "survey_answer"] == plain  # same RNG draws, same memories
    remembered = tmp_path / "remembered"
    scripted_runs(TOWN + SURVEY.replace("REMEMBER", "true"), remembered)
    snapshot = json.loads((remembered / "snapshots" / "step-000002.json").read_text())
    memory = snapshot["world"]["agents"][0]["memory"]["records"]
    assert any(r["text"].startswith('I was asked "How are you?" and I answered: ') for r in memory)


def test_a_survey_at_the_start_adds_a_step_0_row_and_resume_keeps_the_answers(scripted_runs, tmp_path: Path) -> None:
    text = TOWN + """
surveys:
  - {name: s, at: [start, end], items: [{name: knows, type: yes_no, question: Do you know about the fair?}]}
"""
    folder = scripted_runs(text, tmp_path / "run")
    metrics = pd.read_parquet(folder / "metrics.parquet")
    assert metrics["step"].tolist() == [0, 1, 2, 3]
    assert metrics.loc[0, "survey.s.knows.n"] == 3 and pd.isna(metrics.loc[0, "said"])
    assert run.main(["resume", str(folder), "--steps", "4", "--plain"]) == 0
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["surveys"]["s"]["knows"]["steps"]) == {"0", "3", "4"}  # the new end is asked too
    asked = [e["step"] for e in events(folder) if e["kind"] == "survey_answer"]
    assert asked == [0, 0, 0, 3, 3, 3, 4, 4, 4]


def test_harvest_gains_the_surveys_part(scripted_runs, tmp_path: Path) -> None:
    folder = scripted_runs(TOWN + SURVEY.replace("REMEMBER", "false"), tmp_path / "run")
    out = tmp_path / f"surveys-{tmp_path.name}"  # datasets caches by folder name
    assert run.main(["harvest", str(folder), "--out", str(out)]) == 0
    rows = datasets.load_dataset(str(out), "surveys", split="train")
    assert len(rows) == 30
    mood = [r for r in rows if r["item"] == "mood"]
    assert all(r["value"] == float(r["answer"]) and 1 <= r["value"] <= 5 for r in mood)
    knows = [r for r in rows if r["item"] == "knows"]
    assert all(r["value"] == {"yes": 1.0, "no": 0.0}[r["answer"]] for r in knows)
    assert {r["agent"] for r in rows} == {"A", "B", "C"} and {r["step"] for r in rows} == {1, 3}


@pytest.mark.parametrize(("survey", "message"), [
    ("{name: s, at: [9], items: [{name: a, type: yes_no, question: q}]}",
     "surveys[0].at: step 9 is after the last step (3); use end for the last step"),
    ("{name: s, at: [1], ask: [Zed], items: [{name: a, type: yes_no, question: q}]}",
     "surveys[0].ask[0]: unknown agent 'Zed'; allowed: A, B, C"),
    ("{name: s, items: [{name: a, type: yes_no, question: q}]}",
     "surveys[0].at: say when the survey is asked: at: [start, end] or every: N"),
    ("{name: s, at: [1], items: [{name: a, type: likert, scale: 3, labels: [lo, hi], question: q}]}",
     "surveys[0].items[0].labels: 2 labels for a 3-point scale; give one per point or none"),
    ("{name: s, at: [1], items: [{name: a, type: choice, question: q}]}",
     "surveys[0].items[0].options: a choice item needs at least 2 options, e.g. options: [cafe, park]"),
    ("{name: s, at: [1], items: [{name: a, type: number, max: 3, question: q}]}",
     "surveys[0].items[0].min: a number item needs min and max, e.g. min: 0, max: 10"),
    ("{name: s, at: [1], items: [{name: a, type: yse_no, question: q}]}",
     "surveys[0].items[0].type: Input should be 'likert', 'choice', 'number', 'yes_no' or 'text' (got 'yse_no')"),
    ("{name: s, at: [1], items: [{name: a, type: text, qestion: q}]}",
     "surveys[0].items[0].qestion: unknown field 'qestion'; did you mean 'question'?"),
])
def test_bad_surveys_get_one_line(write, survey: str, message: str) -> None:
    path = write(TOWN + f"surveys: [{survey}]\n")
    with pytest.raises(ScenarioError, match=re.escape(message)):
        load_scenario(path)


def test_only_townspeople_remember_answers(write) -> None:
    text = ("name: c\nsteps: 2\nworld: {type: crafting}\nagents: [{name: P, persona: a miner}]\n"
            "surveys: [{name: s, at: [1], remember: true, items: [{name: a, type: yes_no, question: q}]}]\n")
    with pytest.raises(ScenarioError, match=re.escape("surveys[0].remember: agents of the crafting world keep no "
                                                      "memory of answers")):
        load_scenario(write(text))


# -- interviews: bad input, and a run folder left as it was ------------------------------------------------


def test_an_interview_reads_the_run_and_writes_only_its_answers(scripted_runs, tmp_path: Path, capsys) -> None:
    folder = scripted_runs(TOWN, tmp_path / "run")
    before = tree_hashes(folder, skip="interviews")
    assert run.main(["interview", str(folder), "--all", "--at", "2", "What did you do today?"]) == 0
    assert tree_hashes(folder, skip="interviews") == before
    [answers] = list((folder / "interviews").glob("2*.jsonl"))
    records = [json.loads(line) for line in answers.read_text().splitlines()]
    assert [(r["agent"], r["step"], r["ok"]) for r in records] == [("A", 2, True), ("B", 2, True), ("C", 2, True)]
    snapshot = json.loads((folder / "snapshots" / "step-000002.json").read_text())
    held = {a["name"]: [f"{m['sim_time']}: {m['text']}" for m in reversed(a["memory"]["records"])]
            for a in snapshot["world"]["agents"]}
    assert all(r["memories"] == held[r["agent"]] and r["memories"] for r in records)
    assert "What did you do today?" in capsys.readouterr().out


def test_the_same_interview_replays_identically(scripted_runs, tmp_path: Path) -> None:
    folder = scripted_runs(TOWN, tmp_path / "run")
    for _ in range(2):
        assert run.main(["interview", str(folder), "--agent", "B", "Where were you?", "Who did you see?"]) == 0
    first, second = sorted((folder / "interviews").glob("2*.jsonl"))
    assert first.read_text() == second.read_text() and len(first.read_text().splitlines()) == 2


def test_interactive_interview_reads_one_question_a_line(scripted_runs, tmp_path: Path, monkeypatch) -> None:
    import io

    folder = scripted_runs(TOWN, tmp_path / "run")
    monkeypatch.setattr("sys.stdin", io.StringIO("Where were you?\nWho did you see?\n\nnot asked\n"))
    assert run.main(["interview", str(folder), "--agent", "A"]) == 0
    [answers] = list((folder / "interviews").glob("2*.jsonl"))
    assert [json.loads(line)["question"] for line in answers.read_text().splitlines()] == [
        "Where were you?", "Who did you see?"]


@pytest.mark.parametrize(("args", "message"), [
    (["--agent", "Zed", "q?"], "--agent 'Zed': no such agent in {run}; agents: A, B, C"),
    (["--agent", "A", "--at", "7", "q?"], "{run}/snapshots: no snapshot of step 7; there are: 0-3"),
    (["--agent", "A", "--questions", "{binary}"],
     "{binary}:1: not text (a NUL byte at offset 0); give the question list as a UTF-8 text file"),
    (["--agent", "A", "--questions", "{empty}"], "{empty}: no question in the file; write one question a line"),
    (["--agent", "A", "--questions", "{huge}"],
     "{huge}: the question list is 2,000,000 bytes, more than the 1,000,000 bytes allowed; give a smaller file"),
    (["--agent", "A", "--questions", "{long}"], "{long}:2: a question of 600 characters; at most 500, one a line"),
])
def test_bad_interviews_exit_2_with_one_line(scripted_runs, tmp_path: Path, capsys, args: list, message: str
                                             ) -> None:
    folder = scripted_runs(TOWN, tmp_path / "run")
    binary, empty = tmp_path / "q.bin", tmp_path / "q.txt"
    binary.write_bytes(b"\x00\x01\xff" * 100)
    empty.write_text("# only a comment\n\n")
    huge, long = tmp_path / "huge.txt", tmp_path / "long.txt"
    huge.write_text("Where were you?\n" * 125_000)
    long.write_text("Where were you?\n" + "x" * 600 + "\n")
    names = {"run": folder, "binary": binary, "empty": empty, "huge": huge, "long": long}
    before = tree_hashes(folder, skip="interviews")
    capsys.readouterr()
    assert run.main(["interview", str(folder), *[a.format(**names) for a in args]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert message.format(**names) in err
    assert tree_hashes(folder, skip="interviews") == before and not (folder / "interviews").exists()


def test_interviewing_a_folder_that_is_not_a_run_exits_2(tmp_path: Path, capsys) -> None:
    assert run.main(["interview", str(tmp_path), "--all", "q?"]) == 2
    assert f"{tmp_path}: not a run folder (no scenario.yaml)" in capsys.readouterr().err


def test_a_generative_agent_recalls_its_seed_memories_before_the_first_step(tmp_path: Path) -> None:
    from tests.test_state import generative_town

    world = generative_town(tmp_path)
    ann = world.by_name["Ann"]
    assert ann.recall("a party?", k=5) == [Recollection("Ann:pending:0", "Ann plans a party")]
    world.step()
    stored = ann.recall("a party?", k=3)
    assert [m.id for m in stored] and all(m.id.split(":")[1].isdigit() for m in stored)  # ids in Chroma now
    count = len(ann.stream)
    retrievals = ann.stream.retrievals
    accessed = [n.last_access for n in ann.stream.nodes]
    ann.recall("a party?", k=3)
    assert (len(ann.stream), ann.stream.retrievals) == (count, retrievals)  # reading only
    assert [n.last_access for n in ann.stream.nodes] == accessed


def test_a_fork_may_add_a_survey_asked_after_the_fork(scripted_runs, tmp_path: Path) -> None:
    parent = scripted_runs(TOWN, tmp_path / "parent")
    child = tmp_path / "child"
    survey = "surveys=[{name: f, at: [1, 3], items: [{name: knows, type: yes_no, question: Do you know?}]}]"
    assert run.main(["fork", str(parent), "--at", "1", "--set", survey, "--out", str(child), "--plain"]) == 0
    asked = [(e["step"], e["agent"]) for e in events(child) if e["kind"] == "survey_answer"]
    assert asked == [(3, "A"), (3, "B"), (3, "C")]  # step 1 is the parent's, before the fork
    snapshot = json.loads((parent / "snapshots" / "step-000001.json").read_text())
    prefix = snapshot["events_bytes"]
    assert (child / "events.jsonl").read_bytes()[:prefix] == (parent / "events.jsonl").read_bytes()[:prefix]
    assert [e for e in events(child) if e["kind"] != "survey_answer"] == events(parent)  # measured, not changed
    summary = json.loads((child / "summary.json").read_text())
    assert set(summary["surveys"]["f"]["knows"]["steps"]) == {"3"}
