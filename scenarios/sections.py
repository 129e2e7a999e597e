"""What every scenario section shares: frozen pydantic models that refuse unknown keys, and cross-field errors.

Parts:
    Section: the base of every section model.
    WorldSection: the base of a world's section (``world:`` in a scenario), yours included.
    at: a cross-field error that points at a field, turned into ``file:line: field: message`` by the schema.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Section", "WorldSection", "at"]


class Section(BaseModel):
    """A scenario section: frozen, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class WorldSection(Section):
    """A world's section of a scenario: its ``type`` and its own fields.

    Your world declares its fields in a subclass (pydantic ``Field``s with a description each) and names the
    subclass as its ``section``; a scenario's ``world:`` mapping is validated against it, and its errors read
    like any other field's (``file:line: world.field: what is wrong; allowed: ...``).
    """

    type: str = Field(description="The world: a built-in name, an import path package.module:Class, or a "
                      "name registered in the entry-point group simulacra.worlds.")


def at(path: str, message: str) -> ValueError:
    """A cross-field error that points at ``path`` (dotted, relative to the model being checked)."""
    return ValueError(f"@{path}@{message}")
