"""Sweeps without Ray: the plan, the CI arithmetic, a run's task (resume, retry, keep), forks with a new seed,
server slots shared across processes, and what is listening."""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from simulacra.errors import ScenarioError, SimError
from simulacra.runs.lineage import Lineage
from simulacra.runs.runner import Runner
from simulacra.scenarios.loading import load_scenario
from simulacra.sweeps.cluster import is_loopback, listening
from simulacra.sweeps.plan import MAX_RUNS, SweepPlan, replica_seed
from simulacra.sweeps.report import SweepReport, flatten_summary
from simulacra.sweeps.task import StatusBoard, execute
from tests.conftest import ROOT
from tests.fakes import engine_sets

SCENARIO = """\
name: swp
seed: 11
steps: 4
world: {type: town}
agents:
  - {name: A, persona: a baker, home: cafe}
  - {name: B, persona: a poet, home: park}
  - {name: C, persona: a nurse, home: plaza}
llm: {cache: false, retries: 1, backoff_s: 0}
outputs: {live: false, plots: false, snapshots_keep: 0}
"""


def _script(request: Any) -> str:
    place = ["plaza", "cafe", "park", "store"][request.seed % 4]
    kind = ["go_to", "do"][request.seed % 2]
    return json.dumps({"action": kind, "place": place, "person": "nobody", "text": f"thinking {request.seed % 7}"})


SCRIPTED = engine_sets("tests.test_sweep:_script")  # a run's engine: _script, built as a user's backend is


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The scenario file, in a fresh working folder (a run that asks the engine adds SCRIPTED)."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "swp.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path


def _plan(file: Path, out: Path, **kwargs: Any) -> SweepPlan:
    return SweepPlan.from_args(file, out=out, **kwargs)


def test_plan_lists_cells_arms_replicas_with_shared_replica_seeds(scripted: Path, tmp_path: Path) -> None:
    plan = _plan(scripted, tmp_path / "s", grid=["llm.temperature=0.2,0.9"], replicas=3,
                 arms=["calm:agents.0.goal=rest", "busy:agents.0.goal=work", "busy:steps=5"])
    runs = plan.runs()
    assert [r.id for r in runs[:6]] == ["c0-calm-r0", "c0-calm-r1", "c0-calm-r2", "c0-busy-r0", "c0-busy-r1",
                                        "c0-busy-r2"]
    assert len(runs) == 2 * 2 * 3 == len({r.id for r in runs})
    seeds = {(r.cell_index, r.arm): [r.seed for r in runs if (r.cell_index, r.arm) == (r.cell_index, r.arm)]
             for r in runs}
    by_replica = {r.replica: {x.seed for x in runs if x.replica == r.replica} for r in runs}
    assert all(len(s) == 1 for s in by_replica.values())  # common random numbers across cells and arms
    assert by_replica[0] == {11} and len({next(iter(s)) for s in by_replica.values()}) == 3
    assert seeds  # every (cell, arm) has runs
    busy = next(r for r in runs if r.id == "c1-busy-r2")
    # the sweep's sets (llama.cpp threads = CPUs per run), then the cell, the arm, the seed
    assert busy.overrides == ("llm.n_threads=1", "llm.cache=false", "llm.temperature=0.9", "agents.0.goal=work",
                              "steps=5", f"seed={replica_seed(11, 2)}")
    assert load_scenario(scripted, list(busy.overrides)).steps == 5


def test_replica_seeds_are_stable_and_distinct() -> None:
    seeds = [replica_seed(7, r) for r in range(50)]
    assert seeds[0] == 7 and len(set(seeds)) == 50
    assert seeds == [replica_seed(7, r) for r in range(50)]
    assert replica_seed(8, 1) != replica_seed(7, 1)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"grid": ["llm.temperature"]}, "--grid 'llm.temperature': give KEY=V1,V2,..., e.g. --grid "
     "llm.temperature=0.2,0.9"),
    ({"grid": ["llm.temperature=0.2,,0.3"]}, "--grid 'llm.temperature=0.2,,0.3': give KEY=V1,V2,..."),
    ({"grid": ["steps=2,2"]}, "--grid 'steps=2,2': a value is listed twice; list each value once"),
    ({"arms": ["bad name:steps=2"]}, "--arm 'bad name:steps=2': give NAME:KEY=VALUE"),
    ({"arms": ["warm:steps"]}, "--arm 'warm:steps': give NAME:KEY=VALUE"),
    ({"replicas": 0}, "--replicas 0: give 1 or more"),
    ({"grid": ["llm.temperature=0.5,9"]}, "llm.temperature"),
    ({"grid": ["steps=1,2,3,4,5,6,7,8,9,10", "seed=" + ",".join(map(str, range(1001)))]},
     f"the sweep has 10010 runs (cells × arms × replicas); at most {MAX_RUNS}: shrink the grid"),
])
def test_plan_refuses_bad_options_in_one_line(scripted: Path, tmp_path: Path, kwargs: dict[str, Any],
                                              message: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(message)) as err:
        _plan(scripted, tmp_path / "s", **kwargs)
    assert "\n" not in str(err.value)


