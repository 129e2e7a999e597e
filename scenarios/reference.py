"""The scenario reference in Markdown, generated from the schema so that the README stays true."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from scenarios.schema import Scenario, _unwrap

__all__ = ["reference_markdown"]


def reference_markdown() -> str:
    """Returns one table per section: field, type, default, meaning."""
    out: list[str] = []
    _section(Scenario, "", out)
    return "\n".join(out).rstrip() + "\n"


def _section(model: type[BaseModel], prefix: str, out: list[str]) -> None:
    title = prefix.rstrip(".") or "top level"
    out += [f"#### `{title}`", "", (model.__doc__ or "").strip().splitlines()[0], "",
            "| field | type | default | meaning |", "|---|---|---|---|"]
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, info in model.model_fields.items():
        inner = _unwrap(info.annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            nested.append((f"{prefix}{name}.", inner))
        out.append(f"| `{name}` | {_type(info)} | {_default(info)} | {info.description or ''} |")
    out.append("")
    for sub_prefix, sub in nested:
        _section(sub, sub_prefix, out)


def _type(info: FieldInfo) -> str:
    text = repr(info.annotation).replace("typing.", "").replace("scenarios.schema.", "")
    text = text.replace("<class '", "").replace("'>", "").replace("datetime.datetime", "datetime")
    return text.replace("|", "or")


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
