"""The Voyager scenarios end to end on the embedded model: curriculum, skills run in the sandbox, critic, library."""

import json
from pathlib import Path

import pandas as pd
import pytest

import run
from simulacra.agents.llm.client import parse_json
from simulacra.errors import ParseError
from tests.conftest import RECORDINGS, ROOT, recording_args
from tests.helpers import read_events

pytestmark = pytest.mark.e2e
STEPS, _ = RECORDINGS["voyager"]  # the run is conftest's session fixture `voyager_run` (shared with the resume tests)
STATUSES = {"ok", "error", "timeout", "memory", "forbidden"}
# The single-step tests (a library loaded, the ablation) need one player to show it; each player's step is minutes.
ONE_PLAYER = "agents=[{name: Steve, persona: Steve is methodical and likes to gather plenty before he builds.}]"


def test_every_round_is_written_run_and_judged(voyager_run: Path) -> None:
    events = read_events(voyager_run)
    by_kind: dict[str, list[dict]] = {}
    for e in events:
        by_kind.setdefault(e["kind"], []).append(e)
    assert [e["data"]["text"] for e in by_kind["task_proposed"]][:2] == ["Mine 1 log", "Mine 1 log"]
    # each agent writes once a step: either a skill that runs in the sandbox, or an LLM failure is recorded
    assert len(by_kind["skill_written"]) == 2 * STEPS
    ran = by_kind.get("skill_ran", [])
    failed_writes = [e for e in by_kind["skill_written"] if e["data"]["code"] is None]
    assert len(ran) + len(failed_writes) == 2 * STEPS
    for e in ran:
        assert e["data"]["status"] in STATUSES
        assert all(c["name"] in {"status", "position", "inventory", "nearby", "find", "move_to", "mine", "craft",
                                 "smelt", "place", "chat"} for c in e["data"]["calls"])
    assert len(by_kind["criticised"]) == 2 * STEPS
    calls = [json.loads(line) for line in (voyager_run / "llm_calls.jsonl").read_text().splitlines()]
    written = set()
    for c in calls:
        if c["purpose"] == "skill" and c["error"] is None:
            try:
                written.add(parse_json(c["text"])["code"])
            except (ParseError, KeyError, TypeError):
                continue  # an answer that did not parse was retried; its code never ran
    assert {e["data"]["code"] for e in by_kind["skill_written"] if e["data"]["code"]} <= written


def test_the_world_changes_only_through_the_skills_that_ran(voyager_run: Path) -> None:
    events = read_events(voyager_run)
    summary = json.loads((voyager_run / "summary.json").read_text())
    held: dict[str, dict[str, int]] = {}
    for e in events:
        changes = e["data"]["changes"] if e["kind"] in ("skill_ran", "hazard") else []
        for c in changes:
            if c["kind"] == "inventory":
                items = held.setdefault(c["player"], {})
                items[c["item"]] = items.get(c["item"], 0) + c["delta"]
    for name, inventory in summary["inventories"].items():
        assert {k: v for k, v in held.get(name, {}).items() if v} == inventory
    assert summary["status"] == "completed" and summary["steps"] == STEPS
    assert set(summary["tasks"]) == {"completed", "failed", "by_agent"}
    assert summary["tasks"]["completed"] == sum(1 for e in events if e["kind"] == "task_completed")


def test_verified_skills_are_in_the_library_and_its_folder(voyager_run: Path) -> None:
    events = read_events(voyager_run)
    added = [e["data"] for e in events if e["kind"] == "skill_added"]
    completed = [e for e in events if e["kind"] == "task_completed"]
    assert len(added) == len(completed)  # the library is on: every completed task stores its skill
    summary = json.loads((voyager_run / "summary.json").read_text())
    assert summary["skill_library"]["skills"] == len({a["name"] for a in added})
    if added:
        lines = [json.loads(x) for x in (voyager_run / "skills" / "skills.jsonl").read_text().splitlines()]
        assert [(r["name"], r["version"]) for r in lines] == [(a["name"], a["version"]) for a in added]
    metrics = pd.read_parquet(voyager_run / "metrics.parquet")
    assert metrics["step"].tolist() == list(range(STEPS + 1))
    assert metrics["skills"].iloc[-1] == summary["skill_library"]["skills"]
    assert (voyager_run / "tech_tree.png").read_bytes()[:4] == b"\x89PNG"


def test_replay_gives_the_same_event_log(voyager_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "replay"
    status = run.main([*recording_args("voyager"), "--out", str(out), "--replay", str(voyager_run)])
    assert status == 0
    assert (out / "events.jsonl").read_text() == (voyager_run / "events.jsonl").read_text()


def test_the_ablation_runs_without_a_library(tmp_path: Path) -> None:
    out = tmp_path / "run"
    status = run.main([str(ROOT / "scenarios" / "voyager-no-library.yaml"), "--steps", "1", "--out", str(out),
                       "--plain", "--set", "llm.cache=false", "--set", ONE_PLAYER])
    assert status == 0
    events = read_events(out)
    assert not any(e["kind"] == "skill_added" for e in events)
    written = [e for e in events if e["kind"] == "skill_written"]
    assert written and all(e["data"]["retrieved"] == [] for e in written)  # a skill was written, from nothing
    assert not (out / "skills").exists()
    assert "skill_library" not in json.loads((out / "summary.json").read_text())


def test_a_later_run_starts_from_the_library(voyager_run: Path, tmp_path: Path) -> None:
    grown = len((voyager_run / "skills" / "skills.jsonl").read_text().splitlines())
    out = tmp_path / "second"
    status = run.main([str(ROOT / "scenarios" / "voyager.yaml"), "--steps", "1", "--out", str(out), "--plain",
                       "--set", "llm.cache=false", "--set", f"world.skills={voyager_run}", "--set", ONE_PLAYER])
    assert status == 0
    started = read_events(out)[0]
    assert started["kind"] == "run_started" and started["data"]["skills"] == len(
        {json.loads(x)["name"] for x in (voyager_run / "skills" / "skills.jsonl").read_text().splitlines()})
    copied = (out / "skills" / "skills.jsonl").read_text().splitlines()
    assert len(copied) >= grown  # the loaded versions are in this run's library too
