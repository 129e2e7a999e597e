"""The contract every world keeps, ours and yours: subclass `WorldContract` in your tests to check your world.

LangChain proves its integrations with one shared test suite (``langchain-tests``); this is Simulacra's. A
world passes when everything the framework does with a run works on its runs: a run folder with its event log
and metrics, resume equal to a straight run, replay byte for byte, fork at a step with its memories rewound,
interviews and surveys (or, for minds that cannot be asked, one line naming the protocol), the web view's
frames, harvest, a judge's ratings, and a sweep with arms forked from a run::

    from simulacra.testing import WorldContract

    class TestMarket(WorldContract):
        scenario = "examples/market/market.yaml"

Each check runs the command line in this process (``simulacra.cli.main``), on the ``dry`` backend unless you
change `WorldContract.overrides`, so the whole contract takes seconds to a minute per world. It needs pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

__all__ = ["WorldContract"]

SURVEY = ("surveys=[{name: contract, at: [1], items: [{name: mood, question: 'How is your day going?', "
          "type: likert, scale: 5}]}]")


def cli(*args: str | Path) -> int:
    """Runs ``python run.py ARGS`` in this process; returns its exit status."""
    from simulacra.cli import main

    return main([str(a) for a in args])


def lines(path: Path) -> list[bytes]:
    """The lines of a file, ends kept."""
    return path.read_bytes().splitlines(keepends=True)


def log_upto(run_dir: Path, step: int) -> list[bytes]:
    """A run's event log up to the end of ``step``: what a fork or an arm started there shares with it."""
    return [line for line in lines(run_dir / "events.jsonl")
            if json.loads(line)["step"] <= step and b'"run_finished"' not in line]


def memories(run_dir: Path, scratch: Path) -> dict[str, list[tuple[str, str]]]:
    """Every Chroma collection of a run folder (read from a copy): name -> sorted (id, document) pairs."""
    from simulacra.memory.chroma_store import open_client
    from simulacra.runs.run_files import copy_run_part

    if not (run_dir / "chroma").is_dir():
        return {}
    copy = scratch / f"chroma-{run_dir.name}"
    copy_run_part(run_dir / "chroma", copy)
    client = open_client(path=copy, url=None)
    out = {}
    for found in client.list_collections():
        got = client.get_collection(found.name, embedding_function=None).get(include=["documents"])
        out[found.name] = sorted(zip(got["ids"], got["documents"] or [], strict=False))
    return out


