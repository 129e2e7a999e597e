import json
import re
import threading
from pathlib import Path

import pytest

from agents.errors import BackendError, ParseError
from agents.llm import LLMClient, LLMRequest, Message, ResponseCache
from agents.llm.client import parse_json
from tests.fakes import ScriptedBackend, failing

CHAT = [Message("user", "hi")]
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def positive(data: dict) -> int:
    if not isinstance(data, dict) or not isinstance(data.get("n"), int) or data["n"] <= 0:
        raise ParseError(f"bad {data!r}", feedback="n must be a positive integer.")
    return data["n"]


def ask(client: LLMClient, **kw):
    return client.run(client.structured(CHAT, schema=SCHEMA, parse=positive, seed=1, fallback=-1, **kw))


def test_parse_json_feedback_channel() -> None:
    with pytest.raises(ParseError) as err:
        parse_json('{"n": ')
    assert err.value.feedback == ("Your reply was not valid JSON (Expecting value). "
                                  "Reply with one JSON object and nothing else.")
    assert parse_json('{"n": 2}') == {"n": 2}


def test_invalid_answer_is_retried_with_the_error_fed_back() -> None:
    answers = iter(["not json", '{"n": -3}', '{"n": 4}'])
    backend = ScriptedBackend(lambda r: next(answers))
    client = LLMClient(backend, retries=2)
    outcome = ask(client)
    assert (outcome.value, outcome.ok, outcome.attempts) == (4, True, 3)
    second, third = backend.requests[1], backend.requests[2]
    assert [m.role for m in second.messages] == ["user", "assistant", "user"]
    assert second.messages[1].content == "not json"
    assert second.messages[2].content.startswith("Your reply was not valid JSON")
    assert third.messages[-1].content == "n must be a positive integer."
    assert client.stats.retries == 2
    assert client.stats.failures == 0


def test_failure_after_retries_returns_fallback_and_is_counted() -> None:
    client = LLMClient(ScriptedBackend(lambda r: '{"n": 0}'), retries=1)
    outcome = ask(client)
    assert (outcome.value, outcome.ok, outcome.attempts) == (-1, False, 2)
    assert outcome.error == "bad {'n': 0}"
    assert client.stats.failures == 1


def test_engine_errors_are_retried_then_fall_back() -> None:
    backend = ScriptedBackend(failing)
    client = LLMClient(backend, retries=2)
    outcome = client.run(client.text(CHAT, seed=0, fallback="(silent)"))
    assert (outcome.value, outcome.ok, outcome.attempts) == ("(silent)", False, 3)
    assert len(backend.requests) == 3
    assert client.stats.errors == 3


def test_timeout_is_an_engine_error() -> None:
    client = LLMClient(ScriptedBackend(lambda r: "late", delay_s=1.0), retries=0, timeout_s=0.05)
    outcome = client.run(client.text(CHAT, seed=0, fallback="x"))
    assert not outcome.ok
    assert outcome.error == "timed out after 0.05 s (llm.timeout_s)"


def test_cache_replays_without_calling_the_engine(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    backend = ScriptedBackend(lambda r: '{"n": 7}')
    first = LLMClient(backend, cache=ResponseCache(path))
    assert ask(first).value == 7
    first._cache.close()
    dead = ScriptedBackend(failing)
    second = LLMClient(dead, cache=ResponseCache(path))
    assert ask(second).value == 7
    assert dead.requests == []
    assert second.stats.cache_hits == 1
    # Another seed is another request: the engine is asked.
    third = LLMClient(ScriptedBackend(lambda r: '{"n": 8}'), cache=ResponseCache(path))
    assert third.run(third.structured(CHAT, schema=SCHEMA, parse=positive, seed=2, fallback=-1)).value == 8


def test_cache_ignores_a_truncated_last_line(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    path.write_text('{"key": "a", "text": "A"}\n{"key": "b", "te', encoding="utf-8")
    cache = ResponseCache(path)
    assert len(cache) == 1
    assert cache.get("a").text == "A"


def test_call_log_records_every_attempt() -> None:
    records: list[dict] = []
    answers = iter(["oops", '{"n": 1}'])
    client = LLMClient(ScriptedBackend(lambda r: next(answers)), call_log=records.append)
    ask(client, agent="A", purpose="decide")
    assert [(r["attempt"], r["text"], r["agent"], r["purpose"], r["cached"]) for r in records] == [
        (1, "oops", "A", "decide", False), (2, '{"n": 1}', "A", "decide", False)]
    assert records[0]["request"]["schema"] == SCHEMA
    assert records[0]["request"]["messages"] == [{"role": "user", "content": "hi"}]
    assert re.fullmatch(r"[0-9a-f]{64}", records[0]["key"])
    assert json.dumps(records)  # JSON-safe


def test_concurrency_cap_holds() -> None:
    peak = 0
    live = 0

    class Counting(ScriptedBackend):
        async def _generate(self, request):
            nonlocal peak, live
            live += 1
            peak = max(peak, live)
            try:
                return await super()._generate(request)
            finally:
                live -= 1

    import asyncio

    client = LLMClient(Counting(lambda r: "ok", delay_s=0.01), max_concurrency=3)
    async def all_at_once():
        return await asyncio.gather(*(client.text(CHAT, seed=i, fallback="") for i in range(10)))

    results = client.run(all_at_once())
    assert [o.value for o in results] == ["ok"] * 10
    assert peak == 3


def test_lazy_backend_starts_once_outside_the_timeout_and_never_on_replay(tmp_path: Path) -> None:
    import time

    from agents.llm.base import LazyBackend

    built = []

    def factory():
        time.sleep(0.2)  # a slow engine start, longer than the request timeout below
        built.append(1)
        return ScriptedBackend(lambda r: '{"n": 5}')

    path = tmp_path / "cache.jsonl"
    client = LLMClient(LazyBackend(factory, model_id="scripted"), cache=ResponseCache(path), timeout_s=0.1)
    assert ask(client).value == 5
    assert ask(client).value == 5
    assert built == [1]
    client._cache.close()
    replay = LLMClient(LazyBackend(factory, model_id="scripted"), cache=ResponseCache(path), timeout_s=0.1)
    assert ask(replay).value == 5
    assert built == [1], "a replay answered from the cache must not start the engine"


def test_a_dead_vllm_engine_fails_fast_with_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from agents.llm import vllm_engine

    class EngineDeadError(RuntimeError):  # vLLM's class is matched by name: it is not importable here
        pass

    calls = []

    class DeadLLM:
        def chat(self, *args: object, **kwargs: object) -> list:
            calls.append(1)
            raise EngineDeadError("EngineCore encountered an issue")

    monkeypatch.setattr(vllm_engine, "sampling_params", lambda request: request.seed)
    backend = vllm_engine.VLLMBackend.__new__(vllm_engine.VLLMBackend)  # the engine needs vLLM; only its failure path
    backend.__dict__.update(_llm=DeadLLM(), _dead=None, _engine_lock=threading.Lock(), batch_sizes=[])
    request = LLMRequest((Message("user", "hi"),), None, 8, 0.0, 1)
    for _ in range(3):
        with pytest.raises(BackendError, match=re.escape("the vLLM engine died (EngineCore encountered an issue)")):
            backend._run([request])
    assert calls == [1]  # after the first failure the engine is not asked again
