"""One parser for ``KEY=VALUE``: spaces around a key mean the same wherever an override is read.

A fork's reseed is checked in test_sweep.py (`test_a_fork_with_a_new_seed_keeps_the_past_and_draws_afresh`), the
judge's ``--judge-set`` in test_rating.py (`test_judge_overrides_choose_the_engine_and_are_validated`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simulacra.errors import ScenarioError
from simulacra.scenarios.loading import load_scenario
from simulacra.scenarios.overrides import fork_refusal, parse_override, split_override
from simulacra.sweeps.plan import SweepPlan
from tests.conftest import MINIMAL

SEEDS = ["seed=5", "seed =5", " seed = 5", "seed= 5", "\tseed\t=5"]
TEMPERATURES = ["llm.temperature=0", " llm.temperature = 0", "llm.temperature =0"]


@pytest.mark.parametrize("text", SEEDS)
def test_a_key_with_spaces_around_it_is_the_key(text: str) -> None:
    assert split_override(text)[0] == "seed"
    assert parse_override(text) == (["seed"], 5)


@pytest.mark.parametrize("text", TEMPERATURES)
def test_a_dotted_key_with_spaces_around_it_is_the_key(text: str) -> None:
    assert parse_override(text) == (["llm", "temperature"], 0)


@pytest.mark.parametrize("text", SEEDS)
def test_set_and_fork_read_the_same_key(write, text: str) -> None:
    assert load_scenario(write(MINIMAL), [text]).seed == 5
    assert fork_refusal(text) is None  # seed may change at a fork, spelt any way


@pytest.mark.parametrize("text", ["world.type=crafting", " world.type = crafting"])
def test_a_fork_names_the_key_it_refuses_without_the_spaces(text: str) -> None:
    assert fork_refusal(text).startswith(f"--set {text!r}: 'world.type' cannot change at a fork")


@pytest.mark.parametrize("text", ["novalue", "=3", " =3"])
def test_every_reader_refuses_a_text_without_a_key(text: str) -> None:
    for read in (split_override, parse_override, fork_refusal):
        with pytest.raises(ScenarioError, match=re.escape(f"--set {text!r}: expected KEY=VALUE")):
            read(text)


@pytest.mark.parametrize(("grid", "arm", "threads"), [
    ("llm.temperature=0.2,0.9", "warm:llm.temperature=0.9", "llm.n_threads=2"),
    (" llm.temperature =0.2, 0.9", "warm: llm.temperature = 0.9", "llm.n_threads =2"),
])
def test_a_sweep_reads_grid_arm_and_set_keys_as_set_does(write, tmp_path: Path, grid: str, arm: str,
                                                         threads: str) -> None:
    plan = SweepPlan.from_args(write(MINIMAL), sets=[threads], grid=[grid], arms=[arm], out=tmp_path / "s")
    assert plan.grid == [("llm.temperature", ["0.2", "0.9"])]
    assert [parse_override(o) for o in plan.arms["warm"]] == [(["llm", "temperature"], 0.9)]
    assert plan.sets == [threads, "llm.cache=false"]  # the sweep saw llm.n_threads set: it adds no other
    runs = plan.runs()
    assert [r.cell for r in runs] == [("llm.temperature=0.2",), ("llm.temperature=0.9",)]
    assert [plan.scenario_of(r).llm.n_threads for r in runs] == [2, 2]
