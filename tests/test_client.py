import json
import re
import threading
from pathlib import Path

import pytest

from simulacra.agents.llm import LLMClient, LLMRequest, Message, ResponseCache
from simulacra.agents.llm.client import parse_json
from simulacra.errors import BackendError, ParseError
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


def test_an_answer_max_tokens_cut_is_asked_again_shorter_on_another_seed() -> None:
    answers = iter(['{"n": 1 2 3 4 5 6', '{"n": 1 2 3 4 5 6', '{"n": 7}'])
    backend = ScriptedBackend(lambda r: next(answers))  # completion tokens: the answer's words
    client = LLMClient(backend, retries=2)
    outcome = ask(client, max_tokens=6)
    assert (outcome.value, outcome.ok, outcome.attempts) == (7, True, 3)
    first, second, third = backend.requests
    # Not shown its cut answer (a small model copies it); asked for less, on a new seed each time.
    cut = "Your reply was cut off after 6 tokens, before it was complete. Reply again, shorter."
    assert [(m.role, m.content) for m in second.messages] == [("user", "hi"), ("user", cut)]
    assert third.messages == second.messages
    assert len({first.seed, second.seed, third.seed}) == 3  # noqa: PLR2004
    # An answer that ended before the cap is shown with the error, on the same seed.
    answers = iter(['{"n": ', '{"n": 2}'])
    backend = ScriptedBackend(lambda r: next(answers))
    assert ask(LLMClient(backend, retries=1), max_tokens=6).value == 2  # noqa: PLR2004
    assert [m.role for m in backend.requests[1].messages] == ["user", "assistant", "user"]
    assert backend.requests[1].seed == backend.requests[0].seed


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

    from simulacra.agents.llm.base import LazyBackend

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
    from simulacra.agents.llm import vllm_engine

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


# --- LLM faults: backoff, empty answers, down detection, state ---------------------------------------------


