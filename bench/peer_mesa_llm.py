"""Side by side: Simulacra versus mesa-llm (Mesa's LLM extension) on the same local OpenAI-compatible server.

Run from the repository root with Simulacra's venv (one command does everything)::

    .venv/bin/python bench/peer_mesa_llm.py                     # 5 agents, 3 steps
    .venv/bin/python bench/peer_mesa_llm.py --agents 5 --steps 3

What it does:

1. Makes sure ``.venv-mesa-llm/`` exists: a Python 3.12 venv (pyenv's 3.12; mesa-llm needs >= 3.12) with
   ``mesa-llm==0.3.2`` and litellm's ``mcp`` extra (litellm 1.106 imports ``mcp`` for every call that passes
   tools, which mesa-llm always does; without it each such call fails and mesa-llm retries it forever).
2. Starts llama-cpp-python's OpenAI-compatible server with the shipped SmolLM2-135M-Instruct GGUF on a free
   127.0.0.1 port (2 threads, 4096 context, alias ``smollm2``) and sends one warm-up request.
3. Runs Simulacra's town (``scenarios/town.yaml``) through ``run.py`` with the ``openai`` backend against that
   server (no cache), and reads ``summary.json``.
4. Runs ``bench/peer_mesa_llm_model.py`` with the mesa-llm venv: the same number of agents (the town's
   personas) and steps, each a mesa-llm ``LLMAgent`` on a 5x5 grid that observes, reasons (mesa-llm's
   ``CoTReasoning``) and acts through mesa-llm's ``move_one_step``/``speak_to`` tools.
5. Stops the server and writes ``bench/results/peer_mesa_llm.json`` and ``.md``.

Agent-steps/s = agents x steps / wall_s. ``wall_s`` is measured the same way on both sides: from building the
model (world and agents) to the end of the last step; imports, interpreter start and writing results are
excluded (they are reported separately as ``process_s``, the whole subprocess as the parent saw it).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # a script, not a package: find the project
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from simulacra.agents.llm.llamacpp import shipped_model_path  # noqa: E402

PEER_VENV = ROOT / ".venv-mesa-llm"
PEER_MODEL = ROOT / "bench" / "peer_mesa_llm_model.py"
MESA_LLM = "mesa-llm==0.3.2"
ALIAS = "smollm2"
SCENARIO = ROOT / "scenarios" / "town.yaml"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Reads the command line.

    Args:
        argv: Arguments without the program name; None reads ``sys.argv``.

    Returns:
        The options.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=5, help="agents on each side (the town has 5 personas)")
    parser.add_argument("--steps", type=int, default=3, help="steps on each side")
    parser.add_argument("--reasoning", choices=["cot", "react"], default="cot",
                        help="mesa-llm reasoning (react sends response_format json_schema, which llama.cpp's "
                             "server rejects)")
    parser.add_argument("--side-timeout", type=int, default=420,
                        help="seconds allowed to each side; mesa-llm stops stepping (status partial) 40 s before")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results folder")
    return parser.parse_args(argv)


# ---------------------------------------------------------------- machine and load

def cpu_busy_s() -> float:
    """Busy CPU seconds of the whole machine so far (``/proc/stat``: all but idle and iowait)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """CPU seconds used so far by a live process (``/proc/PID/stat`` utime + stime); 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """CPU seconds of this process and its finished children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class LoadProbe:
    """Samples the 1-minute load average every second and, at the end, the CPU other processes used."""

    def __init__(self, server_pid: int) -> None:
        """Starts sampling.

        Args:
            server_pid: The model server's pid (its CPU counts as ours).
        """
        self.server_pid = server_pid
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._began = time.perf_counter()
        self._busy0, self._own0 = cpu_busy_s(), own_cpu_s() + process_cpu_s(server_pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(1.0)

    def stop(self) -> dict[str, Any]:
        """Stops sampling (call after the side's subprocess has been waited for).

        Returns:
            ``load1_max``, ``load1_mean`` and ``other_processes_cpu_pct``: the share of all CPUs used by
            processes other than this benchmark, its subprocess and the model server.
        """
        self._stop.set()
        self._thread.join()
        wall = time.perf_counter() - self._began
        busy = cpu_busy_s() - self._busy0
        own = own_cpu_s() + process_cpu_s(self.server_pid) - self._own0
        other = max(busy - own, 0.0) / (wall * (os.cpu_count() or 1)) if wall else 0.0
        samples = self.samples or [os.getloadavg()[0]]
        return {"load1_max": round(max(samples), 2), "load1_mean": round(sum(samples) / len(samples), 2),
                "other_processes_cpu_pct": round(100 * other, 1)}


def machine_info() -> dict[str, Any]:
    """Platform, CPUs and memory of this machine."""
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "memory_gib": round(mem_gib, 1)}


