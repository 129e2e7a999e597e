"""What agents call: one request in, a validated value out, with caching, retries and a call log."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Generic, Protocol, TypeVar

from simulacra.agents.llm.base import (
    DEFAULT_BACKOFF_MAX_S,
    DEFAULT_BACKOFF_S,
    DEFAULT_DOWN_AFTER_S,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_TOKENS,
    DEFAULT_RETRIES,
    DEFAULT_TEMPERATURE,
    DEFAULT_TIMEOUT_S,
    Backend,
    Completion,
    LLMRequest,
    Message,
)
from simulacra.agents.llm.cache import RecordedFailure, ResponseCache
from simulacra.errors import BackendDown, BackendError, ParseError

__all__ = [
    "LLMClient",
    "LLMStats",
    "Outcome",
    "Price",
    "parse_json",
]

T = TypeVar("T")
CallLog = Callable[[dict[str, Any]], None]
Sleep = Callable[[float], Awaitable[None]]
# What a retry asks after an answer that max_tokens cut off before it parsed (instead of showing it the cut answer).
CUT_OFF = "Your reply was cut off after {tokens} tokens, before it was complete. Reply again, shorter."


class Price(Protocol):
    """A price per million tokens (a scenario's ``llm.price``, a frozen model: read-only here too)."""

    @property
    def input(self) -> float:
        """Price of a million prompt tokens."""
        ...

    @property
    def output(self) -> float:
        """Price of a million generated tokens."""
        ...


@dataclass
class LLMStats:
    """Counters for the live view and ``summary.json``.

    Tokens are counted for engine calls only: an answer from the cache (a replay, a recorded run) costs nothing
    and adds no tokens, so ``prompt_tokens``, ``completion_tokens`` and `cost` are what the engine was paid for.
    Retries count like any call (the engine read and wrote them).
    """

    calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    engine_seconds: float = 0.0
    backoff_seconds: float = 0.0
    # A run whose agents use more than one model (``agents[i].llm``): model id -> calls, cache_hits, errors,
    # prompt_tokens, completion_tokens. Empty when every agent uses the scenario's one model.
    by_model: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per second of engine time (wall time with a request in flight)."""
        return self.completion_tokens / self.engine_seconds if self.engine_seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Returns the counters and the rate, rounded for people."""
        return {**asdict(self), "engine_seconds": round(self.engine_seconds, 3),
                "backoff_seconds": round(self.backoff_seconds, 3), "tokens_per_s": round(self.tokens_per_s, 1)}

    def cost(self, price: Price) -> float:
        """Returns what the engine calls' tokens cost at ``price`` (per million prompt and generated tokens)."""
        return (self.prompt_tokens * price.input + self.completion_tokens * price.output) / 1_000_000

    def usage(self, agent_steps: int, price: Price | None = None) -> dict[str, Any]:
        """Returns tokens per agent-step and, with a ``price``, the cost in all and per agent-step.

        Args:
            agent_steps: Agents times steps run (0: per agent-step figures are None).
            price: Per million tokens; None: no cost.

        Returns:
            ``prompt_tokens_per_agent_step``, ``completion_tokens_per_agent_step``, and with a price ``price``
            (input, output), ``cost`` and ``cost_per_agent_step``.
        """
        def per(value: float, digits: int) -> float | None:
            return round(value / agent_steps, digits) if agent_steps else None

        out: dict[str, Any] = {"prompt_tokens_per_agent_step": per(self.prompt_tokens, 1),
                               "completion_tokens_per_agent_step": per(self.completion_tokens, 1)}
        if price is not None:
            cost = self.cost(price)
            out |= {"price": {"input": price.input, "output": price.output}, "cost": round(cost, 6),
                    "cost_per_agent_step": per(cost, 8)}
        return out


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """The result of asking: the value, or the fallback when every attempt failed."""

    value: T
    ok: bool
    attempts: int
    error: str | None = None


def parse_json(text: str) -> Any:
    """Parses a model's JSON answer.

    Raises:
        ParseError: The text is not JSON; its feedback asks for JSON only.
    """
    try:
        return json.loads(text, strict=False)  # grammars let raw newlines into strings; accept them
    except json.JSONDecodeError as err:
        msg = f"not valid JSON ({err.msg} at character {err.pos}): {text[:80]!r}"
        feedback = f"Your reply was not valid JSON ({err.msg}). Reply with one JSON object and nothing else."
        raise ParseError(msg, feedback=feedback) from err


def _check_not_empty(text: str, *, structured: bool) -> None:
    """An empty completion is a bad answer, retried at once with feedback (not an engine failure)."""
    if text.strip():
        return
    msg = f"empty completion: {text!r}"
    what = "one JSON object and nothing else" if structured else "the text you were asked for"
    raise ParseError(msg, feedback=f"Your reply was empty. Reply with {what}.")


class ReplayedFailure(BackendError):
    """An engine failure answered from a recorded run: retried without a wait, never a sign of a down engine."""


class LLMClient:
    """The LLM layer as agents see it.

    Each attempt builds an `LLMRequest`; its key (model + full request) is looked up in the cache
    before the engine is asked, so a re-run with the same seed replays without calling the model. A
    bad answer (an empty one too) is retried at once with the error fed back as a new user turn; an engine
    failure (`BackendError`, a timeout) is retried as is after a backoff; after ``retries`` retries the
    caller's fallback is returned with ``ok=False``.

    The backoff before the n-th engine retry of a call is ``backoff_s * 2**(n-1)`` capped at
    ``backoff_max_s``, times a jitter in [0.5, 1.5), capped again. The jitter comes from the client's own
    generator, never the world's, and no request depends on it: waits change timing only, so the same seed
    and the same recorded answers still give the same event log.

    Down detection: when every engine call has failed since a first failure at least ``down_after_s``
    ago, the next engine failure raises `BackendDown` out of the call (and out of `run`, which cancels
    the calls still in flight) instead of returning the fallback. A success ends the streak; answers
    from the cache count as neither. A backend that raises `BackendDown` itself (a dead vLLM engine) is
    down at once.

    Attributes:
        stats: The counters (`get_state` and `set_state` carry them across a resume).
        context: Set by the world (step, phase); copied into every call record.
        down_for_s: How long the engine had been failing when `BackendDown` was last raised.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        cache: ResponseCache | None = None,
        call_log: CallLog | None = None,
        retries: int = DEFAULT_RETRIES,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        backoff_s: float = DEFAULT_BACKOFF_S,
        backoff_max_s: float = DEFAULT_BACKOFF_MAX_S,
        down_after_s: float = DEFAULT_DOWN_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        jitter: random.Random | None = None,
        routes: Mapping[str, Backend] | None = None,
    ) -> None:
        """Wraps ``backend``.

        Args:
            backend: The engine.
            cache: Where completions are looked up and stored; None disables caching.
            call_log: Receives one JSON-safe record per attempt.
            retries: Further attempts after the first one fails.
            timeout_s: Limit on one engine call.
            max_tokens: Default cap on generated tokens.
            temperature: Default sampling temperature.
            max_concurrency: Requests in flight at once.
            backoff_s: Wait before the first retry of an engine failure; doubles each retry, jitter +-50 %.
            backoff_max_s: Longest wait between retries.
            down_after_s: Raise `BackendDown` when the engine has failed every call for this long.
            clock: Seconds, for down detection (tests pass a fake one).
            sleep: Awaited for each backoff (tests pass one that only records).
            jitter: Draws the backoff jitter; None: a private generator seeded by the OS. Never pass the
                world's RNG: a draw would shift every later seed.
            routes: Agent name -> the engine its calls go to instead of ``backend`` (``agents[i].llm``). All
                calls still run on this client's one loop, so each engine gets a step's requests together.
        """
        self.backend = backend
        self.routes: dict[str, Backend] = dict(routes or {})
        self._started_engines: set[int] = set()
        self.stats = LLMStats()
        self._cache = cache
        self._call_log = call_log
        self._retries = retries
        self._timeout_s = timeout_s
        self._max_tokens = max_tokens
        self._temperature = temperature
        self._slots = asyncio.Semaphore(max_concurrency)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.context: dict[str, Any] = {}  # set by the world (step, phase); copied into every call record
        self._in_flight = 0
        self._busy_since = 0.0
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s
        self._down_after_s = down_after_s
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter or random.Random()  # timing only: no request or result depends on it
        self._failing_since: float | None = None
        self.down_for_s = 0.0  # how long the engine had been failing when `BackendDown` was raised

    def get_state(self) -> dict[str, Any]:
        """Returns the counters (`LLMStats`), so a resumed run's summary counts the whole run."""
        return asdict(self.stats)

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores counters made by `get_state`, in place (the live view holds ``stats``).

        Raises:
            ValueError: ``state`` has a key that is not a counter.
        """
        kinds = {f.name: type(f.default) for f in fields(LLMStats)  # int or float
                 if f.name != "by_model" and isinstance(f.default, int | float)}
        unknown = sorted(set(state) - {*kinds, "by_model"})
        if unknown:
            msg = f"LLM client state has unknown counters {unknown!r}; known: {', '.join(kinds)}, by_model"
            raise ValueError(msg)
        for name, value in state.items():
            if name == "by_model":
                self.stats.by_model = {str(m): {str(k): int(v) for k, v in c.items()} for m, c in value.items()}
            else:
                setattr(self.stats, name, kinds[name](value))

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs ``coro`` to completion on this client's own event loop.

        Worlds step synchronously (Mesa) but decide concurrently; one loop for the whole run keeps
        connection pools and semaphores bound to a single loop.

        Raises:
            BackendDown: The engine is down; the other calls ``coro`` had in flight are cancelled first, so
                the loop is idle and `close` still works.
        """
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        try:
            return self._loop.run_until_complete(coro)
        except BaseException:
            self._cancel_pending()
            raise

    def _cancel_pending(self) -> None:
        """Cancels what a failed `run` left on the loop (``asyncio.gather`` does not cancel siblings)."""
        if self._loop is None or self._loop.is_running():
            return
        pending = [task for task in asyncio.all_tasks(self._loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))

    def close(self) -> None:
        """Releases the backends and the event loop."""
        for backend in {id(b): b for b in [self.backend, *self.routes.values()]}.values():
            self.run(backend.aclose())
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    async def text(
        self, messages: Sequence[Message], *, seed: int, fallback: str, purpose: str = "text",
        agent: str | None = None, max_tokens: int | None = None,
    ) -> Outcome[str]:
        """Asks for free text.

        Args:
            messages: The chat.
            seed: Sampling seed from the world's RNG.
            fallback: Returned when every attempt fails.
            purpose: A label for the call log.
            agent: The asking agent's name, for the call log.
            max_tokens: Cap on generated tokens; None uses the client's default.

        Returns:
            The text, or the fallback with ``ok=False``.

        Raises:
            BackendDown: The engine has failed every call for ``down_after_s``.
        """
        def parse(text: str) -> str:
            _check_not_empty(text, structured=False)
            return text

        return await self._ask(messages, None, parse, seed=seed, fallback=fallback, purpose=purpose,
                               agent=agent, max_tokens=max_tokens)

    async def structured(
        self, messages: Sequence[Message], *, schema: Mapping[str, Any], parse: Callable[[Any], T], seed: int,
        fallback: T, purpose: str = "structured", agent: str | None = None, max_tokens: int | None = None,
    ) -> Outcome[T]:
        """Asks for a JSON object that satisfies ``schema`` and ``parse``.

        Args:
            messages: The chat.
            schema: The JSON schema the engine is told to enforce.
            parse: Turns the decoded JSON into a value; raises `ParseError` with feedback for the model.
            seed: Sampling seed from the world's RNG.
            fallback: Returned when every attempt fails.
            purpose: A label for the call log.
            agent: The asking agent's name, for the call log.
            max_tokens: Cap on generated tokens; None uses the client's default.

        Returns:
            The parsed value, or the fallback with ``ok=False``.

        Raises:
            BackendDown: The engine has failed every call for ``down_after_s``.
        """
        def decode(text: str) -> T:
            _check_not_empty(text, structured=True)
            return parse(parse_json(text))

        return await self._ask(messages, schema, decode, seed=seed, fallback=fallback,
                               purpose=purpose, agent=agent, max_tokens=max_tokens)

    async def _ask(
        self, messages: Sequence[Message], schema: Mapping[str, Any] | None, parse: Callable[[str], T], *,
        seed: int, fallback: T, purpose: str, agent: str | None, max_tokens: int | None,
    ) -> Outcome[T]:
        chat = list(messages)
        error = "no attempt made"
        attempts = self._retries + 1
        engine_failures = 0
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                self.stats.retries += 1
            request = LLMRequest(tuple(chat), schema, max_tokens or self._max_tokens, self._temperature, seed)
            meta = {"agent": agent, "purpose": purpose, "attempt": attempt}
            try:
                completion = await self._complete(request, meta)
                return Outcome(parse(completion.text), True, attempt)
            except BackendDown:
                raise
            except BackendError as err:
                error = str(err)
                engine_failures += 1
                if attempt < attempts and not isinstance(err, ReplayedFailure):  # a bad answer: at once
                    await self._backoff(engine_failures)
            except ParseError as err:
                error = str(err)
                if completion.completion_tokens >= request.max_tokens:
                    # Cut off: shown its own cut answer, a small model writes it again and is cut again (SmolLM2's
                    # reflections did, three times alike). Asked afresh for less, on another seed, it finishes.
                    chat = [*messages, Message("user", CUT_OFF.format(tokens=request.max_tokens))]
                    seed = (seed + 1_000_003) % 2**31
                else:
                    chat += [Message("assistant", completion.text), Message("user", err.feedback)]
        self.stats.failures += 1
        return Outcome(fallback, False, attempts, error)

    async def _backoff(self, failures: int) -> None:
        """Waits before the retry that follows the ``failures``-th engine failure of one call."""
        base = min(self._backoff_s * 2 ** (failures - 1), self._backoff_max_s)
        wait = min(base * self._jitter.uniform(0.5, 1.5), self._backoff_max_s)
        if wait <= 0:
            return
        self.stats.backoff_seconds += wait
        await self._sleep(wait)

    def _engine_failed(self, error: str, err: BaseException) -> BackendError:
        """Counts a failed engine call; returns `BackendDown` when the engine counts as down."""
        now = self._clock()
        if self._failing_since is None:
            self._failing_since = now
        failing_for = now - self._failing_since
        if isinstance(err, BackendDown):
            self.down_for_s = failing_for
            return BackendDown(error)
        if failing_for >= self._down_after_s:
            self.down_for_s = failing_for
            return BackendDown(f"every engine call failed for {failing_for:.1f} s (llm.down_after_s = "
                               f"{self._down_after_s:g}); the last: {error}")
        return BackendError(error)

    def backend_for(self, agent: str | None) -> Backend:
        """The engine that ``agent``'s calls go to: its route, else the client's backend."""
        return self.routes.get(agent, self.backend) if agent is not None else self.backend

    def _count(self, model: str, **counts: int) -> None:
        """Adds to the per-model counters (kept only when agents use more than one engine)."""
        if self.routes:
            row = self.stats.by_model.setdefault(model, dict.fromkeys(
                ("calls", "cache_hits", "errors", "prompt_tokens", "completion_tokens"), 0))
            for name, value in counts.items():
                row[name] += value

    async def _complete(self, request: LLMRequest, meta: dict[str, Any]) -> Completion:
        backend = self.backend_for(meta.get("agent"))
        meta = {**meta, "model": backend.model_id}
        key = request.key(backend.model_id)
        self.stats.calls += 1
        self._count(backend.model_id, calls=1)
        cached = self._cache.get(key) if self._cache is not None else None
        if isinstance(cached, RecordedFailure):  # a replay meets the engine failure the recorded run met
            self.stats.cache_hits += 1
            self.stats.errors += 1
            self._count(backend.model_id, cache_hits=1, errors=1)
            self._log(meta, key, request, None, cached=True, latency=0.0, error=cached.error)
            raise ReplayedFailure(cached.error)
        if cached is not None:
            self.stats.cache_hits += 1
            self._count(backend.model_id, cache_hits=1)
            self._log(meta, key, request, cached, cached=True, latency=0.0)
            return cached
        if id(backend) not in self._started_engines:
            self._started_engines.add(id(backend))
            await backend.start()  # engine start-up is not a request: no timeout, not engine time
        async with self._slots, backend.turn():
            started = self._busy(+1)
            try:
                completion = await asyncio.wait_for(backend.generate(request), self._timeout_s)
            except (BackendError, TimeoutError) as err:
                self.stats.errors += 1
                self._count(backend.model_id, errors=1)
                error = str(err) or f"timed out after {self._timeout_s:g} s (llm.timeout_s)"
                self._log(meta, key, request, None, cached=False, latency=time.perf_counter() - started,
                          error=error)
                raise self._engine_failed(error, err) from err
            finally:
                self._busy(-1)
            latency = time.perf_counter() - started
        self._failing_since = None
        self.stats.prompt_tokens += completion.prompt_tokens
        self.stats.completion_tokens += completion.completion_tokens
        self._count(backend.model_id, prompt_tokens=completion.prompt_tokens,
                    completion_tokens=completion.completion_tokens)
        if self._cache is not None:
            self._cache.put(key, completion)
        self._log(meta, key, request, completion, cached=False, latency=latency)
        return completion

    def _busy(self, delta: int) -> float:
        """Counts requests in flight; engine time is the wall time with at least one in flight."""
        now = time.perf_counter()
        if self._in_flight == 0 and delta > 0:
            self._busy_since = now
        self._in_flight += delta
        if self._in_flight == 0:
            self.stats.engine_seconds += now - self._busy_since
        return now

    def _log(
        self, meta: dict[str, Any], key: str, request: LLMRequest, completion: Completion | None, *,
        cached: bool, latency: float, error: str | None = None,
    ) -> None:
        if self._call_log is None:
            return
        model = meta.get("model", self.backend.model_id)
        self._call_log({
            **self.context,
            **{k: v for k, v in meta.items() if k != "model"},
            "key": key,
            "model": model,
            "cached": cached,
            "request": request.to_dict(),
            "text": completion.text if completion else None,
            "prompt_tokens": completion.prompt_tokens if completion else 0,
            "completion_tokens": completion.completion_tokens if completion else 0,
            "latency_s": round(latency, 4),
            "error": error,
            # Which of an OpenAI-compatible backend's servers answered (llm.base_urls, agents[i].llm).
            **({"server": completion.extra["base_url"]} if completion and "base_url" in completion.extra else {}),
        })
