"""The transcript rater: transcripts from events, the judge held to the scales, the files, bad input, the CLI."""

from __future__ import annotations

import io
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import run
from simulacra.agents.llm import LLMClient, LLMRequest
from simulacra.agents.respondent import instrument_seed
from simulacra.errors import ScenarioError
from simulacra.instruments import rating
from simulacra.instruments.rating import Rater, describe, fit, parse_scores, rubric_path, score_schema, shipped_rubrics
from simulacra.scenarios.instruments import Rubric
from simulacra.scenarios.loading import load_file
from tests.conftest import MINIMAL
from tests.fakes import ScriptedBackend, built, engine_sets
from tests.helpers import tree_hashes
from tests.test_hostile_files import laughs


def event(step: int, agent: str | None, kind: str, data: dict[str, Any], clock: str = "14:00") -> dict[str, Any]:
    return {"step": step, "sim_time": f"2026-02-14T{clock}", "agent": agent, "kind": kind, "data": data}


EVENTS = [
    event(0, None, "run_started", {"scenario": "t", "seed": 0, "steps": 2, "agents": {"B": "park", "A": "cafe"}}),
    event(1, "A", "observed", {"place": "cafe", "here": ["B"], "people": ["B"], "nearby": [], "heard": []}),
    event(1, "A", "planned", {"level": "day", "items": ["bake bread", "open the cafe"]}),
    event(1, "A", "decided", {"kind": "talk_to", "place": None, "person": "B", "text": ""}),
    event(1, "A", "said", {"to": "B", "text": "Fresh  bread\ntoday!", "place": "cafe"}),
    event(1, "B", "moved", {"from": "park", "to": "plaza", "destination": "cafe", "arrived": False}),
    event(1, None, "step_ended", {"said": 1, "moved": 1}),
    event(2, "A", "reflected", {"questions": ["Who likes bread?"], "insights": [
        {"text": "B likes bread", "evidence": ["m1"]}, {"text": "mornings are busy", "evidence": []}]}, "14:10"),
    event(2, "A", "reacted", {"choice": "talk", "person": "B", "reaction": ""}, "14:10"),
    event(2, "A", "llm_failure", {"purpose": "react", "attempts": 3, "error": "timeout", "fallback": "continue"},
          "14:10"),
    event(2, "B", "activity", {"place": "plaza", "activity": "feeding the pigeons"}, "14:10"),
    event(2, "B", "survey_answer", {"survey": "party", "item": "knows", "type": "yes_no", "ok": True,
                                    "question": "Do you know about a party?", "answer": "no", "attempts": 1,
                                    "error": None, "memories": []}, "14:10"),
    event(2, None, "run_finished", {"steps": 2, "status": "completed"}, "14:10"),
]
A_LINES = ["[step 1 14:00] planned (day): bake bread; open the cafe",
           '[step 1 14:00] said to B: "Fresh bread today!"',
           "[step 2 14:10] reflected: B likes bread; mornings are busy",
           "[step 2 14:10] reacted: chose to talk to B"]
B_LINES = ["[step 1 14:00] moved to the plaza (on the way to the cafe)",
           "[step 2 14:10] did: feeding the pigeons (at the plaza)",
           '[step 2 14:10] was asked "Do you know about a party?" → no']
RUBRIC = """\
name: r
description: A test rubric.
source: nowhere
dimensions:
  - {name: warmth, description: How warm the character is., min: 1, max: 7}
  - {name: focus, description: How focused it is., min: -2, max: 2}
"""
GOOD = {"reasoning": "Friendly  and\nsteady.", "warmth": 5, "focus": -1}
BELIEVABILITY = ("self_knowledge", "memory", "plans", "reactions", "reflections", "overall")
FEEDBACK = ("Give each dimension one whole number in its range: warmth 1..7, focus -2..2. Reply as JSON: "
            '{"reasoning": "...", "warmth": 1..7, "focus": -2..2}.')


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A finished run folder of the minimal scenario (agents A and B) with the events above."""
    folder = tmp_path / "run-1"
    folder.mkdir()
    (folder / "scenario.yaml").write_text(MINIMAL, encoding="utf-8")
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EVENTS), encoding="utf-8")
    return folder


@pytest.fixture
def rubric(tmp_path: Path) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(RUBRIC, encoding="utf-8")
    return path


def agent_of(request: LLMRequest) -> str:
    return re.search(r"Transcript of (\w+),", request.messages[1].content).group(1)


def scripted(answers: dict[str, list[Any]]) -> Callable[[LLMRequest], str]:
    """Answers each agent's requests with its list in order (the last one again when used up), as JSON."""
    seen: dict[str, int] = {}

    def script(request: LLMRequest) -> str:
        agent = agent_of(request)
        n = seen[agent] = seen.get(agent, -1) + 1
        return json.dumps(answers[agent][min(n, len(answers[agent]) - 1)])

    return script


