"""A model per agent (``agents[i].llm``): two llama.cpp models in one run, each agent's calls on its own engine,
per-model tokens in the summary; bad overrides get one line."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

import run
from simulacra.agents.llm.llamacpp import shipped_model_path

ROOT = Path(__file__).resolve().parent.parent
TOWN = ROOT / "scenarios" / "town.yaml"


@pytest.mark.e2e
def test_two_llamacpp_models_in_one_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Isabella and Tom on a second engine (its own GGUF file, so its own model id), the rest on the default."""
    second = tmp_path / "second-smollm2.gguf"
    try:
        os.link(shipped_model_path(), second)
    except OSError:
        shutil.copy(shipped_model_path(), second)
    out = tmp_path / "run"
    group = f"{{model: {second}, n_ctx: 1024}}"
    assert run.main([str(TOWN), "--steps", "2", "--out", str(out), "--plain", "--set", "llm.cache=false",
                     "--set", f"agents.0.llm={group}", "--set", f"agents.4.llm={group}"]) == 0
    printed = capsys.readouterr().out
    calls = [json.loads(line) for line in (out / "llm_calls.jsonl").read_text().splitlines()]
    models = {(c["agent"], c["model"]) for c in calls}
    assert {m for a, m in models if a in ("Isabella", "Tom")} == {"llamacpp:second-smollm2.gguf"}
    assert {m for a, m in models if a not in ("Isabella", "Tom")} == {"llamacpp:SmolLM2-135M-Instruct.Q4_1.gguf"}
    llm = json.loads((out / "summary.json").read_text())["llm"]
    tokens = Counter()
    for c in calls:
        tokens[c["model"]] += c["completion_tokens"]
    assert {m: row["completion_tokens"] for m, row in llm["by_model"].items()} == dict(tokens)
    assert sum(row["prompt_tokens"] for row in llm["by_model"].values()) == llm["prompt_tokens"]
    assert "llamacpp:second-smollm2.gguf: " in printed  # the report's per-model line
    # An interview asks each agent on its own engine, as the run did.
    assert run.main(["interview", str(out), "--all", "What are you doing today?"]) == 0
    [file] = (out / "interviews").glob("2*.jsonl")
    answers = {a["agent"]: a["model"] for a in map(json.loads, file.read_text().splitlines())}
    assert len(answers) == 5 and answers == {a: "llamacpp:second-smollm2.gguf" if a in ("Isabella", "Tom")
                                             else "llamacpp:SmolLM2-135M-Instruct.Q4_1.gguf" for a in answers}


@pytest.mark.parametrize(("override", "expected"), [
    ("agents.1.llm={retries: 5}", "agents[1].llm.retries: 'retries' applies to the whole run; set it in the llm "
                                  "section"),
    ("agents.1.llm={modle: x}", "agents[1].llm.modle: 'modle' is not an llm field; did you mean 'model'?"),
    ("agents.1.llm={backend: openai}", "agents[1].llm.base_url: the openai backend needs a server URL"),
    ("agents.1.llm={n_threads: 0}", "agents[1].llm.n_threads: Input should be greater than or equal to 1 (got 0)"),
    ("agents.1.llm={backend: nope}", "agents[1].llm.backend: unknown backend 'nope'"),
])
def test_a_bad_agent_llm_gets_one_line(override: str, expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["validate", str(TOWN), "--set", override]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_an_agent_llm_in_the_file_names_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = TOWN.read_text().replace("    home: homes\n    start: library\n",
                                    "    home: homes\n    start: library\n    llm: {n_ctx: 10}\n", 1)
    line = text.splitlines().index("    llm: {n_ctx: 10}") + 1
    (tmp_path / "town.yaml").write_text(text)
    assert run.main(["validate", str(tmp_path / "town.yaml")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'town.yaml'}:{line}: agents[1].llm.n_ctx: ")
