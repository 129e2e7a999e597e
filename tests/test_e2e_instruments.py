"""Surveys and interviews on the valentine run: the embedded model, real embeddings, the run's own Chroma."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import chromadb
import datasets
import pandas as pd
import pytest
from chromadb.config import Settings

import run
from simulacra.memory.chroma_store import ChromaStore
from tests.conftest import VALENTINE_STEPS
from tests.helpers import tree_hashes

pytestmark = pytest.mark.e2e
AGENTS = ["Isabella", "Maria", "Klaus", "Sam", "Tom"]
QUESTION = "Do you know about a Valentine's Day party?"


@pytest.fixture
def run_copy(valentine_run: Path, tmp_path: Path) -> Path:
    """A copy of the shared valentine run that a test may write interviews into."""
    return Path(shutil.copytree(valentine_run, tmp_path / valentine_run.name))



def interviews(folder: Path) -> list[list[dict]]:
    return [[json.loads(line) for line in f.read_text().splitlines()]
            for f in sorted((folder / "interviews").glob("2*.jsonl"))]


def chroma_ids(folder: Path, original: Path) -> dict[str, set[str]]:
    client = chromadb.PersistentClient(path=str(folder / "chroma"), settings=Settings(anonymized_telemetry=False))
    store = ChromaStore(client, embed=lambda texts: [], prefix=f"valentine-{original.name}"[:40])
    return {name: set(store.load(name).ids) for name in AGENTS}


def chroma_texts(folder: Path, agent: str) -> list[str]:
    client = chromadb.PersistentClient(path=str(folder / "chroma"), settings=Settings(anonymized_telemetry=False))
    return ChromaStore(client, embed=lambda texts: [], prefix=f"valentine-{folder.name}"[:40]).load(agent).texts


def test_an_interview_after_valentine_uses_memories_in_the_runs_chroma(run_copy: Path, valentine_run: Path,
                                                                        capsys) -> None:
    before = tree_hashes(run_copy, skip="interviews")
    assert run.main(["interview", str(run_copy), "--all", QUESTION]) == 0
    assert tree_hashes(run_copy, skip="interviews") == before  # chroma/, snapshots, logs: byte for byte
    [records] = interviews(run_copy)
    assert [r["agent"] for r in records] == AGENTS
    assert all(r["step"] == VALENTINE_STEPS and r["question"] == QUESTION for r in records)
    stored = chroma_ids(valentine_run, valentine_run)
    for record in records:
        assert record["memory_ids"], f"{record['agent']} recalled nothing"
        assert set(record["memory_ids"]) <= stored[record["agent"]]
        assert record["model"].startswith("llamacpp:") and isinstance(record["seed"], int)
    # Isabella's seed memory is in the run's Chroma. Whether it is among her top 5 for the question is the model's
    # doing: SmolLM2 rates it 1 of 10, and at step 2 min-max recency puts it last (see bench notes), so not asserted.
    assert any("Valentine" in text for text in chroma_texts(valentine_run, "Isabella"))
    out = capsys.readouterr().out
    print(out)  # the answers, for the closing note
    assert f"Isabella (step {VALENTINE_STEPS})" in out


def test_interviews_at_two_steps_recall_different_memories(run_copy: Path) -> None:
    for step in (1, VALENTINE_STEPS):
        assert run.main(["interview", str(run_copy), "--agent", "Isabella", "--at", str(step),
                         "What happened this afternoon?"]) == 0
    early, late = (records[0] for records in interviews(run_copy))
    assert (early["step"], late["step"]) == (1, VALENTINE_STEPS)
    assert early["memory_ids"] != late["memory_ids"]
    snapshot = json.loads((run_copy / "snapshots" / "step-000001.json").read_text())
    count = next(a for a in snapshot["world"]["agents"] if a["name"] == "Isabella")["stream"]["count"]
    assert all(int(i.split(":")[1]) < count for i in early["memory_ids"])  # nothing from after step 1
    assert any(int(i.split(":")[1]) >= count for i in late["memory_ids"])


def test_valentine_party_survey_sits_beside_the_diffusion_figure(valentine_run: Path, tmp_path: Path) -> None:
    events = [json.loads(line) for line in (valentine_run / "events.jsonl").read_text().splitlines()]
    answers = [e for e in events if e["kind"] == "survey_answer"]
    assert [(e["step"], e["agent"]) for e in answers] == [(0, a) for a in AGENTS] + [
        (VALENTINE_STEPS, a) for a in AGENTS]
    assert all(e["data"]["answer"] in ("yes", "no") for e in answers if e["data"]["ok"])
    metrics = pd.read_parquet(valentine_run / "metrics.parquet").set_index("step")
    assert metrics.index.tolist() == list(range(VALENTINE_STEPS + 1))
    for step in (0, VALENTINE_STEPS):
        asked = [e["data"] for e in answers if e["step"] == step and e["data"]["ok"]]
        assert metrics.loc[step, "survey.party.knows.n"] == len(asked)
        if asked:
            yes = sum(d["answer"] == "yes" for d in asked) / len(asked)
            assert metrics.loc[step, "survey.party.knows.yes"] == pytest.approx(yes)
    for name in ("survey-party.png", "diffusion.png"):
        assert (valentine_run / name).read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((valentine_run / "summary.json").read_text())
    assert "Isabella" in summary["diffusion"]["knows"]
    assert set(summary["surveys"]["party"]["knows"]["steps"]) == {"0", str(VALENTINE_STEPS)}
    out = tmp_path / f"surveys-{tmp_path.name}"  # datasets caches by folder name
    assert run.main(["harvest", str(valentine_run), "--out", str(out)]) == 0
    rows = datasets.load_dataset(str(out), "surveys", split="train")
    assert len(rows) == len(answers) and set(rows["agent"]) == set(AGENTS)
