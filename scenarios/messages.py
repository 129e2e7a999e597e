"""Error rendering for scenario files: one line naming the file, the line, the field, the bad value and the fix.

Parts:
    describe: the line for a scenario's first pydantic error (`scenarios.loading.load_scenario`).
    first_error: the error of a model's validation to report, as a field path and a message.
    where: ``file:line`` of a field (or the ``--set`` that set it).
    dotted: a field path as people write it, ``agents[2].home``.
    fields_at: the field names a model allows at a path.
    choices: ``did you mean ...? allowed: ...`` for a bad name.
    cut, printable: a value shortened, and kept on one line, for a message.
    unwrap: the model inside an annotation such as ``list[Model] | None``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

__all__ = ["choices", "cut", "describe", "dotted", "fields_at", "first_error", "printable", "unwrap", "where"]

Lines = Mapping[tuple[str, ...], int]  # field path -> its 1-based line in the file
SetBy = Mapping[tuple[str, ...], str]  # field path -> the ``--set KEY=VALUE`` that set it


def choices(value: str, allowed: list[str]) -> str:
    """``did you mean 'x'? allowed: a, b, c``: the closest allowed name, if one is close, then all of them."""
    close = difflib.get_close_matches(value, allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}allowed: {', '.join(allowed)}"


def first_error(err: ValidationError, model: type[BaseModel]) -> tuple[list[str], str]:
    """The error of ``err`` to report, as the field's path in ``model`` and a message that says what is allowed.

    An unknown key comes first: it usually explains a missing one.
    """
    error = min(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
    rel, message = _cross_field(error)
    loc = [*_loc(error), *rel]
    if error["type"] == "extra_forbidden":
        fields = list(getattr(_model_at(model, loc[:-1]), "model_fields", {}))
        message = f"unknown field {cut(loc[-1])!r}; {choices(loc[-1], fields)}"
    elif error["type"] == "missing":
        message = "required field is missing; add it"
    elif error["type"] == "value_error":
        message = message.removeprefix("Value error, ")
    else:
        message = f"{message.rstrip('.')} (got {cut(repr(error.get('input')), 200)})"
    return loc, message


def describe(error: Any, path: Path, lines: Lines, set_by: SetBy, *, model: type[BaseModel],
             worlds: Mapping[str, type[BaseModel]]) -> str:
    """The one line for ``error``, one of pydantic's errors of validating ``model`` from the file ``path``.

    Args:
        error: The error (a dict of `ValidationError.errors`).
        path: The file.
        lines: Each field path's line in the file.
        set_by: The ``--set`` that set a field path, which is named instead of a line.
        model: The file's model (a `Scenario`).
        worlds: World type -> its section's model (the tag pydantic puts in a world's error location).

    Returns:
        ``where: field: what is wrong; what is allowed``.
    """
    loc = _loc(error)
    tag = None
    if loc[:1] == ["world"] and len(loc) > 1 and loc[1] in worlds:  # the discriminator tag is not a YAML key
        tag = loc.pop(1)
    rel, message = _cross_field(error)
    loc += rel
    head = f"{where(tuple(loc), path, lines, set_by)}: {dotted(loc) or '(top level)'}"
    if error["type"] == "extra_forbidden":
        allowed = fields_at(loc[:-1], model, worlds, tag)
        return f"{head}: unknown field {cut(loc[-1])!r}; {choices(loc[-1], allowed)}"
    if error["type"] == "union_tag_invalid":
        tags = error["ctx"]["expected_tags"].replace("'", "")
        return f"{head}.type: unknown world type {error['ctx']['tag']!r}; allowed: {tags}"
    if error["type"] == "missing":
        return f"{head}: required field is missing; add it (see the scenario reference in README.md)"
    if error["type"] == "value_error":
        return f"{head}: {message}"
    return f"{head}: {message.rstrip('.')} (got {cut(repr(error.get('input')), 200)})"


def where(loc: tuple[str, ...], path: Path, lines: Lines, set_by: SetBy) -> str:
    """``file:line`` of the field at ``loc`` (or of the nearest section above it), or the ``--set`` that set it."""
    for n in range(len(loc), -1, -1):
        if loc[:n] in set_by:
            return f"--set {cut(set_by[loc[:n]])}"
        if loc[:n] in lines:
            return f"{path}:{lines[loc[:n]]}"
    return str(path)


def dotted(loc: list[str]) -> str:
    """A field path as people write it: ``agents[2].home``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def fields_at(loc: list[str], model: type[BaseModel], worlds: Mapping[str, type[BaseModel]],
              world: str | None = None) -> list[str]:
    """The field names allowed at ``loc`` in ``model``; ``world`` is the world's type (its section's model)."""
    node: Any = model
    for part in loc:
        if part.isdigit():
            continue
        fields = getattr(node, "model_fields", {})
        if part not in fields:
            return []
        node = worlds[world] if node is model and part == "world" and world else unwrap(fields[part].annotation)
    return list(getattr(node, "model_fields", {}))


def cut(text: str, most: int = 100) -> str:
    """``text``, shortened to ``most`` characters for a message."""
    return text if len(text) <= most else text[:most] + "..."


def cause(err: BaseException, most: int = 200) -> str:
    """A library's exception as ``Type: message`` for the middle of a one-line error (`cut`, then `printable`)."""
    return f"{type(err).__name__}: {printable(cut(str(err), most))}"


def printable(text: str) -> str:
    """``text`` with newlines and other control characters escaped, so that a message stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def unwrap(annotation: Any) -> Any:
    """The pydantic model inside ``annotation`` (``list[Model]``, ``Model | None``), or ``annotation`` itself."""
    while not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if get_origin(annotation) is None or not args:
            return annotation
        annotation = args[0]
    return annotation


def _loc(error: Any) -> list[str]:
    """An error's field path, without the validator names pydantic puts in it."""
    return [str(part) for part in error["loc"] if not str(part).startswith("function-")]


def _cross_field(error: Any) -> tuple[list[str], str]:
    """A cross-field error's own path below the model that raised it (`sections.at`), and its message."""
    message = error["msg"]
    if error["type"] == "value_error" and message.startswith("Value error, @"):
        rel, _, message = message.removeprefix("Value error, @").partition("@")
        return rel.split("."), message
    return [], message


def _model_at(model: Any, loc: list[str]) -> Any:
    for part in loc:
        if not part.isdigit():
            fields = getattr(model, "model_fields", {})
            model = unwrap(fields[part].annotation) if part in fields else None
    return model
