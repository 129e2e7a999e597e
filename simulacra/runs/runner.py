"""Runs a validated scenario: builds the world, writes the run folder and its snapshots, shows progress.

A run starts from nothing, or from a snapshot (`Origin`): its own (resume) or a parent run's (fork).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import pandas as pd
import yaml
from rich.console import Console

from simulacra.agents.llm import LLMClient, ResponseCache
from simulacra.errors import BackendDown, RunStopped, ScenarioError
from simulacra.events import Event, EventKind, EventLog
from simulacra.instruments.survey import Surveys
from simulacra.runs.engines import run_client
from simulacra.runs.live_view import LiveView, PlainView
from simulacra.runs.manifest import MANIFEST, Manifest, scenario_sha256
from simulacra.runs.run_files import CtrlC, check_cut, cut, end_line, fresh_dir, show_kept
from simulacra.runs.snapshots import Snapshots
from simulacra.runs.writer_lock import WriterLock
from simulacra.scenarios.schema import Scenario
from simulacra.worlds.world import World, WorldSetup

__all__ = ["RUN_FILES", "Origin", "Runner", "restore", "run_seed"]

RUN_FILES = {
    "scenario": "scenario.yaml",
    "events": "events.jsonl",
    "llm_calls": "llm_calls.jsonl",
    "metrics": "metrics.parquet",
    "agent_metrics": "agent_metrics.parquet",
    "summary": "summary.json",
    "plot": "metrics.png",
    "snapshots": "snapshots",
    "manifest": MANIFEST,
}


@dataclass(frozen=True)
class Origin:
    """Where a run that does not start from nothing starts: a snapshot, its own (resume) or a parent's (fork).

    Attributes:
        kind: ``resume`` (the same run folder goes on) or ``fork`` (a new folder, prefix copied from the parent).
        snapshot: The snapshot read from disk.
        parent: A fork's parent run folder.
        overrides: A fork's ``--set`` overrides.
        sources: Call logs whose answers are reused, their failures not (the run's own, the parent's).
        where: The snapshot's file, for messages.
        reseed: A fork's new seed (``--set seed=S``): the world is built with the parent's seed, restored, then
            re-seeded, so what was made from the seed (maps, personas) stays the parent's.
    """

    kind: Literal["resume", "fork"]
    snapshot: dict[str, Any]
    parent: Path | None = None
    overrides: tuple[str, ...] = ()
    sources: tuple[Path, ...] = field(default_factory=tuple)
    where: Path | None = None
    reseed: int | None = None


class Runner:
    """One run of one scenario, from an empty run folder to ``summary.json``."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        out: Path | None = None,
        replay: Path | None = None,
        plain: bool = False,
        console: Console | None = None,
        origin: Origin | None = None,
        run_id: str | None = None,
    ) -> None:
        """Prepares the run; nothing is written until `run`.

        Args:
            scenario: The validated scenario.
            out: The run folder; None makes ``<outputs.dir>/<name>-<timestamp>``.
            replay: A previous run folder whose recorded LLM answers are reused.
            plain: Print plain lines even on a terminal.
            console: Where to draw; None is standard output.
            origin: The snapshot to start from (resume, fork); None starts from nothing.
            run_id: Names the run's Chroma collections (a sweep's runs share a Chroma server); None: the
                folder's name. A resumed or forked run keeps the one in its snapshot.

        Raises:
            ScenarioError: ``out`` already holds a run, or ``replay`` is not a run folder.
        """
        self.scenario = scenario
        self.console = console or Console()
        self.plain = plain or not scenario.outputs.live or not self.console.is_terminal
        self.run_dir = out or fresh_dir(Path(scenario.outputs.dir), f"{scenario.name}-")
        self.origin = origin
        run = origin.snapshot.get("run", {}) if origin else {}
        # Chroma collections are named after the run that made them; a resumed or forked run keeps the names.
        self.run_id: str = run.get("id") or run_id or self.run_dir.name
        self.watchers: list[Callable[[Event], None]] = []  # more observers of every event (a sweep's progress)
        self.lineage: dict[str, Any] = {k: v for k, v in run.items() if k != "id"}
        if (origin is None or origin.kind == "fork") and (self.run_dir / RUN_FILES["events"]).exists():
            msg = f"--out {str(self.run_dir)!r} already holds a run (events.jsonl); choose an empty folder"
            raise ScenarioError(msg)
        self.replay = replay or (Path(run["replay"]) if run.get("replay") else None)
        if origin is not None and origin.kind == "fork":
            reseed = {"seed": origin.reseed} if origin.reseed is not None else {}
            self.lineage = {"parent": {"run": str(origin.parent), "step": origin.snapshot["step"],
                                       "overrides": list(origin.overrides), **reseed},
                            "replay": str(replay) if replay else None}
        elif origin is not None:
            self.lineage["resumes"] = [*self.lineage.get("resumes", []), origin.snapshot["step"]]
        elif replay is not None:
            self.lineage["replay"] = str(replay)
        self.lock = WriterLock(self.run_dir, what="run folder")
        self.snapshots = Snapshots(self.run_dir / RUN_FILES["snapshots"], keep=scenario.outputs.snapshots_keep,
                                   budget_mb=scenario.outputs.snapshots_mb)
        self.setup: WorldSetup | None = None  # what the world is built from (`build_world`)
        self.surveys = Surveys(scenario.surveys, total_steps=scenario.steps, seed=run_seed(scenario, self.lineage),
                               top_k=scenario.memory.retrieval.top_k)
        if replay is not None and not (replay / RUN_FILES["llm_calls"]).is_file():
            msg = f"--replay {str(replay)!r} is not a run folder (no {RUN_FILES['llm_calls']}); give a run's folder"
            raise ScenarioError(msg)

    def claim(self) -> None:
        """Takes the run folder's writer lock (`run` does; a fork takes it before it writes the folder).

        Raises:
            SimError: Another process writes the folder; the message names its pid.
        """
        self.lock.acquire()

    def run(self) -> dict[str, Any]:
        """Runs every step (from the origin's, if any) and writes the run folder, holding its writer lock.

        Returns:
            The summary (also written to ``summary.json``).

        Raises:
            SimError: Another process writes the folder (a run, resume or fork of it that is still going).
            RunStopped: The engine stayed unreachable or the folder could not be written; the last snapshot
                is intact and the message says how to resume (exit status 3).
        """
        self.claim()
        try:
            return self._run()
        finally:
            self.lock.release()

    def _run(self) -> dict[str, Any]:
        calls = self._open_calls()
        counts: Counter[str] = Counter(self.origin.snapshot.get("counts", {}) if self.origin else {})
        client = self._client(calls)
        started = time.perf_counter() - (self.origin.snapshot.get("wall_s", 0.0) if self.origin else 0.0)
        count: Callable[[Event], None] = lambda e: counts.update([e.kind])  # noqa: E731
        if self.origin is None:
            events = self._open_events()
            world = self.build_world(client, [events, count])
        else:
            # A restored world is built deaf (its construction's announcements, a board's first tasks, are in
            # the log) and restored, and a resumed run's log checked against the snapshot, before the folder
            # changes, so a snapshot that does not fit the world or the log loses nothing.
            world = self.build_world(client, [])
            try:
                self.restore(world, client)
                if self.origin.kind == "resume":
                    check_cut(self.run_dir / RUN_FILES["events"], self.origin.snapshot,
                              where=self.origin.where or self.snapshots.folder,
                              fix="remove the snapshot to resume from the one before it, or start the run again")
            except ScenarioError:
                client.close()
                calls.close()
                raise
            if self.origin.kind == "resume":
                self.write_scenario()  # a new number of steps
            events = self._open_events()
            world.observers[:0] = [events, count]
        status, stop = "interrupted", None
        try:
            self.write_manifest(client)
            with self._view(client) as view:
                world.observers.extend([view, *self.watchers])
                if self.origin is None:
                    world.start(scenario=self.scenario.name, seed=self.scenario.seed, steps=self.scenario.steps)
                    self.surveys.ask(world, 0)
                elif isinstance(view, LiveView):
                    show_kept(view, events.path)
                if self.origin is None or self.origin.kind == "fork":
                    self._snapshot(world, client, events, counts, started)
                with CtrlC() as ctrl_c:
                    while world.steps < self.scenario.steps:
                        world.step()
                        self.surveys.ask(world, world.steps)
                        every = self.scenario.outputs.snapshot_every
                        due = every and (world.steps % every == 0 or world.steps == self.scenario.steps)
                        if due or ctrl_c.pressed:
                            self._snapshot(world, client, events, counts, started)
                        if ctrl_c.pressed:
                            raise KeyboardInterrupt
                status = "completed"
                world.finish()
        except BackendDown as err:
            status, stop = "stopped", self._stopped(f"the LLM backend is unreachable ({err})")
        except OSError as err:
            status, stop = "stopped", self._stopped(f"cannot write the run folder ({err.strerror or err})")
        except KeyboardInterrupt:  # after the step under way (a second Ctrl-C abandons it: resume redoes it)
            stop = self._stopped("interrupted (Ctrl-C)", exit_status=130)
        finally:
            summary = self._close(world, client, counts, status, time.perf_counter() - started, events, calls)
        if stop is not None:
            raise stop
        return summary

    def restore(self, world: World, client: LLMClient) -> None:
        """Puts the origin's snapshot into the freshly built world and client (and the surveys' answers so far).

        Raises:
            ScenarioError: The snapshot does not fit this scenario's world (edited, or another run's).
        """
        snapshot = self.origin.snapshot if self.origin else {}
        where = self.origin.where if self.origin and self.origin.where else None
        restore(world, client, snapshot, where=where, reseed=self.origin.reseed if self.origin else None)
        try:
            self.surveys.set_state(snapshot.get("surveys", {}))
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as err:
            raise _misfit(where, err) from err

    def _open_calls(self) -> IO[str]:
        """Makes the folder, checks it can be written, writes a new run's scenario, opens the call log.

        Raises:
            ScenarioError: The run folder cannot be made or written.
        """
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            probe = self.run_dir / ".write-check"
            probe.write_bytes(b"ok")
            probe.unlink()
            if self.origin is None or self.origin.kind == "fork":
                self.write_scenario()
            calls_path = self.run_dir / RUN_FILES["llm_calls"]
            end_line(calls_path)  # a line torn by a kill is kept apart from the next record
            return calls_path.open("a", encoding="utf-8")
        except OSError as err:
            raise self._unwritable(err) from err

    def _open_events(self) -> EventLog:
        """Opens the event log, first cut back to the snapshot's length when the run starts from one.

        Raises:
            ScenarioError: The folder cannot be written, or the log is shorter than the snapshot says.
        """
        path = self.run_dir / RUN_FILES["events"]
        try:
            if self.origin is not None:
                cut(path, self.origin.snapshot["events_bytes"])
            return EventLog(path)
        except OSError as err:
            raise self._unwritable(err) from err

    def _unwritable(self, err: OSError) -> ScenarioError:
        return ScenarioError(f"{self.run_dir}: cannot write the run folder ({err.strerror or err}); "
                             "choose another --out or free some space")

    def write_scenario(self) -> None:
        """Writes ``scenario.yaml``: the validated scenario, headed by where a fork came from."""
        header = ""
        parent = self.lineage.get("parent")
        if parent:
            sets = " ".join(f"--set {o}" for o in parent["overrides"]) or "no overrides"
            header = f"# forked from {parent['run']} at step {parent['step']} with {sets}\n"
        body = yaml.safe_dump(self.scenario.model_dump(mode="json"), sort_keys=False)
        (self.run_dir / RUN_FILES["scenario"]).write_text(header + body, encoding="utf-8")

    def _snapshot(self, world: World, client: LLMClient, events: EventLog, counts: Counter[str],
                  started: float) -> None:
        """Writes the snapshot of the step just ended (the event log made durable first)."""
        self.snapshots.write(world.steps, {
            "step": world.steps, "events_bytes": events.sync(), "run": {"id": self.run_id, **self.lineage},
            "world": world.get_state(), "llm": client.get_state(), "surveys": self.surveys.get_state(),
            "counts": dict(counts),
            "wall_s": round(time.perf_counter() - started, 3)})

    def _stopped(self, why: str, *, exit_status: int = 3) -> RunStopped:
        steps = self.snapshots.steps()
        kept = f"its snapshot of step {steps[-1]} is intact" if steps else "it has no snapshot"
        return RunStopped(f"{why}; the run stopped, {kept}; resume with: python run.py resume {self.run_dir}",
                          exit_status=exit_status)

    def _close(self, world: World, client: LLMClient, counts: Counter[str], status: str, wall_s: float,
               events: EventLog, calls: IO[str]) -> dict[str, Any]:
        """Ends the event log, writes metrics, plots and the summary (best effort on a full disk)."""
        summary: dict[str, Any] = {}
        try:
            world.emit(EventKind.RUN_FINISHED, None, {"steps": world.steps, "status": status})
            summary = self._finish(world, client, counts, status, wall_s)
        except OSError:
            if status != "stopped":
                raise
        finally:
            client.close()
            for file in (events, calls):
                try:
                    file.close()
                except OSError:  # a full disk: what was buffered is lost, the snapshot before it is not
                    if status != "stopped":
                        raise
        return summary

    def _client(self, calls: IO[str]) -> LLMClient:
        llm = self.scenario.llm
        cache = None
        sources = [self.replay / RUN_FILES["llm_calls"]] if self.replay else []
        answers = list(self.origin.sources) if self.origin is not None else []
        keep = llm.cache and llm.backend != "dry"  # dry answers cost nothing; cached, they would count no tokens
        if keep or sources or answers:
            path = Path(llm.cache_path or Path(self.scenario.outputs.dir) / "llm-cache.jsonl") if keep else None
            cache = ResponseCache(path, sources=sources, answers=answers)

        def log(record: dict[str, Any]) -> None:
            calls.write(json.dumps(record, ensure_ascii=False) + "\n")
            calls.flush()

        return run_client(self.scenario, cache=cache, call_log=log)

    def write_manifest(self, client: LLMClient) -> None:
        """Writes ``manifest.json`` (`Manifest`) once the world is built; a resume keeps the one its run started with.

        A resume with a larger ``--steps`` rewrote ``scenario.yaml``: the kept manifest's hash of it follows.

        Raises:
            OSError: The folder cannot be written.
        """
        if self.origin is not None and self.origin.kind == "resume" and (self.run_dir / MANIFEST).exists():
            try:
                kept = Manifest.read(self.run_dir)
            except ScenarioError:
                return  # a damaged manifest is left for `verify` to report; the run goes on
            if kept.data["scenario_sha256"] != (digest := scenario_sha256(self.run_dir)):
                kept.data["scenario_sha256"] = digest
                kept.write(self.run_dir)
            return
        # The world loads the embedder while it is built, only if something in it embeds texts (memory streams,
        # skill library, task results, answer memory).
        embedder = self.setup is not None and self.setup._embed is not None
        Manifest.of_run(self.scenario, self.run_dir, seed=self._seed(), model_id=client.backend.model_id,
                        embedder=embedder).write(self.run_dir)

    def build_world(self, client: LLMClient, observers: list[Any]) -> World:
        """Builds the scenario's world around ``client`` (`WorldSetup.build`: one road for ours and yours).

        Args:
            client: The LLM client every agent asks.
            observers: Called with every event (empty: a deaf world, to be restored from a snapshot).

        Returns:
            The world at step 0.
        """
        self.setup = WorldSetup(scenario=self.scenario, llm=client, observers=observers, run_dir=self.run_dir,
                                run_id=self.run_id)
        return self.setup.build()

    def _view(self, client: LLMClient) -> LiveView | PlainView:
        price = self.scenario.llm.price
        if self.plain:
            view = PlainView(self.console, total_steps=self.scenario.steps)
            view.stats, view.price = client.stats, price
            return view
        return LiveView(self.console, scenario=self.scenario.name, total_steps=self.scenario.steps, stats=client.stats,
                        price=price)

    def _finish(self, world: World, client: LLMClient, counts: Counter[str], status: str,
                wall_s: float) -> dict[str, Any]:
        metrics, agents = _collected(world)
        self.surveys.join(metrics).to_parquet(self.run_dir / RUN_FILES["metrics"])
        agents.to_parquet(self.run_dir / RUN_FILES["agent_metrics"])
        title = f"{self.scenario.name} (seed {self.scenario.seed})"
        if self.scenario.outputs.plots and len(metrics):
            world.plots(metrics, self.run_dir, title=title)
        if self.scenario.outputs.plots:
            self.surveys.plots(self.run_dir, title=title)
        summary = {
            "scenario": self.scenario.name,
            "run_dir": str(self.run_dir),
            "status": status,
            "seed": self._seed(),
            "steps": world.steps,
            "sim_end": world.sim_time().isoformat(timespec="minutes"),
            "wall_s": round(wall_s, 2),
            "agent_steps_per_s": round(world.steps * len(world.by_name) / wall_s, 3) if wall_s else None,
            "llm": self._llm_summary(client, world.steps * len(world.by_name)),
            **self._lineage_summary(),
            "events": dict(sorted(counts.items())),
            **world.summary(),
            **({"surveys": self.surveys.summary()} if self.surveys else {}),
        }
        (self.run_dir / RUN_FILES["summary"]).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        return summary

    def _llm_summary(self, client: LLMClient, agent_steps: int) -> dict[str, Any]:
        """The engine, how its tokens were counted (the dry backend), its counters, tokens and cost per agent-step."""
        counted = getattr(client.backend, "token_counter", None)
        return {"backend": self.scenario.llm.backend, "model": client.backend.model_id,
                **({"token_counter": counted} if counted else {}), **client.stats.to_dict(),
                **client.stats.usage(agent_steps, self.scenario.llm.price)}

    def _seed(self) -> int:
        """The run's seed: a fork's new seed (kept in its lineage when it resumes), else the scenario's."""
        return run_seed(self.scenario, self.lineage)

    def _lineage_summary(self) -> dict[str, Any]:
        """``parent`` (a fork's), ``replay`` and ``resumed_from`` (the step the latest resume started at)."""
        out = {k: v for k, v in self.lineage.items() if v is not None}
        if out.get("resumes"):
            out["resumed_from"] = out["resumes"][-1]
        return out


