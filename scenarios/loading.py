"""Reading scenario files: bounded YAML, ``--set`` overrides, validation, and errors on one line.

Parts:
    load_scenario: a scenario file, with its overrides, as a frozen `scenarios.schema.Scenario`.
    load_file: another YAML file (a rubric, say) as the pydantic model it holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from simulacra.errors import ScenarioError
from simulacra.scenarios.bounded import load_yaml, read_text
from simulacra.scenarios.messages import cut, describe, dotted, first_error, printable, where
from simulacra.scenarios.overrides import apply_override, parse_override
from simulacra.scenarios.schema import WORLD_SECTIONS, Scenario

__all__ = ["load_file", "load_scenario"]

M = TypeVar("M", bound=BaseModel)


def load_scenario(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Scenario:
    """Reads, overrides and validates a scenario file.

    Args:
        path: The YAML file.
        overrides: ``KEY=VALUE`` strings (``--set``); list items are addressed by index (agents.0.name).

    Returns:
        The validated scenario.

    Raises:
        ScenarioError: One line naming the file, line, field, bad value and the fix.
    """
    path = Path(path)
    data, root = load_yaml(read_text(path, what="scenario"), path)  # bounded: size, aliases, nesting
    if not isinstance(data, dict):
        kind = type(data).__name__
        msg = f"{path}:1: a scenario is a mapping of fields (name, steps, world, agents, ...), got {kind}"
        raise ScenarioError(msg)
    lines = _line_map(root, path)
    set_by: dict[tuple[str, ...], str] = {}
    for item in overrides:
        keys, value = parse_override(item)
        apply_override(data, keys, value, item)
        set_by[tuple(keys)] = item
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        # An unknown key usually explains a "missing" one (a typo), so report it first.
        first = min(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
        line = describe(first, path, lines, set_by, model=Scenario, worlds=WORLD_SECTIONS)
        raise ScenarioError(printable(line)) from None


def load_file(path: Path, model: type[M], *, what: str) -> M:
    """Reads a YAML file other than a scenario (a rubric, say) within bounds and validates it as ``model``.

    Args:
        path: The YAML file.
        model: The pydantic model it holds.
        what: What the file is, for messages (``rubric``).

    Returns:
        The validated model.

    Raises:
        ScenarioError: One line: the file and line, the field, what is wrong and what is allowed (a key given
            twice included).
    """
    data, root = load_yaml(read_text(path, what=what), path)
    if not isinstance(data, dict):
        msg = f"{path}:1: a {what} is a mapping of fields ({', '.join(model.model_fields)}), got {type(data).__name__}"
        raise ScenarioError(msg)
    lines = _line_map(root, path)  # before validating: YAML keeps a key given twice silently, the last one
    try:
        return model.model_validate(data)
    except ValidationError as err:
        loc, message = first_error(err, model)
        at = where(tuple(loc), path, lines, {})
        field = dotted(loc) or "(top level)"
        raise ScenarioError(printable(f"{at}: {field}: {message}")) from None


def _line_map(root: yaml.Node | None, path: Path) -> dict[tuple[str, ...], int]:
    """Maps each field path to its 1-based line; also rejects duplicate keys (YAML keeps the last)."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, at: tuple[str, ...]) -> None:
        lines.setdefault(at, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                name = str(key.value)
                if name in seen:
                    field = printable(cut(".".join([*at, name])))
                    msg = f"{path}:{key.start_mark.line + 1}: {field}: key given twice; keep one"
                    raise ScenarioError(msg)
                seen.add(name)
                lines[(*at, name)] = key.start_mark.line + 1
                walk(value, (*at, name))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*at, str(i)))

    if root is not None:
        walk(root, ())
    return lines
