"""Worlds and minds of your own: examples/market, installed as a separate package, run by import path and by entry
point (on the embedded model); its bad fields get our one-line errors; a town mind of your own by entry point."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import run
from simulacra.memory.chroma_store import open_client
from tests.helpers import installed_plugin, pip_installed, read_events

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "market"

QUIET_MIND = '''
from simulacra import TownAgent
from simulacra.agents.town_agent import Action


class Quiet(TownAgent):
    """A townsperson who never asks the model: it reads where it is."""

    async def decide(self) -> None:
        self.pending = Action("do", text=f"reads quietly at the {self.place}")
'''


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """examples/market copied out of our tree and pip-installed into the test venv (its pyproject, as a user's)."""
    package = tmp_path_factory.mktemp("market") / "market"
    shutil.copytree(EXAMPLE, package, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    with pip_installed(package, "simulacra-market"):
        yield package / "market.yaml"


@pytest.fixture(scope="module")
def market_run(market: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example by its entry-point name, 3 steps on the embedded model (SmolLM2 through llama.cpp)."""
    out = tmp_path_factory.mktemp("runs") / "market"
    status = run.main([str(market), "--steps", "3", "--out", str(out), "--plain", "--set", "world.type=market",
                       "--set", "llm.cache=false"])
    assert status == 0
    return out


@pytest.mark.e2e
def test_the_market_runs_by_entry_point_on_the_embedded_model(market_run: Path) -> None:
    events = read_events(market_run)
    kinds = Counter(e["kind"] for e in events)
    summary = json.loads((market_run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["events"] == dict(sorted(kinds.items()))
    assert summary["llm"]["backend"] == "llamacpp" and summary["llm"]["failures"] == 0
    assert kinds["offer_posted"] >= 1 and kinds["step_ended"] == 3  # the world's own event kinds, logged
    # Every trader posts (one call) and each one offered something considers it (one more call).
    calls = [json.loads(line) for line in (market_run / "llm_calls.jsonl").read_text().splitlines()]
    asked = {(c["step"], c["agent"], c["purpose"]) for c in calls}  # a retry is a second record of one question
    purposes = Counter(purpose for _, _, purpose in asked)
    assert purposes["offer"] == 6 * 3 and purposes["buy"] >= 1
    trades = [e for e in events if e["kind"] == "trade"]
    metrics = pd.read_parquet(market_run / "metrics.parquet")
    per_step = Counter(e["step"] for e in trades)
    assert list(metrics["trades"]) == [per_step.get(step, 0) for step in (1, 2, 3)]
    cash = pd.read_parquet(market_run / "agent_metrics.parquet")
    assert cash.groupby("Step")["cash"].sum().tolist() == [6 * 30] * 3  # coins change hands, none appear
    assert (market_run / "metrics.png").stat().st_size > 5_000  # the default plot of a world without its own


@pytest.mark.e2e
def test_the_traders_memories_are_in_the_runs_chroma(market_run: Path) -> None:
    """Each neighbour of a seller remembers the offer, buyer and seller remember a trade: all of it stored."""
    events = read_events(market_run)
    expected = 2 * sum(e["kind"] == "offer_posted" for e in events) + 2 * sum(e["kind"] == "trade" for e in events)
    client = open_client(path=market_run / "chroma", url=None)  # the run's settings (Chroma refuses others)
    stored = sum(c.count() for c in (client.get_collection(col.name) for col in client.list_collections()))
    assert stored == expected > 0


def test_the_market_runs_by_import_path_and_resumes(market: Path, tmp_path: Path) -> None:
    out = tmp_path / "path"
    common = ["--plain", "--set", "llm.backend=dry", "--set", "llm.cache=false"]
    assert run.main([str(market), "--steps", "2", "--out", str(out), *common]) == 0  # world.type: an import path
    assert "market_world:MarketWorld" in (out / "scenario.yaml").read_text()
    assert run.main(["resume", str(out), "--steps", "3", "--plain"]) == 0
    whole = tmp_path / "whole"
    assert run.main([str(market), "--steps", "3", "--out", str(whole), *common]) == 0
    # The resumed run restored coins, goods and memories from its snapshot: its log equals a run straight through
    # (but for run_started's number of steps, 2 then).
    resumed, straight = read_events(out), read_events(whole)
    assert resumed[0]["data"]["steps"] == 2 and resumed[1:] == straight[1:]
    assert sum(e["kind"] == "offer_posted" for e in straight) >= 1


@pytest.mark.parametrize(("override", "expected"), [
    ("world.gods=[tea]", "world.gods: unknown field 'gods'; did you mean 'goods'? allowed: type, goods, cash, stock"),
    ("world.cash=-5", "world.cash: Input should be greater than or equal to 0 (got -5)"),
    ("world.type=markt", "world.type: unknown world type 'markt'; did you mean 'market'? allowed: town, crafting, "
                         "society, an import path package.module:Class, or a name in the entry-point group "
                         "simulacra.worlds (installed: market)"),
    ("world.type=market_world:Trader", "world.type: world type 'market_world:Trader': 'market_world:Trader' is "
                                       "not a simulacra.World subclass"),
])
def test_a_bad_field_of_a_user_world_gets_our_one_line(market: Path, override: str, expected: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["validate", str(market), "--set", override]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and err.startswith("error: --set ")


def test_a_bad_field_in_the_file_names_its_line(market: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    text = market.read_text().replace("  cash: 30", "  cash: plenty")
    line = text.splitlines().index("  cash: plenty") + 1
    (tmp_path / "bad.yaml").write_text(text)
    assert run.main(["validate", str(tmp_path / "bad.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'bad.yaml'}:{line}: world.cash: Input should be a valid integer")


@pytest.fixture
def quiet_mind(tmp_path: Path) -> Iterator[str]:
    """A town mind in a package of its own, registered in the entry-point group simulacra.minds as ``quiet``."""
    with installed_plugin(tmp_path / "mind", "simulacra.minds", "quiet", "quiet_mind", QUIET_MIND, "Quiet") as name:
        yield name


def test_a_town_mind_of_your_own_by_entry_point(quiet_mind: str, tmp_path: Path) -> None:
    out = tmp_path / "quiet"
    assert run.main([str(ROOT / "scenarios" / "town.yaml"), "--steps", "2", "--out", str(out), "--plain",
                     "--set", f"cognition.kind={quiet_mind}", "--set", "llm.backend=dry"]) == 0
    decided = [e for e in read_events(out) if e["kind"] == "decided"]
    assert len(decided) == 10 and all(e["data"]["text"].startswith("reads quietly at the ") for e in decided)
    assert not (out / "llm_calls.jsonl").read_text()  # it never asked the model


def test_a_town_mind_must_be_a_town_agent(capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["validate", str(ROOT / "scenarios" / "town.yaml"), "--set", "cognition.kind=mesa:Agent"]) == 2
    assert "cognition.kind: 'mesa:Agent' is not a TownAgent subclass" in capsys.readouterr().err


def test_the_readme_tutorial_quotes_the_example_as_it_is() -> None:
    readme = (ROOT / "README.md").read_text()
    tutorial = readme[readme.index("## Your own world: a tutorial"):readme.index("## LLM backends")]
    code = (EXAMPLE / "market_world.py").read_text()
    blocks = [b.split("\n", 1)[1] for b in tutorial.split("```")[1::2] if b.startswith("python\n")]
    assert len(blocks) == 6 and all(block in code for block in blocks)
    # Between them the blocks hold every line of the module but its imports and docstring.
    quoted = sum(block.count("\n") for block in blocks)
    assert quoted >= code.count("\n") - 20
    yaml_block = next(b for b in tutorial.split("```")[1::2] if b.startswith("yaml\n"))
    assert yaml_block.split("\n", 1)[1] == (EXAMPLE / "market.yaml").read_text()
