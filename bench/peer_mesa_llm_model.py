"""The mesa-llm side of ``bench/peer_mesa_llm.py``: a small town of LLM agents written with mesa-llm 0.3.2.

Run with the mesa-llm venv (Python 3.12), not Simulacra's; ``bench/peer_mesa_llm.py`` does it::

    .venv-mesa-llm/bin/python bench/peer_mesa_llm_model.py --base-url http://127.0.0.1:PORT/v1 \
        --agents 5 --steps 3 --personas personas.json

Each agent is a mesa-llm ``LLMAgent`` (also a Mesa ``CellAgent``) with a persona as its system prompt, on a
5x5 ``OrthogonalMooreGrid``. Every step each agent observes (mesa-llm's ``agenerate_obs``: its cell and the
agents within ``vision``), plans with one of mesa-llm's built-in reasonings (``CoTReasoning`` by default,
``ReActReasoning`` with ``--reasoning react``) and acts through mesa-llm's built-in tools ``move_one_step``
and ``speak_to``. Agents step concurrently (mesa-llm's asyncio parallel stepping), as Simulacra's do.

Prints one JSON object on the last line of standard output: timings (imports, model construction, steps),
LLM calls (counted by wrapping litellm's ``completion``/``acompletion`` as mesa-llm calls them), tokens, tool
calls executed, versions, and ``status``: ``completed``; ``partial`` when ``--budget-s`` stopped it early;
``failed`` with the error text.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm fetches a price list at import otherwise
os.environ.setdefault("OPENAI_API_KEY", "sk-local")  # ModuleLLM insists on one; the local server ignores it

import mesa  # noqa: E402
from mesa.discrete_space import CellAgent, OrthogonalMooreGrid  # noqa: E402
from mesa_llm import module_llm, step_agents_parallel_sync  # noqa: E402
from mesa_llm.llm_agent import LLMAgent  # noqa: E402
from mesa_llm.reasoning.cot import CoTReasoning  # noqa: E402
from mesa_llm.reasoning.react import ReActReasoning  # noqa: E402
from mesa_llm.reasoning.reasoning import Reasoning  # noqa: E402
from mesa_llm.tools.tool_manager import ToolManager  # noqa: E402

IMPORT_S = time.perf_counter() - _T0
TOOLS = ["move_one_step", "speak_to"]
REASONINGS: dict[str, type[Reasoning]] = {"cot": CoTReasoning, "react": ReActReasoning}
STEP_PROMPT = (
    "It is Friday morning in a small town laid out as a {size}x{size} grid. Choose exactly one action for "
    "this step: either move one cell (North, South, East, West, NorthEast, NorthWest, SouthEast or SouthWest) "
    "with move_one_step, or say one short sentence with speak_to to agents you can see (use their unique ids "
    "from the observation). Keep your reasoning short."
)


class CallStats:
    """LLM calls made through mesa-llm's ``ModuleLLM``, counted by wrapping its two entry points."""

    def __init__(self) -> None:
        """Starts every count at zero."""
        self.calls: Counter[str] = Counter()
        self.errors: list[str] = []
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.latency_s = 0.0
        self.tool_calls: Counter[str] = Counter()

    def record(self, purpose: str, response: Any, latency_s: float) -> None:
        """Adds one successful call.

        Args:
            purpose: ``plan``, ``execute`` (plan to tool calls) or ``memory`` (long-term consolidation).
            response: litellm's ``ModelResponse``.
            latency_s: Seconds the call took.
        """
        self.calls[purpose] += 1
        self.latency_s += latency_s
        usage = getattr(response, "usage", None)
        self.prompt_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
        self.completion_tokens += int(getattr(usage, "completion_tokens", 0) or 0)

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-safe summary."""
        return {"calls": sum(self.calls.values()), "by_purpose": dict(self.calls), "errors": len(self.errors),
                "error_texts": self.errors[:5], "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "llm_latency_s": round(self.latency_s, 2),
                "tool_calls_executed": dict(self.tool_calls)}


STATS = CallStats()


MAX_CONSECUTIVE_FAILURES = 3  # mesa-llm retries connection errors forever (tenacity, no stop); we give up here


def _purpose(messages: Sequence[dict[str, Any]]) -> str:
    system = str(messages[0].get("content") or "") if messages else ""
    if system.startswith("You are an executor"):
        return "execute"
    if "summarizes the short term memory" in system:
        return "memory"
    return "plan"


def instrument() -> None:
    """Wraps litellm's ``completion``/``acompletion`` as mesa-llm calls them, and ``ToolManager.acall_tools``.

    Every HTTP attempt is counted by purpose (``plan``, ``execute``: plan to tool calls, ``memory``:
    long-term consolidation) with its tokens; failures are recorded, and after `MAX_CONSECUTIVE_FAILURES`
    in a row a non-retryable error ends the run instead of mesa-llm's endless retries.
    """
    sync_completion: Callable[..., Any] = module_llm.completion
    async_completion: Callable[..., Any] = module_llm.acompletion
    acall_tools: Callable[..., Any] = ToolManager.acall_tools
    failures = [0]

    def failed(err: Exception) -> None:
        STATS.errors.append(f"{type(err).__name__}: {err}"[:500])
        failures[0] += 1
        if failures[0] >= MAX_CONSECUTIVE_FAILURES:
            msg = f"{failures[0]} LLM calls failed in a row; last: {type(err).__name__}: {err}"[:2000]
            raise RuntimeError(msg) from err

    @functools.wraps(sync_completion)
    def completion(**kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            response = sync_completion(**kwargs)
        except Exception as err:
            failed(err)
            raise
        failures[0] = 0
        STATS.record(_purpose(kwargs.get("messages", [])), response, time.perf_counter() - began)
        return response

    @functools.wraps(async_completion)
    async def acompletion(**kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            response = await async_completion(**kwargs)
        except Exception as err:
            failed(err)
            raise
        failures[0] = 0
        STATS.record(_purpose(kwargs.get("messages", [])), response, time.perf_counter() - began)
        return response

    @functools.wraps(acall_tools)
    async def counted_acall_tools(self: ToolManager, agent: Any, llm_response: Any) -> list[dict]:
        results: list[dict] = await acall_tools(self, agent, llm_response)
        for result in results:
            ok = not str(result.get("response", "")).startswith("Error")
            STATS.tool_calls[f"{result.get('name')}{'' if ok else ' (error)'}"] += 1
        return results

    module_llm.completion = completion
    module_llm.acompletion = acompletion
    ToolManager.acall_tools = counted_acall_tools  # type: ignore[method-assign]


class Townsperson(LLMAgent, CellAgent):
    """A mesa-llm agent with a persona and a cell on the grid; one observe-plan-act cycle per step."""

    async def astep(self) -> None:
        """Observes, plans with the LLM (mesa-llm's reasoning) and applies the resulting tool calls."""
        obs = await self.agenerate_obs()
        plan = await self.reasoning.aplan(obs=obs, selected_tools=TOOLS)
        await self.aapply_plan(plan)


class TownModel(mesa.Model):
    """A ``size`` x ``size`` grid peopled by `Townsperson` agents, stepped concurrently."""

    def __init__(self, personas: Sequence[dict[str, str]], *, llm_model: str, api_base: str,
                 reasoning: type[Reasoning], size: int = 5, vision: int = 2, seed: int = 42) -> None:
        """Builds the grid and the agents.

        Args:
            personas: One dict per agent with ``name``, ``persona`` and ``goal``.
            llm_model: litellm model name, ``provider/model``.
            api_base: The OpenAI-compatible server, up to ``/v1``.
            reasoning: The mesa-llm reasoning class.
            size: Grid side.
            vision: How many cells away an agent sees others.
            seed: Mesa's RNG seed (placement).
        """
        super().__init__(rng=seed)
        self.grid = OrthogonalMooreGrid((size, size), torus=False, random=self.random)
        prompt = STEP_PROMPT.format(size=size)
        for spec in personas:
            agent = Townsperson(
                self, reasoning, llm_model=llm_model, api_base=api_base, vision=vision, step_prompt=prompt,
                system_prompt=f"You are {spec['name']}. {spec['persona']} Your goal today: {spec.get('goal', '')}",
                internal_state=[f"name: {spec['name']}"])
            agent.memory.display = False  # mesa-llm prints a rich panel per agent and step otherwise
            agent.cell = self.grid.select_random_empty_cell()

    def step(self) -> None:
        """Steps every agent concurrently (mesa-llm's asyncio parallel stepping), in a seeded shuffled order.

        mesa-llm 0.3.2 makes ``model.agents.shuffle_do("step")`` parallel by patching ``AgentSet.shuffle_do``,
        but Mesa 3.5's ``model.agents`` is a ``_HardKeyAgentSet`` with its own ``shuffle_do``, so the patch
        never applies there and ``LLMAgent``'s no-op ``step`` runs instead. Hence the explicit call.
        """
        agents = list(self.agents)
        self.random.shuffle(agents)
        step_agents_parallel_sync(agents)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Reads the command line.

    Args:
        argv: Arguments without the program name; None reads ``sys.argv``.

    Returns:
        The options.
    """
    parser = argparse.ArgumentParser(description="mesa-llm side of the Simulacra vs mesa-llm benchmark")
    parser.add_argument("--base-url", required=True, help="OpenAI-compatible server, e.g. http://127.0.0.1:8081/v1")
    parser.add_argument("--model", default="smollm2", help="served model alias")
    parser.add_argument("--personas", type=Path, required=True, help="JSON list of {name, persona, goal}")
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--reasoning", choices=sorted(REASONINGS), default="cot")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--budget-s", type=float, default=None,
                        help="stop early (status partial) when the next step would likely end past this many seconds")
    return parser.parse_args(argv)


def versions() -> dict[str, str]:
    """Python and the versions of the packages on this side."""
    packages = {"mesa": "mesa", "mesa-llm": "mesa-llm", "litellm": "litellm", "openai": "openai"}
    return {"python": platform.python_version(), **{k: version(v) for k, v in packages.items()}}


def main(argv: Sequence[str] | None = None) -> int:
    """Builds the model, runs the steps, prints the JSON result.

    Args:
        argv: Arguments without the program name; None reads ``sys.argv``.

    Returns:
        0 when every step completed, 1 otherwise (the JSON says why).
    """
    args = parse_args(argv)
    personas = json.loads(args.personas.read_text(encoding="utf-8"))
    people = []
    for i in range(args.agents):  # more agents than personas: reuse them, numbered
        spec = dict(personas[i % len(personas)])
        if i >= len(personas):
            spec["name"] = f"{spec['name']} {i // len(personas) + 1}"
        people.append(spec)
    instrument()
    result: dict[str, Any] = {"framework": "mesa-llm", "reasoning": REASONINGS[args.reasoning].__name__,
                              "agents": args.agents, "steps_requested": args.steps, "import_s": round(IMPORT_S, 2),
                              "versions": versions()}
    began = time.perf_counter()
    steps_done, status = 0, "completed"
    build_s = 0.0
    try:
        model = TownModel(people, llm_model=f"openai/{args.model}", api_base=args.base_url,
                          reasoning=REASONINGS[args.reasoning], seed=args.seed)
        build_s = time.perf_counter() - began
        step_times = []
        for _ in range(args.steps):
            if args.budget_s and step_times and time.perf_counter() - began + step_times[-1] > args.budget_s:
                status = "partial"
                result["note"] = f"stopped after {steps_done} steps: the next would likely pass {args.budget_s} s"
                break
            t = time.perf_counter()
            model.step()
            step_times.append(round(time.perf_counter() - t, 2))
            steps_done += 1
        result["step_s"] = step_times
        result["final_cells"] = {a.system_prompt.split(".")[0].removeprefix("You are "): list(a.cell.coordinate)
                                 for a in model.agents}
    except Exception as err:  # report, never fake: the parent prints this
        status = "failed"
        result["error"] = f"{type(err).__name__}: {err}"[:2000]
        result["traceback"] = traceback.format_exc()[-3000:]
    wall = time.perf_counter() - began
    result.update({
        "status": status, "steps": steps_done, "build_s": round(build_s, 3), "wall_s": round(wall, 2),
        "steps_wall_s": round(wall - build_s, 2),
        "agent_steps_per_s": round(args.agents * steps_done / wall, 3) if steps_done and wall else None,
        "llm": STATS.to_dict(),
    })
    sys.stdout.flush()
    print(json.dumps(result))
    return 0 if status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