# ---------------------------------------------------------------- the mesa-llm venv

def find_python312() -> Path:
    """Finds a Python 3.12 interpreter: pyenv's (``pyenv root``), then ``python3.12`` on PATH.

    Raises:
        RuntimeError: None was found.
    """
    roots = []
    if shutil.which("pyenv"):
        out = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            roots.append(out.stdout.strip())
    roots += [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv"), "/root/.pyenv"]
    for root in filter(None, roots):
        found = sorted(glob.glob(f"{root}/versions/3.12.*/bin/python"))
        if found:
            return Path(found[-1])
    on_path = shutil.which("python3.12")
    if on_path:
        return Path(on_path)
    msg = "no Python 3.12 found (mesa-llm 0.3.2 needs >= 3.12): tried pyenv's versions/3.12.* and python3.12"
    raise RuntimeError(msg)


def peer_ready(python: Path) -> bool:
    """Whether ``python`` imports mesa-llm 0.3.2 and litellm's ``mcp`` dependency."""
    if not python.exists():
        return False
    check = ("from importlib.metadata import version; import mcp, mesa_llm; "
             f"assert version('mesa-llm') == {MESA_LLM.split('==')[1]!r}")
    return subprocess.run([str(python), "-c", check], capture_output=True, check=False).returncode == 0


def ensure_peer_venv() -> dict[str, Any]:
    """Creates ``.venv-mesa-llm`` with mesa-llm (and litellm's ``mcp`` extra) unless it is ready.

    Returns:
        ``created`` and ``setup_s``.

    Raises:
        RuntimeError: The venv could not be built (pip's output tail included).
    """
    python = PEER_VENV / "bin" / "python"
    if peer_ready(python):
        return {"created": False, "setup_s": 0.0}
    began = time.perf_counter()
    base = find_python312()
    print(f"creating {PEER_VENV.name} from {base} and installing {MESA_LLM} (1-3 minutes)", flush=True)
    steps = [[str(base), "-m", "venv", "--clear", str(PEER_VENV)],
             [str(python), "-m", "pip", "install", "-q", MESA_LLM]]
    for cmd in steps:
        _run_or_raise(cmd)
    litellm = subprocess.run([str(python), "-c", "from importlib.metadata import version; print(version('litellm'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    _run_or_raise([str(python), "-m", "pip", "install", "-q", f"litellm[mcp]=={litellm}"])
    if not peer_ready(python):
        msg = f"{PEER_VENV} was built but does not import mesa_llm and mcp"
        raise RuntimeError(msg)
    return {"created": True, "setup_s": round(time.perf_counter() - began, 1)}


def _run_or_raise(cmd: list[str]) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        msg = f"{' '.join(cmd)} failed ({out.returncode}): {(out.stdout + out.stderr)[-2000:]}"
        raise RuntimeError(msg)


# ---------------------------------------------------------------- the model server

def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, log: Path) -> subprocess.Popen[bytes]:
    """Starts llama-cpp-python's OpenAI-compatible server with the shipped GGUF and waits for ``/v1/models``.

    Args:
        port: Where it listens (127.0.0.1).
        log: File for its output.

    Returns:
        The running server process.

    Raises:
        RuntimeError: It exited or did not answer within 120 s.
    """
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(shipped_model_path()), "--host", "127.0.0.1",
           "--port", str(port), "--n_threads", "2", "--n_ctx", "4096", "--model_alias", ALIAS]
    with log.open("wb") as sink:
        server = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            msg = f"model server exited ({server.returncode}): {log.read_text(errors='replace')[-1500:]}"
            raise RuntimeError(msg)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as answer:
                if answer.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    stop_server(server)
    msg = f"model server did not answer on port {port} within 120 s"
    raise RuntimeError(msg)


def warm_up(port: int) -> float:
    """Sends one short chat request so neither side pays the server's first-request costs.

    Returns:
        Seconds it took.
    """
    body = json.dumps({"model": ALIAS, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4})
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    began = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as answer:
        answer.read()
    return round(time.perf_counter() - began, 2)


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """Stops the server (terminate, then kill after 10 s)."""
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# ---------------------------------------------------------------- the two sides

def personas(count: int) -> list[dict[str, Any]]:
    """The town's agents, repeated with numbered names when more are wanted than the town has.

    Args:
        count: How many agents.

    Returns:
        Agent specs as in ``scenarios/town.yaml``.
    """
    town = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))["agents"]
    out = []
    for i in range(count):
        spec = dict(town[i % len(town)])
        if i >= len(town):
            spec["name"] = f"{spec['name']} {i // len(town) + 1}"
        out.append(spec)
    return out


