"""Your own worlds, minds and LLM backends, named in a scenario by import path or by entry point.

A scenario names a built-in by its word (``world.type: town``) and one of yours by an import path
(``world.type: my_pkg.market:MarketWorld``) or by the name an installed package gives it in an entry-point
group (``world.type: market`` with ``[project.entry-points."simulacra.worlds"] market = "my_pkg.market:MarketWorld"``).

| what     | scenario field    | entry-point group     | the class must be                                    |
|----------|-------------------|-----------------------|------------------------------------------------------|
| world    | ``world.type``    | ``simulacra.worlds``  | a `simulacra.World` with a ``section`` (its fields)   |
| mind     | ``cognition.kind``| ``simulacra.minds``   | a ``mesa.Agent`` (in the town, a `TownAgent`)         |
| backend  | ``llm.backend``   | ``simulacra.backends``| a `simulacra.agents.llm.Backend`                      |

Loading a scenario that names one imports its module: run scenarios you trust, as you would run their code.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points

__all__ = ["GROUPS", "IMPORT_PATH", "find_class", "registered"]

GROUPS = {"world": "simulacra.worlds", "mind": "simulacra.minds", "backend": "simulacra.backends"}
IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")  # package.module:Class


def registered(what: str) -> list[str]:
    """The names installed packages register for ``what`` (world, mind or backend)."""
    return sorted({e.name for e in entry_points(group=GROUPS[what])})


def find_class(name: str, *, what: str, builtins: Iterable[str], check: Callable[[type], str | None],
               label: str | None = None) -> type:
    """The class that ``name`` points to: an import path ``package.module:Class`` or a registered name.

    Args:
        name: What the scenario says.
        what: ``world``, ``mind`` or ``backend`` (the entry-point group and the messages).
        builtins: The built-in names, listed as allowed in the message for an unknown name.
        check: Says what is wrong with the class found (one clause, e.g. "is not a subclass of World"), or None.
        label: What the messages call it (default: ``what``).

    Returns:
        The class.

    Raises:
        ValueError: One line: an unknown name (with the names allowed), a path that does not import, or a class
            that ``check`` refuses.
    """
    group, what = GROUPS[what], label or what
    found_points = {e.name: e for e in entry_points(group=group)}
    if name in found_points:
        path = found_points[name].value
    elif IMPORT_PATH.match(name):
        path = name
    else:
        builtins = list(builtins)
        installed = f"installed: {', '.join(sorted(found_points))}" if found_points else "none installed"
        close = difflib.get_close_matches(name, [*builtins, *found_points], n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        msg = (f"unknown {what} {name!r}; {hint}allowed: {', '.join(builtins)}, an import path "
               f"package.module:Class, or a name in the entry-point group {group} ({installed})")
        raise ValueError(msg)
    module, _, attr = path.partition(":")
    try:
        found = getattr(importlib.import_module(module), attr)
    except Exception as err:  # a user's module may fail in any way while it is imported; say so in one line
        first = str(err).splitlines()[0][:200] if str(err) else ""
        msg = (f"{what} {name!r}: cannot import {path!r} ({type(err).__name__}: {first}); check that the module "
               "is installed and names the class")
        raise ValueError(msg) from err
    if not isinstance(found, type):
        problem: str | None = "is not a class"
    elif not (problem := check(found)):
        return found
    msg = f"{what} {name!r}: {path!r} {problem}"
    raise ValueError(msg)
