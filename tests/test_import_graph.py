"""The project's modules import one another without a cycle, and package faces import nothing heavy."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
# The installed root package and the repository folders that hold its parts (pyproject's package-dir).
PACKAGES = ("simulacra", "agents", "worlds", "memory", "scenarios")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join(parts if parts[0] == "simulacra" else ["simulacra", *parts])


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
    assert graph.has_edge("simulacra.worlds.crafting", "simulacra.worlds.crafting_bot")  # a top-level import
    assert graph.has_edge("simulacra.worlds.crafting", "simulacra.worlds.crafting_minds")  # one inside a function
    assert not graph.has_edge("simulacra.worlds.player", "simulacra.worlds.crafting")  # only under TYPE_CHECKING
    # `from simulacra.agents.llm import ...` runs agents/__init__.py
    assert graph.has_edge("simulacra.worlds.crafting", "simulacra.agents")


def test_no_module_imports_itself_through_others() -> None:
    cycles = sorted(nx.simple_cycles(import_graph()), key=len)
    assert cycles == [], f"{len(cycles)} import cycle(s), the shortest: {' -> '.join(cycles[0])}"


def test_package_faces_import_nothing_heavy() -> None:
    probe = ("import sys, simulacra, simulacra.agents, simulacra.worlds, simulacra.memory, simulacra.events, "
             "simulacra.errors, simulacra.scenarios.schema; print(sorted(m for m in ('simulacra.runs.runner', "
             "'simulacra.agents.town_agent', 'torch', 'chromadb', 'mesa') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_import_of_ours_goes_through_the_root_package() -> None:
    """A bare `agents`, `worlds`, `memory` or `scenarios` would be someone else's package once installed."""
    bare = [(module, name) for module, path in MODULES.items()
            for name in _imported(path) if name.split(".")[0] in PACKAGES[1:]]
    assert bare == []


def _imported(path: Path) -> list[str]:
    visitor = Imports()
    visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
    return visitor.names


def test_an_install_next_to_another_agents_package_works(tmp_path: Path) -> None:
    """`pip install .` puts one package, simulacra, beside a user's own top-level `agents` (as the OpenAI Agents SDK
    installs); ours still imports, with its data files, and the command line reads a scenario."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(ROOT)], check=True, capture_output=True)
    installed = sorted(p.name for p in target.iterdir() if not p.name.endswith(".dist-info"))
    assert installed == ["bin", "simulacra"]  # no top-level agents, worlds, memory, scenarios or run
    (target / "agents").mkdir()
    (target / "agents" / "__init__.py").write_text("WHO = 'the other agents'\n")
    probe = ("import agents, simulacra, simulacra.runs.runner, simulacra.agents.prompts as p, simulacra.cli; "
             "print(agents.WHO); print(simulacra.__file__); print(len(p._templates('town')))")
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0] == "the other agents"
    assert Path(out[1]).is_relative_to(target) and int(out[2]) > 0
    scenario = target / "simulacra" / "scenarios" / "town.yaml"  # shipped as package data
    done = subprocess.run([sys.executable, "-m", "simulacra.cli", "validate", str(scenario)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "valid (town world" in done.stdout
    script = subprocess.run([str(target / "bin" / "simulacra"), "validate", str(scenario)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)  # the console script does the same
    assert script.returncode == 0 and script.stdout == done.stdout, script.stderr


DRIVERS = ("simulacra.runs", "simulacra.instruments", "simulacra.data", "simulacra.sweeps", "simulacra.web",
           "simulacra.cli", "simulacra.testing")


def test_worlds_minds_and_memory_never_import_what_drives_them() -> None:
    """Floors: agents, memory, scenarios and worlds sit below runs, instruments, data, sweeps and the web view."""
    graph = import_graph()
    lower = [m for m in MODULES if m.startswith(("simulacra.agents", "simulacra.memory", "simulacra.scenarios",
                                                  "simulacra.worlds"))]
    upward = sorted((m, t) for m in lower if m in graph for t in graph.successors(m) if t.startswith(DRIVERS))
    assert upward == []


def test_the_ground_floor_imports_nothing_of_ours() -> None:
    graph = import_graph()
    assert [t for m in ("simulacra.errors", "simulacra.events") if m in graph for t in graph.successors(m)
            if t != "simulacra"] == []
