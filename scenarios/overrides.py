"""``--set KEY=VALUE`` overrides: the one parser, how one is applied to a scenario, and which a fork may take.

Every option that takes ``KEY=VALUE`` (``--set``, ``--judge-set``, a sweep's ``--grid`` and ``--arm``, a fork's
new seed) reads it here, so ``--set "seed =5"`` means ``seed`` wherever it is given.

Parts:
    split_override: ``KEY=VALUE`` as its dotted key (spaces around it dropped) and the value's text.
    parse_override: ``KEY=VALUE`` as its key path and the value parsed as YAML.
    apply_override: sets a parsed override in a scenario's data, before validation.
    FORKABLE, fork_refusal: the fields a fork may change, and why an override may not.
"""

from __future__ import annotations

import copy
import fnmatch
from typing import Any

import yaml

from simulacra.errors import ScenarioError
from simulacra.scenarios.bounded import load_yaml
from simulacra.scenarios.messages import cut, printable

__all__ = ["FORKABLE", "MAX_OVERRIDE", "apply_override", "fork_refusal", "parse_override", "split_override"]

MAX_OVERRIDE = 100_000  # characters of one --set KEY=VALUE

# What a fork may change: fields read when the world is built or each step, not part of the snapshot's
# structure. ``*`` stands for a list index. Everything else (the world, who lives there, the clock, memory
# stores) would not match the parent's snapshot. A new seed re-seeds the restored world's RNGs (see `Origin`).
FORKABLE: tuple[str, ...] = (
    "steps", "seed", "description", "inject", "inject.*", "llm.*", "agents.*.persona", "agents.*.goal",
    "agents.*.llm", "agents.*.llm.*",
    "cognition.objective",
    "cognition.reflection_threshold", "cognition.dialogue_turns", "cognition.dialogue_cooldown_steps",
    "cognition.task_steps", "memory.retrieval.*", "outputs.live", "outputs.plots",
    "outputs.snapshot_every", "outputs.snapshots_keep", "outputs.snapshots_mb", "surveys", "surveys.*",
)


def split_override(text: str) -> tuple[str, str]:
    """Splits ``a.b.c=value`` at its first ``=`` into the dotted key, stripped, and the value's text as given.

    Args:
        text: What follows ``--set`` (or ``--judge-set``, or a sweep's ``--grid``/``--arm`` after its name).

    Returns:
        ``("a.b.c", "value")``; ``" seed =5"`` gives ``("seed", "5")``.

    Raises:
        ScenarioError: The text has no ``=`` or an empty key, or is longer than 100,000 characters.
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        msg = f"--set {cut(text)!r}: expected KEY=VALUE, e.g. --set llm.backend=openai"
        raise ScenarioError(msg)
    if len(text) > MAX_OVERRIDE:
        label = f"--set {printable(cut(key.strip()))}"
        msg = f"{label}: {len(text):,} characters, more than the {MAX_OVERRIDE:,} allowed; put the value in the file"
        raise ScenarioError(msg)
    return key.strip(), raw


def parse_override(text: str) -> tuple[list[str], Any]:
    """Splits ``a.b.c=value`` into a key path and a YAML-parsed value (text that is not YAML stays text).

    Args:
        text: ``KEY=VALUE``, read by `split_override`.

    Returns:
        ``(["a", "b", "c"], value)``; an empty value is None.

    Raises:
        ScenarioError: As `split_override`, or the value passes the YAML limits of `scenarios.bounded.load_yaml`
            (aliases, nesting).
    """
    key, raw = split_override(text)
    label = f"--set {printable(cut(key))}"
    try:
        value = load_yaml(raw, label)[0] if raw.strip() else None
    except ScenarioError as err:
        if not isinstance(err.__cause__, yaml.YAMLError):
            raise
        value = raw
    return key.split("."), value


def apply_override(data: dict[str, Any], keys: list[str], value: Any, item: str) -> None:
    """Sets ``value`` at ``keys`` in a scenario's data.

    A list item is named by its index (one past the end appends); ``*`` sets the rest of the path in every item.

    Args:
        data: The scenario file's mapping, changed in place.
        keys: The key path (`parse_override`).
        value: The parsed value.
        item: The ``--set`` text, for messages.

    Raises:
        ScenarioError: A key on the way is not a section or an existing list index, or the last names no field.
    """
    node: Any = data
    for depth, key in enumerate(keys[:-1]):
        if key == "*" and isinstance(node, list):  # every item of the list: agents.*.llm.model=M
            for each in node:
                if not isinstance(each, dict):
                    msg = f"--set {item!r}: the items of {'.'.join(keys[:depth])!r} are not sections"
                    raise ScenarioError(msg)
                apply_override(each, keys[depth + 1:], copy.deepcopy(value), item)
            return
        if isinstance(node, list) and _index(key) < len(node):
            node = node[_index(key)]
        elif isinstance(node, dict):
            if node.get(key) is None:  # absent, or null in a scenario a run wrote out (an agent's llm: null)
                node[key] = {}
            node = node[key]
        else:
            msg = f"--set {item!r}: {'.'.join(keys[:depth + 1])!r} is not a section or an existing list index"
            raise ScenarioError(msg)
    last = keys[-1]
    if isinstance(node, list) and _index(last) < len(node):
        node[_index(last)] = value
    elif isinstance(node, list) and _index(last) == len(node):  # one past the end appends
        node.append(value)
    elif isinstance(node, dict):
        node[last] = value
    else:
        msg = f"--set {item!r}: {'.'.join(keys)!r} does not name a field"
        raise ScenarioError(msg)


def fork_refusal(override: str) -> str | None:
    """Why ``--set KEY=VALUE`` cannot be applied at a fork, or None when it can (see `FORKABLE`).

    Raises:
        ScenarioError: ``override`` is not ``KEY=VALUE`` (`split_override`).
    """
    key, _ = split_override(override)
    if any(fnmatch.fnmatchcase(key, pattern) for pattern in FORKABLE):
        return None
    return (f"--set {override!r}: {key!r} cannot change at a fork (the snapshot was made with the parent's); "
            f"forkable: {', '.join(FORKABLE)}")


def _index(key: str) -> int:
    """A list index named by an override's key part, or a huge number when it names none."""
    return int(key) if key.isascii() and key.isdigit() and len(key) < 10 else 1 << 62
