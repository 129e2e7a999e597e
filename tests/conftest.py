"""Shared fixtures: a minimal valid scenario, written where each test wants it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent

MINIMAL = """\
name: t
steps: 2
world: {type: town}
agents:
  - {name: A, persona: a baker, home: cafe}
  - {name: B, persona: a poet, home: park}
"""


@pytest.fixture
def write(tmp_path: Path):  # noqa: ANN201 - a factory
    """Writes text to a YAML file in tmp_path and returns its path."""

    def _write(text: str, name: str = "s.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture(autouse=True)
def _no_default_chroma_embedder(monkeypatch):
    """Chroma's default embedding function downloads a model: any use of it fails the test."""
    try:
        from chromadb.utils import embedding_functions
    except ImportError:
        return

    def refuse(self, input):  # noqa: A002 - Chroma checks that __call__ takes (self, input)
        msg = "Chroma's default embedding function was used; pass ours explicitly"
        raise AssertionError(msg)

    monkeypatch.setattr(embedding_functions.DefaultEmbeddingFunction, "__call__", refuse)


@pytest.fixture
def chroma_store(request):
    """A real Chroma (in memory) with the fake embedder and a collection prefix unique to the test."""
    import zlib

    import chromadb

    from simulacra.memory.chroma_store import ChromaStore
    from tests.fakes import bag_of_words

    return ChromaStore(chromadb.EphemeralClient(), embed=bag_of_words,
                       prefix=f"t{zlib.crc32(request.node.nodeid.encode())}")


VALENTINE_STEPS = 2


@pytest.fixture(scope="session")
def valentine_run(tmp_path_factory) -> Path:
    """One valentine run on the embedded model, shared by the e2e tests that only read it.

    2 steps, every snapshot kept, a low reflection threshold (so a reflection fires), the scenario's party survey at
    the start and the end. Tests copy it before writing into it.
    """
    import run

    out = tmp_path_factory.mktemp("valentine") / "recorded"  # its Chroma prefix is valentine-recorded
    scenario = ROOT / "scenarios" / "valentine.yaml"
    status = run.main([str(scenario), "--steps", str(VALENTINE_STEPS), "--out", str(out), "--plain",
                       "--set", "llm.cache=false", "--set", "cognition.reflection_threshold=10",
                       "--set", "outputs.snapshots_keep=0"])
    assert status == 0
    return out


@pytest.fixture(scope="session")
def town_recording(tmp_path_factory) -> Path:
    """town.yaml, 4 steps on the dry backend (made-up answers, so people walk), every snapshot kept."""
    import run

    out = tmp_path_factory.mktemp("town") / "recorded"
    status = run.main([str(ROOT / "scenarios" / "town.yaml"), "--steps", "4", "--out", str(out), "--plain",
                       "--set", "llm.backend=dry", "--set", "llm.model=estimate", "--set", "outputs.snapshots_keep=0"])
    assert status == 0
    return out


CRAFTING_SKILL = ("def get_log(bot):\n    t = bot.find('log')\n    bot.move_to(max(t['x'] - 1, 0), t['y'])\n"
                  "    bot.mine('log', 1)\n")


def _crafting_script(request) -> str:  # noqa: ANN001 - an LLMRequest
    import json

    props = (request.schema or {}).get("properties", {})
    if "code" in props:
        return json.dumps({"explanation": "walk to the nearest tree and mine it", "code": CRAFTING_SKILL})
    if "success" in props:
        return json.dumps({"reasoning": "checked", "success": True, "critique": ""})
    if "description" in props:
        return json.dumps({"description": "mine a log from the nearest tree"})
    return json.dumps({"reasoning": "wood first", "verb": "mine", "item": "log", "count": 1})


@pytest.fixture(scope="session")
def crafting_recording(tmp_path_factory) -> Path:
    """voyager.yaml, 3 steps with a scripted model whose skill walks to a tree and mines it; snapshots kept."""
    import simulacra.runs.runner
    from simulacra.scenarios.schema import load_scenario
    from tests.fakes import ScriptedBackend

    out = tmp_path_factory.mktemp("crafting") / "recorded"
    scenario = load_scenario(ROOT / "scenarios" / "voyager.yaml",
                             ["steps=3", "outputs.snapshots_keep=0", "llm.cache=false"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(simulacra.runs.runner, "make_backend", lambda llm: ScriptedBackend(_crafting_script))
        simulacra.runs.runner.Runner(scenario, out=out, plain=True).run()
    return out
