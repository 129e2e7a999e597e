"""Every built-in world, examples/market and a minimal world of one's own keep the world contract
(`simulacra.testing.WorldContract`), on the dry backend: one road to a world, one set of commands for all."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulacra.sweeps.cluster import LOOPBACK_ENV
from simulacra.testing import WorldContract
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
USER_WORLDS = (ROOT / "examples" / "market", ROOT)  # what the worlds below import, on the cluster's workers too


@pytest.fixture(scope="module")
def shared_ray() -> Iterator[str]:
    """One ``ray start --head`` on loopback for every world's sweep check (each would start and stop its own)."""
    ray = str(Path(sys.executable).parent / "ray")
    path = os.pathsep.join([*map(str, USER_WORLDS), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, **LOOPBACK_ENV, "PYTHONPATH": path}
    port = free_port()
    start = subprocess.run([ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
                            "--include-dashboard=false", "--disable-usage-stats"],
                           capture_output=True, text=True, env=env, timeout=120, check=False)
    try:
        assert start.returncode == 0, start.stdout + start.stderr
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, env=env, timeout=120, check=False)


class Contract(WorldContract):
    """The contract with one shared Ray cluster for the sweep checks."""

    @pytest.fixture(scope="class")
    def ray_address(self, shared_ray: str) -> str | None:
        """The module's cluster."""
        return shared_ray


class TestTown(Contract):
    scenario = SCENARIOS / "town.yaml"


class TestGenerativeTown(Contract):
    scenario = SCENARIOS / "valentine.yaml"


class TestBabyAGITown(Contract):
    scenario = SCENARIOS / "babyagi.yaml"


class TestVoyagerCrafting(Contract):
    scenario = SCENARIOS / "voyager.yaml"


class TestBabyAGICrafting(Contract):
    scenario = SCENARIOS / "babyagi-crafting.yaml"


class TestAlignmentSociety(Contract):
    scenario = SCENARIOS / "alignment.yaml"


class TestMarket(Contract):
    """The README's tutorial world, by import path, memory streams in the run's Chroma and no recall of its own."""

    scenario = ROOT / "examples" / "market" / "market.yaml"
    paths = (ROOT / "examples" / "market",)


class TestCoins(Contract):
    """A world of one's own with no memory at all: instruments refuse it with one line."""

    scenario = ROOT / "tests" / "worlds" / "coins.yaml"
    askable = False
    paths = (ROOT,)
