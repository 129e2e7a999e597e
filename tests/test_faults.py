"""LLM faults end to end: the town scenario against a real llama.cpp server behind a fault-injecting proxy.

The proxy (`FaultProxy`, here in the test process) forwards to llama-cpp-python's OpenAI-compatible server
on the shipped SmolLM2 GGUF and spoils about a fifth of the chat requests, chosen by a seeded random: it
drops the connection, stalls past the client's timeout, answers HTTP 500 or 429, cuts the JSON body short,
or empties the completion. The run must complete and its counters must show each injected fault. Killing
the proxy for good must stop a run with exit status 3 and the resume command; once it is back, that command
finishes the run.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from simulacra.agents.llm import LLMClient, Message
from simulacra.agents.llm.langchain import load_chat_model
from simulacra.agents.llm.llamacpp import shipped_model_path
from simulacra.agents.llm.openai_compat import OpenAIBackend
from tests.conftest import ROOT
from tests.helpers import free_port

pytestmark = pytest.mark.e2e

SERVER_START_S = 60.0
# Above one request's latency even when other work shares the 2 cores (first calls take up to ~14 s then),
# below a stall. One request at a time (llm.max_concurrency 1), so none waits behind another in the server.
TIMEOUT_S = 15.0
# The kinds take turns in this order; stall, which costs a whole timeout, comes last.
FAULTS = ("http_500", "drop", "truncate", "empty", "http_429", "stall")
ENGINE_FAULTS = tuple(f for f in FAULTS if f != "empty")  # an empty completion is a bad answer
PROXY_SEED = 24  # its first 20 draws spoil 6 requests, 30 % (seed 7: 11, 55 %)
FAULT_RATE = 0.2
# What the call log's ``error`` says for each engine fault (a stall ends in whichever timeout fires first).
ERROR_OF = {
    "drop": r"failed: Connection error\.$",
    "stall": r"(failed: Request timed out\.|timed out after \d+ s \(llm\.timeout_s\))$",
    "http_500": r"failed: Error code: 500 ",
    "http_429": r"failed: Error code: 429 ",
    "truncate": r"sent a body that is not JSON: ",
}
EMPTY_FEEDBACK = "Your reply was empty. Reply with one JSON object and nothing else."


class FaultProxy:
    """HTTP on 127.0.0.1 forwarded to ``upstream``; about ``rate`` of chat requests get a fault.

    Which requests are spoilt is drawn from ``random.Random(seed)``; the kinds in ``faults`` take turns.

    Attributes:
        counts: Chat requests seen (``requests``) and faults injected, by kind.
    """

    def __init__(self, upstream: int, *, rate: float, seed: int, faults: tuple[str, ...] = FAULTS,
                 stall_s: float = TIMEOUT_S + 1, kill_after: int | None = None) -> None:
        self.upstream = upstream
        self.rate = rate
        self.faults = faults
        self.stall_s = stall_s
        self.kill_after = kill_after
        self.counts: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    def start(self, port: int = 0) -> int:
        """Listens (on ``port``, or a free one) and serves in a thread; returns the port."""
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.port

    def stop(self) -> None:
        """Stops listening: new connections are refused."""
        if self._server is not None:
            server, self._server = self._server, None
            server.shutdown()
            server.server_close()

    def choose(self, path: str) -> str | None:
        """The fault for this request, or None to forward it unchanged; may kill the proxy."""
        if not path.endswith("/chat/completions"):
            return None
        with self._lock:
            self.counts["requests"] += 1
            if self.kill_after is not None and self.counts["requests"] > self.kill_after:
                if self.counts["killed"] == 0:
                    threading.Thread(target=self.stop, daemon=True).start()
                self.counts["killed"] += 1
                return "drop"
            if self._rng.random() >= self.rate:
                return None
            fault = self.faults[self.counts["faults"] % len(self.faults)]
            self.counts["faults"] += 1
            self.counts[fault] += 1
            return fault


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

        def do_GET(self) -> None:
            self._send(*self._forward(b""))

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            fault = proxy.choose(self.path)
            if fault in ("drop", "stall"):
                if fault == "stall":
                    time.sleep(proxy.stall_s)
                self.close_connection = True  # nothing sent: the client sees the connection close
                return
            if fault in ("http_500", "http_429"):
                error = json.dumps({"error": {"message": f"injected {fault}", "type": "server_error"}}).encode()
                self._send(int(fault[-3:]), error)
                return
            status, data = self._forward(body)
            if fault == "truncate":
                data = data[: len(data) // 2]
            elif fault == "empty":
                answer = json.loads(data)
                answer["choices"][0]["message"]["content"] = ""
                data = json.dumps(answer).encode()
            self._send(status, data)

        def _forward(self, body: bytes) -> tuple[int, bytes]:
            conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream, timeout=120)
            try:
                conn.request(self.command, self.path, body or None, {"Content-Type": "application/json"})
                response = conn.getresponse()
                return response.status, response.read()
            finally:
                conn.close()

        def _send(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler



def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """llama-cpp-python's server on the shipped model; yields its port and the served model's name."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(shipped_model_path()),
               "--host", "127.0.0.1", "--port", str(port), "--n_threads", "1", "--n_ctx", "2048"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}")
            try:
                models = _get_json(f"http://127.0.0.1:{port}/v1/models")["data"]
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"llama_cpp.server not up after {SERVER_START_S:g} s:\n{log_path.read_text()[-2000:]}")
                time.sleep(0.2)
        yield port, str(models[0]["id"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _run_cli(*args: str | Path, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "run.py", *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout_s, check=False)


def _llm_sets(port: int, model: str, **more: Any) -> list[str]:
    settings = {"backend": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "model": model,
                "schema_mode": "json_object", "cache": "false", "timeout_s": TIMEOUT_S, "max_concurrency": 1, **more}
    return [arg for key, value in settings.items() for arg in ("--set", f"llm.{key}={value}")]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _fault_of(error: str) -> str:
    kinds = [kind for kind, pattern in ERROR_OF.items() if re.search(pattern, error)]
    assert len(kinds) == 1, f"an engine error that is no injected fault: {error!r}"
    return kinds[0]


def test_the_openai_client_does_not_retry_and_a_langchain_model_is_told_not_to() -> None:
    backend = OpenAIBackend(base_url="http://127.0.0.1:9/v1", model="m")
    chat = load_chat_model("langchain_openai.ChatOpenAI", {"base_url": "http://127.0.0.1:9/v1", "api_key": "x",
                                                           "model": "m"})
    kept = load_chat_model("langchain_openai.ChatOpenAI", {"base_url": "http://127.0.0.1:9/v1", "api_key": "x",
                                                           "model": "m", "max_retries": 4})

    assert [c.max_retries for c in backend._clients] == [0]
    assert (chat.max_retries, kept.max_retries) == (0, 4)


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_reaches_the_client_as_what_it_is(server: tuple[int, str], fault: str) -> None:
    timeout_s = 2.0 if fault == "stall" else TIMEOUT_S  # the others reach the server: a first call can be slow
    proxy = FaultProxy(server[0], rate=1.0, seed=0, faults=(fault,), stall_s=timeout_s + 1)
    port = proxy.start()
    backend = OpenAIBackend(base_url=f"http://127.0.0.1:{port}/v1", model=server[1], schema_mode="json_object",
                            timeout_s=timeout_s)
    client = LLMClient(backend, retries=0, timeout_s=timeout_s)
    try:
        outcome = client.run(client.text([Message("user", "Say hi.")], seed=0, fallback="FALLBACK", max_tokens=8))
    finally:
        client.close()
        proxy.stop()

    assert (outcome.ok, outcome.value, proxy.counts[fault]) == (False, "FALLBACK", 1)
    if fault == "empty":
        assert outcome.error == "empty completion: ''"
        assert client.stats.errors == 0
    else:
        assert _fault_of(outcome.error or "") == fault
        assert client.stats.errors == 1


@pytest.mark.parametrize("fault", ENGINE_FAULTS)
def test_the_langchain_backend_turns_each_engine_fault_into_a_backend_error(server: tuple[int, str],
                                                                           fault: str) -> None:
    import httpx

    from simulacra.agents.llm.langchain import LangChainBackend

    timeout_s = 2.0 if fault == "stall" else TIMEOUT_S
    proxy = FaultProxy(server[0], rate=1.0, seed=0, faults=(fault,), stall_s=timeout_s + 1)
    port = proxy.start()
    http = httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0))  # nothing bound to a closed loop
    chat = load_chat_model("langchain_openai.ChatOpenAI", {"base_url": f"http://127.0.0.1:{port}/v1", "api_key": "x",
                                                           "model": server[1], "http_async_client": http})
    client = LLMClient(LangChainBackend(chat), retries=0, timeout_s=timeout_s)
    try:
        outcome = client.run(client.text([Message("user", "Say hi.")], seed=0, fallback="FALLBACK", max_tokens=8))
    finally:
        client.run(http.aclose())
        client.close()
        proxy.stop()

    assert (outcome.ok, proxy.counts["requests"], client.stats.errors) == (False, 1, 1)
    expected = "timed out after 2 s (llm.timeout_s)" if fault == "stall" else "LangChain model ChatOpenAI failed: "
    assert (outcome.error or "").startswith(expected)


