"""The framework alone at scale: whole runs on the dry backend, one process per configuration (for its RSS).

Used by `bench/scale_bench.py --engine dry`. A configuration is ``town:N`` (simple agents, scenarios/town-1k.yaml
with a crowd of N - 5) or ``generative:N`` (scenarios/valentine-100.yaml with a crowd of N - 5). Each runs through
`simulacra.runs.runner.Runner` as a user's run does (event log, snapshots, metrics; no plots, no live view) and
times every step; step 1 is reported apart (tokenizer and Chroma start, seed memories, day plans). For generative
agents the time of each part is measured too: the encoder (memories in batches, queries one by one), Chroma
writes, retrieval, prompt rendering and the dry backend itself.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["framework_bench", "measure_one"]

SCENARIOS = {"town": "town-1k.yaml", "generative": "valentine-100.yaml"}
NAMED = 5  # named agents in both scenarios; the crowd makes up the rest


def framework_bench(configs: list[str], *, steps: int, tokens: str) -> list[dict[str, Any]]:
    """Runs each configuration in a fresh process; returns their measurements in order."""
    rows = []
    for config in configs:
        command = [sys.executable, str(Path(__file__)), config, str(steps), tokens]
        print(f"{config}: {steps} steps on dry ...", flush=True)
        out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            rows.append({"config": config, "error": out.stderr.strip().splitlines()[-1:]})
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"  {rows[-1]['ms_per_agent_step']:.3f} ms per agent-step, RSS {rows[-1]['rss_mb']:.0f} MB", flush=True)
    return rows


class Timers:
    """Wall seconds spent in wrapped functions, by label (nested calls are counted in each label)."""

    def __init__(self) -> None:
        """Starts every label at zero."""
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, owner: Any, name: str, label: str | Callable[..., str]) -> None:
        """Times ``owner.name`` under ``label`` (or ``label(*args)``, chosen per call)."""
        inner = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            key = label(*args) if callable(label) else label
            started = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[key] += time.perf_counter() - started
                self.calls[key] += 1

        setattr(owner, name, timed)


def _instrument(timers: Timers) -> None:
    """Wraps the parts of a generative step whose time the benchmark reports."""
    import simulacra.agents.generative_agent
    import simulacra.agents.town_agent
    from simulacra.agents.llm.dry import DryBackend
    from simulacra.memory.chroma_store import ChromaStore
    from simulacra.memory.embedder import Embedder
    from simulacra.memory.stream import MemoryStream

    timers.wrap(Embedder, "__call__", lambda _self, texts: "encoder, memories (batched)" if len(texts) > 1
                else "encoder, queries")
    timers.wrap(ChromaStore, "add", "Chroma writes")
    timers.wrap(ChromaStore, "update_metadata", "Chroma writes")
    timers.wrap(MemoryStream, "retrieve", "retrieval (query embedding included)")
    timers.wrap(DryBackend, "answer", "dry backend: answers")
    for module in (simulacra.agents.generative_agent, simulacra.agents.town_agent):
        timers.wrap(module, "render", "prompt rendering")


def measure_one(config: str, steps: int, tokens: str) -> dict[str, Any]:
    """Runs one configuration here; returns its figures (called in a child process)."""
    from rich.console import Console

    from simulacra.runs.runner import Runner
    from simulacra.scenarios.loading import load_scenario

    kind, _, count = config.partition(":")
    agents = int(count)
    timers = Timers()
    if kind == "generative":
        _instrument(timers)
    crowd = f"world.crowd.count={agents - NAMED}" if agents > NAMED else "world.crowd=null"  # 5: the named only
    overrides = [crowd, "llm.backend=dry", f"steps={steps + 1}", "outputs.plots=false", "surveys=[]"]
    if tokens == "estimate":
        overrides.append("llm.model=estimate")  # not a file: the dry backend estimates 4 characters per token
    scenario = load_scenario(ROOT / "scenarios" / SCENARIOS[kind], overrides)
    ended: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        runner = Runner(scenario, out=Path(tmp) / "run", plain=True, console=Console(file=io.StringIO()))

        def step_ended(event: Any) -> None:
            if event.kind == "step_ended":
                ended.append(time.perf_counter())
                if len(ended) == 1:  # the parts are measured over the steps after the first
                    timers.seconds.clear()
                    timers.calls.clear()

        runner.watchers.append(step_ended)
        started = time.perf_counter()
        summary = runner.run()
        total = time.perf_counter() - started
        snapshot_mb = sum(p.stat().st_size for p in (Path(tmp) / "run" / "snapshots").glob("*.json")) / 2**20
    per_step = [b - a for a, b in zip(ended, ended[1:], strict=False)]
    step_s = median(per_step)
    llm = summary["llm"]
    return {
        "config": config, "kind": kind, "agents": agents, "steps": steps, "first_step_s": round(ended[0] - started, 3),
        "step_s": round(step_s, 3), "ms_per_agent_step": round(step_s / agents * 1000, 4),
        "wall_s": round(total, 2), "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "snapshot_mb": round(snapshot_mb / max(len(ended), 1), 2), "llm_calls": llm["calls"],
        "prompt_tokens_per_call": round(llm["prompt_tokens"] / max(llm["calls"], 1), 1),
        "token_counter": llm.get("token_counter", ""),
        "parts_s_per_step": {k: round(v / steps, 3) for k, v in sorted(timers.seconds.items())},
    }


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(ROOT))
    print(json.dumps(measure_one(sys.argv[1], int(sys.argv[2]), sys.argv[3])))
