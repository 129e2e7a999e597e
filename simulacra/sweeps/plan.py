"""What a sweep runs: every grid cell × arm × replica of one scenario, each with its own seed and folder.

The plan is checked whole before anything starts (every run's scenario is validated, a fork's overrides
are checked against `FORKABLE`), and written to ``DIR/sweep.json`` so that ``sweep --resume DIR`` runs
exactly the same runs.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from simulacra.errors import ScenarioError, SimError
from simulacra.scenarios.bounded import load_json, read_text
from simulacra.scenarios.loading import load_scenario
from simulacra.scenarios.overrides import fork_refusal, split_override

__all__ = ["MANIFEST", "RunSpec", "SweepPlan", "replica_seed"]

MANIFEST = "sweep.json"
MAX_RUNS = 10_000  # cells × arms × replicas; a typo in a grid should not queue a million runs
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


def replica_seed(sweep_seed: int, replica: int) -> int:
    """The seed of replica ``replica``: the sweep's own seed for replica 0, then drawn from it.

    Every cell and arm share their replicas' seeds (common random numbers): arm A's replica 3 and arm B's
    replica 3 differ only in what the arms change, which narrows the confidence interval of the difference.
    """
    if replica == 0:
        return sweep_seed
    return random.Random(f"simulacra-sweep:{sweep_seed}:{replica}").randrange(2**31)


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep.

    Attributes:
        id: Its folder's name under ``DIR/runs/`` (``c<cell>-<arm>-r<replica>``).
        cell: The grid cell as ``KEY=VALUE`` overrides (empty without a grid).
        cell_index: The cell's number, in the order the grid lists them.
        arm: The arm's name (``base`` without arms).
        replica: The replica's number, from 0.
        seed: The run's seed (`replica_seed`).
        overrides: Everything the run sets on the scenario: the sweep's ``--set``, the cell, the arm, the seed.
    """

    id: str
    cell: tuple[str, ...]
    cell_index: int
    arm: str
    replica: int
    seed: int
    overrides: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        """The inverse of `to_dict`."""
        return cls(id=data["id"], cell=tuple(data["cell"]), cell_index=int(data["cell_index"]), arm=data["arm"],
                   replica=int(data["replica"]), seed=int(data["seed"]), overrides=tuple(data["overrides"]))