def test_town_completes_through_a_faulty_proxy_and_counts_the_faults(server: tuple[int, str],
                                                                     tmp_path: Path) -> None:
    proxy = FaultProxy(server[0], rate=FAULT_RATE, seed=PROXY_SEED)
    port = proxy.start()
    out = tmp_path / "run"
    try:
        done = _run_cli(ROOT / "scenarios" / "town.yaml", "--steps", "3", "--out", out, "--plain",
                        *_llm_sets(port, server[1], backoff_s=0.05, backoff_max_s=0.2))
    finally:
        proxy.stop()
    assert done.returncode == 0, done.stderr

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    events = _jsonl(out / "events.jsonl")
    calls = _jsonl(out / "llm_calls.jsonl")
    llm = summary["llm"]
    print(f"\nproxy {dict(proxy.counts)}; client calls {llm['calls']} errors {llm['errors']} retries "
          f"{llm['retries']} failures {llm['failures']} backoff {llm['backoff_seconds']} s")
    assert summary["status"] == "completed"
    assert llm["errors"] > 0
    assert llm["retries"] > 0
    assert llm["failures"] == sum(e["kind"] == "llm_failure" for e in events)
    # One proxy request per engine attempt: neither the openai client nor httpx retried behind our back.
    assert proxy.counts["requests"] == llm["calls"] == len(calls)
    seen = Counter(_fault_of(c["error"]) for c in calls if c["error"])
    assert llm["errors"] == seen.total() >= sum(proxy.counts[kind] for kind in ENGINE_FAULTS)
    # Every injected fault shows as its own error; only timeouts may be more (a slow answer on a busy machine).
    assert {k: seen[k] for k in ENGINE_FAULTS if k != "stall"} == {k: proxy.counts[k] for k in ENGINE_FAULTS
                                                                   if k != "stall"}
    assert seen["stall"] >= proxy.counts["stall"]
    empties = [c for c in calls if c["text"] == ""]
    assert len(empties) == proxy.counts["empty"]
    fed_back = [c for c in calls if c["request"]["messages"][-1]["content"] == EMPTY_FEEDBACK]
    retried = sum(c["attempt"] <= 2 for c in empties)  # town.yaml: retries 2, so attempts 1 and 2 are retried
    assert len(fed_back) == retried, "an empty answer is retried with the feedback"


