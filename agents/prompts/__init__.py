"""Prompt templates, one YAML file per agent kind, rendered with Jinja ``StrictUndefined``.

Parts:
    render: renders one named template of one file.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import jinja2
import yaml

__all__ = ["render"]

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


@cache
def _templates(kind: str) -> dict[str, jinja2.Template]:
    text = resources.files(__package__).joinpath(f"{kind}.yaml").read_text(encoding="utf-8")
    return {name: _ENV.from_string(body) for name, body in yaml.safe_load(text).items()}


def render(kind: str, template: str, /, **variables: Any) -> str:
    """Renders ``template`` of ``agents/prompts/<kind>.yaml``.

    Raises:
        KeyError: No such template.
        jinja2.UndefinedError: A variable the template uses was not given.
    """
    return _templates(kind)[template].render(**variables)