def test_plan_needs_a_file_or_a_parent(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=re.escape("sweep: give a scenario FILE, or --from RUN_DIR --at STEP")):
        SweepPlan.from_args(None, out=tmp_path)
    with pytest.raises(ScenarioError, match=re.escape("give --at STEP, the parent's step every run forks from")):
        SweepPlan.from_args(None, parent=tmp_path, out=tmp_path)


def test_manifest_round_trip_and_damage(scripted: Path, tmp_path: Path) -> None:
    plan = _plan(scripted, tmp_path / "s", grid=["steps=2,3"], replicas=2)
    (tmp_path / "s").mkdir()
    plan.write(tmp_path / "s")
    again = SweepPlan.read(tmp_path / "s")
    assert again.runs() == plan.runs() and again.id == plan.id and len(plan.id) == 6
    (tmp_path / "s" / "sweep.json").write_text('{"scenario": null}', encoding="utf-8")
    with pytest.raises(SimError, match=r"sweep\.json: a damaged sweep manifest \(KeyError"):
        SweepPlan.read(tmp_path / "s")
    with pytest.raises(SimError, match=re.escape(f"--resume {str(tmp_path)!r}: not a sweep folder (no sweep.json)")):
        SweepPlan.read(tmp_path)


def _row(run: str, cell: tuple[str, ...], arm: str, value: float, status: str = "completed") -> dict[str, Any]:
    summary = {"status": status, "wall_s": 1.0, "llm": {"prompt_tokens": 10, "completion_tokens": 5},
               "diffusion": {"knows": ["a"] * int(value)}, "memory": {"memories": value},
               "surveys": {"mood": {"calm": {"type": "likert", "steps": {"0": {"n": 5, "mean": 1.0},
                                                                         "12": {"n": 5, "mean": value / 2}}}}}}
    return {"run": run, "cell": cell, "arm": arm, "replica": 0, "seed": 1, "status": status, "attempts": 1,
            "resumed_from": [], "error": None, "summary": summary}


def test_report_means_and_student_t_intervals(tmp_path: Path) -> None:
    rows = [_row(f"r{i}", ("steps=2",), "a", v) for i, v in enumerate([1.0, 2.0, 3.0])]
    rows += [_row("s0", ("steps=3",), "a", 4.0), _row("s1", ("steps=3",), "a", 9.0, status="failed")]
    report = SweepReport(rows, grid_keys=["steps"])
    ci = report.intervals().set_index(["metric", "cell"])
    first = ci.loc[("memory.memories", "steps=2")]
    half = 4.302652729749464 * 1.0 / math.sqrt(3)  # t(0.975, 2) · sd / √n with sd = 1
    assert (first["n"], first["mean"], first["sd"]) == (3, 2.0, 1.0)
    assert first["ci_low"] == pytest.approx(2 - half) and first["ci_high"] == pytest.approx(2 + half)
    alone = ci.loc[("memory.memories", "steps=3")]  # the failed run is left out of the mean
    assert alone["n"] == 1 and alone["mean"] == 4.0 and math.isnan(alone["ci_low"])
    assert ci.loc[("survey.mood.calm.mean", "steps=2")]["mean"] == 1.0  # the last step asked, value / 2
    assert report.constant() == {"wall_s": 1.0, "tokens": 15.0, "llm.prompt_tokens": 10.0,
                                 "llm.completion_tokens": 5.0, "survey.mood.calm.n": 5.0}
    files = report.write(tmp_path, title="t", notes=["s1: failed"])
    frame = pd.read_parquet(tmp_path / "sweep.parquet")
    assert list(frame["grid.steps"]) == ["2", "2", "2", "3", "3"] and list(frame["status"])[-1] == "failed"
    page = (tmp_path / "sweep.md").read_text(encoding="utf-8")
    assert f"| steps=2 | a | 3 | 2 | [{2 - half:.4g}, {2 + half:.4g}] |" in page
    assert "| steps=3 | a | 1 | 4 | one run: no interval |" in page and "- s1: failed" in page
    assert (tmp_path / "plots" / "memory.memories.png").stat().st_size > 1000 and len(files) > 3


