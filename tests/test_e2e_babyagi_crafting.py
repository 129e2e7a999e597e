"""The BabyAGI crafting scenario end to end on the embedded model: tasks worked through the skill API as tools."""

import json
from collections import Counter
from pathlib import Path

import chromadb
import pandas as pd
import pytest
from chromadb.config import Settings

import run
from simulacra.memory.embedder import ChromaEmbedding
from simulacra.worlds.crafting_bot import Bot
from tests.conftest import RECORDINGS, recording_args
from tests.fakes import bag_of_words
from tests.helpers import read_events

pytestmark = pytest.mark.e2e
STEPS, _ = RECORDINGS["babyagi-crafting"]  # the run: conftest's session fixture (shared with the resume tests)


def test_tasks_were_claimed_and_executed_through_the_skill_api(babyagi_crafting_run: Path) -> None:
    events = read_events(babyagi_crafting_run)
    kinds = Counter(e["kind"] for e in events)
    assert kinds["task_created"] >= 3  # the scenario's first tasks, then the team's own
    assert {e["agent"] for e in events if e["kind"] == "task_claimed"} == {"Steve", "Alex"}
    called = [e for e in events if e["kind"] == "tool_called"]
    assert called and all(e["data"]["tool"] in Bot.TOOLS for e in called)
    assert all((e["data"]["status"] == "ok") == (e["data"]["message"] == "") for e in called)
    # the world changed only through the tools' calls: replaying their changes gives the final inventories
    held: dict[str, Counter] = {}
    for e in called:
        for c in e["data"]["changes"]:
            if c["kind"] == "inventory":
                held.setdefault(c["player"], Counter())[c["item"]] += c["delta"]
    summary = json.loads((babyagi_crafting_run / "summary.json").read_text())
    for name, inventory in summary["inventories"].items():
        assert {k: v for k, v in held.get(name, Counter()).items() if v} == inventory
    # with task_steps=1 a task that made a call closes the next step, its record as its result
    done = [e for e in events if e["kind"] == "task_done"]
    assert done and all(e["data"]["result"] for e in done)
    calls = [json.loads(line) for line in (babyagi_crafting_run / "llm_calls.jsonl").read_text().splitlines()]
    assert {c["purpose"] for c in calls} >= {"execute", "judge"}
    execute = next(c for c in calls if c["purpose"] == "execute")
    assert execute["request"]["schema"]["properties"]["tool"]["enum"][:len(Bot.TOOLS)] == list(Bot.TOOLS)


def test_results_are_stored_in_chroma_and_the_summary_has_the_statistics(babyagi_crafting_run: Path) -> None:
    summary = json.loads((babyagi_crafting_run / "summary.json").read_text())
    team = summary["team"]
    assert team["counts"]["done"] >= 1 and team["counts"]["created"] >= 3
    assert set(team["verdict"]) == {"met", "reasoning", "judged"} and isinstance(team["verdict"]["met"], bool)
    client = chromadb.PersistentClient(path=str(babyagi_crafting_run / "chroma"),
                                       settings=Settings(anonymized_telemetry=False))
    stored = client.get_collection(team["results_collection"], embedding_function=ChromaEmbedding(bag_of_words))
    assert stored.count() == team["counts"]["done"]
    metrics = pd.read_parquet(babyagi_crafting_run / "metrics.parquet")
    assert metrics["tasks_done"].iloc[-1] == team["counts"]["done"]
    called = sum(1 for e in read_events(babyagi_crafting_run) if e["kind"] == "tool_called")
    assert metrics["tool_called"].sum() == called
    assert len(metrics) == STEPS + 1 and metrics["board_length"].between(0, 12).all()  # max_tasks: 12
    for plot in ("tasks.png", "tech_tree.png"):
        assert (babyagi_crafting_run / plot).read_bytes()[:4] == b"\x89PNG"


def test_replay_gives_the_same_event_log(babyagi_crafting_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "replay"
    assert run.main([*recording_args("babyagi-crafting"), "--out", str(out), "--replay",
                     str(babyagi_crafting_run)]) == 0
    assert (out / "events.jsonl").read_text() == (babyagi_crafting_run / "events.jsonl").read_text()
