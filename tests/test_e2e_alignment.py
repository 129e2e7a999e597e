"""The society (Stable Alignment) end to end on the embedded model, then harvested and loaded with `datasets`."""

import json
from pathlib import Path

import datasets
import pandas as pd
import pytest

import run
from tests.conftest import ALIGNMENT_ASKERS, RECORDINGS, ROOT

pytestmark = pytest.mark.e2e
STEPS, _ = RECORDINGS["alignment"]  # the run is conftest's session fixture `alignment_run` (shared with resume)
ASKERS = ALIGNMENT_ASKERS  # a round: so many authors answer, with no dropout (each has neighbours who rate)


def test_each_round_answers_rates_revises_and_scores(alignment_run: Path) -> None:
    events = [json.loads(line) for line in (alignment_run / "events.jsonl").read_text().splitlines()]
    interactions = [e for e in events if e["kind"] == "interaction"]
    assert [e["step"] for e in interactions] == [step for step in range(1, STEPS + 1) for _ in range(ASKERS)]
    records = [e["data"] for e in interactions]
    questions = {json.loads(x)["question"] for x in (ROOT / "scenarios/questions/everyday.jsonl").open()}
    for r in records:
        assert r["question"] in questions and r["draft"] and r["revised"]
        assert r["ratings"], "with dropout 0 every author has neighbours who rate"
        assert all(1 <= x["rating"] <= 7 and x["reason"] is not None for x in r["ratings"] + r["revision_ratings"])
    summary = json.loads((alignment_run / "summary.json").read_text())
    assert summary["interactions"] == ASKERS * STEPS and summary["status"] == "completed"
    metrics = pd.read_parquet(alignment_run / "metrics.parquet")
    assert metrics["interactions"].tolist() == [ASKERS] * STEPS
    assert (alignment_run / "alignment.png").read_bytes()[:4] == b"\x89PNG"


def test_the_run_harvests_into_datasets_that_load(alignment_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    assert run.main(["harvest", str(alignment_run), "--out", str(out), "--min-gap", "0"]) == 0
    ratings = datasets.load_dataset(str(out), "ratings", split="train")
    assert len(ratings) == ASKERS * STEPS and {"question", "draft", "revised", "ratings"} <= set(ratings.column_names)
    sft = datasets.load_dataset("json", data_files=str(out / "sft.jsonl"), split="train")
    assert all(m[0]["role"] == "user" and m[1]["role"] == "assistant" for m in sft["messages"])
    assert f"| ratings | {ASKERS * STEPS} |" in (out / "README.md").read_text()
