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