def run_simulacra(args: argparse.Namespace, port: int, work: Path) -> dict[str, Any]:
    """Runs the town through ``run.py`` against the server and reads its ``summary.json``.

    Args:
        args: The options (agents, steps, side timeout).
        port: The server's port.
        work: Scratch folder (the run folder goes inside).

    Returns:
        This side's figures, or ``status: failed`` with the error text.
    """
    out_dir = work / "simulacra-run"
    cmd = [sys.executable, "run.py", str(SCENARIO.relative_to(ROOT)), "--steps", str(args.steps), "--plain",
           "--out", str(out_dir), "--set", "llm.backend=openai", "--set", f"llm.base_url=http://127.0.0.1:{port}/v1",
           "--set", f"llm.model={ALIAS}", "--set", "llm.schema_mode=json_object", "--set", "llm.cache=false"]
    town_agents = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))["agents"]
    if args.agents != len(town_agents):
        cmd += ["--set", f"agents={json.dumps(personas(args.agents))}"]
    env = {**os.environ, "OPENAI_API_KEY": os.environ.get("OPENAI_API_KEY", "sk-local")}
    result: dict[str, Any] = {"framework": "simulacra", "agents": args.agents, "steps_requested": args.steps,
                              "command": " ".join([".venv/bin/python", *cmd[1:]])}
    proc, process_s = _side(cmd, env, args.side_timeout)
    result["process_s"] = process_s
    summary_path = out_dir / "summary.json"
    if proc is None or proc.returncode != 0 or not summary_path.exists():
        tail = (proc.stdout + proc.stderr)[-2000:] if proc else f"timed out after {args.side_timeout} s"
        return {**result, "status": "failed", "error": tail}
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    llm = summary["llm"]
    wall, steps = float(summary["wall_s"]), int(summary["steps"])
    return {**result, "status": summary["status"], "steps": steps, "wall_s": wall,
            "agent_steps_per_s": round(args.agents * steps / wall, 3) if wall else None,
            "llm": {"calls": llm["calls"], "retries": llm["retries"], "failures": llm["failures"],
                    "errors": llm["errors"], "cache_hits": llm["cache_hits"],
                    "prompt_tokens": llm["prompt_tokens"], "completion_tokens": llm["completion_tokens"],
                    "engine_seconds": llm["engine_seconds"]},
            "events": summary.get("events", {}),
            "versions": {"python": platform.python_version(), "mesa": version("mesa"),
                         "simulacra": version("simulacra"), "openai": version("openai")}}