def good_judge(request: LLMRequest) -> str:
    """Every agent's scores: GOOD."""
    return json.dumps(GOOD)


def rate(run_dir: Path, rubric: Path | str, script: Callable[[LLMRequest], str], **kwargs: Any,
         ) -> tuple[list[dict[str, Any]], ScriptedBackend, Rater]:
    backend = ScriptedBackend(script)
    rater = Rater(run_dir, rubric, client=LLMClient(backend, retries=1, backoff_s=0),
                  console=Console(file=io.StringIO(), width=160), **kwargs)
    return rater.run(), backend, rater



# --- transcripts --------------------------------------------------------------------------------------------

def test_transcripts_are_one_line_per_event_and_keep_the_latest_lines(run_dir: Path, rubric: Path) -> None:
    rater = Rater(run_dir, rubric, console=Console(file=io.StringIO()))
    assert rater.agents == ["A", "B"]  # the scenario's order, whatever run_started's
    assert rater.transcripts == {"A": "\n".join(A_LINES), "B": "\n".join(B_LINES)}
    cut = "\n".join(["(2 earlier lines left out)", *A_LINES[2:]])
    assert Rater(run_dir, rubric, max_chars=len(cut)).transcripts["A"] == cut
    assert Rater(run_dir, rubric, max_chars=len(cut) - 1).transcripts["A"] == "\n".join(
        ["(3 earlier lines left out)", A_LINES[3]])
    assert fit(A_LINES, 10_000) == "\n".join(A_LINES)
    assert fit([], 100) == ""


def test_a_transcript_fits_the_window_of_an_engine_in_this_process(run_dir: Path, rubric: Path) -> None:
    said = [event(s, "A", "said", {"to": "B", "text": f"line {s}: " + "the party is at five " * 8}) for s in range(99)]
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in [EVENTS[0], *said]))
    answer = {"reasoning": "", **dict.fromkeys(BELIEVABILITY, 4)}
    _, backend, small = rate(run_dir, "believability", scripted({"A": [answer], "B": [answer]}))  # llamacpp, 2048
    assert 2500 < small.transcript_chars < 4000
    assert small.transcripts["A"].startswith("(") and len(small.transcripts["A"]) <= small.transcript_chars
    for request in backend.requests:
        assert sum(len(m.content) for m in request.messages) / 2.8 + request.max_tokens + 24 <= 2048
    assert "Transcript of B, oldest first:\n(nothing said or done)\n" in backend.requests[-1].messages[1].content
    assert Rater(run_dir, "believability", judge_overrides=["llm.n_ctx=8192"]).transcript_chars == 4000
    assert Rater(run_dir, rubric).transcript_chars == 4000  # a short rubric leaves room
    server = Rater(run_dir, "believability", judge_overrides=["llm.backend=openai", "llm.base_url=http://127.0.0.1:9/v1",
                                                     "llm.model=m"])
    assert server.transcript_chars == 4000 and 3900 < len(server.transcripts["A"]) <= 4000