class FakeTime:
    """A clock that only moves when the client sleeps (or a test says so); records every wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def timed_client(backend: ScriptedBackend, fake: FakeTime, **kw) -> LLMClient:
    import random

    return LLMClient(backend, clock=fake.clock, sleep=fake.sleep, jitter=random.Random(0), **kw)


def test_backoff_waits_double_with_jitter_within_bounds_and_a_cap() -> None:
    import random

    fake = FakeTime()
    client = timed_client(ScriptedBackend(failing), fake, retries=5, backoff_s=1.0, backoff_max_s=5.0)
    outcome = client.run(client.text(CHAT, seed=0, fallback="x"))
    assert (outcome.ok, outcome.attempts) == (False, 6)
    assert len(fake.waits) == 5, "a wait before each retry, none after the last attempt"
    bases = [1.0, 2.0, 4.0, 5.0, 5.0]
    for wait, base in zip(fake.waits, bases, strict=True):
        assert 0.5 * base <= wait <= min(1.5 * base, 5.0)
    draws = random.Random(0)
    assert fake.waits == [min(b * draws.uniform(0.5, 1.5), 5.0) for b in bases]
    assert len(set(fake.waits[:3])) == 3 and fake.waits[:3] != bases[:3], "jittered, not the bare doubling"
    assert client.stats.backoff_seconds == pytest.approx(sum(fake.waits))


def test_a_timeout_waits_like_any_engine_failure() -> None:
    fake = FakeTime()
    client = timed_client(ScriptedBackend(lambda r: "late", delay_s=1.0), fake, retries=1, timeout_s=0.02,
                          backoff_s=0.3)
    outcome = client.run(client.text(CHAT, seed=0, fallback="x"))
    assert outcome.error == "timed out after 0.02 s (llm.timeout_s)"
    assert len(fake.waits) == 1
    assert 0.15 <= fake.waits[0] <= 0.45


def test_bad_answers_are_retried_at_once_and_only_engine_failures_wait() -> None:
    fake = FakeTime()
    answers = iter(["not json", '{"n": -1}', '{"n": 3}'])
    client = timed_client(ScriptedBackend(lambda r: next(answers)), fake, retries=2)
    assert ask(client).value == 3
    assert fake.waits == []

    script = iter([BackendError("engine down"), "not json", BackendError("engine down"), '{"n": 2}'])

    def mixed(request: LLMRequest) -> str:
        step = next(script)
        if isinstance(step, Exception):
            raise step
        return step

    fake = FakeTime()
    client = timed_client(ScriptedBackend(mixed), fake, retries=3, backoff_s=1.0, backoff_max_s=10.0)
    assert ask(client).value == 2
    assert len(fake.waits) == 2, "one wait after each engine failure, none after the bad answer"
    assert 0.5 <= fake.waits[0] <= 1.5
    assert 1.0 <= fake.waits[1] <= 3.0, "the second engine failure of the call waits twice as long"


@pytest.mark.parametrize(("structured", "empty", "feedback"), [
    (True, "", "Your reply was empty. Reply with one JSON object and nothing else."),
    (False, "  \n", "Your reply was empty. Reply with the text you were asked for."),
])
def test_an_empty_completion_is_a_bad_answer_retried_with_feedback(structured: bool, empty: str,
                                                                   feedback: str) -> None:
    fake = FakeTime()
    answers = iter([empty, '{"n": 5}'])
    backend = ScriptedBackend(lambda r: next(answers))
    client = timed_client(backend, fake, retries=1)
    if structured:
        outcome = ask(client)
    else:
        outcome = client.run(client.text(CHAT, seed=0, fallback="x"))
    assert outcome.ok and outcome.attempts == 2
    assert outcome.value == (5 if structured else '{"n": 5}')
    assert [(m.role, m.content) for m in backend.requests[1].messages[1:]] == [
        ("assistant", empty), ("user", feedback)]
    assert fake.waits == []
    assert (client.stats.errors, client.stats.retries) == (0, 1)


def test_always_empty_falls_back_with_the_error() -> None:
    client = timed_client(ScriptedBackend(lambda r: ""), FakeTime(), retries=1)
    outcome = client.run(client.text(CHAT, seed=0, fallback="(silent)"))
    assert (outcome.value, outcome.ok, outcome.error) == ("(silent)", False, "empty completion: ''")
    assert client.stats.failures == 1


def test_down_after_down_after_s_of_failures_raises_backend_down() -> None:
    from simulacra.errors import BackendDown

    fake = FakeTime()
    backend = ScriptedBackend(failing)
    client = timed_client(backend, fake, retries=2, backoff_s=1.0, down_after_s=10.0)
    first = client.run(client.text(CHAT, seed=0, fallback="x"))
    assert not first.ok, "failing for less than down_after_s: the fallback, as before"
    fake.now = 10.0
    with pytest.raises(BackendDown, match=re.escape(
            "every engine call failed for 10.0 s (llm.down_after_s = 10); the last: engine down")):
        client.run(client.text(CHAT, seed=1, fallback="x"))
    assert client.down_for_s == 10.0
    assert len(backend.requests) == 4, "BackendDown is not retried"
    assert client.stats.failures == 1, "a call that raised is not a recorded failure"
    client.close()


def test_a_success_resets_the_down_clock_and_the_cache_does_not() -> None:
    from simulacra.errors import BackendDown

    up = {"now": False}

    def flaky(request: LLMRequest) -> str:
        if not up["now"]:
            raise BackendError("engine down")
        return '{"n": 1}'

    fake = FakeTime()
    cache = ResponseCache()
    client = timed_client(ScriptedBackend(flaky), fake, cache=cache, retries=0, down_after_s=10.0)
    assert not ask(client).ok  # t=0: the streak starts
    fake.now, up["now"] = 5.0, True
    assert ask(client).ok  # t=5: a success; also cached under seed 1
    fake.now, up["now"] = 12.0, False
    assert not client.run(client.text(CHAT, seed=2, fallback="x")).ok  # t=12: a new streak, 0 s old
    fake.now = 21.0
    assert ask(client).ok, "a cached answer is not an engine success..."
    assert client.stats.cache_hits == 1
    fake.now = 22.0
    with pytest.raises(BackendDown, match=re.escape("every engine call failed for 10.0 s")):
        client.run(client.text(CHAT, seed=3, fallback="x"))  # ...so the streak from t=12 goes on


def test_backend_down_from_one_call_cancels_its_siblings_and_close_still_works() -> None:
    import asyncio

    from simulacra.errors import BackendDown

    finished: list[int] = []

    class DeadOnSeedZero(ScriptedBackend):
        async def _generate(self, request: LLMRequest):
            self.requests.append(request)
            if request.seed == 0:
                raise BackendDown("the vLLM engine died (test)")
            await asyncio.sleep(30)
            finished.append(request.seed)
            return await super()._generate(request)

    backend = DeadOnSeedZero(lambda r: "ok")
    client = LLMClient(backend, retries=2, down_after_s=1000.0)

    async def phase() -> list:
        await asyncio.sleep(0)
        return await asyncio.gather(*(client.text(CHAT, seed=i, fallback="") for i in range(4)))

    import time

    started = time.perf_counter()
    with pytest.raises(BackendDown, match=re.escape("the vLLM engine died (test)")):
        client.run(phase())
    assert time.perf_counter() - started < 5, "the siblings were cancelled, not awaited"
    assert asyncio.all_tasks(client._loop) == set()
    assert [r.seed for r in backend.requests].count(0) == 1, "a backend's BackendDown is down at once"
    assert client.stats.errors == 1
    assert client.run(asyncio.sleep(0, "still usable")) == "still usable"
    client.close()
    assert finished == []


def test_a_dead_vllm_engine_stops_the_run_through_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    from simulacra.agents.llm import vllm_engine
    from simulacra.errors import BackendDown

    class EngineDeadError(RuntimeError):
        pass

    class DeadLLM:
        def chat(self, *args: object, **kwargs: object) -> list:
            raise EngineDeadError("EngineCore encountered an issue")

    monkeypatch.setattr(vllm_engine, "sampling_params", lambda request: request.seed)
    backend = vllm_engine.VLLMBackend.__new__(vllm_engine.VLLMBackend)
    backend.__dict__.update(_llm=DeadLLM(), _dead=None, _engine_lock=threading.Lock(), batch_sizes=[], _queue=[],
                            _draining=False, _model="m")
    client = LLMClient(backend, retries=2, down_after_s=1000.0)
    with pytest.raises(BackendDown, match=re.escape("vLLM failed: the vLLM engine died (EngineCore")):
        client.run(client.text(CHAT, seed=0, fallback="x"))
    assert backend.batch_sizes == [1], "not retried: a dead engine stays dead"
    client.close()


def test_jitter_touches_neither_the_requests_nor_the_global_rng() -> None:
    import random

    def run_once(jitter_seed: int) -> list[LLMRequest]:
        script = iter([BackendError("x"), BackendError("y"), '{"n": 1}', BackendError("z"), '{"n": 2}'])

        def answer(request: LLMRequest) -> str:
            step = next(script)
            if isinstance(step, Exception):
                raise step
            return step

        backend = ScriptedBackend(answer)
        fake = FakeTime()
        client = LLMClient(backend, retries=3, clock=fake.clock, sleep=fake.sleep,
                           jitter=random.Random(jitter_seed))
        assert [ask(client).value, ask(client).value] == [1, 2]
        return backend.requests

    random.seed(1234)
    before = random.getstate()
    assert run_once(1) == run_once(2)
    assert random.getstate() == before
    fake = FakeTime()
    client = LLMClient(ScriptedBackend(failing), retries=1, clock=fake.clock, sleep=fake.sleep)  # default jitter
    client.run(client.text(CHAT, seed=0, fallback="x"))
    assert random.getstate() == before
    assert len(fake.waits) == 1


def test_client_state_round_trips_in_place() -> None:
    client = timed_client(ScriptedBackend(failing), FakeTime(), retries=1)
    client.run(client.text(CHAT, seed=0, fallback="x"))
    state = client.get_state()
    assert json.loads(json.dumps(state)) == state
    assert state["errors"] == 2 and state["failures"] == 1 and state["backoff_seconds"] > 0

    fresh = LLMClient(ScriptedBackend(failing))
    stats = fresh.stats
    fresh.set_state(state)
    fresh.set_state(state)
    assert fresh.stats is stats, "restored in place: the live view holds the object"
    assert fresh.get_state() == state
    assert client.get_state() == state, "get_state changes nothing"
    assert type(fresh.stats.engine_seconds) is float and type(fresh.stats.calls) is int
    with pytest.raises(ValueError, match=re.escape("LLM client state has unknown counters ['nope']; known: calls")):
        fresh.set_state({"nope": 1})


def test_a_recorded_engine_failure_is_met_again_at_the_same_attempt_without_a_wait(tmp_path) -> None:
    from simulacra.agents.llm.cache import RecordedFailure
    from simulacra.agents.llm.client import Outcome

    request = LLMRequest((Message("user", "hi"),), None, 16, 0.7, 5)
    key = request.key("scripted")
    log = tmp_path / "llm_calls.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in [
        {"key": key, "text": None, "error": "HTTP 503"}, {"key": key, "text": "hello", "error": None}]) + "\n")
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    client = LLMClient(ScriptedBackend(lambda r: "never asked"), cache=ResponseCache(sources=[log]), retries=2,
                       sleep=sleep, max_tokens=16)
    outcome = client.run(client.text([Message("user", "hi")], seed=5, fallback="-"))

    assert outcome == Outcome("hello", True, 2)
    assert client.stats.errors == 1 and client.stats.cache_hits == 2 and waits == []
    assert client.backend.requests == []
    answers_only = ResponseCache(answers=[log])  # a resumed run's own log: its failures are not replayed
    assert answers_only.get(key).text == "hello"
    assert isinstance(ResponseCache(sources=[log]).get(key), RecordedFailure)


class Named(ScriptedBackend):
    """A scripted engine with a model id of its own, that counts how many of its requests were in flight at once."""

    def __init__(self, name: str, answer: str) -> None:
        super().__init__(lambda r: answer, delay_s=0.01)
        self.name, self.started, self.closed, self.in_flight, self.most = name, 0, 0, 0, 0

    @property
    def model_id(self) -> str:
        return self.name

    async def start(self) -> None:
        self.started += 1

    async def aclose(self) -> None:
        self.closed += 1

    async def _generate(self, request: LLMRequest):
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            return await super()._generate(request)
        finally:
            self.in_flight -= 1


def test_routes_send_each_agents_calls_to_its_engine(tmp_path: Path) -> None:
    import asyncio

    default, big = Named("small", '{"n": 1}'), Named("big", '{"n": 2}')
    records: list[dict] = []
    cache = ResponseCache(tmp_path / "cache.jsonl")
    client = LLMClient(default, routes={"Ann": big}, call_log=records.append, cache=cache)

    async def step(names: list[str]) -> list:
        return await asyncio.gather(*(client.structured(CHAT, schema=SCHEMA, parse=positive, seed=1, fallback=-1,
                                                        agent=name) for name in names))

    answers = [o.value for o in client.run(step(["Ann", "Bo", "Cy"]))] + [client.run(step(["Ann"]))[0].value]
    assert answers == [2, 1, 1, 2]  # the same chat and seed, answered by each agent's own engine
    assert {(r["agent"], r["model"]) for r in records} == {("Ann", "big"), ("Bo", "small"), ("Cy", "small")}
    assert len(big.requests) == 1 and len(default.requests) == 2  # Ann's second ask hit her model's cache entry
    assert big.most == 1 and default.most == 2  # the small engine got its two requests together
    by_model = client.stats.by_model
    assert by_model["big"]["calls"] == 2 and by_model["big"]["cache_hits"] == 1
    assert by_model["small"] == {"calls": 2, "cache_hits": 0, "errors": 0, "prompt_tokens": 20,
                                 "completion_tokens": 4}
    assert by_model["big"]["prompt_tokens"] + by_model["small"]["prompt_tokens"] == client.stats.prompt_tokens
    restored = LLMClient(default)
    restored.set_state(json.loads(json.dumps(client.get_state())))  # a snapshot keeps the per-model counters
    assert restored.stats.by_model == by_model
    client.close()
    assert (default.started, big.started, default.closed, big.closed) == (1, 1, 1, 1)


def test_one_engine_keeps_no_per_model_counters() -> None:
    client = LLMClient(ScriptedBackend(lambda r: '{"n": 3}'))
    assert ask(client).value == 3 and client.stats.by_model == {}