def test_a_dead_server_stops_the_run_with_exit_3_and_resume_finishes_it(server: tuple[int, str],
                                                                        tmp_path: Path) -> None:
    # Step 1 asks at most 5 agents: the proxy dies in step 2 or later. Refused connections fail at once, so
    # the backoffs of one call (0.2 + 0.4 + 0.8 s, +-50 %) outlast down_after_s. The resume keeps these
    # settings: a long timeout keeps a slow answer on a busy machine from counting as the engine being down.
    steps, kill_after = 3, 7
    proxy = FaultProxy(server[0], rate=0.0, seed=0, kill_after=kill_after)
    port = proxy.start()
    out = tmp_path / "run"
    try:
        stopped = _run_cli(ROOT / "scenarios" / "town.yaml", "--steps", steps, "--out", out, "--plain",
                           *_llm_sets(port, server[1], retries=3, backoff_s=0.2, backoff_max_s=1.0,
                                      down_after_s=0.5, timeout_s=60))
    finally:
        proxy.stop()
    assert stopped.returncode == 3, stopped.stderr
    lines = stopped.stderr.strip().splitlines()
    assert len(lines) == 1, stopped.stderr
    assert re.search(r"unreachable .*every engine call failed for \d+\.\d s \(llm\.down_after_s = 0\.5\)", lines[0])
    assert lines[0].endswith(f"; resume with: python run.py resume {out}")
    kept = int(re.search(r"snapshot of step (\d+)", lines[0])[1])
    assert 1 <= kept < steps
    snapshot = json.loads((out / "snapshots" / f"step-{kept:06d}.json").read_text(encoding="utf-8"))

    proxy = FaultProxy(server[0], rate=0.0, seed=0)
    proxy.start(port)  # back where the run folder's scenario expects it
    try:
        resumed = _run_cli("resume", out, "--plain")
    finally:
        proxy.stop()
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "completed"
    assert summary["steps"] == steps
    assert summary["resumed_from"] == kept
    assert proxy.counts["requests"] > 0
    # The whole run is counted: the counters up to the snapshot, then the resume's engine calls and the answers
    # it found in the run's own call log (given before the kill, after the snapshot).
    replayed = summary["llm"]["cache_hits"] - snapshot["llm"]["cache_hits"]
    assert summary["llm"]["calls"] == snapshot["llm"]["calls"] + proxy.counts["requests"] + replayed
    events = _jsonl(out / "events.jsonl")
    assert [e["step"] for e in events if e["kind"] == "step_ended"] == list(range(1, steps + 1))