@dataclass
class SweepPlan:
    """A sweep's runs and where they come from.

    Attributes:
        scenario: The scenario file (None for a sweep of forks: the parent's recorded scenario is used).
        sets: ``--set`` overrides for every run.
        grid: ``(KEY, [V1, V2, ...])`` in the order given; the cells are their product.
        arms: Arm name → its overrides, in the order given (``{"base": []}`` without ``--arm``).
        replicas: Runs per cell and arm.
        parent: A run every run forks from (``--from``), or None.
        at: The parent's step the forks start at.
        seed: The sweep seed (the scenario's, after ``--set``).
        id: A short tag, unique per sweep folder, that names the runs' Chroma collections.
        cwd: The folder the sweep was started in; each run works there (relative paths in the scenario).
    """

    scenario: Path | None
    sets: list[str] = field(default_factory=list)
    grid: list[tuple[str, list[str]]] = field(default_factory=list)
    arms: dict[str, list[str]] = field(default_factory=lambda: {"base": []})
    replicas: int = 1
    parent: Path | None = None
    at: int | None = None
    seed: int = 0
    id: str = ""
    cwd: Path | None = None

    @classmethod
    def from_args(cls, scenario: Path | None, *, sets: Sequence[str] = (), grid: Sequence[str] = (),
                  arms: Sequence[str] = (), replicas: int = 1, parent: Path | None = None, at: int | None = None,
                  out: Path, cpus_per_run: float = 1.0) -> SweepPlan:
        """Parses the command line's ``--grid``, ``--arm`` and ``--from``/``--at`` into a checked plan.

        With the embedded llama.cpp engine, each run's threads are set to ``cpus_per_run`` (unless ``sets``
        names ``llm.n_threads``): runs side by side on more threads than their CPUs slow each other down.
        The shared LLM cache file is off (``llm.cache=false``) unless ``sets`` names it. Paths are made
        absolute and the current folder is recorded: a run's relative paths mean what they mean here.

        Raises:
            ScenarioError: A malformed option, a bad scenario value in any run, or a field a fork cannot change.
        """
        if (scenario is None) == (parent is None):
            msg = "sweep: give a scenario FILE, or --from RUN_DIR --at STEP to fork every run from a parent run"
            raise ScenarioError(msg)
        if parent is not None and at is None:
            msg = f"--from {str(parent)!r}: give --at STEP, the parent's step every run forks from"
            raise ScenarioError(msg)
        if replicas < 1:
            msg = f"--replicas {replicas}: give 1 or more"
            raise ScenarioError(msg)
        plan = cls(scenario=scenario.resolve() if scenario else None, sets=list(sets),
                   grid=[_grid_axis(g) for g in grid], arms=_arms(arms), replicas=replicas,
                   parent=parent.resolve() if parent else None, at=at, cwd=Path.cwd())
        base = plan.base()
        plan.seed = base.seed
        plan.grid = [(key, plan._seeds(values) if key == "seed" else values) for key, values in plan.grid]
        named = {split_override(s)[0] for s in sets}  # valid: `base` read them
        if base.llm.backend == "llamacpp" and "llm.n_threads" not in named:
            plan.sets.append(f"llm.n_threads={max(1, round(cpus_per_run))}")
        if not named & {"llm.cache", "llm.cache_path"}:
            # Runs side by side would append to one cache file at once; each reuses its own llm_calls.jsonl when
            # it resumes, which is all a sweep needs.
            plan.sets.append("llm.cache=false")
        plan.id = hashlib.sha1(f"{out.resolve()}:{plan.seed}".encode()).hexdigest()[:6]
        plan.check()
        return plan

    def base(self, overrides: Sequence[str] = ()) -> Any:
        """The scenario every run starts from, with ``overrides`` on top (a fork's: the parent's recorded one)."""
        return load_scenario(self._file(), [*self.sets, *overrides])

    def scenario_of(self, spec: RunSpec) -> Any:
        """The scenario ``spec`` runs (its overrides already hold the sweep's ``--set``)."""
        return load_scenario(self._file(), list(spec.overrides))

    def _seeds(self, values: list[str]) -> list[str]:
        """A ``--grid seed=...`` axis's values as the scenario reads them (``007`` is 7), each checked once.

        Raises:
            ScenarioError: A value that is no seed, or two that are the same seed.
        """
        seeds = [str(self.base([f"seed={value}"]).seed) for value in values]
        if len(set(seeds)) != len(seeds):
            msg = f"--grid seed={','.join(values)}: a seed is listed twice; list each seed once"
            raise ScenarioError(msg)
        return seeds

    def _file(self) -> Path:
        if self.scenario is not None:
            file = self.scenario
        elif self.parent is not None:
            file = self.parent / "scenario.yaml"
        else:
            msg = "sweep: give a scenario FILE, or --from RUN_DIR --at STEP to fork every run from a parent run"
            raise ScenarioError(msg)
        if self.parent is not None and not file.is_file():
            msg = f"--from {str(self.parent)!r}: not a run folder (no scenario.yaml); give a folder a run wrote"
            raise SimError(msg)
        return file

    def runs(self) -> list[RunSpec]:
        """Every run, cells outermost, then arms, then replicas.

        A grid over ``seed`` gives each cell its own sweep seed, and an arm that sets ``seed`` its own: replica 0
        runs with it, the others draw theirs from it (`replica_seed`).
        """
        keys = [key for key, _ in self.grid]
        cells = list(itertools.product(*(values for _, values in self.grid))) or [()]
        out = []
        for index, values in enumerate(cells):
            cell = tuple(f"{k}={v}" for k, v in zip(keys, values, strict=True))
            cell_seed = int(dict(zip(keys, values, strict=True)).get("seed", self.seed))
            for arm, arm_sets in self.arms.items():
                named = [value for key, value in map(split_override, arm_sets) if key == "seed"]
                # An arm that names a seed is its own sweep seed, as a grid cell over the seed is.
                own_seed = int(self._seeds(named[-1:])[0]) if named else cell_seed
                for replica in range(self.replicas):
                    seed = replica_seed(own_seed, replica)
                    # A fork's replica 0 goes on with the parent's draws (unless its arm reseeds); a fresh run always
                    # names its seed.
                    keep = self.parent is not None and replica == 0 and not named
                    seeds = [] if keep else [f"seed={seed}"]
                    out.append(RunSpec(id=f"c{index}-{arm}-r{replica}", cell=cell, cell_index=index, arm=arm,
                                       replica=replica, seed=seed, overrides=(*self.sets, *cell, *arm_sets, *seeds)))
        return out

    def check(self) -> None:
        """Validates every run's scenario (and, for forks, that every override may change at a fork).

        Raises:
            ScenarioError: The first run that would fail, naming the option that made it.
        """
        cells = max(1, len(list(itertools.product(*(v for _, v in self.grid)))))
        total = cells * len(self.arms) * self.replicas
        if total > MAX_RUNS:
            msg = f"the sweep has {total} runs (cells × arms × replicas); at most {MAX_RUNS}: shrink the grid"
            raise ScenarioError(msg)
        for spec in self.runs():
            if self.parent is not None:
                for item in spec.overrides:
                    why = fork_refusal(item)
                    if why:
                        raise ScenarioError(why)
            self.scenario_of(spec)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, for ``sweep.json``."""
        return {"scenario": str(self.scenario) if self.scenario else None, "sets": self.sets,
                "grid": [[k, v] for k, v in self.grid], "arms": self.arms, "replicas": self.replicas,
                "parent": str(self.parent) if self.parent else None, "at": self.at, "seed": self.seed, "id": self.id,
                "cwd": str(self.cwd) if self.cwd else None,
                "runs": [spec.to_dict() for spec in self.runs()]}

    def write(self, folder: Path) -> None:
        """Writes ``folder/sweep.json``."""
        (folder / MANIFEST).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, folder: Path) -> SweepPlan:
        """The plan a sweep folder holds.

        Raises:
            SimError: ``folder`` is not a sweep folder, or its ``sweep.json`` is damaged.
        """
        path = folder / MANIFEST
        if not path.is_file():
            msg = f"--resume {str(folder)!r}: not a sweep folder (no {MANIFEST}); give the --out of a sweep"
            raise SimError(msg)
        data = load_json(read_text(path, what="sweep manifest", limit=64_000_000), path,
                         problem="not a sweep manifest", fix="start the sweep again in a new folder")
        try:
            return cls.from_manifest(data)
        except (KeyError, TypeError, ValueError) as err:
            msg = f"{path}: a damaged sweep manifest ({type(err).__name__}: {err}); start the sweep again"
            raise SimError(msg) from err

    @classmethod
    def from_manifest(cls, data: dict[str, Any]) -> SweepPlan:
        """The plan `to_dict` wrote (its ``runs`` are recomputed, not read).

        Raises:
            KeyError, TypeError, ValueError: ``data`` is not such a dict.
        """
        return cls(scenario=Path(data["scenario"]) if data["scenario"] else None, sets=list(data["sets"]),
                       grid=[(k, list(v)) for k, v in data["grid"]], arms=dict(data["arms"]),
                       replicas=int(data["replicas"]), parent=Path(data["parent"]) if data["parent"] else None,
                   at=data["at"], seed=int(data["seed"]), id=str(data["id"]),
                   cwd=Path(data["cwd"]) if data.get("cwd") else None)


def _grid_axis(text: str) -> tuple[str, list[str]]:
    """``KEY=V1,V2,...`` as the key (read as ``--set`` reads it, `split_override`) and its values."""
    try:
        key, values = split_override(text)
    except ScenarioError:
        key, values = "", ""
    items = [v.strip() for v in values.split(",")]
    if not key or not all(items):
        msg = f"--grid {text!r}: give KEY=V1,V2,..., e.g. --grid llm.temperature=0.2,0.9"
        raise ScenarioError(msg) from None
    if len(set(items)) != len(items):
        msg = f"--grid {text!r}: a value is listed twice; list each value once"
        raise ScenarioError(msg)
    return key, items


def _arms(texts: Sequence[str]) -> dict[str, list[str]]:
    """``NAME:KEY=VALUE`` (repeatable per name; ``NAME`` alone is an arm that changes nothing).

    ``KEY=VALUE`` is read as ``--set`` reads it (`split_override`).
    """
    arms: dict[str, list[str]] = {}
    for text in texts:
        name, sep, override = text.partition(":")
        if not _NAME.match(name) or (sep and not _is_override(override)):
            msg = (f"--arm {text!r}: give NAME:KEY=VALUE (NAME of letters, digits, . _ -), "
                   "e.g. --arm warm:llm.temperature=0.9, or NAME alone for a control arm")
            raise ScenarioError(msg)
        arms.setdefault(name, [])
        if sep:
            arms[name].append(override)
    return arms or {"base": []}


def _is_override(text: str) -> bool:
    try:
        split_override(text)
    except ScenarioError:
        return False
    return True
