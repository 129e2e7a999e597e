"""Every LLM backend against a real engine, through one shared contract.

The engine is the shipped SmolLM2-135M GGUF: in this process for `LlamaCppBackend`, and behind
llama-cpp-python's OpenAI-compatible server (started once per module) for `OpenAIBackend` and
`LangChainBackend`. Requests are greedy (temperature 0) and short, so the module runs in seconds on a
small CPU. A schema is enforced by a llama.cpp grammar in every backend, so the checks on structured
answers hold whatever the tiny model would rather say.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from langchain_openai import ChatOpenAI

import run
from simulacra.agents.llm import LLMClient, LLMRequest, Message, make_backend
from simulacra.agents.llm.base import Backend, Completion
from simulacra.agents.llm.langchain import LangChainBackend
from simulacra.agents.llm.llamacpp import LlamaCppBackend, shipped_model_path
from simulacra.agents.llm.openai_compat import OpenAIBackend
from simulacra.errors import BackendError
from simulacra.scenarios.llm import LLMConfig
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent

T = TypeVar("T")

SERVER_START_S = 60.0
ACTIONS = ["go_to", "talk_to", "do"]
TEXT_MAX = 40
ACTION_PROMPT = "What do you do next? Reply in JSON."
ACTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ACTIONS},
        "text": {"type": "string", "maxLength": TEXT_MAX},
    },
    "required": ["action", "text"],
}
# One disjoint enum per request of a batch: each answer can only have come from its own request.
BATCH_ENUMS = [["north", "south"], ["red", "blue"], ["cat", "dog"]]



def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.load(response)


def _request(user: str, schema: Mapping[str, Any] | None = None, max_tokens: int = 48) -> LLMRequest:
    return LLMRequest(
        messages=(Message("system", "You are Ann, the town baker. Answer briefly."), Message("user", user)),
        schema=schema,
        max_tokens=max_tokens,
        temperature=0.0,
        seed=7,
    )


def _choice_schema(options: list[str]) -> dict[str, Any]:
    answer = {"type": "string", "enum": options}
    return {"type": "object", "properties": {"answer": answer}, "required": ["answer"]}


def _arun(backend: Backend, coro: Awaitable[T]) -> T:
    """Runs ``coro`` on a fresh event loop and closes the backend's connections in that same loop.

    HTTP clients pool connections per loop; closing them here keeps nothing bound to a dead loop.
    """

    async def main() -> T:
        try:
            return await coro
        finally:
            await backend.aclose()

    return asyncio.run(main())


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on the shipped model; yields its ``/v1`` URL."""
    yield from _serve(tmp_path_factory)


@pytest.fixture(scope="module")
def second_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second server of the same model, for round-robin."""
    yield from _serve(tmp_path_factory)


def _serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(shipped_model_path()),
               "--host", "127.0.0.1", "--port", str(port), "--n_threads", "1", "--n_ctx", "2048"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n"
                            f"{log_path.read_text()[-2000:]}")
            try:
                _get_json(f"{base_url}/models")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"llama_cpp.server not up after {SERVER_START_S:g} s:\n"
                                f"{log_path.read_text()[-2000:]}")
                time.sleep(0.2)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def served_model(server_url: str) -> str:
    """The model name the server serves (llama-cpp-python uses the GGUF path)."""
    models = _get_json(f"{server_url}/models")["data"]
    assert len(models) == 1
    return str(models[0]["id"])


@pytest.fixture(scope="module")
def llamacpp_engine() -> LlamaCppBackend:
    """The embedded engine, loaded once per module (about a second)."""
    return LlamaCppBackend(n_threads=1)


class BackendContract:
    """What every backend must do against a real engine; subclasses override the `backend` fixture."""

    @pytest.fixture
    def backend(self) -> Backend:
        """The backend under test, fresh or reusable across event loops."""
        raise NotImplementedError

    @pytest.fixture
    def expected_name(self) -> str:
        """The backend's registered name, the prefix of its model id."""
        raise NotImplementedError

    def test_free_text(self, backend: Backend) -> None:
        request = _request("Say hello to a customer in one sentence.", None, 24)

        completion = _arun(backend, backend.generate(request))

        assert isinstance(completion, Completion)
        assert completion.text.strip()
        assert completion.completion_tokens > 0
        assert completion.prompt_tokens > 0

    def test_schema_is_enforced(self, backend: Backend) -> None:
        completion = _arun(backend, backend.generate(_request(ACTION_PROMPT, ACTION_SCHEMA)))

        answer = json.loads(completion.text)
        assert isinstance(answer, dict)
        assert set(answer) == {"action", "text"}
        assert answer["action"] in ACTIONS
        assert isinstance(answer["text"], str)
        assert len(answer["text"]) <= TEXT_MAX

    def test_batch_answers_in_order(self, backend: Backend) -> None:
        requests = [
            _request(f"Pick one of: {' or '.join(options)}. Reply in JSON.", _choice_schema(options), 16)
            for options in BATCH_ENUMS
        ]

        completions = _arun(backend, backend.generate_batch(requests))

        assert len(completions) == len(requests)
        answers = [json.loads(c.text)["answer"] for c in completions]
        assert [a in options for a, options in zip(answers, BATCH_ENUMS, strict=True)] == [True, True, True]

    def test_model_id_is_stable(self, backend: Backend, expected_name: str) -> None:
        first = backend.model_id
        _arun(backend, backend.generate(_request("Say hi.", None, 4)))

        assert isinstance(first, str)
        assert first.startswith(f"{expected_name}:")
        assert len(first) > len(expected_name) + 1
        assert backend.model_id == first
        assert _request("x").key(backend.model_id) == _request("x").key(first)