@pytest.mark.parametrize(("kind", "data", "line"), [
    ("interaction", {"question": "Is lying ever fine?", "draft": "No.", "revised": "Rarely, to spare pain."},
     'was asked "Is lying ever fine?"; answered: "No."; revised: "Rarely, to spare pain."'),
    ("skill_ran", {"task": "Mine 1 log", "round": 2, "status": "error", "message": "no log nearby"},
     "ran a skill for 'Mine 1 log' (round 2): error (no log nearby)"),
    ("task_completed", {"task": "Mine 1 log", "rounds": 2}, "completed 'Mine 1 log' in 2 round(s)"),
    ("tool_called", {"task_id": 4, "task": "get wood", "tool": "mine", "args": {"block": "log"}, "status": "ok",
                     "result": {"log": 1}, "message": ""},
     "called mine(block='log') for task 4: ok -> {\"log\": 1}"),
    ("tool_called", {"task_id": 4, "task": "get wood", "tool": "craft", "args": {}, "status": "error",
                     "result": None, "message": "needs planks"},
     "called craft() for task 4: failed: needs planks"),
    ("task_done", {"id": 4, "text": "get wood", "result": "mined 3 logs"},
     "finished task 4 (get wood): mined 3 logs"),
    ("reacted", {"choice": "react", "person": None, "reaction": "help Tom"}, "reacted: help Tom"),
    ("reacted", {"choice": "continue", "person": None, "reaction": ""}, "reacted: carried on as planned"),
    ("moved", {"from": "park", "to": "cafe", "destination": "cafe", "arrived": True}, "moved to the cafe"),
    ("survey_answer", {"question": "Mood?", "answer": None, "ok": False}, 'was asked "Mood?" → (no answer)'),
    ("talk_failed", {"to": "B", "text": "", "reason": "B is busy"}, "wanted to talk to B, but B is busy"),
    ("said", {"to": "B", "text": "x" * 300}, 'said to B: "' + "x" * 210 + "..."),  # 240 characters in all
    ("observed", {"place": "cafe"}, None),
    ("decided", {"kind": "wait"}, None),
    ("llm_failure", {"purpose": "plan"}, None),
    ("conversation", {"with": "B", "turns": 4}, None),
    ("step_ended", {"said": 2}, None),  # ours, bookkeeping: left out
    ("trade", {"good": "apples", "price": 3}, "trade: good=apples, price=3"),  # a world's own kind: told
])
def test_each_kind_of_event_is_one_short_line_or_left_out(kind: str, data: dict[str, Any], line: str | None) -> None:
    assert describe(event(3, "A", kind, data, "09:30")) == (line and f"[step 3 09:30] {line}")


# --- the judge ------------------------------------------------------------------------------------------

def test_the_judge_sees_the_rubric_and_the_transcript_only(run_dir: Path, rubric: Path) -> None:
    records, backend, rater = rate(run_dir, rubric, scripted({"A": [GOOD], "B": [GOOD]}))
    assert len(backend.requests) == 2
    request = next(r for r in backend.requests if agent_of(r) == "A")
    system, user = (m.content for m in request.messages)
    assert system.startswith("You are an impartial judge of a simulation transcript.")
    assert "- warmth (1 to 7): How warm the character is." in user
    assert "- focus (-2 to 2): How focused it is." in user
    assert "Transcript of A, oldest first:\n" + "\n".join(A_LINES) in user
    assert "a baker" not in system + user  # A's persona
    assert request.schema == score_schema(load_file(rubric, Rubric, what="rubric"))
    assert request.max_tokens == 40 + 8 * 2 + 100
    assert request.seed == instrument_seed(rater.scenario.seed, "rate", "r", "A")


def test_schema_holds_each_score_to_its_scale(rubric: Path) -> None:
    assert score_schema(load_file(rubric, Rubric, what="rubric")) == {
        "type": "object",
        "properties": {"reasoning": {"type": "string", "maxLength": 300},
                       "warmth": {"type": "integer", "enum": [1, 2, 3, 4, 5, 6, 7]},
                       "focus": {"type": "integer", "enum": [-2, -1, 0, 1, 2]}},
        "required": ["reasoning", "warmth", "focus"], "additionalProperties": False}


