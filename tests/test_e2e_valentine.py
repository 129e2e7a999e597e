"""The valentine scenario on the real embedded model, real embeddings and a real persistent Chroma.

The run is conftest's session fixture ``valentine_run`` (shared with the instruments' tests).
"""

import json
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings

from simulacra.memory.chroma_store import ChromaStore

pytestmark = pytest.mark.e2e


def stored(run_dir: Path) -> dict[str, list]:
    client = chromadb.PersistentClient(path=str(run_dir / "chroma"), settings=Settings(anonymized_telemetry=False))
    summary = json.loads((run_dir / "summary.json").read_text())
    store = ChromaStore(client, embed=lambda texts: [], prefix=f"valentine-{run_dir.name}"[:40])
    return {name: store.load(name) for name in summary["final_places"]}


def test_memories_are_written_rated_and_retrieved(valentine_run: Path) -> None:
    summary = json.loads((valentine_run / "summary.json").read_text())
    memories = stored(valentine_run)
    assert sum(len(m.ids) for m in memories.values()) == summary["memory"]["memories"] > 10
    assert summary["memory"]["retrievals"] > 0
    assert memories["Isabella"].texts[0].startswith("Isabella is planning a Valentine's Day party")
    calls = [json.loads(line) for line in (valentine_run / "llm_calls.jsonl").read_text().splitlines()]
    for name, mem in memories.items():
        assert all(1 <= m["importance"] <= 10 for m in mem.metadatas)
        rating_calls = [c for c in calls if c["agent"] == name and c["purpose"].startswith("importance")]
        assert rating_calls, f"{name}'s memories were never rated"
        answered = [json.loads(c["text"])["ratings"] for c in rating_calls if c["text"]]
        ok = [r for r in answered if all(isinstance(x, int) and 1 <= x <= 10 for x in r)]
        if len(ok) == len(rating_calls):  # no retry or fallback: the stored ratings are the model's
            assert [m["importance"] for m in mem.metadatas] == [x for r in ok for x in r]


def test_a_reflection_fires_when_the_threshold_is_low(valentine_run: Path) -> None:
    events = [json.loads(line) for line in (valentine_run / "events.jsonl").read_text().splitlines()]
    reflected = [e for e in events if e["kind"] == "reflected"]
    assert reflected, "no agent reflected with reflection_threshold=10"
    memories = stored(valentine_run)
    stored_reflections = [(name, m) for name, mem in memories.items() for m in mem.metadatas
                          if m["kind"] == "reflection"]
    assert stored_reflections
    for name, meta in stored_reflections:
        evidence = meta["evidence"].split()
        assert evidence and set(evidence) <= set(memories[name].ids)


def test_plans_and_outcome_metrics(valentine_run: Path) -> None:
    events = [json.loads(line) for line in (valentine_run / "events.jsonl").read_text().splitlines()]
    levels = {(e["agent"], e["data"]["level"]) for e in events if e["kind"] == "planned"}
    for name in ("Isabella", "Maria", "Klaus", "Sam", "Tom"):
        assert {(name, "day"), (name, "hours")} <= levels
    summary = json.loads((valentine_run / "summary.json").read_text())
    diffusion = summary["diffusion"]
    assert "Isabella" in diffusion["knows"]
    assert 0.0 <= diffusion["density"] <= 1.0
    assert (valentine_run / "diffusion.png").read_bytes()[:4] == b"\x89PNG"