def test_arms_are_compared_with_the_first_replica_by_replica(tmp_path: Path) -> None:
    base, tuned = [1.0, 4.0, 2.0], [2.0, 6.0, 5.0]  # replica by replica: +1, +2, +3
    rows = [_row(f"b{i}", (), "base", v) | {"replica": i} for i, v in enumerate(base)]
    rows += [_row(f"t{i}", (), "tuned", v) | {"replica": i} for i, v in enumerate(tuned)]
    rows += [_row("t3", (), "tuned", 50.0) | {"replica": 3}]  # no base run of replica 3: no pair
    rows += [_row("f4", (), "base", 1.0, status="failed") | {"replica": 4},  # a failed run pairs with nothing
             _row("t4", (), "tuned", 9.0) | {"replica": 4}]
    report = SweepReport(rows)
    diff = report.differences().set_index("metric").loc["memory.memories"]
    half = 4.302652729749464 * 1.0 / math.sqrt(3)  # t(0.975, 2) · sd / √n with the differences' sd = 1
    assert (diff["arm"], diff["versus"], diff["n"], diff["mean"]) == ("tuned", "base", 3, 2.0)
    assert diff["ci_low"] == pytest.approx(2 - half) and diff["ci_high"] == pytest.approx(2 + half)
    report.write(tmp_path, title="t")
    page = (tmp_path / "sweep.md").read_text(encoding="utf-8")
    assert f"| memory.memories | - | tuned | base | 3 | +2 | [{2 - half:+.4g}, {2 + half:+.4g}] |" in page
    assert SweepReport(rows[:3]).differences().empty  # one arm: nothing to compare
    assert "Arm differences" not in (SweepReport(rows[:3]).write(tmp_path, title="t") and
                                     (tmp_path / "sweep.md").read_text(encoding="utf-8"))


def test_flatten_summary_counts_lists_and_skips_names() -> None:
    flat = flatten_summary({"seed": 3, "run_dir": "/x", "final_places": {"A": "cafe"}, "steps": 4,
                            "diffusion": {"knows": ["A", "B"], "density": 0.5}, "llm": {"model": "m", "calls": 7}})
    assert flat == {"steps": 4.0, "diffusion.knows.n": 2.0, "diffusion.density": 0.5, "llm.calls": 7.0}