def run_seed(scenario: Scenario, lineage: Mapping[str, Any]) -> int:
    """A run's seed: a fork's new seed (``--set seed=S``, kept in its lineage), else the scenario's.

    A reseeded fork is built with its parent's seed and re-seeded after its restore; what it asks from then on
    (surveys, interviews, a judge) draws from the new seed.

    Args:
        scenario: The run's scenario.
        lineage: The run's lineage (a snapshot's ``run``, or ``summary.json``): ``parent.seed`` if reseeded.
    """
    parent = lineage.get("parent")
    seed = parent.get("seed") if isinstance(parent, Mapping) else None
    return scenario.seed if seed is None else int(seed)


def restore(world: World, client: LLMClient, snapshot: Mapping[str, Any], *, where: Path | None = None,
            reseed: int | None = None) -> None:
    """Puts a snapshot into a freshly built world and its client (a resume, a fork, an interview).

    Args:
        world: Built from the snapshot's scenario (`WorldSetup.build`), with the run's id.
        client: The world's client; it takes the snapshot's counters and answers so far.
        snapshot: A snapshot (`Snapshots.load`).
        where: The snapshot's file, for messages.
        reseed: A fork's new seed: the parent's past, fresh draws from here on.

    Raises:
        ScenarioError: The snapshot does not fit the world (edited, or another run's), or its world is at
            another step than the snapshot's.
    """
    try:
        world.set_state(snapshot["world"])
        client.set_state(snapshot.get("llm", {}))
        if reseed is not None:
            world.reseed(reseed)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as err:
        raise _misfit(where, err) from err
    if world.steps != snapshot.get("step"):  # the world's own count: an edited one would run on from it
        msg = (f"{where or 'the snapshot'}: the snapshot is of step {snapshot.get('step')!r}, but its world is at "
               f"step {world.steps!r}; it was edited: resume from another step or start the run again")
        raise ScenarioError(msg)


def _misfit(where: Path | None, err: Exception) -> ScenarioError:
    return ScenarioError(f"{where or 'the snapshot'}: the snapshot does not fit the run's scenario "
                         f"({type(err).__name__}: {str(err)[:120]}); resume from another step or start the run again")


def _collected(world: World) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The world's DataCollector as frames: one row per step (``step``), one per agent and step (may be empty).

    A world without a DataCollector, or without agent reporters, gets empty frames rather than an error.
    """
    collector = getattr(world, "datacollector", None)
    if collector is None:
        return pd.DataFrame({"step": pd.Series(dtype="int64")}), pd.DataFrame()
    metrics = collector.get_model_vars_dataframe()
    metrics.index.name = "step"
    metrics = metrics.reset_index().assign(step=lambda df: df["step"] + world.metrics_start)
    agents = collector.get_agent_vars_dataframe().reset_index() if collector.agent_reporters else pd.DataFrame()
    return metrics, agents
