"""Harvest on recorded runs: exact records, files that `datasets` loads, and bad input that writes nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import datasets
import pytest

import run
from simulacra.data.harvest import Harvest, read_run
from simulacra.errors import ScenarioError

SUMMARY = {"scenario": "alignment", "seed": 5, "steps": 1, "status": "completed",
           "llm": {"backend": "llamacpp", "model": "llamacpp:SmolLM2-135M-Instruct.Q4_1.gguf"}}


def interaction(agent: str, question: str, draft: str, mean_draft: float | None, revised: str,
                mean_revision: float | None) -> dict:
    return {"step": 1, "sim_time": "2026-02-13T08:00", "agent": agent, "kind": "interaction", "data": {
        "iteration": 1, "agent": agent, "question_id": "q0001", "category": "honesty", "question": question,
        "recalled": None, "draft": draft, "ratings": [{"rater": "B", "rating": 3, "reason": "vague", "global": False}],
        "mean_draft": mean_draft, "revised": revised,
        "revision_ratings": [{"rater": "B", "rating": 6, "reason": "clear", "global": False}],
        "mean_revision": mean_revision, "observer_before": {"alignment": 2.0, "engagement": 3.0},
        "observer_after": {"alignment": 6.0, "engagement": 5.0}}}


def event(kind: str, agent: str | None, **data: object) -> dict:
    return {"step": 1, "sim_time": "2026-02-13T08:00", "agent": agent, "kind": kind, "data": data}


def write_run(folder: Path, events: list[dict], summary: dict | None = None, skills: list[dict] | None = None) -> Path:
    folder.mkdir(parents=True)
    lines = [*events, event("run_finished", None, steps=1, status="completed")]
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    (folder / "summary.json").write_text(json.dumps(summary or SUMMARY))
    if skills:
        (folder / "skills").mkdir()
        (folder / "skills" / "skills.jsonl").write_text("".join(json.dumps(s) + "\n" for s in skills))
    return folder


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    society = write_run(tmp_path / "alignment-1", [
        interaction("A", "Should I tell my friend the truth?", "Maybe.", 3.0, "Yes, kindly and in private.", 6.0),
        interaction("C", "Should I tell my friend the truth ?", "Sure.", 3.0, "Yes, gently.", 6.0),  # near-duplicate
        interaction("D", "Is it fine to be late?", "No.", 4.0, "Try not to be.", 4.5),  # gap below 1
    ])
    town = write_run(tmp_path / "town-1", [
        event("said", "Isabella", to="Klaus", text="Come to my party tonight!", place="cafe"),
        event("said", "Klaus", to="Isabella", text="I will, thank you.", place="cafe"),
        event("conversation", "Isabella", **{"with": "Klaus", "turns": 2, "place": "cafe"}),
        event("step_ended", None)], summary={**SUMMARY, "scenario": "valentine"})
    skill = {"name": "mine_log", "version": 1, "description": "chop a tree", "code": "def mine_log(bot): ...",
             "task": "Mine 1 log", "agent": "Steve", "iteration": 1}
    task = {"id": 1, "text": "Get lights", "status": "done", "result": "got lights", "reason": "", "claimed_by": "Tom",
            "attempts": 0, "priority": 0, "claimed_at": 1, "created_by": "objective", "created_at": 0}
    voyager = write_run(tmp_path / "voyager-1", [], summary={**SUMMARY, "scenario": "voyager"}, skills=[skill])
    team = write_run(tmp_path / "babyagi-1", [], summary={**SUMMARY, "scenario": "babyagi", "team": {
        "objective": "a festival", "tasks": [task]}})
    return [society, town, voyager, team]


def test_records_are_exact(runs: list[Path]) -> None:
    harvest = Harvest([read_run(r) for r in runs], min_gap=1.0, dedup=0.95)
    first = harvest.ratings()[0]
    assert first == {"run": "alignment-1", "scenario": "alignment", "seed": 5,
                     "model": "llamacpp:SmolLM2-135M-Instruct.Q4_1.gguf", "agent": "A", "iteration": 1,
                     "question_id": "q0001", "category": "honesty", "question": "Should I tell my friend the truth?",
                     "draft": "Maybe.", "ratings": [{"rater": "B", "rating": 3, "reason": "vague"}],
                     "mean_draft": 3.0, "revised": "Yes, kindly and in private.",
                     "revision_ratings": [{"rater": "B", "rating": 6, "reason": "clear"}], "mean_revision": 6.0,
                     "alignment_before": 2.0, "engagement_before": 3.0, "alignment_after": 6.0, "engagement_after": 5.0}
    assert harvest.preferences() == [{"prompt": "Should I tell my friend the truth?", "chosen": "Yes, kindly and in "
                                      "private.", "rejected": "Maybe.", "score_chosen": 6.0, "score_rejected": 3.0,
                                      "margin": 3.0, "category": "honesty", "run": "alignment-1",
                                      "model": "llamacpp:SmolLM2-135M-Instruct.Q4_1.gguf"}]
    sft = harvest.sft()
    assert [row["messages"] for row in sft] == [
        [{"role": "user", "content": "Should I tell my friend the truth?"},
         {"role": "assistant", "content": "Yes, kindly and in private."}],
        [{"role": "user", "content": "Is it fine to be late?"}, {"role": "assistant", "content": "Try not to be."}],
        [{"role": "user", "content": "Come to my party tonight!"},
         {"role": "assistant", "content": "I will, thank you."}]]
    assert [(s["name"], s["run"]) for s in harvest.skills()] == [("mine_log", "voyager-1")]
    assert [(t["task"], t["status"], t["result"], t["objective"]) for t in harvest.tasks()] == [
        ("Get lights", "done", "got lights", "a festival")]


def test_datasets_load_every_output_as_written(runs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "data"
    assert run.main(["harvest", *map(str, runs), "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"README.md", *(f"{n}.{x}" for n in
                                                              ("ratings", "preferences", "sft", "skills", "tasks")
                                                              for x in ("jsonl", "parquet"))}
    prefs = datasets.load_dataset(str(out), "preferences", split="train")
    assert prefs.column_names[:3] == ["prompt", "chosen", "rejected"] and len(prefs) == 1
    sft = datasets.load_dataset("json", data_files=str(out / "sft.jsonl"), split="train")
    assert sft[2]["messages"][1] == {"role": "assistant", "content": "I will, thank you."}
    ratings = datasets.load_dataset("parquet", data_files=str(out / "ratings.parquet"), split="train")
    assert ratings[0]["ratings"] == [{"rater": "B", "rating": 3, "reason": "vague"}] and len(ratings) == 3
    for name in ("skills", "tasks"):
        assert len(datasets.load_dataset(str(out), name, split="train")) == 1
    card = (out / "README.md").read_text()
    assert "| preferences | 1 |" in card and "| alignment-1 | alignment | 5 |" in card


def test_bad_input_is_one_line_and_writes_nothing(runs: list[Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data"
    not_a_run = tmp_path / "empty"
    not_a_run.mkdir()
    assert run.main(["harvest", str(runs[0]), str(not_a_run), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"error: {not_a_run}: not a run folder (no events.jsonl); give a folder that "
                                       "`python run.py FILE` wrote\n")
    truncated = runs[1] / "events.jsonl"
    truncated.write_text(truncated.read_text() + '{"step": 2, "ki')
    with pytest.raises(ScenarioError, match=re.escape(f"{truncated}:6: truncated or corrupt event")):
        read_run(runs[1])
    (runs[2] / "summary.json").unlink()
    with pytest.raises(ScenarioError, match="the run has not finished"):
        read_run(runs[2])
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".data")] == []
    out.mkdir()
    (out / "x").write_text("keep me")
    with pytest.raises(ScenarioError, match="is not an empty folder"):
        Harvest([read_run(runs[0])]).write(out)
    assert [p.name for p in out.iterdir()] == ["x"]
