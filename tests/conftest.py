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

    def refuse(*args, **kwargs):
        msg = "Chroma's default embedding function was used; pass ours explicitly"
        raise AssertionError(msg)

    monkeypatch.setattr(embedding_functions.DefaultEmbeddingFunction, "__call__", refuse)


@pytest.fixture
def chroma_store(request):
    """A real Chroma (in memory) with the fake embedder and a collection prefix unique to the test."""
    import zlib

    import chromadb

    from memory.chroma_store import ChromaStore
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