def test_a_task_resumes_from_its_snapshot_and_keeps_a_finished_run(scripted: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    plan = _plan(scripted, out, sets=SCRIPTED)
    out.mkdir()
    spec = plan.runs()[0]
    first = execute(spec.to_dict(), plan.to_dict(), str(out))
    folder = out / "runs" / spec.id
    log = (folder / "events.jsonl").read_bytes()
    assert first["status"] == "completed" and first["attempts"] == 1 and first["summary"]["steps"] == 4
    assert StatusBoard(out / "status", spec.id).read()["step"] == 4
    again = execute(spec.to_dict(), plan.to_dict(), str(out))  # a finished run is read back, not run
    assert again["status"] == "completed" and again["attempts"] == 2 and again["resumed_from"] == []
    assert (folder / "events.jsonl").read_bytes() == log
    # A kill while the run was closing: the summary is missing and the newest snapshot is of the last step.
    (folder / "summary.json").unlink()
    retried = execute(spec.to_dict(), plan.to_dict(), str(out))
    assert retried["status"] == "completed" and retried["resumed_from"] == [3] and retried["attempts"] == 3
    assert (folder / "events.jsonl").read_bytes() == log  # the redone step replays the recorded answers
    assert retried["summary"]["resumed_from"] == 3


def test_a_task_without_a_snapshot_starts_over(scripted: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    plan = _plan(scripted, out, sets=SCRIPTED)
    out.mkdir()
    spec = plan.runs()[0]
    folder = out / "runs" / spec.id
    folder.mkdir(parents=True)
    (folder / "events.jsonl").write_text('{"torn": ', encoding="utf-8")  # killed before its first snapshot
    result = execute(spec.to_dict(), plan.to_dict(), str(out))
    assert result["status"] == "completed" and result["resumed_from"] == []
    assert "torn" not in (folder / "events.jsonl").read_text(encoding="utf-8")


def test_a_failing_run_is_recorded_not_raised(scripted: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    plan = _plan(scripted, out, sets=SCRIPTED)
    out.mkdir()
    spec = plan.runs()[0]
    plan.scenario = tmp_path / "gone.yaml"  # the scenario file vanished after the sweep started
    result = execute(spec.to_dict(), plan.to_dict(), str(out))
    assert result["status"] == "failed" and "gone.yaml" in result["error"]
    assert StatusBoard(out / "status", spec.id).read()["status"] == "failed"


def test_a_fork_with_a_new_seed_keeps_the_past_and_draws_afresh(scripted: Path, tmp_path: Path) -> None:
    parent = tmp_path / "parent"
    Runner(load_scenario(scripted, SCRIPTED), out=parent, plain=True).run()
    logs = {}
    for name, sets in (("same", []), ("new", ["seed=99"]), ("new2", ["seed=99"]), ("spaced", ["seed =99"])):
        runner = Lineage(parent).fork(tmp_path / name, at=2, overrides=sets, plain=True)
        summary = runner.run()
        logs[name] = (tmp_path / name / "events.jsonl").read_bytes()
        assert summary["seed"] == (99 if sets else 11)
    cut = Lineage(parent).snapshots.load(2)["events_bytes"]
    parent_log = (parent / "events.jsonl").read_bytes()
    assert logs["same"] == parent_log  # no new seed: the fork goes on exactly as the parent did
    assert logs["new"][:cut] == parent_log[:cut] and logs["new"] != parent_log
    assert logs["new"] == logs["new2"]  # reproducible
    assert logs["spaced"] == logs["new"]  # `seed =99` reseeds as `seed=99` does: one parser
    assert load_scenario(tmp_path / "new" / "scenario.yaml").seed == 11  # built as the parent was


def test_is_loopback() -> None:
    assert is_loopback(None) and is_loopback("127.0.0.1:6379") and is_loopback("localhost:1")
    assert is_loopback("[::1]:6379") and is_loopback("ray://127.0.0.1:10001")
    assert not is_loopback("10.0.0.5:6379") and not is_loopback("head.example.org:6379")


def test_listening_reads_addresses_from_proc() -> None:
    sockets = []
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1"), (socket.AF_INET, "0.0.0.0")):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.bind((host, 0))
        s.listen()
        sockets.append((s, host))
    try:
        found = {(address, port) for pid, address, port in listening({os.getpid()})}
        for s, host in sockets:
            assert (host, s.getsockname()[1]) in found
    finally:
        for s, _ in sockets:
            s.close()


class _SlowServer:
    """A chat-completions server on loopback that answers after 0.15 s and counts requests in flight."""

    def __init__(self) -> None:
        self.in_flight = self.most = self.served = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with server._lock:
                    server.in_flight += 1
                    server.most = max(server.most, server.in_flight)
                time.sleep(0.15)
                body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                                   "choices": [{"index": 0, "finish_reason": "stop",
                                                "message": {"role": "assistant", "content": "ok"}}],
                                   "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
                with server._lock:
                    server.in_flight -= 1
                    server.served += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v1"


ASKER = """\
import asyncio, sys
sys.path.insert(0, {root!r})
from simulacra.agents.llm import LLMClient, Message
from simulacra.agents.llm.openai_compat import OpenAIBackend
cap = int(sys.argv[3]) or None
backend = OpenAIBackend(base_url=sys.argv[1], base_urls=[sys.argv[2]], model="m", server_slots=cap)
client = LLMClient(backend, max_concurrency=8, retries=0, timeout_s=30)

async def main():
    await asyncio.gather(*(client.text([Message("user", f"q{{i}}")], seed=i, fallback="-") for i in range(6)))

client.run(main())
client.close()
"""


@pytest.mark.parametrize("cap", [1, 0])
def test_server_slots_cap_every_process_on_the_machine(tmp_path: Path, cap: int) -> None:
    servers = [_SlowServer(), _SlowServer()]
    script = tmp_path / "ask.py"
    script.write_text(ASKER.format(root=str(ROOT)), encoding="utf-8")
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the slot files of this test only
    procs = [subprocess.Popen([sys.executable, str(script), servers[0].url, servers[1].url, str(cap)], env=env)
             for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert [s.served for s in servers] != [0, 0] and sum(s.served for s in servers) == 12
    if cap:
        assert [s.most for s in servers] == [1, 1]  # two runs, six requests each, one at a time per server
    else:
        assert max(s.most for s in servers) > 1  # without the cap the runs overlap (the test can fail)


def test_plain_runs_never_import_ray() -> None:
    code = ("import sys, run, simulacra.runs.runner, simulacra.runs.lineage, simulacra.sweeps, simulacra.sweeps.task; "
            "print('ray' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=True)
    assert done.stdout.strip() == "False"


def test_run_ids_stay_whole_in_collection_names(scripted: Path, tmp_path: Path) -> None:
    from simulacra.sweeps.task import run_id

    plan = _plan(scripted, tmp_path / "s", arms=["a-very-long-arm-name-for-a-treatment:steps=2"], replicas=11)
    ids = [run_id(plan, spec) for spec in plan.runs()]
    assert len(set(ids)) == 11 and {len(i) for i in ids} == {15}  # r1 and r10 do not meet once names are cut
    assert all(i.startswith(f"{plan.id}-") for i in ids)
