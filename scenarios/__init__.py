"""Scenarios: the shipped scenario files, and the one place where a scenario file is read and validated.

Parts (each imported on first use, so ``import simulacra.scenarios.bounded`` does not load the models):
    Scenario: the frozen pydantic model of a whole scenario file, its world sections and agents (`schema`).
    LLMConfig: the ``llm`` section; its defaults are the LLM layer's ``DEFAULT_*`` (`llm`).
    CognitionConfig, MemoryConfig: how agents think and remember (`cognition`).
    PerceptionConfig, CrowdConfig: what townspeople perceive, and a town's generated crowd (`population`).
    SurveyConfig, Rubric: surveys asked during a run, and a judge's rubric (`instruments`).
    Section, WorldSection: the bases of every section, yours included (`sections`).
    load_scenario, load_file: a scenario file (with ``--set`` overrides), another YAML file (`loading`).
    parse_override, fork_refusal: the one ``KEY=VALUE`` parser, and what a fork may change (`overrides`).
    bounded: YAML and JSON read within limits; messages: one-line errors; reference: the README's reference.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulacra.scenarios.cognition import CognitionConfig, MemoryConfig
    from simulacra.scenarios.instruments import Rubric, SurveyConfig
    from simulacra.scenarios.llm import LLMConfig
    from simulacra.scenarios.loading import load_file, load_scenario
    from simulacra.scenarios.overrides import fork_refusal, parse_override
    from simulacra.scenarios.population import CrowdConfig, PerceptionConfig
    from simulacra.scenarios.schema import Scenario
    from simulacra.scenarios.sections import Section, WorldSection

__all__ = [
    "CognitionConfig", "CrowdConfig", "LLMConfig", "MemoryConfig", "PerceptionConfig", "Rubric", "Scenario",
    "Section", "SurveyConfig", "WorldSection", "fork_refusal", "load_file", "load_scenario", "parse_override",
]

_HOME = {
    "CognitionConfig": "cognition", "MemoryConfig": "cognition", "Rubric": "instruments",
    "SurveyConfig": "instruments", "LLMConfig": "llm", "load_file": "loading", "load_scenario": "loading",
    "fork_refusal": "overrides", "parse_override": "overrides", "CrowdConfig": "population",
    "PerceptionConfig": "population", "Scenario": "schema", "Section": "sections", "WorldSection": "sections",
}


def __getattr__(name: str) -> Any:
    """Imports a part when it is first asked for (PEP 562)."""
    if name not in _HOME:
        msg = f"module 'simulacra.scenarios' has no attribute {name!r}; it holds {', '.join(__all__)}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