@pytest.mark.parametrize(("bad", "why"), [
    ({"reasoning": "", "warmth": 9, "focus": 0}, "warmth = 9 is outside 1..7"),
    ({"reasoning": "", "warmth": True, "focus": 0}, "warmth = true is not a whole number"),
    ({"reasoning": "", "warmth": 4.0, "focus": -3}, "warmth = 4.0 is not a whole number; focus = -3 is outside -2..2"),
    ({"reasoning": "", "warmth": 2}, "focus is missing"),
])
def test_a_score_off_the_scale_is_refused_with_feedback_then_the_valid_answer_kept(
        run_dir: Path, rubric: Path, bad: dict[str, Any], why: str) -> None:
    records, backend, _ = rate(run_dir, rubric, scripted({"A": [bad, GOOD], "B": [GOOD]}))
    retry = [r for r in backend.requests if agent_of(r) == "A"][1]
    assert retry.messages[-2].content == json.dumps(bad)
    assert retry.messages[-1].content == f"Those scores are not allowed ({why}). {FEEDBACK}"
    assert [(r["agent"], r["dimension"], r["score"], r["ok"]) for r in records] == [
        ("A", "warmth", 5, True), ("A", "focus", -1, True), ("B", "warmth", 5, True), ("B", "focus", -1, True)]


def test_parse_scores_returns_the_scores_and_a_short_reasoning(rubric: Path) -> None:
    r = load_file(rubric, Rubric, what="rubric")
    assert parse_scores(r, {**GOOD, "reasoning": "a\n" + "b" * 400}) == ({"warmth": 5, "focus": -1}, "a " + "b" * 298)
    with pytest.raises(rating.ParseError, match=re.escape("scores refused: a JSON list, not an object; warmth is "
                                                          "missing; focus is missing")):
        parse_scores(r, [5, -1])


def test_records_files_and_table(run_dir: Path, rubric: Path) -> None:
    records, _, rater = rate(run_dir, rubric, scripted({"A": [GOOD], "B": [{**GOOD, "warmth": 2, "focus": 2}]}))
    seed = {a: instrument_seed(rater.scenario.seed, "rate", "r", a) for a in "AB"}
    base = {"run": "run-1", "scenario": "t", "rubric": "r", "ok": True, "reasoning": "Friendly and steady.",
            "model": "scripted"}
    assert records == [
        {**base, "agent": "A", "dimension": "warmth", "score": 5, "min": 1, "max": 7, "seed": seed["A"]},
        {**base, "agent": "A", "dimension": "focus", "score": -1, "min": -2, "max": 2, "seed": seed["A"]},
        {**base, "agent": "B", "dimension": "warmth", "score": 2, "min": 1, "max": 7, "seed": seed["B"]},
        {**base, "agent": "B", "dimension": "focus", "score": 2, "min": -2, "max": 2, "seed": seed["B"]}]
    out = run_dir / "ratings"
    assert [json.loads(line) for line in (out / "r.jsonl").read_text().splitlines()] == records
    assert (out / "r.md").read_text() == (
        "# Ratings: r\n\nRun `run-1` (scenario t), judged by `scripted`.\n\nRubric source: nowhere\n\n"
        "| agent | warmth (1..7) | focus (-2..2) |\n|---|---:|---:|\n| A | 5 | -1 |\n| B | 2 | 2 |\n"
        "| **mean** | 3.50 | 0.50 |\n\n## Reasoning\n\n- **A**: Friendly and steady.\n- **B**: Friendly and steady.\n")
    assert (out / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir()) == ["r.jsonl", "r.md", "r.png"]  # no temporary file left
    printed = rater.console.file.getvalue()
    assert "r ratings of run-1" in printed and "3.50" in printed and f"ratings written to {out / 'r.jsonl'}" in printed


def test_a_judge_that_never_answers_well_gives_failed_records_and_still_writes(run_dir: Path, rubric: Path) -> None:
    records, backend, _ = rate(run_dir, rubric, scripted({"A": [{**GOOD, "warmth": 0}], "B": [GOOD]}))
    assert len([r for r in backend.requests if agent_of(r) == "A"]) == 2  # retries=1
    assert [(r["agent"], r["score"], r["ok"], r["reasoning"]) for r in records] == [
        ("A", None, False, None), ("A", None, False, None),
        ("B", 5, True, "Friendly and steady."), ("B", -1, True, "Friendly and steady.")]
    md = (run_dir / "ratings" / "r.md").read_text()
    assert "| A | – | – |" in md and "| **mean** | 5.00 | -1.00 |" in md and "- **A**: (no valid answer" in md
    assert (run_dir / "ratings" / "r.png").read_bytes()[:4] == b"\x89PNG"


