"""`run.py train`: bad input is one line and writes nothing; DPO and Stable Alignment learn a mark the data
makes knowable; a killed training resumes to the same metrics; a harvested society's model answers in a run."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

import run
from simulacra.training.data import load_harvests, question, split_key
from simulacra.training.stable_alignment import ranked_loss
from tests.conftest import ROOT
from tests.helpers import kill_when
from tests.train_data import MARK, synthetic_harvest

# Small enough for 2 cores in about a minute a training: LoRA, 40 pairs, sequences of 48 tokens, 6 steps of 4,
# a checkpoint at steps 3 and 6 (the resume test kills after the first).
SMALL = ["--lora", "--seed", "1", "--set", "train.max_steps=6", "--set", "train.learning_rate=2e-3",
         "--set", "train.batch_size=4", "--set", "train.max_length=48", "--set", "train.save_steps=3"]


def train(capsys, *args: str) -> tuple[int, str, str]:
    code = run.main(["train", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


# --- bad input: one line, exit 2, nothing written -----------------------------------------------------------------
def _lines_of(tmp_path: Path, rows: list[object], part: str = "preferences") -> Path:
    folder = synthetic_harvest(tmp_path / "h", pairs=4)
    (folder / f"{part}.jsonl").write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return folder


GOOD = {"prompt": "q?", "chosen": "yes. Thank you.", "rejected": "yes.", "score_chosen": 6, "score_rejected": 3}


@pytest.mark.parametrize(("make", "method", "expected"), [
    (lambda t: t, "dpo", "not a harvest folder"),
    (lambda t: _lines_of(t, [{**GOOD, "chosen": 5}]), "dpo", "'chosen' must be a non-empty text"),
    (lambda t: _lines_of(t, [{**GOOD, "score_chosen": "high"}]), "stable-alignment", "'score_chosen' must be a number"),
    (lambda t: _lines_of(t, ["{not json"]), "dpo", "not JSON"),
    (lambda t: _lines_of(t, [[1, 2]]), "dpo", "a list, not an object"),
    (lambda t: _lines_of(t, []), "dpo", "no records"),
    (lambda t: _lines_of(t, [{**GOOD, "chosen": "same"} | {"rejected": "same"}] * 3), "dpo",
     "every pair's chosen and rejected answers are the same"),
    (lambda t: _lines_of(t, [{"messages": [{"role": "user", "content": "hi"}]}], part="sft"), "sft",
     "'messages' must be a list"),
    (lambda t: (synthetic_harvest(t / "h", 4) / "preferences.jsonl").unlink() or t / "h", "dpo",
     "missing: --method dpo trains on the harvest's preferences"),
])
def test_bad_harvests_are_one_line_and_write_nothing(capsys, tmp_path, make, method, expected) -> None:
    folder = make(tmp_path)
    code, out, err = train(capsys, folder, "--method", method, "--out", tmp_path / "model")
    assert code == 2, err
    [line] = err.strip().splitlines()
    assert line.startswith("error: ") and expected in line, line
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize(("setting", "expected"), [
    ("train.lerning_rate=1e-4", "fields: learning_rate, batch_size"),
    ("train.batch_size=0", "greater than or equal to 1"),
    ("llm.model=x", "train takes train.KEY=VALUE"),
    ("train.heldout=0.999999", None),  # valid, but leaves no training questions
])
def test_bad_settings_are_one_line(capsys, tmp_path, setting, expected) -> None:
    folder = synthetic_harvest(tmp_path / "h", pairs=4)
    code, _, err = train(capsys, folder, "--method", "dpo", "--out", tmp_path / "model", "--set", setting)
    assert code == 2
    [line] = err.strip().splitlines()
    assert (expected or "split is empty") in line, line
    assert not (tmp_path / "model").exists()


def _gguf_of(path: Path, arch: str) -> Path:
    """A small valid GGUF file whose architecture is ``arch``: one tensor, no tokenizer."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize(("base", "expected"), [
    (lambda t: t / "missing", "--base must be a Hugging Face model folder or a .gguf file"),
    (lambda t: (t / "notes.txt").write_text("hi") and t / "notes.txt", "--base must be a Hugging Face model folder"),
    (lambda t: t, "not a Hugging Face model folder (no config.json)"),
    (lambda t: (t / "config.json").write_text('{"model_type": "nonesuch"}') and t, "the base model does not load"),
    (lambda t: (t / "x.gguf").write_bytes(b"not a gguf at all") and t / "x.gguf", "transformers cannot read this GGUF"),
    (lambda t: _gguf_of(t / "rwkv.gguf", "rwkv7"), "transformers cannot read this GGUF"),
])
def test_a_base_that_does_not_load_is_one_line_and_writes_nothing(capsys, tmp_path, monkeypatch, base,
                                                                   expected) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SIMULACRA_CACHE", str(cache))
    harvest = synthetic_harvest(tmp_path / "h", pairs=4)
    (tmp_path / "base").mkdir()
    code, _, err = train(capsys, harvest, "--method", "dpo", "--out", tmp_path / "model",
                         "--base", base(tmp_path / "base"))
    assert code == 2, err
    [line] = err.strip().splitlines()
    assert line.startswith("error: ") and expected in line, line
    assert not (tmp_path / "model").exists()
    assert not cache.exists() or not any(cache.iterdir())  # no half-converted base left behind