class TestLlamaCpp(BackendContract):
    @pytest.fixture
    def backend(self, llamacpp_engine: LlamaCppBackend) -> Backend:
        return llamacpp_engine

    @pytest.fixture
    def expected_name(self) -> str:
        return "llamacpp"


class TestDry(BackendContract):
    @pytest.fixture
    def backend(self) -> Backend:
        return make_backend(LLMConfig(backend="dry"))  # no engine: answers drawn from the schema

    @pytest.fixture
    def expected_name(self) -> str:
        return "dry"


class TestOpenAI(BackendContract):
    @pytest.fixture
    def backend(self, server_url: str, served_model: str) -> Backend:
        # llama-cpp-python's server rejects response_format json_schema; it takes json_object + schema.
        return OpenAIBackend(base_url=server_url, model=served_model, schema_mode="json_object", timeout_s=60)

    @pytest.fixture
    def expected_name(self) -> str:
        return "openai"


class TestLangChain(BackendContract):
    @pytest.fixture
    def backend(self, server_url: str, served_model: str) -> Iterator[Backend]:
        # langchain-openai shares one cached httpx client per process, and LangChainBackend.aclose does not
        # close it, so a second asyncio.run would reuse connections of a closed loop. A client of our own
        # that keeps no idle connections holds no loop-bound state between tests.
        http = httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0))
        chat = ChatOpenAI(base_url=server_url, api_key="x", model=served_model, max_retries=0,
                          http_async_client=http)
        yield LangChainBackend(chat, structured_method="function_calling")
        asyncio.run(http.aclose())

    @pytest.fixture
    def expected_name(self) -> str:
        return "langchain"


def test_client_falls_back_when_the_server_is_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    backend = OpenAIBackend(base_url=url, model="m", schema_mode="json_object")
    client = LLMClient(backend, retries=1, timeout_s=5)

    outcome = client.run(client.text([Message("user", "Hello?")], seed=0, fallback="FALLBACK"))
    client.close()

    assert outcome.ok is False
    assert outcome.value == "FALLBACK"
    assert outcome.attempts == 2
    assert outcome.error == f"OpenAI-compatible server at {url!r} failed: Connection error."
    assert client.stats.errors == 2
    assert client.stats.retries == 1
    assert client.stats.failures == 1
    assert client.stats.calls == 2


def test_make_backend_openai_passes_its_settings(server_url: str, served_model: str) -> None:
    config = LLMConfig(backend="openai", base_url=server_url, model=served_model, schema_mode="json_object")

    backend = make_backend(config)
    # The server rejects json_schema, so a schema answer shows that schema_mode reached the backend.
    completion = _arun(backend, backend.generate(_request(ACTION_PROMPT, ACTION_SCHEMA)))

    assert isinstance(backend, OpenAIBackend)
    assert backend.model_id == f"openai:{served_model}"
    assert json.loads(completion.text)["action"] in ACTIONS


def test_make_backend_langchain_builds_the_named_class(server_url: str, served_model: str) -> None:
    config = LLMConfig(backend="langchain", langchain_class="langchain_openai.ChatOpenAI",
                       langchain_kwargs={"base_url": server_url, "api_key": "x", "model": served_model,
                                         "max_retries": 0})

    backend = make_backend(config)

    assert isinstance(backend, LangChainBackend)
    assert backend.model_id.startswith("langchain:ChatOpenAI:")
    assert json.dumps(served_model) in backend.model_id