def test_rating_again_replays_the_judge_from_the_cache(run_dir: Path, rubric: Path) -> None:
    judge = "tests.test_rating:good_judge"
    quiet = Console(file=io.StringIO())
    with built(judge) as backends:
        first = Rater(run_dir, rubric, console=quiet, judge_overrides=engine_sets(judge)).run()
        scores = (run_dir / "ratings" / "r.jsonl").read_bytes()
        second = Rater(run_dir, rubric, console=quiet, judge_overrides=engine_sets(judge)).run()
    assert [len(b.requests) for b in backends] == [2, 0]
    assert first == second and (run_dir / "ratings" / "r.jsonl").read_bytes() == scores
    assert sorted(p.name for p in (run_dir / "ratings").iterdir()) == ["llm-cache.jsonl", "r.jsonl", "r.md", "r.png"]


def test_judge_overrides_choose_the_engine_and_are_validated(run_dir: Path, rubric: Path) -> None:
    assert Rater(run_dir, rubric, judge_overrides=["llm.temperature=0"]).scenario.llm.temperature == 0
    assert Rater(run_dir, rubric, judge_overrides=[" llm.temperature = 0"]).scenario.llm.temperature == 0
    with pytest.raises(ScenarioError, match=re.escape(
            "--judge-set llm.temperature=9: llm.temperature: Input should be less than or equal to 2 (got 9)")):
        Rater(run_dir, rubric, judge_overrides=["llm.temperature=9"])
    with pytest.raises(ScenarioError, match=re.escape(
            "--judge-set 'agents.0.name=X': only llm.* fields choose the judge; e.g. --judge-set llm.backend=openai")):
        Rater(run_dir, rubric, judge_overrides=["llm.temperature=0", "agents.0.name=X"])
    with pytest.raises(ScenarioError, match=re.escape("--judge-set 'seed =5': only llm.* fields choose the judge")):
        Rater(run_dir, rubric, judge_overrides=["seed =5"])  # the key is `seed`, as --set reads it


# --- rubrics --------------------------------------------------------------------------------------------

def test_shipped_rubrics_load_with_their_published_scales() -> None:
    assert sorted(shipped_rubrics()) == ["believability", "sotopia"]
    believability = load_file(rubric_path("believability"), Rubric, what="rubric")
    assert [(d.name, d.min, d.max) for d in believability.dimensions] == [
        (name, 1, 7) for name in BELIEVABILITY]
    assert "Park" in believability.source and "Generative Agents" in believability.source
    sotopia = load_file(rubric_path("sotopia"), Rubric, what="rubric")
    assert [(d.name, d.min, d.max) for d in sotopia.dimensions] == [
        ("believability", 0, 10), ("relationship", -5, 5), ("knowledge", 0, 10), ("secret", -10, 0),
        ("social_rules", -10, 0), ("financial_and_material_benefits", -5, 5), ("goal", 0, 10)]
    assert "Zhou" in sotopia.source and "SOTOPIA" in sotopia.source


def test_bad_input_is_one_line_before_anything_is_written(run_dir: Path, rubric: Path, tmp_path: Path) -> None:
    before = tree_hashes(run_dir)
    with pytest.raises(ScenarioError, match=re.escape(
            f"{tmp_path / 'none.yaml'}: cannot read the rubric (No such file or directory); check the path")):
        Rater(run_dir, tmp_path / "none.yaml")
    with pytest.raises(ScenarioError, match=re.escape(
            "--rubric 'friendliness': no such file and no shipped rubric; give a rubric YAML file or one of: "
            "believability, sotopia")):
        Rater(run_dir, "friendliness")
    rubric.write_text(RUBRIC.replace("min: -2, max: 2", "min: 2, max: -2"), encoding="utf-8")
    with pytest.raises(ScenarioError, match=re.escape(f"{rubric}:6: dimensions[1].max: must be greater than min (2)")):
        Rater(run_dir, rubric)
    rubric.write_text(RUBRIC.replace("name: focus", "name: reasoning"), encoding="utf-8")
    with pytest.raises(ScenarioError, match=re.escape(
            f"{rubric}: dimensions[1].name: 'reasoning' is where the judge explains its scores; rename it")):
        Rater(run_dir, rubric)
    assert tree_hashes(run_dir) == before


