"""A world's actions as tools with JSON schemas, built from the methods that perform them.

A `Tool` is a name, a one-line description and the JSON schema of its arguments, read from a method's signature
and Google-style docstring (as smolagents' ``tool`` decorator reads type hints and ``Args:``). `call_schema`
joins tools into the schema of one tool call, ``{"tool": name, <arguments>}``, that the engine enforces;
`parse_call` checks an answer against its tool's own schema with jsonschema and says what was wrong, for the LLM
to retry.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from simulacra.errors import ParseError

__all__ = ["Tool", "ToolCall", "call_schema", "parse_call", "tools_from_methods"]

JSON_TYPES = {"int": "integer", "str": "string", "float": "number", "bool": "boolean"}


@dataclass(frozen=True)
class Tool:
    """One action an agent can call: its name, what it does, and its arguments' schema.

    ``parameters`` maps each argument to its JSON schema (with a ``description``); ``required`` lists those
    without a default.
    """

    name: str
    description: str
    parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    required: tuple[str, ...] = ()

    def schema(self) -> dict[str, Any]:
        """The schema of a call of this tool: ``{"tool": name, <arguments>}``, nothing else."""
        return {"type": "object", "properties": {"tool": {"const": self.name}, **self.parameters},
                "required": ["tool", *self.required], "additionalProperties": False}

    def signature(self) -> str:
        """How the prompt shows it, e.g. ``mine(block, count=1)``."""
        args = [p if p in self.required else f"{p}={self.parameters[p].get('default')!r}" for p in self.parameters]
        return f"{self.name}({', '.join(args)})"


@dataclass(frozen=True)
class ToolCall:
    """A tool call an agent chose: the tool's name and its arguments."""

    tool: str
    args: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-safe dict."""
        return {"tool": self.tool, "args": dict(self.args)}

    def __str__(self) -> str:
        """E.g. ``mine(block='log', count=3)``."""
        return f"{self.tool}({', '.join(f'{k}={v!r}' for k, v in self.args.items())})"


def tools_from_methods(cls: type, names: Iterable[str], *,
                       arguments: Mapping[str, Mapping[str, Any]] | None = None) -> list[Tool]:
    """One `Tool` per method of ``cls``, from its signature (types, defaults) and docstring (descriptions).

    Args:
        cls: The class whose methods perform the actions (the first parameter, ``self``, is skipped).
        names: The methods to expose, in the order the prompt lists them.
        arguments: Argument name → extra schema keywords (``enum``, ``minimum``, ...) for every tool that has it.

    Returns:
        The tools.

    Raises:
        TypeError: A parameter's annotation has no JSON type (only int, str, float, bool, optionally ``| None``).
    """
    tools = []
    for name in names:
        method = getattr(cls, name)
        doc = inspect.getdoc(method) or ""
        described = _arg_docs(doc)
        parameters: dict[str, dict[str, Any]] = {}
        required = []
        for param in list(inspect.signature(method).parameters.values())[1:]:
            schema = {"type": _json_type(cls, name, param), "description": described.get(param.name, param.name),
                      **(arguments or {}).get(param.name, {})}
            if param.default is param.empty:
                required.append(param.name)
            elif param.default is not None:
                schema["default"] = param.default
            parameters[param.name] = schema
        tools.append(Tool(name, doc.splitlines()[0] if doc else name, parameters, tuple(required)))
    return tools


def call_schema(tools: Iterable[Tool]) -> dict[str, Any]:
    """The schema of one call of any of ``tools``, for the engine: ``tool`` first, then any tool's arguments.

    One flat object, not ``anyOf`` over the tools: llama.cpp's grammar writes required properties in
    alphabetical order, so in an ``anyOf`` branch such as mine's ``{"block", "count", "tool"}`` the model must
    write the argument before the tool's name, and small models then favour the few tools whose arguments sort
    after ``tool`` (SmolLM2-135M chose ``move_to`` 7 times in 8 where, asked without a schema, it chose ``mine``
    7 times in 8). Here ``tool`` is the only required property, so it comes first; `parse_call` then holds the
    call to its own tool's schema. An argument name several tools share takes the first tool's schema.
    """
    tools = list(tools)
    arguments: dict[str, dict[str, Any]] = {}
    for tool in tools:
        for name, schema in tool.parameters.items():
            arguments.setdefault(name, {k: v for k, v in schema.items() if k not in ("description", "default")})
    return {"type": "object", "properties": {"tool": {"type": "string", "enum": [t.name for t in tools]},
                                             **arguments}, "required": ["tool"], "additionalProperties": False}


def parse_call(data: Any, tools: Iterable[Tool]) -> ToolCall:
    """Checks a call against its tool's schema (defaults filled in, other tools' arguments left out).

    Raises:
        ParseError: Not a call of a known tool, or arguments that break its schema; the feedback says which.
    """
    by_name = {t.name: t for t in tools}
    name = data.get("tool") if isinstance(data, dict) else None
    if name not in by_name:
        msg = f"unknown tool {name!r}"
        raise ParseError(msg, feedback=f'Reply with {{"tool": one of {", ".join(by_name)}, and its arguments}}.')
    tool = by_name[name]
    data = {k: v for k, v in data.items() if k == "tool" or k in tool.parameters}
    errors = sorted(Draft202012Validator(tool.schema()).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        where = ".".join(str(p) for p in errors[0].path) or "call"
        msg = f"bad call of {name}: {where}: {errors[0].message}"
        raise ParseError(msg, feedback=f"In your {name} call, {where}: {errors[0].message}. Arguments of "
                         f"{tool.signature()}: {', '.join(tool.parameters) or 'none'}.")
    args = {p: data.get(p, schema.get("default")) for p, schema in tool.parameters.items()}
    return ToolCall(name, {k: v for k, v in args.items() if v is not None})


def _json_type(cls: type, method: str, param: inspect.Parameter) -> str:
    annotation = str(param.annotation).replace(" | None", "")
    if annotation not in JSON_TYPES:
        msg = (f"{cls.__name__}.{method}: parameter {param.name!r} is annotated {param.annotation!r}; a tool's "
               f"parameters must be one of {', '.join(JSON_TYPES)} (optionally | None)")
        raise TypeError(msg)
    return JSON_TYPES[annotation]


def _arg_docs(doc: str) -> dict[str, str]:
    """Argument name → its description, from a Google-style ``Args:`` section (continuation lines joined)."""
    section = re.search(r"^Args:\n((?:[ \t]+\S.*\n?)+)", doc, flags=re.MULTILINE)
    lines = section.group(1).splitlines() if section else []
    indent = len(lines[0]) - len(lines[0].lstrip()) if lines else 0
    out: dict[str, str] = {}
    current = None
    for line in lines:
        match = re.match(r"(\w+)(?: \(.*?\))?: (.*)", line[indent:])
        if match and not line[indent].isspace():
            current = match.group(1)
            out[current] = match.group(2).strip()
        elif current:
            out[current] += " " + line.strip()
    return out