def test_make_backend_langchain_bad_class_raises() -> None:
    config = LLMConfig(backend="langchain", langchain_class="nope.Missing")

    with pytest.raises(BackendError, match=re.escape("cannot import LangChain model 'nope.Missing'")):
        make_backend(config)



def test_langchain_backend_sends_the_request_settings() -> None:
    from langchain_openai import ChatOpenAI

    from simulacra.agents.llm.langchain import LangChainBackend

    backend = LangChainBackend(ChatOpenAI(base_url="http://127.0.0.1:9/v1", api_key="x", model="m"))
    request = LLMRequest((Message("user", "hi"),), {"type": "object"}, max_tokens=7, temperature=0.3, seed=11)
    model = backend._with_settings(request)
    assert (model.temperature, model.max_tokens, model.seed) == (0.3, 7, 11)


def test_openai_backend_round_robins_over_servers(server_url: str, second_server_url: str,
                                                  served_model: str) -> None:
    backend = OpenAIBackend(base_url=server_url, base_urls=[second_server_url], model=served_model,
                            schema_mode="json_object")

    async def four() -> list[Completion]:
        return [await backend.generate(_request(f"Say hello {i}.", max_tokens=8)) for i in range(4)]

    used = [c.extra["base_url"] for c in _arun(backend, four())]
    assert used == [server_url, second_server_url, server_url, second_server_url]


def test_agents_on_two_servers_in_one_run(server_url: str, second_server_url: str, served_model: str,
                                          tmp_path) -> None:
    """The town on one llama.cpp server, Klaus on another (``agents[1].llm``): each call goes to its agent's server."""
    out = tmp_path / "run"
    assert run.main([str(ROOT / "scenarios" / "town.yaml"), "--steps", "1", "--out", str(out), "--plain",
                     "--set", "llm.cache=false", "--set", "llm.backend=openai", "--set", f"llm.base_url={server_url}",
                     "--set", f"llm.model={served_model}", "--set", "llm.schema_mode=json_object",
                     "--set", f"agents.1.llm={{base_url: '{second_server_url}', model: klaus-{served_model}}}"]) == 0
    calls = [json.loads(line) for line in (out / "llm_calls.jsonl").read_text().splitlines()]
    servers = {(c["agent"], c["server"]) for c in calls}
    assert {s for a, s in servers if a == "Klaus"} == {second_server_url}
    assert {s for a, s in servers if a != "Klaus"} == {server_url} and len(servers) == 5
    by_model = json.loads((out / "summary.json").read_text())["llm"]["by_model"]
    assert set(by_model) == {f"openai:{served_model}", f"openai:klaus-{served_model}"}


def test_the_prefix_cache_reuses_a_shared_start_within_its_memory_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    from simulacra.agents.llm.llamacpp import PREFIX_CACHE_BYTES

    engine = LlamaCppBackend(n_threads=1)
    llm, cache = engine._llm, engine._llm.cache
    loaded: list[int] = []
    real_load = llm.load_state
    monkeypatch.setattr(llm, "load_state", lambda state: (loaded.append(state.n_tokens), real_load(state))[1])
    shared = "You are a careful clerk. " + "The ledger lists apples, pears and plums. " * 40

    def ask(system: str, question: str) -> None:
        engine._generate_sync(LLMRequest(messages=(Message("system", system), Message("user", question)),
                                         max_tokens=4, seed=1))

    ask(shared, "How many apples?")
    ask("You are a poet.", "Write a line about rain.")  # the engine's own last prompt no longer starts like the ledger
    ask(shared, "How many pears?")
    assert loaded and loaded[-1] > 400  # the ledger's state came back: only the new question was evaluated
    sizes = []
    for n in range(6):
        ask(f"You are clerk number {n}. " + "Count the stock of the store again. " * 30, "How many?")
        sizes.append(cache.cache_size)
    # Its size counts the logits copied beside each state (LlamaRAMCache alone counts the state only), and stays
    # within the bound: the oldest states went.
    state = next(iter(cache.cache_state.values()))
    assert state.scores.nbytes > state.llama_state_size
    assert max(sizes) <= PREFIX_CACHE_BYTES and len(cache.cache_state) < 9
