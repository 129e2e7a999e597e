"""The BabyAGI scenario end to end on the embedded model, real embeddings and a persistent Chroma."""

import json
from pathlib import Path

import chromadb
import pandas as pd
import pytest
from chromadb.config import Settings

from simulacra.memory.embedder import ChromaEmbedding
from tests.conftest import RECORDINGS
from tests.fakes import bag_of_words

pytestmark = pytest.mark.e2e
STEPS, _ = RECORDINGS["babyagi"]  # the run is conftest's session fixture `babyagi_run`


def test_tasks_were_created_claimed_and_executed_through_world_actions(babyagi_run: Path) -> None:
    events = [json.loads(line) for line in (babyagi_run / "events.jsonl").read_text().splitlines()]
    kinds = [e["kind"] for e in events]
    assert kinds.count("task_created") >= 3  # the scenario's first tasks, then the team's own
    claims = [e for e in events if e["kind"] == "task_claimed"]
    assert {e["agent"] for e in claims} == {"Isabella", "Tom", "Ayesha"}
    acts = [e for e in events if e["kind"] in ("moved", "said", "activity", "move_blocked", "talk_failed")]
    assert {e["agent"] for e in acts} <= {"Isabella", "Tom", "Ayesha"} and acts
    calls = [json.loads(line) for line in (babyagi_run / "llm_calls.jsonl").read_text().splitlines()]
    assert {c["purpose"] for c in calls} >= {"execute", "judge"}
    # with task_steps=2 every claimed task closes by step 3: its result is what the agent did
    done = [e for e in events if e["kind"] == "task_done"]
    assert done and all(e["data"]["result"] for e in done)


def test_results_are_stored_in_chroma_and_the_summary_has_the_statistics(babyagi_run: Path) -> None:
    summary = json.loads((babyagi_run / "summary.json").read_text())
    team = summary["team"]
    assert team["counts"]["done"] >= 1
    assert set(team["verdict"]) == {"met", "reasoning", "judged"} and isinstance(team["verdict"]["met"], bool)
    client = chromadb.PersistentClient(path=str(babyagi_run / "chroma"), settings=Settings(anonymized_telemetry=False))
    stored = client.get_collection(team["results_collection"], embedding_function=ChromaEmbedding(bag_of_words))
    assert stored.count() == team["counts"]["done"]
    metrics = pd.read_parquet(babyagi_run / "metrics.parquet")
    assert metrics["tasks_done"].iloc[-1] == team["counts"]["done"]
    assert len(metrics) == STEPS and metrics["board_length"].between(0, 12).all()  # max_tasks: 12
    assert (babyagi_run / "tasks.png").read_bytes()[:4] == b"\x89PNG"
