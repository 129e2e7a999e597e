"""Runs a validated scenario: builds the world, writes the run folder, shows progress."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import yaml
from rich.console import Console

from agents.errors import ScenarioError
from agents.llm import LLMClient, ResponseCache, make_backend
from scenarios.schema import Scenario
from worlds.events import EventKind, EventLog
from worlds.live_view import LiveView, PlainView
from worlds.town import TownWorld
from worlds.world import World

__all__ = ["RUN_FILES", "Runner"]

RUN_FILES = {
    "scenario": "scenario.yaml",
    "events": "events.jsonl",
    "llm_calls": "llm_calls.jsonl",
    "metrics": "metrics.parquet",
    "agent_metrics": "agent_metrics.parquet",
    "summary": "summary.json",
    "plot": "metrics.png",
}


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
    ) -> None:
        """Prepares the run; nothing is written until `run`.

        Args:
            scenario: The validated scenario.
            out: The run folder; None makes ``<outputs.dir>/<name>-<timestamp>``.
            replay: A previous run folder whose recorded LLM answers are reused.
            plain: Print plain lines even on a terminal.
            console: Where to draw; None is standard output.

        Raises:
            ScenarioError: ``out`` already holds a run, or ``replay`` is not a run folder.
        """
        self.scenario = scenario
        self.console = console or Console()
        self.plain = plain or not scenario.outputs.live or not self.console.is_terminal
        self.run_dir = out or _fresh_dir(Path(scenario.outputs.dir), scenario.name)
        if (self.run_dir / RUN_FILES["events"]).exists():
            msg = f"--out {str(self.run_dir)!r} already holds a run (events.jsonl); choose an empty folder"
            raise ScenarioError(msg)
        self.replay = replay
        if replay is not None and not (replay / RUN_FILES["llm_calls"]).is_file():
            msg = f"--replay {str(replay)!r} is not a run folder (no {RUN_FILES['llm_calls']}); give a run's folder"
            raise ScenarioError(msg)

    def run(self) -> dict[str, Any]:
        """Runs every step and writes the run folder.

        Returns:
            The summary (also written to ``summary.json``).
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / RUN_FILES["scenario"]
        path.write_text(yaml.safe_dump(self.scenario.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
        calls: IO[str] = (self.run_dir / RUN_FILES["llm_calls"]).open("a", encoding="utf-8")
        events = EventLog(self.run_dir / RUN_FILES["events"])
        counts: Counter[str] = Counter()
        client = self._client(calls)
        started = time.perf_counter()
        world = self._world(client, [events, lambda e: counts.update([e.kind])])
        status = "interrupted"
        try:
            with self._view(client) as view:
                world.observers.append(view)
                world.start(scenario=self.scenario.name, seed=self.scenario.seed, steps=self.scenario.steps)
                for _ in range(self.scenario.steps):
                    world.step()
                status = "completed"
                world.finish()
        finally:
            world.emit(EventKind.RUN_FINISHED, None, {"steps": world.steps, "status": status})
            summary = self._finish(world, client, counts, status, time.perf_counter() - started)
            client.close()
            events.close()
            calls.close()
        return summary

    def _client(self, calls: IO[str]) -> LLMClient:
        llm = self.scenario.llm
        cache = None
        if llm.cache or self.replay:
            path = Path(llm.cache_path or Path(self.scenario.outputs.dir) / "llm-cache.jsonl") if llm.cache else None
            sources = [self.replay / RUN_FILES["llm_calls"]] if self.replay else []
            cache = ResponseCache(path, sources=sources)

        def log(record: dict[str, Any]) -> None:
            calls.write(json.dumps(record, ensure_ascii=False) + "\n")
            calls.flush()

        return LLMClient(make_backend(llm), cache=cache, call_log=log, retries=llm.retries, timeout_s=llm.timeout_s,
                         max_tokens=llm.max_tokens, temperature=llm.temperature, max_concurrency=llm.max_concurrency)

    def _world(self, client: LLMClient, observers: list[Any]) -> World:
        s = self.scenario
        if s.world.type == "crafting":
            return self._crafting(client, observers)
        if s.world.type == "sandbox":
            return self._society(client, observers)
        store = embed = None
        if s.cognition.kind == "generative":
            from memory.chroma_store import ChromaStore
            from memory.embedder import Embedder

            embed = Embedder()
            store = ChromaStore(self._chroma(), embed=embed, prefix=f"{s.name}-{self.run_dir.name}"[:40])
        chroma = self._chroma() if s.cognition.kind == "babyagi" else None  # the team builds its own embedder
        return TownWorld(seed=s.seed, places=s.world.places, agents=s.agents, llm=client, clock=s.clock,
                         memory=s.memory, cognition=s.cognition, diffusion=s.world.diffusion, store=store,
                         embed=embed, observers=observers, chroma=chroma)

    def _chroma(self) -> Any:
        """The run's Chroma client: the scenario's server or folder, else ``<run folder>/chroma``."""
        from memory.chroma_store import open_client

        m = self.scenario.memory
        return open_client(path=Path(m.chroma_path) if m.chroma_path else self.run_dir / "chroma", url=m.chroma_url)

    def _crafting(self, client: LLMClient, observers: list[Any]) -> World:
        from agents.sandbox import Sandbox
        from worlds.crafting import CraftingWorld

        s, w = self.scenario, self.scenario.world
        personas = {a.name: a.persona for a in s.agents}
        sandbox = Sandbox(cpu_s=w.sandbox.cpu_s, memory_mb=w.sandbox.memory_mb, wall_s=w.sandbox.wall_s)
        common = {"seed": s.seed, "players": list(personas), "size": w.size, "density": w.density,
                  "hazards": w.hazards, "tick_budget": w.tick_budget, "day_length": w.day_length, "llm": client,
                  "observers": observers, "sandbox": sandbox}
        if s.cognition.kind == "babyagi":
            from agents.babyagi_player import BabyAGIPlayer

            def worker(world: CraftingWorld, *, name: str) -> BabyAGIPlayer:
                return BabyAGIPlayer(world, name=name, team=world.team, task_steps=s.cognition.task_steps,
                                     persona=personas[name])

            return CraftingWorld(**common, player_factory=worker, cognition=s.cognition, chroma=self._chroma())
        from agents.voyager_agent import VoyagerAgent

        library = None
        if w.skill_library:
            from memory.embedder import Embedder
            from memory.skill_library import SkillLibrary

            library = SkillLibrary(self._chroma(), embed=Embedder(), folder=self.run_dir / "skills",
                                   collection=f"skills-{s.name}-{self.run_dir.name}"[:60])
            if w.skills:
                library.load(w.skills)

        def player(world: CraftingWorld, *, name: str) -> VoyagerAgent:
            return VoyagerAgent(world, name=name, persona=personas[name], max_rounds=w.max_rounds, top_k=w.top_k)

        return CraftingWorld(**common, player_factory=player, library=library)

    def _society(self, client: LLMClient, observers: list[Any]) -> World:
        from worlds.alignment import AlignmentWorld
        from worlds.questions import load_questions

        s, w = self.scenario, self.scenario.world
        questions = load_questions(w.questions)
        memory = None
        if w.recall:
            from memory.answer_memory import AnswerMemory
            from memory.embedder import Embedder

            memory = AnswerMemory(self._chroma(), embed=Embedder(),
                                  prefix=f"answers-{self.run_dir.name}"[:30])
        return AlignmentWorld(seed=s.seed, agents=s.agents, llm=client, questions=questions, size=w.size,
                              radius=w.radius, raters=w.raters, global_raters=w.global_raters, dropout=w.dropout,
                              askers=w.askers, observers=w.observers, scale=w.scale, memory=memory,
                              observers_of_events=observers)

    def _view(self, client: LLMClient) -> LiveView | PlainView:
        if self.plain:
            view = PlainView(self.console, total_steps=self.scenario.steps)
            view.stats = client.stats
            return view
        return LiveView(self.console, scenario=self.scenario.name, total_steps=self.scenario.steps, stats=client.stats)

    def _finish(self, world: World, client: LLMClient, counts: Counter[str], status: str,
                wall_s: float) -> dict[str, Any]:
        metrics = world.datacollector.get_model_vars_dataframe()
        metrics.index.name = "step"
        metrics = metrics.reset_index().assign(step=lambda df: df["step"] + world.metrics_start)
        metrics.to_parquet(self.run_dir / RUN_FILES["metrics"])
        agents = world.datacollector.get_agent_vars_dataframe().reset_index()
        agents.to_parquet(self.run_dir / RUN_FILES["agent_metrics"])
        if self.scenario.outputs.plots and len(metrics):
            world.plots(metrics, self.run_dir, title=f"{self.scenario.name} (seed {self.scenario.seed})")
        summary = {
            "scenario": self.scenario.name,
            "run_dir": str(self.run_dir),
            "status": status,
            "seed": self.scenario.seed,
            "steps": world.steps,
            "sim_end": world.sim_time().isoformat(timespec="minutes"),
            "wall_s": round(wall_s, 2),
            "agent_steps_per_s": round(world.steps * len(world.by_name) / wall_s, 3) if wall_s else None,
            "llm": {"backend": self.scenario.llm.backend, "model": client.backend.model_id, **client.stats.to_dict()},
            "events": dict(sorted(counts.items())),
            **world.summary(),
        }
        (self.run_dir / RUN_FILES["summary"]).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        return summary


def _fresh_dir(parent: Path, name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate, n = parent / f"{name}-{stamp}", 1
    while candidate.exists():
        n += 1
        candidate = parent / f"{name}-{stamp}-{n}"
    return candidate
