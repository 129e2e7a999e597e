"""The project's modules import one another without a cycle, and package faces import nothing heavy."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agents", "worlds", "memory", "scenarios")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")} | {"run": ROOT / "run.py"}


class Imports(ast.NodeVisitor):
    """Every import a module runs, at its top or inside a function; ``if TYPE_CHECKING:`` blocks never run."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def visit_If(self, node: ast.If) -> None:
        if "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.names += [alias.name for alias in node.names]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and not node.level:
            self.names += [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                           for a in node.names]


def ours(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> nx.DiGraph:
    """Module → every project module its imports run, the packages' ``__init__`` on the way included."""
    graph = nx.DiGraph()
    for module, path in MODULES.items():
        visitor = Imports()
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        for target in filter(None, map(ours, visitor.names)):
            parts = target.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__.py and a/b/__init__.py first
                runs = ".".join(parts[:i])
                if runs in MODULES and runs != module and not module.startswith(runs + "."):
                    graph.add_edge(module, runs)
    return graph


def test_the_graph_sees_the_imports_it_should() -> None:
    graph = import_graph()
    assert graph.has_edge("worlds.crafting", "worlds.crafting_bot")  # a top-level import
    assert graph.has_edge("worlds.runner", "worlds.crafting")  # one inside a function
    assert not graph.has_edge("worlds.player", "worlds.crafting")  # only under TYPE_CHECKING
    assert graph.has_edge("worlds.crafting", "agents")  # `from agents.llm import ...` runs agents/__init__.py


def test_no_module_imports_itself_through_others() -> None:
    cycles = sorted(nx.simple_cycles(import_graph()), key=len)
    assert cycles == [], f"{len(cycles)} import cycle(s), the shortest: {' -> '.join(cycles[0])}"


def test_package_faces_import_nothing_heavy() -> None:
    probe = ("import sys, agents, worlds, memory, worlds.events, agents.errors, scenarios.schema; "
             "print(sorted(m for m in ('worlds.runner', 'agents.town_agent', 'torch', 'chromadb', 'mesa') "
             "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
