"""What every scenario section shares: frozen pydantic models that refuse unknown keys, and cross-field errors.

Parts:
    Section: the base of every section model.
    at: a cross-field error that points at a field, turned into ``file:line: field: message`` by the schema.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Section", "at"]


class Section(BaseModel):
    """A scenario section: frozen, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def at(path: str, message: str) -> ValueError:
    """A cross-field error that points at ``path`` (dotted, relative to the model being checked)."""
    return ValueError(f"@{path}@{message}")
