"""The society (Stable Alignment) end to end on the embedded model, then harvested and loaded with `datasets`."""

import json
from pathlib import Path

import datasets
import pandas as pd
import pytest

import run
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e
ASKERS = 3


@pytest.fixture(scope="module")
def society_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("alignment") / "run"
    status = run.main([str(ROOT / "scenarios" / "alignment.yaml"), "--steps", "1", "--out", str(out), "--plain",
                       "--set", "llm.cache=false", "--set", f"world.askers={ASKERS}", "--set", "world.dropout=0"])
    assert status == 0
    return out


def test_one_round_answers_rates_revises_and_scores(society_run: Path) -> None:
    events = [json.loads(line) for line in (society_run / "events.jsonl").read_text().splitlines()]
    records = [e["data"] for e in events if e["kind"] == "interaction"]
    assert len(records) == ASKERS
    questions = {json.loads(x)["question"] for x in (ROOT / "scenarios/questions/everyday.jsonl").open()}
    for r in records:
        assert r["question"] in questions and r["draft"] and r["revised"]
        assert r["ratings"], "with dropout 0 every author has neighbours who rate"
        assert all(1 <= x["rating"] <= 7 and x["reason"] is not None for x in r["ratings"] + r["revision_ratings"])
    summary = json.loads((society_run / "summary.json").read_text())
    assert summary["interactions"] == ASKERS and summary["status"] == "completed"
    metrics = pd.read_parquet(society_run / "metrics.parquet")
    assert metrics["interactions"].tolist() == [ASKERS]
    assert (society_run / "alignment.png").read_bytes()[:4] == b"\x89PNG"


def test_the_run_harvests_into_datasets_that_load(society_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    assert run.main(["harvest", str(society_run), "--out", str(out), "--min-gap", "0"]) == 0
    ratings = datasets.load_dataset(str(out), "ratings", split="train")
    assert len(ratings) == ASKERS and {"question", "draft", "revised", "ratings"} <= set(ratings.column_names)
    sft = datasets.load_dataset("json", data_files=str(out / "sft.jsonl"), split="train")
    assert all(m[0]["role"] == "user" and m[1]["role"] == "assistant" for m in sft["messages"])
    assert "| ratings | 3 |" in (out / "README.md").read_text()
