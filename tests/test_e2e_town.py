"""The shipped town scenario, end to end on the real embedded model (llama.cpp + SmolLM2)."""

import json
from pathlib import Path

import pandas as pd
import pytest

import run
from tests.conftest import RECORDINGS, recording_args
from tests.helpers import read_events

pytestmark = pytest.mark.e2e
STEPS, _ = RECORDINGS["town"]  # the run is conftest's session fixture `town_run` (shared with the resume tests)


def test_run_folder_holds_everything(town_run: Path) -> None:
    names = {p.name for p in town_run.iterdir()}
    assert names == {"scenario.yaml", "events.jsonl", "llm_calls.jsonl", "metrics.parquet", "agent_metrics.parquet",
                     "summary.json", "metrics.png", "snapshots", "survey-checkin.png", "manifest.json", ".lock"}
    assert sorted(p.name for p in (town_run / "snapshots").iterdir()) == [
        f"step-{n:06d}.json" for n in range(STEPS + 1)]  # every step (outputs.snapshots_mb: far within budget)
    summary = json.loads((town_run / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["steps"] == STEPS
    assert summary["llm"]["calls"] >= 5
    assert summary["llm"]["errors"] == 0
    assert summary["llm"]["completion_tokens"] > 0
    metrics = pd.read_parquet(town_run / "metrics.parquet")
    assert list(metrics["step"]) == list(range(1, STEPS + 1))
    assert metrics.filter(like="at_").sum(axis=1).tolist() == [5] * STEPS
    assert (town_run / "metrics.png").read_bytes()[:4] == b"\x89PNG"


def test_agents_moved_and_spoke_as_the_llm_decided(town_run: Path) -> None:
    events = read_events(town_run)
    calls = [json.loads(line) for line in (town_run / "llm_calls.jsonl").read_text().splitlines()]
    answers = {json.loads(c["text"])["text"].strip()[:100] for c in calls if c["purpose"] == "decide"}
    outcome = {(e["step"], e["agent"]): e for e in events if e["kind"] in
               {"moved", "move_blocked", "said", "talk_failed", "activity", "waited"}}
    moved = spoke = 0
    for decision in (e for e in events if e["kind"] == "decided"):
        result = outcome[(decision["step"], decision["agent"])]
        data = decision["data"]
        if data["kind"] == "go_to":
            assert result["kind"] in {"moved", "move_blocked"}
            if result["kind"] == "moved":
                assert result["data"]["destination"] == data["place"]
                moved += 1
        elif data["kind"] == "talk_to":
            assert result["kind"] in {"said", "talk_failed"}
            assert result["data"]["to"] == data["person"]
            assert result["data"]["text"] == data["text"]
            assert data["text"] in answers, "the words come from the model's answer"
            spoke += result["kind"] == "said"
        elif data["kind"] == "do":
            assert (result["kind"], result["data"]["activity"]) == ("activity", data["text"])
    assert moved >= 1
    assert spoke >= 1
    assert {e["kind"] for e in events} >= {"run_started", "observed", "decided", "step_ended", "run_finished"}


def test_replay_from_the_cache_gives_an_identical_event_log(town_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "replay"
    status = run.main([*recording_args("town"), "--out", str(out), "--replay", str(town_run)])
    assert status == 0
    assert (out / "events.jsonl").read_text() == (town_run / "events.jsonl").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["llm"]["cache_hits"] == summary["llm"]["calls"] > 0


def test_a_survey_at_steps_1_and_3_writes_answers_metrics_and_a_plot(town_run: Path) -> None:
    answers = [e for e in read_events(town_run) if e["kind"] == "survey_answer"]
    assert [(e["step"], e["data"]["item"]) for e in answers[:3]] == [(1, "mood"), (1, "place"), (1, "people")]
    assert len(answers) == 2 * 5 * 3 and {e["step"] for e in answers} == {1, 3}
    allowed = {"mood": set(range(1, 6)), "place": {"plaza", "cafe", "park", "store", "library", "homes"},
               "people": set(range(11))}
    for e in answers:
        assert e["data"]["answer"] in allowed[e["data"]["item"]] if e["data"]["ok"] else e["data"]["answer"] is None
    metrics = pd.read_parquet(town_run / "metrics.parquet").set_index("step")
    for step in (1, 3):
        moods = [e["data"]["answer"] for e in answers if e["step"] == step and e["data"]["item"] == "mood"
                 and e["data"]["ok"]]
        assert metrics.loc[step, "survey.checkin.mood.n"] == len(moods)
        if moods:
            assert metrics.loc[step, "survey.checkin.mood.mean"] == pytest.approx(sum(moods) / len(moods))
    assert metrics["survey.checkin.people.n"].notna().tolist() == [True, False, True, False]
    assert {f"survey.checkin.place.{p}" for p in allowed["place"]} <= set(metrics)
    summary = json.loads((town_run / "summary.json").read_text())
    assert set(summary["surveys"]["checkin"]["place"]["steps"]) == {"1", "3"}
    assert (town_run / "survey-checkin.png").read_bytes()[:4] == b"\x89PNG"
