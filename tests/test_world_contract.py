"""Every built-in world, examples/market and a minimal world of one's own keep the world contract
(`simulacra.testing.WorldContract`), on the dry backend: one road to a world, one set of commands for all."""

from __future__ import annotations

from pathlib import Path

from simulacra.testing import WorldContract

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


class TestTown(WorldContract):
    scenario = SCENARIOS / "town.yaml"


class TestGenerativeTown(WorldContract):
    scenario = SCENARIOS / "valentine.yaml"


class TestBabyAGITown(WorldContract):
    scenario = SCENARIOS / "babyagi.yaml"


class TestVoyagerCrafting(WorldContract):
    scenario = SCENARIOS / "voyager.yaml"


class TestBabyAGICrafting(WorldContract):
    scenario = SCENARIOS / "babyagi-crafting.yaml"


class TestAlignmentSociety(WorldContract):
    scenario = SCENARIOS / "alignment.yaml"


class TestMarket(WorldContract):
    """The README's tutorial world, by import path, memory streams in the run's Chroma and no recall of its own."""

    scenario = ROOT / "examples" / "market" / "market.yaml"
    paths = (ROOT / "examples" / "market",)


class TestCoins(WorldContract):
    """A world of one's own with no memory at all: instruments refuse it with one line."""

    scenario = ROOT / "tests" / "worlds" / "coins.yaml"
    askable = False
    paths = (ROOT,)
