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
    contract = [b for b in blocks if "WorldContract" in b]  # step 7: the user's own test, not the module
    blocks = [b for b in blocks if b not in contract]
    assert len(contract) == 1 and len(blocks) == 6 and all(block in code for block in blocks)
    # Between them the blocks hold every line of the module but its imports and docstring.
    quoted = sum(block.count("\n") for block in blocks)
    assert quoted >= code.count("\n") - 20
    yaml_block = next(b for b in tutorial.split("```")[1::2] if b.startswith("yaml\n"))
    assert yaml_block.split("\n", 1)[1] == (EXAMPLE / "market.yaml").read_text()


# --- one road: what our worlds get, the market gets (issue 24's two failures, and the reseeded fork) -------------

@pytest.fixture(scope="module")
def dry_market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """examples/market by import path, 3 steps on the dry backend, with a survey at step 2."""
    import sys

    sys.path.insert(0, str(EXAMPLE))
    out = tmp_path_factory.mktemp("dry-market") / "run"
    survey = "surveys=[{name: s, at: [2, 3], items: [{name: mood, question: How is trade?, type: likert, scale: 5}]}]"
    assert run.main([str(EXAMPLE / "market.yaml"), "--steps", "3", "--out", str(out), "--plain", "--set",
                     "llm.backend=dry", "--set", survey]) == 0
    yield out
    sys.path.remove(str(EXAMPLE))


def _memories(run_dir: Path, copy: Path) -> dict[str, list[tuple[str, int]]]:
    """Each trader's stored memories in a run's Chroma (read from a copy): (id, seq), oldest first.

    Collections are named after the run's id, which a fork keeps from its parent (here ``run``)."""
    from simulacra.memory.chroma_store import ChromaStore

    shutil.copytree(run_dir / "chroma", copy)
    client = open_client(path=copy, url=None)
    store = ChromaStore(client, embed=lambda text: [0.0], prefix="market-run")
    names = [n for n in ("Ada", "Ben", "Cleo", "Dev", "Eli", "Fay")]
    return {n: [(i, int(m["seq"])) for i, m in zip(store.load(n).ids, store.load(n).metadatas, strict=True)]
            for n in names}


def _counts(run_dir: Path, step: int) -> dict[str, int]:
    """How many memories each trader held at the snapshot of ``step``."""
    state = json.loads((run_dir / "snapshots" / f"step-{step:06d}.json").read_text())
    return {name: memory["count"] for name, (_, _, memory) in state["world"]["traders"].items()}


def test_a_market_fork_at_a_step_holds_exactly_that_steps_memories(dry_market: Path, tmp_path: Path) -> None:
    """The fork opens the traders' collections under the run's id (not its own folder's name) and rewinds them."""
    from simulacra.runs.lineage import Lineage

    fork = tmp_path / "fork"
    runner = Lineage(dry_market).fork(fork, at=1, plain=True)
    from simulacra.runs.engines import run_client

    client = run_client(runner.scenario)
    world = runner.build_world(client, [])
    runner.restore(world, client)  # what `fork` does before its first step
    client.close()
    parent = _memories(dry_market, tmp_path / "parent-chroma")
    counts = _counts(dry_market, 1)
    held = {name: [(m.id, m.seq) for m in world.setup.streams[name].nodes] for name in counts}
    assert held == {name: [m for m in parent[name] if m[1] < counts[name]] for name in counts}
    assert sum(counts.values()) > 0 and sum(map(len, parent.values())) > sum(counts.values())
    # And the fork run to its end (python run.py fork) is the parent again, in its Chroma too.
    assert run.main(["fork", str(dry_market), "--at", "1", "--out", str(tmp_path / "whole"), "--plain"]) == 0
    assert _memories(tmp_path / "whole", tmp_path / "whole-chroma") == parent


def test_interviewing_a_market_trader_at_a_step_answers_from_that_steps_memories(
        dry_market: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Trader has no recall: the interview reads the memory stream its world keeps for it, as it was at step 1."""
    capsys.readouterr()
    assert run.main(["interview", str(dry_market), "--agent", "Ben", "--at", "1", "What did you trade?"]) == 0
    (answers,) = (p for p in (dry_market / "interviews").glob("*.jsonl") if p.name != "llm-cache.jsonl")
    (record,) = [json.loads(line) for line in answers.read_text().splitlines()]
    assert record["ok"] and record["step"] == 1 and record["agent"] == "Ben"
    seqs = {int(i.rsplit(":", 1)[1]) for i in record["memory_ids"] if ":pending:" not in i}
    assert record["memory_ids"] and max(seqs) < _counts(dry_market, 1)["Ben"]


def test_a_reseeded_fork_uses_its_seed_everywhere(dry_market: Path, tmp_path: Path) -> None:
    """`--set "seed = 99"` (spaces and all): the world's draws, the surveys, interviews and the judge use 99."""
    from simulacra.agents.respondent import instrument_seed

    fork = tmp_path / "reseeded"
    assert run.main(["fork", str(dry_market), "--at", "1", "--set", "seed = 99", "--out", str(fork), "--plain"]) == 0
    summary = json.loads((fork / "summary.json").read_text())
    assert summary["seed"] == 99 and summary["parent"]["seed"] == 99
    calls = [json.loads(line) for line in (fork / "llm_calls.jsonl").read_text().splitlines()]
    surveyed = [c for c in calls if c["purpose"].startswith("survey:")]
    assert surveyed and all(c["request"]["seed"] == instrument_seed(99, "survey", "s", c["step"], c["agent"], "mood")
                            for c in surveyed)
    assert run.main(["interview", str(fork), "--agent", "Ada", "--at", "2", "Hello?"]) == 0
    (answers,) = (p for p in (fork / "interviews").glob("*.jsonl") if p.name != "llm-cache.jsonl")
    assert json.loads(answers.read_text())["seed"] == instrument_seed(99, "interview", 2, "Ada", "Hello?")
    assert run.main(["rate", str(fork), "--rubric", "believability"]) == 0
    rated = [json.loads(line) for line in (fork / "ratings" / "believability.jsonl").read_text().splitlines()]
    assert rated and all(r["seed"] == instrument_seed(99, "rate", "believability", r["agent"]) for r in rated)