def test_the_split_is_by_question_and_seeded(tmp_path) -> None:
    data = load_harvests([synthetic_harvest(tmp_path / "h", pairs=60)], "dpo")
    data.rows += [dict(r, chosen=r["chosen"] + "!") for r in data.rows[:20]]  # a second pair for 20 questions
    train_rows, held = data.split(0.25, seed=3)
    assert {question(r) for r in train_rows}.isdisjoint({question(r) for r in held})
    assert 5 <= len({question(r) for r in held}) <= 25  # noqa: PLR2004 - about a quarter of 60 questions
    assert data.split(0.25, seed=3) == (train_rows, held)
    assert data.split(0.25, seed=4) != (train_rows, held)
    assert split_key("What  about it?", 1) == split_key("what about it?", 1)  # case and spacing do not move it


def test_the_shipped_question_split_is_disjoint_whole_and_the_split_functions() -> None:
    folder = ROOT / "scenarios" / "questions"

    def read(name: str) -> list[str]:
        return [json.loads(line)["question"] for line in (folder / name).read_text().splitlines()]

    everything, trained, held = read("everyday.jsonl"), read("everyday-train.jsonl"), read("everyday-heldout.jsonl")
    assert set(trained).isdisjoint(held) and sorted(trained + held) == sorted(everything)
    assert held == [q for q in everything if split_key(q, "compare") < 0.2]  # noqa: PLR2004 - the README's rule
    # independent of train's own split: every --seed holds out some of the training questions
    assert all(any(split_key(q, seed) < 0.2 for q in trained[:40]) for seed in range(5))  # noqa: PLR2004
    assert 40 <= len(held) <= 80  # noqa: PLR2004 - about a fifth of 300


def test_stable_alignment_loss_is_the_papers() -> None:
    import torch

    ratio, scale = 0.5, 7.0
    # The best-rated answer is already the likelier by more than the margin: the SFT term alone.
    ok = ranked_loss(torch.tensor([[1.0, 2.0]]), torch.tensor([[6.0, 3.0]]), margin=1.0, ratio=ratio,
                     rating_scale=scale)
    assert ok.item() == pytest.approx(1.0)
    # The lower-rated answer is the likelier: L_best + ratio * (L_best - L_other + gap / scale * margin).
    bad = ranked_loss(torch.tensor([[2.0, 1.0]]), torch.tensor([[6.0, 3.0]]), margin=1.0, ratio=ratio,
                      rating_scale=scale)
    assert bad.item() == pytest.approx(2.0 + ratio * (2.0 - 1.0 + 3.0 / scale))
    # The best is chosen by rating, not by position; three answers average their ranking terms.
    three = ranked_loss(torch.tensor([[3.0, 1.0, 2.0]]), torch.tensor([[2.0, 7.0, 4.0]]), margin=2.0, ratio=ratio,
                        rating_scale=scale)
    terms = [1.0 - 3.0 + 5.0 / scale * 2.0, 1.0 - 2.0 + 3.0 / scale * 2.0]
    assert three.item() == pytest.approx(1.0 + ratio * max(0.0, sum(terms) / 2))


def test_a_checkpoint_a_kill_tore_is_skipped(tmp_path) -> None:
    from simulacra.training.train import _last_checkpoint

    assert _last_checkpoint(tmp_path) is None
    for step, state in [(2, '{"global_step": 2}'), (4, ""), (6, '{"global_st'), (8, None), (10, "[1]")]:
        (tmp_path / f"checkpoint-{step}").mkdir()
        if state is not None:  # transformers writes trainer_state.json last: a kill before it leaves none
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    assert _last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")


# --- training on the shipped model ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def marked(tmp_path_factory) -> Path:
    return synthetic_harvest(tmp_path_factory.mktemp("harvest") / "marked", pairs=40)


