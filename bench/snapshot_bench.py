"""What snapshots cost: time and size of each step's snapshot against the step's own time.

    .venv/bin/python bench/snapshot_bench.py [--scenario scenarios/valentine.yaml] [--steps 8]

Runs the scenario on its configured model (the embedded one by default, cache off) and times every step and
every snapshot write (state gathered, JSON encoded, fsynced, renamed). Writes bench/results/snapshot.{md,json}.
Goal (issue 12): snapshots cost under 5 % of step time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rich.console import Console  # noqa: E402

from simulacra.runs.runner import Runner  # noqa: E402
from simulacra.scenarios.loading import load_scenario  # noqa: E402
from simulacra.worlds.world import World  # noqa: E402


class TimedRunner(Runner):
    """A runner that times each step and each snapshot."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rows: list[dict[str, Any]] = []
        self._step_started = time.perf_counter()

    def _snapshot(self, world: World, *args: Any) -> None:
        step_s = time.perf_counter() - self._step_started
        started = time.perf_counter()
        super()._snapshot(world, *args)
        snap_s = time.perf_counter() - started
        size = self.snapshots.path(world.steps).stat().st_size
        self.rows.append({"step": world.steps, "step_s": round(step_s, 3), "snapshot_s": round(snap_s, 4),
                          "snapshot_bytes": size})
        self._step_started = time.perf_counter()


def main() -> int:
    """Runs the benchmark and writes the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "valentine.yaml")
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    scenario = load_scenario(args.scenario, [f"steps={args.steps}", "llm.cache=false", "outputs.plots=false"])
    with tempfile.TemporaryDirectory() as tmp:
        runner = TimedRunner(scenario, out=Path(tmp) / "run", plain=True, console=Console(quiet=True))
        summary = runner.run()
    steps = [r for r in runner.rows if r["step"] > 0]
    total_step = sum(r["step_s"] for r in steps)
    total_snap = sum(r["snapshot_s"] for r in steps)
    result = {
        "scenario": scenario.name, "agents": len(scenario.agents), "steps": args.steps,
        "model": summary["llm"]["model"], "llm_calls": summary["llm"]["calls"],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
        "snapshot_share": round(total_snap / total_step, 5) if total_step else None,
        "snapshot_s_median": median(r["snapshot_s"] for r in steps),
        "snapshot_bytes_last": steps[-1]["snapshot_bytes"], "step_s_median": median(r["step_s"] for r in steps),
        "rows": runner.rows,
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "snapshot.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lines = [f"# Snapshot cost: {scenario.name}, {len(scenario.agents)} agents, {args.steps} steps, "
             f"{result['model']}", "",
             f"Snapshots took {100 * result['snapshot_share']:.2f} % of step time (goal < 5 %); median snapshot "
             f"{1000 * result['snapshot_s_median']:.1f} ms against a median step of {result['step_s_median']:.2f} s; "
             f"the last snapshot is {result['snapshot_bytes_last']:,} bytes.", "",
             "| step | step s | snapshot ms | snapshot bytes |", "|---|---|---|---|"]
    lines += [f"| {r['step']} | {r['step_s']:.2f} | {1000 * r['snapshot_s']:.1f} | {r['snapshot_bytes']:,} |"
              for r in runner.rows]
    (out / "snapshot.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