def test_a_damaged_or_empty_event_log_is_one_line(run_dir: Path, rubric: Path) -> None:
    events = run_dir / "events.jsonl"
    events.write_text(events.read_text() + '{"step": 3, "ki\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match=re.escape(f"{events}:14: truncated or corrupt event (")):
        Rater(run_dir, rubric)
    events.write_text(json.dumps(EVENTS[0]) + "\n[1, 2]\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=re.escape(f"{events}:2: not an event (an object with step, sim_time, "
                                                      "agent, kind, data); the run folder's event log is damaged")):
        Rater(run_dir, rubric)
    events.write_text("".join(json.dumps(e) + "\n" for e in EVENTS if e["agent"] is None or e["kind"] == "observed"))
    with pytest.raises(ScenarioError, match=re.escape(f"{events}: no agent events to rate (nobody said or did "
                                                      "anything); rate a run that ran steps")):
        Rater(run_dir, rubric)
    assert not (run_dir / "ratings").exists()


@pytest.mark.parametrize(("case", "message"), [
    ("not a run folder", "{tmp}/empty: not a run folder (no scenario.yaml); give a folder that python run.py FILE "
                         "wrote"),
    ("missing rubric", "{tmp}/none.yaml: cannot read the rubric (No such file or directory); check the path"),
    ("billion laughs", "{tmp}/laughs.yaml:5: more than 25,000 values (each use of an alias counts them again); "
                       "shorten the file"),
    ("judge-set seed", "--judge-set 'seed=3': only llm.* fields choose the judge; e.g. --judge-set llm.backend=openai"),
])
def test_the_command_line_says_one_line_and_changes_nothing(run_dir: Path, rubric: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str], case: str,
                                                            message: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "laughs.yaml").write_text(laughs(), encoding="utf-8")
    args = {"not a run folder": [str(tmp_path / "empty"), "--rubric", str(rubric)],
            "missing rubric": [str(run_dir), "--rubric", str(tmp_path / "none.yaml")],
            "billion laughs": [str(run_dir), "--rubric", str(tmp_path / "laughs.yaml")],
            "judge-set seed": [str(run_dir), "--rubric", "believability", "--judge-set", "seed=3"]}[case]
    before = tree_hashes(tmp_path)
    assert run.main(["rate", *args]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"error: {message.format(tmp=tmp_path)}\n"
    assert captured.out == ""
    assert tree_hashes(tmp_path) == before and not (run_dir / "ratings").exists()


# --- end to end -----------------------------------------------------------------------------------------

@pytest.mark.e2e
def test_rate_a_valentine_run_on_the_embedded_model(valentine_run: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "run"
    shutil.copytree(valentine_run, copy)
    before = tree_hashes(copy)
    assert run.main(["rate", str(copy), "--rubric", "believability"]) == 0
    records = [json.loads(line) for line in (copy / "ratings" / "believability.jsonl").read_text().splitlines()]
    assert [(r["agent"], r["dimension"]) for r in records] == [
        (agent, d) for agent in ("Isabella", "Maria", "Klaus", "Sam", "Tom") for d in BELIEVABILITY]
    assert any(r["ok"] for r in records)  # the judge answered (its calls queue: none times out waiting)
    assert all(1 <= r["score"] <= 7 for r in records if r["ok"])
    assert all(r["score"] is None for r in records if not r["ok"])
    assert {r["model"] for r in records} == {"llamacpp:SmolLM2-135M-Instruct.Q4_1.gguf"}
    assert (copy / "ratings" / "believability.png").read_bytes()[:4] == b"\x89PNG"
    assert "| **mean** |" in (copy / "ratings" / "believability.md").read_text()
    assert "ratings written to" in capsys.readouterr().out
    after = tree_hashes(copy)
    assert {k: v for k, v in after.items() if not k.startswith("ratings/")} == before
    assert sorted(k for k in after if k.startswith("ratings/")) == [
        "ratings/believability.jsonl", "ratings/believability.md", "ratings/believability.png",
        "ratings/llm-cache.jsonl"]
