"""Instruments: what measures a run's agents, during the run or from its folder afterwards.

Parts (each imported on first use):
    Surveys: a scenario's survey items asked of every agent at the steps it names.
    Interview: agents of a run folder answer questions as they were at one of its snapshots.
    Rater: an LLM judge scores each agent's transcript on a rubric.
    transcript: an agent's part of a run, from its event log.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulacra.instruments.interview import Interview
    from simulacra.instruments.rating import Rater
    from simulacra.instruments.survey import Surveys

__all__ = ["Interview", "Rater", "Surveys"]

_HOME = {"Interview": "interview", "Rater": "rating", "Surveys": "survey"}


def __getattr__(name: str) -> Any:
    """Imports a part when it is first asked for (PEP 562)."""
    if name not in _HOME:
        msg = f"module 'simulacra.instruments' has no attribute {name!r}; it holds {', '.join(__all__)}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
