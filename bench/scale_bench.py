"""How the town scales: agent-steps per second and what one decision costs, from 64 to 10,000 agents.

    .venv/bin/python bench/scale_bench.py --engine dry --label after
    .venv-vllm/bin/python bench/scale_bench.py --engine vllm-cpu --agents 64,256 --steps 1 --label before
    .venv/bin/python bench/scale_bench.py --engine llamacpp --agents 64 --warm-up-agents 4 --label after
    python bench/scale_bench.py --engine vllm --model MODEL_DIR --agents 1000,10000 --steps 1 --label before

``--engine dry`` measures the framework alone (`bench.scale_framework`): whole runs of scenarios/town-1k.yaml and
scenarios/valentine-100.yaml resized by ``--configs`` (default ``town:5,town:100,town:1000,town:10000,
generative:100,generative:1000``) on the dry backend, each in a process of its own: seconds per step, ms per
agent-step, RSS, prompt tokens per call (``--tokens tokenizer``: SmolLM2's own count; ``estimate``: 4 characters
a token, so the tokenizer's own time is left out) and, for generative agents, where the time goes.

Modes (``--engine``): ``vllm-cpu`` and ``vllm`` (GPU) run `model_bench`: one in-process vLLM engine for the whole
run; for each town size a town of generated townspeople (bench/llm_bench.py's ``crowd``) decides through
`LLMClient` with every request in flight at once and no cache, from an empty prefix cache. Per size: wall time,
agent-steps/s, LLM calls, prompt and completion tokens per call, and vLLM's own prefix-cache hit rate (the
difference of its ``vllm:prefix_cache_hits`` / ``vllm:prefix_cache_queries`` token counters over the measurement).
Results go to bench/results/<stem>_<label>.json (see `RESULT_STEMS`); the Markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's code, even when another one is installed
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.llm_bench import crowd  # noqa: E402
from simulacra.agents.llm import LLMClient  # noqa: E402
from simulacra.agents.llm.base import Backend  # noqa: E402
from simulacra.scenarios.loading import load_scenario  # noqa: E402
from simulacra.worlds.town import TownWorld  # noqa: E402

# The output file per mode: bench/results/<stem>_<label>.json.
RESULT_STEMS = {"vllm-cpu": "scale_vllm", "vllm": "scale_vllm_gpu", "dry": "scale_dry", "llamacpp": "scale_llamacpp"}
DRY_CONFIGS = "town:5,town:100,town:1000,town:10000,generative:100,generative:1000"
DEFAULT_CPU_MODEL = ROOT / ".cache" / "smollm2-bf16"
HIT_METRICS = ("vllm:prefix_cache_hits", "vllm:prefix_cache_queries")
PACKAGES = ("mesa", "vllm", "vllm-cpu", "torch")
# One batch holds a whole step's decisions; a big town's batch can run longer than the scenario's timeout.
DEFAULT_TIMEOUT_S = 7200.0


def make_engine(args: argparse.Namespace) -> Backend:
    """One engine for the whole run: vLLM with its statistics on, or the embedded llama.cpp one.

    vLLM's statistics are off by default in ``vllm.LLM``; llama.cpp (``--engine llamacpp``) loads the shipped
    GGUF unless ``--model`` names one.

    Args:
        args: The parsed command line (``engine``, ``model``, ``max_model_len``).

    Returns:
        The started backend.
    """
    if args.engine == "llamacpp":
        from simulacra.agents.llm.llamacpp import LlamaCppBackend

        return LlamaCppBackend(model_path=str(args.model) if args.model else None, n_ctx=args.max_model_len)
    from simulacra.agents.llm.vllm_engine import VLLMBackend

    return VLLMBackend(model=str(args.model), max_model_len=args.max_model_len,
                       engine_kwargs={"disable_log_stats": False})


def town_world(n: int, backend: Backend, *, log: list[dict[str, Any]], timeout_s: float) -> TownWorld:
    """The town's map with ``n`` generated townspeople, every request in flight at once, no cache.

    Args:
        n: Townspeople.
        backend: The engine.
        log: Receives the client's call records.
        timeout_s: Limit on one engine call.

    Returns:
        The world, at step 0.
    """
    scenario = load_scenario(ROOT / "scenarios" / "town.yaml")
    client = LLMClient(backend, call_log=log.append, retries=scenario.llm.retries, max_tokens=scenario.llm.max_tokens,
                       temperature=scenario.llm.temperature, max_concurrency=n, timeout_s=timeout_s)
    return TownWorld(seed=42, places=scenario.world.places, agents=crowd(n), llm=client, clock=scenario.clock,
                     memory=scenario.memory)


def cache_counters(backend: Backend) -> dict[str, int]:
    """The prefix-cache token counters of vLLM (`HIT_METRICS`), summed over engines.

    Args:
        backend: A `VLLMBackend` built by `make_engine` (statistics on).

    Returns:
        Counter name to its value now.
    """
    totals = dict.fromkeys(HIT_METRICS, 0)
    if backend.name != "vllm":  # llama.cpp keeps no counters of its own
        return totals
    for metric in backend._llm.get_metrics():  # noqa: SLF001 - the benchmark owns this engine
        if metric.name in totals:
            totals[metric.name] += int(metric.value)
    return totals


def reset_prefix_cache(backend: Backend) -> None:
    """Empties vLLM's prefix cache, so a measurement does not reuse the previous one's prompts.

    Args:
        backend: A `VLLMBackend`.

    Raises:
        RuntimeError: vLLM refused (requests still running).
    """
    if backend.name != "vllm":
        return
    if not backend._llm.reset_prefix_cache():  # noqa: SLF001 - the benchmark owns this engine
        msg = "vLLM did not reset its prefix cache (requests still running?); the hit rate would be inflated"
        raise RuntimeError(msg)


def run_town(n: int, steps: int, backend: Backend, *, timeout_s: float) -> dict[str, Any]:
    """Runs ``steps`` steps of an ``n``-agent town from an empty prefix cache and measures them.

    Args:
        n: Townspeople.
        steps: Steps to time.
        backend: The engine.
        timeout_s: Limit on one engine call.

    Returns:
        The row: timings, calls, tokens and the prefix-cache counters' differences.
    """
    log: list[dict[str, Any]] = []
    world = town_world(n, backend, log=log, timeout_s=timeout_s)
    reset_prefix_cache(backend)
    before, batches_before = cache_counters(backend), len(getattr(backend, "batch_sizes", []))
    step_s = []
    for _ in range(steps):
        started = time.perf_counter()
        world.step()
        step_s.append(time.perf_counter() - started)
    after = cache_counters(backend)
    world.llm.close()
    hits, queries = (after[name] - before[name] for name in HIT_METRICS)
    return {"agents": n, "steps": steps, "step_s": [round(s, 2) for s in step_s],
            "batches": getattr(backend, "batch_sizes", [])[batches_before:],
            "prefix_cache_hits": hits, "prefix_cache_queries": queries,
            "prefix_cache_hit_rate": round(hits / queries, 4) if queries else None,
            **call_figures(world.llm, log), "load_average_after": os.getloadavg()}


def call_figures(client: LLMClient, log: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What the LLM calls of one measurement cost, from the client's counters and call log.

    Args:
        client: The measured town's client.
        log: Its call records.

    Returns:
        Calls (every attempt; by phase and purpose), retries, failures, tokens in all and per call.
    """
    stats = client.stats
    calls = stats.calls or 1  # no call: the per-call figures are 0, not a division error
    return {"decisions": stats.calls, "retries": stats.retries, "failures": stats.failures, "errors": stats.errors,
            "calls_by_phase": dict(Counter(f"{r.get('phase')}/{r.get('purpose')}" for r in log)),
            "prompt_tokens": stats.prompt_tokens, "completion_tokens": stats.completion_tokens,
            "prompt_tokens_per_decision": round(stats.prompt_tokens / calls, 1),
            "completion_tokens_per_decision": round(stats.completion_tokens / calls, 1)}


