"""The scenario reference in Markdown, generated from the schema so that the README stays true."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from simulacra.scenarios.messages import unwrap
from simulacra.scenarios.schema import Scenario
from simulacra.scenarios.sections import WorldSection

__all__ = ["reference_markdown"]


def reference_markdown() -> str:
    """Returns one table per section: field, type, default, meaning."""
    out: list[str] = []
    _section(Scenario, "", out)
    return "\n".join(out).rstrip() + "\n"


def _section(model: type[BaseModel], prefix: str, out: list[str], title: str | None = None) -> None:
    title = title or prefix.rstrip(".") or "top level"
    out += [f"#### `{title}`", "", (model.__doc__ or "").strip().splitlines()[0], "",
            "| field | type | default | meaning |", "|---|---|---|---|"]
    nested: list[tuple[str, type[BaseModel], str | None]] = []
    for name, info in model.model_fields.items():
        kinds = _kinds(info)
        if kinds:  # a union told apart by ``type``: one table per kind
            nested += [(f"{prefix}{name}.", k, f"{prefix}{name} (type: {_tag(k)})") for k in kinds]
        else:
            inner = unwrap(info.annotation)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                nested.append((f"{prefix}{name}.", inner, None))
        out.append(f"| `{name}` | {_type(info)} | {_default(info)} | {info.description or ''} |")
    out.append("")
    for sub_prefix, sub, sub_title in nested:
        _section(sub, sub_prefix, out, sub_title)


def _kinds(info: FieldInfo) -> list[type[BaseModel]]:
    """The built-in sections of a union told apart by ``type`` (``Annotated[Model, Tag(...)]`` members)."""
    if info.discriminator is None:
        return []
    members = [get_args(a)[0] if get_origin(a) is Annotated else a for a in get_args(info.annotation)]
    return [m for m in members if isinstance(m, type) and issubclass(m, BaseModel) and m is not WorldSection]


def _tag(kind: type[BaseModel]) -> str:
    return str(get_args(kind.model_fields["type"].annotation)[0])


def _type(info: FieldInfo) -> str:
    if _kinds(info):
        return " or ".join(k.__name__ for k in _kinds(info)) + " or your own WorldSection"
    text = re.sub(r"simulacra\.scenarios\.\w+\.", "", repr(info.annotation).replace("typing.", ""))
    text = text.replace("<class '", "").replace("'>", "").replace("datetime.datetime", "datetime")
    return _unions(text).replace("|", "or")


def _unions(text: str) -> str:
    """``Union[A, B]`` (how typing prints a union holding a Literal) written as ``A or B``, nested ones too."""
    start = text.find("Union[")
    if start < 0:
        return text
    depth, parts, begin = 0, [], start + len("Union[")
    for i in range(begin, len(text)):
        if text[i] == "[":
            depth += 1
        elif text[i] == "]" and depth:
            depth -= 1
        elif text[i] == "]":
            parts.append(text[begin:i].strip())
            return text[:start] + " or ".join(_unions(p) for p in parts) + _unions(text[i + 1:])
        elif text[i] == "," and not depth:
            parts.append(text[begin:i].strip())
            begin = i + 1
    return text


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value: Any = info.get_default(call_default_factory=True)
    if isinstance(value, datetime):
        return f"`{value:%Y-%m-%d %H:%M}`"
    if isinstance(value, BaseModel):
        return "(section defaults)"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return "(see text)"
    return f"`{value!r}`" if value not in (None, "", {}, []) else "empty"