def run_mesa_llm(args: argparse.Namespace, port: int, work: Path) -> dict[str, Any]:
    """Runs ``bench/peer_mesa_llm_model.py`` with the mesa-llm venv and reads the JSON it prints last.

    Args:
        args: The options (agents, steps, reasoning, side timeout).
        port: The server's port.
        work: Scratch folder (the personas file goes there).

    Returns:
        This side's figures, or ``status: failed`` with the error text.
    """
    people = work / "personas.json"
    people.write_text(json.dumps([{k: str(a.get(k, "")) for k in ("name", "persona", "goal")}
                                  for a in personas(args.agents)]), encoding="utf-8")
    cmd = [str(PEER_VENV / "bin" / "python"), str(PEER_MODEL.relative_to(ROOT)), "--base-url",
           f"http://127.0.0.1:{port}/v1", "--model", ALIAS, "--personas", str(people), "--agents", str(args.agents),
           "--steps", str(args.steps), "--reasoning", args.reasoning,
           "--budget-s", str(max(args.side_timeout - 40, 10))]
    env = {**os.environ, "OPENAI_API_KEY": os.environ.get("OPENAI_API_KEY", "sk-local"),
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc, process_s = _side(cmd, env, args.side_timeout)
    base = {"framework": "mesa-llm", "agents": args.agents, "steps_requested": args.steps, "process_s": process_s,
            "command": " ".join([".venv-mesa-llm/bin/python", *cmd[1:]])}
    if proc is None:
        return {**base, "status": "failed", "error": f"timed out after {args.side_timeout} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {**base, "status": "failed", "error": (proc.stdout + proc.stderr)[-2000:]}
    result.pop("traceback", None)
    return {**base, **result}


def _side(cmd: list[str], env: dict[str, str], timeout: int) -> tuple[subprocess.CompletedProcess[str] | None, float]:
    began = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, round(time.perf_counter() - began, 2)
    return proc, round(time.perf_counter() - began, 2)


# ---------------------------------------------------------------- results

SIMULACRA_ACTIONS = ("moved", "said", "activity")


def derive(side: dict[str, Any]) -> dict[str, Any]:
    """Adds per-agent-step figures: LLM calls, tokens, and actions that changed the world.

    Actions are Simulacra's ``moved``/``said``/``activity`` events, and mesa-llm's tool calls that ran
    without error. Agent-steps are ``agents`` x completed ``steps``.
    """
    agent_steps = side["agents"] * int(side.get("steps") or 0)
    llm = side.get("llm") or {}
    if not agent_steps or "calls" not in llm:
        return side
    if side["framework"] == "simulacra":
        actions = sum(int(side.get("events", {}).get(k, 0)) for k in SIMULACRA_ACTIONS)
    else:
        actions = sum(n for name, n in (llm.get("tool_calls_executed") or {}).items() if "(error)" not in name)
    tokens = int(llm.get("prompt_tokens", 0)) + int(llm.get("completion_tokens", 0))
    wall = float(side.get("wall_s") or 0)
    side["per_agent_step"] = {
        "llm_calls": round(llm["calls"] / agent_steps, 2), "tokens": round(tokens / agent_steps, 1),
        "completion_tokens": round(int(llm.get("completion_tokens", 0)) / agent_steps, 1),
        "actions": round(actions / agent_steps, 2)}
    side["actions"] = actions
    side["completion_tokens_per_s"] = round(int(llm.get("completion_tokens", 0)) / wall, 1) if wall else None
    return side


def markdown(report: dict[str, Any]) -> str:
    """The results as a short Markdown page."""
    rows = []
    for side in report["sides"]:
        llm, per = side.get("llm", {}), side.get("per_agent_step", {})
        rate = side.get("agent_steps_per_s")
        rows.append(
            f"| {side['framework']} | {side.get('status')} | {side['agents']} | {side.get('steps', 0)} | "
            f"{side.get('wall_s', '–')} | **{rate if rate is not None else '–'}** | {llm.get('calls', '–')} | "
            f"{per.get('llm_calls', '–')} | {per.get('tokens', '–')} | {side.get('completion_tokens_per_s', '–')} | "
            f"{side.get('actions', '–')} | {side.get('process_s', '–')} | {side['load']['other_processes_cpu_pct']} |")
    sim, peer = report["sides"]
    sv, pv = sim.get("versions", {}), peer.get("versions", {})
    versions = report["versions"]
    lines = [
        "# Simulacra vs mesa-llm: agent-steps per second on one local model server",
        "",
        f"{report['date']} · `{report['command']}` · {report['machine']['platform']}, "
        f"{report['machine']['cpu_count']} CPUs · load at start {report['load_at_start']}"
        + (" · **machine busy** (other work running; timings are noisy)" if report["machine_busy"] else ""),
        "",
        f"Server: llama-cpp-python {versions['llama_cpp_python']} `llama_cpp.server`, SmolLM2-135M-Instruct Q4_1, "
        "2 threads, n_ctx 4096, shared by both sides (one warm-up request first).",
        "",
        "| framework | status | agents | steps | wall s | agent-steps/s | LLM calls | calls / agent-step | "
        "tokens / agent-step | completion tok/s | actions | process s | other CPU % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "wall s: building the model and agents through the last step (imports and interpreter start excluded; "
        "process s is the whole subprocess). Tokens: prompt + completion. Actions: Simulacra's moved/said/activity "
        "events, mesa-llm's tool calls that ran. Other CPU %: share of all CPUs used by processes outside this "
        "benchmark while the side ran. Both sides wait on the same single-sequence server, so agent-steps/s "
        "mostly follows how many tokens a framework asks for per agent-step.",
        "",
        f"- Simulacra {sv.get('simulacra', '?')}: Python {versions['python_simulacra']}, Mesa {sv.get('mesa', '?')}; "
        "one schema-constrained call per agent-step (`response_format` json_object + schema), concurrent within "
        "a step; an agent walking to a chosen place keeps walking without a call.",
        f"- mesa-llm {pv.get('mesa-llm', '?')}: Python {pv.get('python', '?')}, Mesa {pv.get('mesa', '?')}, "
        f"litellm {pv.get('litellm', '?')}; `{peer.get('reasoning', '?')}`: a free-text plan call plus a tool-call "
        "execution call per agent-step (no max_tokens), asyncio parallel stepping.",
    ]
    if peer.get("status") == "completed":
        tools = peer.get("llm", {}).get("tool_calls_executed") or {}
        lines.append(f"- mesa-llm tool calls executed: {tools or 'none'} (llama-cpp-python's default chat handler "
                     "returns no `tool_calls` for `tool_choice=\"auto\"`: it only builds a tool grammar when "
                     "`tool_choice` names a function, so mesa-llm's plans do not become actions on this server).")
    lines += [
        "- mesa-llm 0.3.2 on Mesa 3.5.1: `model.agents.shuffle_do(\"step\")` only runs `LLMAgent`'s no-op "
        "`step` (mesa-llm patches `AgentSet.shuffle_do`, but `model.agents` is a `_HardKeyAgentSet` with its "
        "own), so the model calls mesa-llm's `step_agents_parallel_sync` itself.",
        "- litellm 1.106 imports `mcp` for every call with tools; the venv adds `litellm[mcp]`, without which "
        "every such call fails and mesa-llm retries it forever.",
    ]
    for side in report["sides"]:
        if side.get("note"):
            lines.append(f"- {side['framework']}: {side['note']}")
        if side.get("status") not in ("completed", "partial"):
            lines.append(f"- {side['framework']} failed: `{str(side.get('error', ''))[:600]}`")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Runs both sides and writes the results.

    Args:
        argv: Arguments without the program name; None reads ``sys.argv``.

    Returns:
        0 when both sides completed, 1 otherwise (the results say why).
    """
    args = parse_args(argv)
    command = " ".join([".venv/bin/python", "bench/peer_mesa_llm.py", *(argv if argv is not None else sys.argv[1:])])
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    setup = ensure_peer_venv()
    sides: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="peer-mesa-llm-") as tmp:
        work = Path(tmp)
        port = free_port()
        server = start_server(port, work / "server.log")
        try:
            warm_s = warm_up(port)
            for name, runner in (("simulacra", run_simulacra), ("mesa-llm", run_mesa_llm)):
                print(f"running {name} ({args.agents} agents x {args.steps} steps) ...", flush=True)
                probe = LoadProbe(server.pid)
                side = runner(args, port, work)
                side["load"] = probe.stop()
                derive(side)
                sides.append(side)
                print(f"  {name}: {side.get('status')}, wall {side.get('wall_s')} s, "
                      f"{side.get('agent_steps_per_s')} agent-steps/s, {side.get('llm', {}).get('calls')} LLM calls",
                      flush=True)
        finally:
            stop_server(server)
    busy = load_at_start[0] >= 0.5 * (os.cpu_count() or 1) or any(
        s["load"]["other_processes_cpu_pct"] >= 25 for s in sides)
    report = {
        "benchmark": "peer_mesa_llm", "date": datetime.now(UTC).isoformat(timespec="seconds"), "command": command,
        "machine": machine_info(), "load_at_start": load_at_start, "machine_busy": busy,
        "server": {"engine": "llama_cpp.server", "model": shipped_model_path().name, "alias": ALIAS, "n_threads": 2,
                   "n_ctx": 4096, "warm_up_s": warm_s},
        "versions": {"python_simulacra": platform.python_version(), "llama_cpp_python": version("llama_cpp_python")},
        "peer_venv": setup, "sides": sides,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "peer_mesa_llm.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.out / "peer_mesa_llm.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))
    return 0 if all(s.get("status") == "completed" for s in sides) else 1


if __name__ == "__main__":
    sys.exit(main())
