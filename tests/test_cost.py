"""What a run costs at ``llm.price``: the arithmetic, summary.json's figures per agent-step, the live view's line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from simulacra.agents.llm import LLMClient, LLMStats, Message, ResponseCache
from simulacra.events import Event
from simulacra.runs.live_view import LiveView, PlainView, show_cost
from simulacra.runs.runner import Runner
from simulacra.scenarios.llm import PriceConfig
from simulacra.scenarios.loading import load_scenario
from tests.conftest import ROOT
from tests.fakes import ScriptedBackend

PRICE = PriceConfig(input=0.15, output=0.60)
TOKENS = ("prompt_tokens", "completion_tokens")
STEP_ENDED = Event(1, "2026-02-13T08:00", None, "step_ended", {})


@pytest.mark.parametrize(("prompt", "completion", "price", "cost"), [
    (1_000_000, 500_000, PRICE, 0.45),
    (0, 0, PRICE, 0.0),
    (2_000, 100, PriceConfig(input=3.0, output=15.0), 0.0075),
    (1_000_000, 1_000_000, PriceConfig(input=0, output=0), 0.0),
])
def test_cost_is_tokens_times_price_per_million(prompt: int, completion: int, price: PriceConfig,
                                                cost: float) -> None:
    assert LLMStats(prompt_tokens=prompt, completion_tokens=completion).cost(price) == pytest.approx(cost)


def test_usage_per_agent_step() -> None:
    stats = LLMStats(prompt_tokens=1_000_000, completion_tokens=500_000)

    assert stats.usage(10, PRICE) == {"prompt_tokens_per_agent_step": 100_000.0,
                                      "completion_tokens_per_agent_step": 50_000.0,
                                      "price": {"input": 0.15, "output": 0.6}, "cost": 0.45,
                                      "cost_per_agent_step": 0.045}
    assert stats.usage(0) == {"prompt_tokens_per_agent_step": None, "completion_tokens_per_agent_step": None}


def test_cached_answers_cost_nothing(tmp_path: Path) -> None:
    client = LLMClient(ScriptedBackend(lambda r: "hello"), cache=ResponseCache(tmp_path / "cache.jsonl"))

    for _ in range(2):
        client.run(client.text([Message("user", "hi")], seed=1, fallback="-"))
    client.close()

    assert (client.stats.calls, client.stats.cache_hits) == (2, 1)
    assert (client.stats.prompt_tokens, client.stats.completion_tokens) == (10, 1)  # the engine call only
    assert client.stats.cost(PRICE) == pytest.approx((10 * 0.15 + 1 * 0.60) / 1e6)


def _dry_run(tmp_path: Path, *sets: str) -> tuple[dict, str]:
    scenario = load_scenario(ROOT / "scenarios" / "town.yaml", ["steps=2", "llm.backend=dry",
                                                                f"outputs.dir={tmp_path}", *sets])
    out = io.StringIO()
    summary = Runner(scenario, out=tmp_path / "run", plain=True, console=Console(file=out, width=300)).run()
    assert summary == json.loads((tmp_path / "run" / "summary.json").read_text())
    return summary["llm"], out.getvalue()


def test_summary_has_tokens_and_cost_per_agent_step(tmp_path: Path) -> None:
    llm, printed = _dry_run(tmp_path, "llm.price={input: 0.15, output: 0.60}")

    agent_steps = 5 * 2  # town.yaml's five agents, two steps
    cost = (llm["prompt_tokens"] * 0.15 + llm["completion_tokens"] * 0.60) / 1e6
    assert llm["prompt_tokens"] > 0
    assert llm["prompt_tokens_per_agent_step"] == round(llm["prompt_tokens"] / agent_steps, 1)
    assert llm["completion_tokens_per_agent_step"] == round(llm["completion_tokens"] / agent_steps, 1)
    assert llm["price"] == {"input": 0.15, "output": 0.6}
    assert llm["cost"] == round(cost, 6)
    assert llm["cost_per_agent_step"] == round(cost / agent_steps, 8)
    assert printed.splitlines()[-1].endswith(f", {show_cost(LLMStats(**{k: llm[k] for k in TOKENS}), PRICE)})")


def test_without_a_price_tokens_per_agent_step_but_no_cost(tmp_path: Path) -> None:
    llm, printed = _dry_run(tmp_path)

    assert llm["prompt_tokens_per_agent_step"] > 0
    assert llm["completion_tokens_per_agent_step"] > 0
    assert not {"price", "cost", "cost_per_agent_step"} & set(llm)
    assert "$" not in printed


@pytest.mark.parametrize(("price", "shown"), [(PRICE, "$0.4500"), (None, "")])
def test_plain_view_shows_the_cost_only_with_a_price(price: PriceConfig | None, shown: str) -> None:
    out = io.StringIO()
    view = PlainView(Console(file=out, width=200), total_steps=3)
    view.stats, view.price = LLMStats(calls=4, prompt_tokens=1_000_000, completion_tokens=500_000), price

    view(STEP_ENDED)

    assert out.getvalue().rstrip().endswith(f"tok/s, {shown})" if shown else "tok/s)")


@pytest.mark.parametrize(("price", "shown"), [(PRICE, "cost $0.4500"), (None, None)])
def test_live_view_shows_the_cost_only_with_a_price(price: PriceConfig | None, shown: str | None) -> None:
    console = Console(record=True, width=160, force_terminal=True, color_system=None, file=io.StringIO())
    stats = LLMStats(calls=4, prompt_tokens=1_000_000, completion_tokens=500_000)

    with LiveView(console, scenario="demo", total_steps=3, stats=stats, price=price) as view:
        view(STEP_ENDED)

    text = console.export_text()
    assert "tokens 1000000+500000" in text
    assert (shown in text) if shown else ("$" not in text)


@pytest.mark.parametrize(("cost", "shown"), [(0.000012, "$0.000012"), (0.0123, "$0.0123"), (1234.5, "$1,234.50")])
def test_show_cost_formats(cost: float, shown: str) -> None:
    stats = LLMStats(prompt_tokens=round(cost * 1_000_000))

    assert show_cost(stats, PriceConfig(input=1, output=0)) == shown
    assert show_cost(stats, None) == ""