class WorldContract:
    """The checks a world must pass; subclass it with your scenario to run them in your tests.

    Attributes:
        scenario: Your scenario file.
        overrides: ``--set`` overrides for every run (the ``dry`` backend by default: fast, deterministic).
        steps: How many steps the contract's runs take (at least 2).
        askable: Whether interviews and surveys can ask its agents (a ``recall``, or memory streams of
            ``setup.memory_stream``); False: they must refuse with one line naming ``simulacra.Recalls``.
        paths: Folders your world's module is imported from (``sys.path`` here, ``PYTHONPATH`` for a sweep,
            which starts a local Ray and needs the ``ray`` extra).
    """

    scenario: ClassVar[str | Path]
    overrides: ClassVar[tuple[str, ...]] = ("llm.backend=dry",)
    steps: ClassVar[int] = 3
    askable: ClassVar[bool] = True
    paths: ClassVar[tuple[str | Path, ...]] = ()

    # -- fixtures ----------------------------------------------------------------------------------------
    @pytest.fixture(scope="class", autouse=True)
    def _importable(self) -> Iterator[None]:
        added = [str(Path(p).resolve()) for p in self.paths]
        sys.path[:0] = added
        yield
        for path in added:
            sys.path.remove(path)

    @pytest.fixture(scope="class")
    def workdir(self, tmp_path_factory: pytest.TempPathFactory) -> Path:
        """A folder for this world's runs."""
        return tmp_path_factory.mktemp(f"contract-{type(self).__name__}")

    @pytest.fixture(scope="class")
    def run_dir(self, workdir: Path) -> Path:
        """One straight run of `steps` steps with a survey when `askable`; the checks read it."""
        out = workdir / "run"
        survey = ("--set", SURVEY) if self.askable else ()
        assert self._run(out, *survey) == 0, f"the run of {self.scenario} failed"
        return out

    def _run(self, out: Path, *extra: str, steps: int | None = None) -> int:
        sets = [arg for o in self.overrides for arg in ("--set", o)]
        return cli("run", self.scenario, "--out", out, "--plain", "--steps", str(steps or self.steps), *sets, *extra)

    # -- the run folder ------------------------------------------------------------------------------------
    def test_a_run_writes_its_folder(self, run_dir: Path) -> None:
        """Event log from run_started to run_finished, a summary, metrics and snapshots of every step."""
        events = [json.loads(line) for line in lines(run_dir / "events.jsonl")]
        assert [e["kind"] for e in events].count("run_started") == 1 and events[-1]["kind"] == "run_finished"
        assert events[-1]["data"] == {"steps": self.steps, "status": "completed"}
        assert [e["step"] for e in events] == sorted(e["step"] for e in events)
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        assert summary["status"] == "completed" and summary["steps"] == self.steps
        assert summary["events"] == dict(sorted(_count(e["kind"] for e in events).items()))
        assert (run_dir / "metrics.parquet").stat().st_size > 0
        assert (run_dir / "snapshots").is_dir() and any((run_dir / "snapshots").iterdir())

    def test_resume_equals_a_straight_run(self, run_dir: Path, workdir: Path) -> None:
        """A run of one step, resumed to the end, writes the straight run's event log (but the steps asked for)."""
        short = workdir / "short"
        assert self._run(short, *self._survey_args(), steps=1) == 0
        assert cli("resume", short, "--steps", str(self.steps), "--plain") == 0
        resumed, straight = lines(short / "events.jsonl"), lines(run_dir / "events.jsonl")
        started = [i for i, line in enumerate(straight) if b'"run_started"' in line]
        assert len(resumed) == len(straight) and len(started) == 1
        at = started[0]
        assert resumed[:at] + resumed[at + 1:] == straight[:at] + straight[at + 1:]
        first = json.loads(resumed[at])
        assert first["data"].pop("steps") == 1  # run_started says how many steps the run was started for
        assert json.loads(straight[at])["data"] == {**first["data"], "steps": self.steps}

    def test_replay_is_byte_identical(self, run_dir: Path) -> None:
        """Replaying the run from its recorded answers gives its event log again (exit 0)."""
        assert cli("replay", run_dir) == 0

    def test_fork_starts_from_the_parent_with_memories_rewound(self, run_dir: Path, workdir: Path) -> None:
        """A fork at step 1, run on to the end, is the parent again: events and stored memories alike.

        Memories written after step 1 were rewound in the fork's copy of the stores, not kept twice.
        """
        fork = workdir / "fork"
        assert cli("fork", run_dir, "--at", "1", "--out", fork, "--plain") == 0
        assert lines(fork / "events.jsonl") == lines(run_dir / "events.jsonl")
        assert memories(fork, workdir) == memories(run_dir, workdir)

    def test_a_reseeded_fork_goes_its_own_way_from_the_step(self, run_dir: Path, workdir: Path) -> None:
        """``--set seed=S`` forks with the parent's past and the new seed's draws; the summary says S."""
        fork = workdir / "reseeded"
        assert cli("fork", run_dir, "--at", "1", "--set", "seed = 4242", "--out", fork, "--plain") == 0
        summary = json.loads((fork / "summary.json").read_text(encoding="utf-8"))
        assert summary["seed"] == 4242 and summary["parent"]["seed"] == 4242
        child, upto = lines(fork / "events.jsonl"), log_upto(run_dir, 1)
        assert child[:len(upto)] == upto

    # -- instruments ---------------------------------------------------------------------------------------
    def test_interview_at_a_step(self, run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Every agent answers, as it was at step 1; a mind that cannot be asked gets one line, exit 2."""
        capsys.readouterr()
        status = cli("interview", run_dir, "--all", "--at", "1", "What happened today?")
        err = capsys.readouterr().err
        if not self.askable:
            assert status == 2 and err.count("\n") == 1 and "simulacra.Recalls" in err
            return
        assert status == 0, err
        (answers,) = (p for p in (run_dir / "interviews").glob("*.jsonl") if p.name != "llm-cache.jsonl")
        records = [json.loads(line) for line in answers.read_text(encoding="utf-8").splitlines()]
        assert {r["step"] for r in records} == {1}
        assert sorted(r["agent"] for r in records) == sorted(self._agents(run_dir))

    def test_survey_answers_are_in_the_log_and_metrics(self, run_dir: Path, workdir: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
        """Asked at step 1, each agent answers once; a mind that cannot be asked gets one line, exit 2."""
        if not self.askable:
            capsys.readouterr()
            assert self._run(workdir / "surveyed", "--set", SURVEY) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "simulacra.Recalls" in err
            return
        events = [json.loads(line) for line in lines(run_dir / "events.jsonl")]
        answers = [e for e in events if e["kind"] == "survey_answer"]
        assert sorted(e["agent"] for e in answers) == sorted(self._agents(run_dir))
        assert {e["step"] for e in answers} == {1}
        import pandas as pd

        columns = pd.read_parquet(run_dir / "metrics.parquet").columns
        assert any(str(c).startswith("survey.contract.mood.") for c in columns)

    def test_the_judge_rates_every_agent(self, run_dir: Path) -> None:
        """``rate`` with a shipped rubric writes a rating per agent and dimension."""
        assert cli("rate", run_dir, "--rubric", "believability") == 0
        records = [json.loads(line) for line in (run_dir / "ratings" / "believability.jsonl").read_text().splitlines()]
        assert {r["agent"] for r in records} <= set(self._agents(run_dir)) and records

    def test_harvest_reads_the_run(self, run_dir: Path, workdir: Path) -> None:
        """``harvest`` takes the run (exit 0) and writes its datasets folder."""
        out = workdir / "harvest"
        assert cli("harvest", run_dir, "--out", out) == 0
        assert out.is_dir()

    def test_the_web_view_draws_every_step(self, run_dir: Path) -> None:
        """``view``'s API: the run, a frame for each step naming the agents, each agent with its memories."""
        from starlette.testclient import TestClient

        from simulacra.web.memories import StoredMemories
        from simulacra.web.run_index import RunIndex
        from simulacra.web.server import make_app

        memories = StoredMemories(run_dir)
        try:
            client = TestClient(make_app(RunIndex(run_dir), memories))
            meta = client.get("/api/run").json()
            assert meta["steps"] == self.steps and sorted(meta["agents"]) == sorted(self._agents(run_dir))
            for step in range(self.steps + 1):
                assert client.get("/api/frame", params={"step": step}).json()["step"] == step
            for name in self._agents(run_dir):
                agent = client.get("/api/agent", params={"name": name, "step": self.steps}).json()
                assert agent["name"] == name and agent["memory_error"] is None
        finally:
            memories.close()

    @pytest.fixture(scope="class")
    def ray_address(self) -> str | None:
        """The Ray cluster the sweep check joins (``HOST:PORT``); None: the sweep starts a local Ray of its own.

        Override it to share one cluster between worlds (``tests/test_world_contract.py`` does); the cluster's
        workers must import your world (start it with your `paths` on ``PYTHONPATH``).
        """
        return None

    def test_a_sweep_with_arms_forks_from_the_run(self, run_dir: Path, workdir: Path, ray_address: str | None) -> None:
        """``sweep --from RUN --at 1`` with two arms: both complete and share the parent's log up to step 1."""
        out = workdir / "sweep"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, self.paths), os.environ.get("PYTHONPATH", "")])}
        cluster = ["--ray", ray_address] if ray_address else []
        done = subprocess.run([sys.executable, "-m", "simulacra.cli", "sweep", "--from", str(run_dir), "--at", "1",
                               "--arm", "base", "--arm", f"longer:steps={self.steps + 1}", "--out", str(out),
                               "--plain", "--max-parallel", "1", *cluster], env=env, capture_output=True, text=True,
                              timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        runs = sorted((out / "runs").iterdir())
        assert len(runs) == 2
        upto = log_upto(run_dir, 1)
        for run in runs:
            assert lines(run / "events.jsonl")[:len(upto)] == upto

    # -- helpers -------------------------------------------------------------------------------------------
    def _survey_args(self) -> tuple[str, ...]:
        return ("--set", SURVEY) if self.askable else ()

    @staticmethod
    def _agents(run_dir: Path) -> list[str]:
        for line in lines(run_dir / "events.jsonl"):
            event = json.loads(line)
            if event["kind"] == "run_started":
                return list(event["data"]["agents"])
        return []


def _count(kinds: Any) -> dict[str, int]:
    from collections import Counter

    return dict(Counter(kinds))
