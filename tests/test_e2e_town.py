"""The shipped town scenario, end to end on the real embedded model (llama.cpp + SmolLM2)."""

import json
from pathlib import Path

import pandas as pd
import pytest

import run
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e
STEPS = 4


def read_events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("town") / "run"
    cache = out.parent / "cache.jsonl"
    status = run.main([str(ROOT / "scenarios" / "town.yaml"), "--steps", str(STEPS), "--out", str(out), "--plain",
                       "--set", f"llm.cache_path={cache}"])
    assert status == 0
    return out


def test_run_folder_holds_everything(first_run: Path) -> None:
    names = {p.name for p in first_run.iterdir()}
    assert names == {"scenario.yaml", "events.jsonl", "llm_calls.jsonl", "metrics.parquet", "agent_metrics.parquet",
                     "summary.json", "metrics.png", "snapshots"}
    assert sorted(p.name for p in (first_run / "snapshots").iterdir()) == [
        f"step-{n:06d}.json" for n in range(STEPS - 2, STEPS + 1)]  # the newest 3 (outputs.snapshots_keep)
    summary = json.loads((first_run / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["steps"] == STEPS
    assert summary["llm"]["calls"] >= 5
    assert summary["llm"]["errors"] == 0
    assert summary["llm"]["completion_tokens"] > 0
    metrics = pd.read_parquet(first_run / "metrics.parquet")
    assert list(metrics["step"]) == list(range(1, STEPS + 1))
    assert metrics.filter(like="at_").sum(axis=1).tolist() == [5] * STEPS
    assert (first_run / "metrics.png").read_bytes()[:4] == b"\x89PNG"


def test_agents_moved_and_spoke_as_the_llm_decided(first_run: Path) -> None:
    events = read_events(first_run)
    calls = [json.loads(line) for line in (first_run / "llm_calls.jsonl").read_text().splitlines()]
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


def test_replay_from_the_cache_gives_an_identical_event_log(first_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "replay"
    status = run.main([str(ROOT / "scenarios" / "town.yaml"), "--steps", str(STEPS), "--out", str(out), "--plain",
                       "--replay", str(first_run), "--set", "llm.cache=false"])
    assert status == 0
    assert (out / "events.jsonl").read_text() == (first_run / "events.jsonl").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["llm"]["cache_hits"] == summary["llm"]["calls"] > 0