def model_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Town sizes on one vLLM engine: the ``vllm-cpu`` and ``vllm`` modes.

    Args:
        args: The parsed command line.

    Returns:
        The result: engine start-up time and one row per town size (see `run_town`).
    """
    started = time.perf_counter()
    backend = make_engine(args)
    startup_s = time.perf_counter() - started
    warm = time.perf_counter()
    run_town(args.warm_up_agents, 1, backend, timeout_s=args.timeout_s)  # compilation, first-batch costs
    warm_up_s = time.perf_counter() - warm
    rows = []
    for n in args.agents:
        row = run_town(n, args.steps, backend, timeout_s=args.timeout_s)
        row["wall_s"] = round(sum(row["step_s"]), 2)
        row["agent_steps_per_s"] = round(n * args.steps / row["wall_s"], 3)
        print(json.dumps(row), flush=True)
        rows.append(row)
    vllm = backend.name == "vllm"
    config = backend._llm.llm_engine.vllm_config if vllm else None  # noqa: SLF001 - the benchmark owns this engine
    return {"model": str(args.model), "max_model_len": args.max_model_len,
            "block_size": config.cache_config.block_size if config else None, "engine_startup_s": round(startup_s, 1),
            "warm_up": {"agents": args.warm_up_agents, "seconds": round(warm_up_s, 1)},
            "hit_rate_source": f"{HIT_METRICS[0]} / {HIT_METRICS[1]} (tokens), LLM.get_metrics(), per measurement",
            "rows": rows}


def versions() -> dict[str, str]:
    """Python and the installed packages of `PACKAGES`.

    Returns:
        Name to version; packages that are not installed are left out.
    """
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def table(result: dict[str, Any]) -> str:
    """The Markdown summary of a result's rows.

    Args:
        result: What `main` writes: ``engine``, ``label``, ``date``, ``machine`` and ``rows``.

    Returns:
        A heading and the table.
    """
    lines = [f"### {result['engine']}, {result['label']} ({result['date']}, {result['machine']['cpus']} CPUs)", "",
             "| agents | steps | wall s | agent-steps/s | decisions | prompt tok/decision | completion tok/decision "
             "| prefix-cache hit rate |", "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        rate = r.get("prefix_cache_hit_rate")
        lines.append(f"| {r['agents']} | {r['steps']} | {r['wall_s']} | {r['agent_steps_per_s']} | {r['decisions']} "
                     f"| {r['prompt_tokens_per_decision']} | {r['completion_tokens_per_decision']} "
                     f"| {'-' if rate is None else f'{rate:.1%}'} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; ``--agents`` becomes a list of ints, ``--model`` a default on CPU.

    Args:
        argv: The arguments; None reads ``sys.argv``.

    Returns:
        The parsed arguments.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=sorted(MODES), required=True)
    parser.add_argument("--agents", default="64,256", help="town sizes, comma-separated")
    parser.add_argument("--steps", type=int, default=1, help="steps timed per town size")
    parser.add_argument("--label", default="run", help="names the result file, e.g. before / after")
    parser.add_argument("--model", type=Path, help=f"model folder (default on vllm-cpu: {DEFAULT_CPU_MODEL})")
    parser.add_argument("--max-model-len", type=int, default=2048, help="the engine's context window")
    parser.add_argument("--warm-up-agents", type=int, default=64, help="town size of the throw-away step")
    parser.add_argument("--timeout-s", type=float, default=DEFAULT_TIMEOUT_S, help="limit on one engine call")
    parser.add_argument("--configs", default=DRY_CONFIGS, help="dry: KIND:AGENTS,... (KIND town or generative)")
    parser.add_argument("--tokens", choices=["estimate", "tokenizer"], default="estimate",
                        help="dry: how the dry backend counts tokens")
    args = parser.parse_args(argv)
    args.agents = [int(x) for x in args.agents.split(",")]
    if args.model is None and args.engine == "vllm-cpu":
        args.model = DEFAULT_CPU_MODEL
    if args.model is None and args.engine == "vllm":
        parser.error("--engine vllm needs --model (a Hugging Face model folder)")
    return args


def dry_bench(args: argparse.Namespace) -> dict[str, Any]:
    """The framework alone: `bench.scale_framework.framework_bench` over ``--configs``."""
    from bench.scale_framework import framework_bench

    steps = args.steps if args.steps > 1 else 2
    return {"rows": framework_bench(args.configs.split(","), steps=steps, tokens=args.tokens),
            "tokens": args.tokens}


def dry_table(result: dict[str, Any]) -> str:
    """The Markdown summary of a dry result: per configuration, then where a generative step's time goes."""
    lines = [f"### dry backend, framework alone, {result['label']} ({result['date']}, {result['machine']['cpus']} "
             f"CPUs, tokens: {result['tokens']})", "",
             "| agents | kind | first step s | s per step | ms per agent-step | prompt tok/call | RSS MB | "
             "snapshot MB |", "|---|---|---|---|---|---|---|---|"]
    parts: list[str] = []
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"| {r['config']} | failed: {r['error']} | | | | | | |")
            continue
        lines.append(f"| {r['agents']:,} | {r['kind']} | {r['first_step_s']} | {r['step_s']} | "
                     f"{r['ms_per_agent_step']} | {r['prompt_tokens_per_call']} | {r['rss_mb']:.0f} | "
                     f"{r['snapshot_mb']} |")
        if r["parts_s_per_step"]:
            shares = ", ".join(f"{k} {v} s" for k, v in r["parts_s_per_step"].items())
            parts.append(f"- {r['kind']} {r['agents']:,}, per step ({r['step_s']} s): {shares}")
    return "\n".join(lines + ["", *parts]) + "\n"


# Mode name to the function that measures it; each returns a dict with "rows" (see `table`, `dry_table`).
MODES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "vllm-cpu": model_bench, "vllm": model_bench, "llamacpp": model_bench, "dry": dry_bench}


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the mode ``--engine`` names, writes its JSON and prints the table.

    Args:
        argv: The arguments; None reads ``sys.argv``.
    """
    args = parse_args(argv)
    started = time.perf_counter()
    result: dict[str, Any] = {
        "engine": args.engine, "label": args.label, "date": datetime.now().isoformat(timespec="seconds"),
        "machine": {"arch": platform.machine(), "os": platform.system(), "cpus": os.cpu_count(),
                    "load_average_at_start": os.getloadavg()},
        "versions": versions(), "argv": sys.argv,
    }
    result |= MODES[args.engine](args)
    result["total_s"] = round(time.perf_counter() - started, 1)
    out = ROOT / "bench" / "results" / f"{RESULT_STEMS[args.engine]}_{args.label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    text = dry_table(result) if args.engine == "dry" else table(result)
    (out.with_suffix(".md")).write_text(text, encoding="utf-8")
    print(text)
    print(f"written: {out} and {out.with_suffix('.md').name}")


if __name__ == "__main__":
    main()
