"""The same runs one after another versus as a sweep on Ray: wall time and its ratio.

    .venv/bin/python bench/sweep_bench.py [--runs 8] [--steps 2] [--scenario scenarios/town.yaml]

One after another: ``python run.py SCENARIO --seed S --steps N`` per run, as a user would type them (each a new
process; llama.cpp with the scenario's threads). As a sweep: ``python run.py sweep SCENARIO --replicas R``
with the same seeds (`replica_seed`), on a local Ray with this machine's CPUs, one CPU and one llama.cpp
thread per run. Both sides run with ``llm.cache=false``. The event logs of the two sides are compared run by
run (same seed, same scenario): they match wherever the engine's answers do not depend on its thread count.
Results go to bench/results/sweep.json and a table to bench/results/sweep.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulacra.sweeps.plan import replica_seed  # noqa: E402

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    """Runs both sides and writes the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "town.yaml")
    args = parser.parse_args()
    from simulacra.scenarios.loading import load_scenario

    seed = load_scenario(args.scenario).seed
    seeds = [replica_seed(seed, r) for r in range(args.runs)]
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        one_by_one = []
        for r, s in enumerate(seeds):
            out = Path(tmp) / "sequential" / f"r{r}"
            one_by_one.append(_timed([sys.executable, "run.py", str(args.scenario), "--steps", str(args.steps),
                                      "--seed", str(s), "--set", "llm.cache=false", "--plain", "--out", str(out)]))
            print(f"run {r + 1}/{args.runs} alone: {one_by_one[-1]:.1f} s", flush=True)
        sweep_s = _timed([sys.executable, "run.py", "sweep", str(args.scenario), "--steps", str(args.steps),
                          "--replicas", str(args.runs), "--plain", "--out", str(Path(tmp) / "sweep")])
        same = sum((Path(tmp) / "sequential" / f"r{r}" / "events.jsonl").read_bytes()
                   == (Path(tmp) / "sweep" / "runs" / f"c0-base-r{r}" / "events.jsonl").read_bytes()
                   for r in range(args.runs))
    sequential_s = sum(one_by_one)
    result = {
        "date": datetime.now().isoformat(timespec="seconds"), "machine": platform.machine(),
        "cpus": os.cpu_count(), "python": platform.python_version(), "ray": metadata.version("ray"),
        "scenario": str(args.scenario.relative_to(ROOT) if args.scenario.is_relative_to(ROOT) else args.scenario),
        "runs": args.runs, "steps": args.steps, "sequential_s": round(sequential_s, 1),
        "per_run_s": [round(x, 1) for x in one_by_one], "sweep_s": round(sweep_s, 1),
        "speedup": round(sequential_s / sweep_s, 2), "identical_event_logs": same,
    }
    folder = ROOT / "bench" / "results"
    folder.mkdir(exist_ok=True)
    (folder / "sweep.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    table = [
        f"# Sweep vs one after another ({result['date']}, {result['cpus']} CPUs, Ray {result['ray']})", "",
        f"{args.runs} runs of {result['scenario']}, {args.steps} steps each, embedded SmolLM2 (llama.cpp).", "",
        "| how | wall time (s) |", "|---|---|",
        f"| one after another (`python run.py`, {args.runs} processes) | {result['sequential_s']} |",
        f"| as a sweep (`python run.py sweep --replicas {args.runs}`) | {result['sweep_s']} |",
        f"| ratio (one after another / sweep) | {result['speedup']} |", "",
        f"Identical event logs, run by run: {same} of {args.runs}.", "",
    ]
    (folder / "sweep.md").write_text("\n".join(table), encoding="utf-8")
    print("\n".join(table))


if __name__ == "__main__":
    main()