@pytest.fixture(scope="module")
def dpo_small(marked, tmp_path_factory) -> tuple[Path, str]:
    """One uninterrupted DPO training with `SMALL` (checkpoints at steps 3 and 6): its folder and what it printed.
    The learning test reads it, and the resume test compares a killed and resumed training with it."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("dpo") / "model"
    printed, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(err):
        code = run.main(["train", str(marked), "--method", "dpo", "--out", str(out), *SMALL])
    assert code == 0, err.getvalue()[-2000:]
    return out, printed.getvalue()


@pytest.mark.system
@pytest.mark.parametrize("method", ["dpo", "stable-alignment"])
def test_training_learns_a_mark_the_data_makes_knowable(capsys, tmp_path, marked, method, request) -> None:
    if method == "dpo":
        out, printed = request.getfixturevalue("dpo_small")
    else:
        out = tmp_path / "model"
        code, printed, err = train(capsys, marked, "--method", method, "--out", out, *SMALL)
        assert code == 0, err[-2000:]

    metrics = json.loads((out / "metrics.json").read_text())
    before, after = metrics["before"], metrics["after"]
    assert before["preference_accuracy"] == 0.5 and before["reward_margin"] == 0.0  # noqa: PLR2004 - ties: chance
    assert after["preference_accuracy"] >= 0.9 and after["reward_margin"] > 0  # noqa: PLR2004
    assert after["sft_loss"] < before["sft_loss"]
    assert f"held-out preference accuracy 0.5 -> {after['preference_accuracy']}" in printed
    card = (out / "README.md").read_text()
    sha = __import__("hashlib").sha256((marked / "preferences.jsonl").read_bytes()).hexdigest()
    assert sha in card and f"| preference_accuracy | 0.5 | {after['preference_accuracy']} |" in card
    assert (out / "hf" / "config.json").is_file()
    from llama_cpp import Llama

    model = Llama(model_path=str(out / "model-q8_0.gguf"), n_ctx=256, n_threads=2, verbose=False, seed=1)
    answer = model.create_chat_completion([{"role": "user", "content": "What should I do about a barking dog?"}],
                                          max_tokens=40, temperature=0)["choices"][0]["message"]["content"]
    assert answer.rstrip().endswith(MARK.strip()), answer  # a question it never saw, answered the tuned way


@pytest.mark.system
def test_a_killed_training_resumes_to_the_metrics_of_one_that_was_not(capsys, tmp_path, marked, dpo_small) -> None:
    whole, _ = dpo_small
    args = [str(marked), "--method", "dpo", *SMALL]
    killed = tmp_path / "killed"
    command = [sys.executable, str(ROOT / "run.py"), "train", *args, "--out", str(killed)]
    code, err = kill_when(command, (killed / "checkpoints" / "checkpoint-3" / "trainer_state.json").exists,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, cwd=ROOT)
    assert code == -signal.SIGKILL and not (killed / "metrics.json").exists(), err
    # The kill may land while checkpoint-3 is being written (its trainer_state.json empty): it is then skipped.
    code, _, err = train(capsys, *args, "--out", killed)

    assert code == 0, err[-2000:]
    assert json.loads((killed / "metrics.json").read_text())["after"] == \
        json.loads((whole / "metrics.json").read_text())["after"]
    state = json.loads((killed / "checkpoints" / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6  # noqa: PLR2004
    other = train(capsys, *args[:-2], "--set", "train.save_steps=2", "--out", killed)
    assert other[0] == 2 and "holds something else than this training" in other[2]


@pytest.mark.e2e
def test_a_society_trains_a_model_that_answers_its_survey(capsys, tmp_path, alignment_run) -> None:
    harvest = tmp_path / "harvest"
    assert run.main(["harvest", str(alignment_run), "--out", str(harvest), "--min-gap", "0"]) == 0
    model = tmp_path / "model"
    code, printed, err = train(capsys, harvest, "--method", "dpo", "--out", model, "--lora", "--seed", "0",
                               "--set", "train.max_steps=2", "--set", "train.batch_size=2",
                               "--set", "train.max_length=96", "--set", "train.heldout=0.5")
    assert code == 0, err[-2000:]
    metrics = json.loads((model / "metrics.json").read_text())
    assert metrics["train_rows"] >= 1 and metrics["after"]["pairs"] >= 1
    survey = ("surveys=[{name: mood, at: [1], items: [{name: mood, type: likert, scale: 5, "
              "labels: [very bad, bad, okay, good, very good], question: How is your morning?}]}]")
    out = tmp_path / "town"
    assert run.main([str(ROOT / "scenarios" / "town.yaml"), "--steps", "1", "--plain", "--out", str(out),
                     "--set", f"llm.model={model / 'model-q8_0.gguf'}", "--set", survey,
                     "--set", "llm.cache=false"]) == 0
    answers = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    answers = [e for e in answers if e["kind"] == "survey_answer"]
    assert len(answers) == 5 and any(e["data"]["ok"] for e in answers)  # noqa: PLR2004 - the town's five
    summary = json.loads((out / "summary.json").read_text())
    assert summary["llm"]["model"].endswith("model-q8_0.gguf")
