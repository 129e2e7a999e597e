"""What agents call: one request in, a validated value out, with caching, retries and a call log."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

from agents.errors import BackendError, ParseError
from agents.llm.base import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, Backend, Completion, LLMRequest, Message
from agents.llm.cache import ResponseCache

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT_S",
    "LLMClient",
    "LLMStats",
    "Outcome",
    "parse_json",
]

DEFAULT_RETRIES = 2
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_CONCURRENCY = 16

T = TypeVar("T")
CallLog = Callable[[dict[str, Any]], None]


@dataclass
class LLMStats:
    """Counters for the live view and ``summary.json``."""

    calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    engine_seconds: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per second of engine time (wall time with a request in flight)."""
        return self.completion_tokens / self.engine_seconds if self.engine_seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Returns the counters and the rate, rounded for people."""
        return {**asdict(self), "engine_seconds": round(self.engine_seconds, 3),
                "tokens_per_s": round(self.tokens_per_s, 1)}


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


class LLMClient:
    """The LLM layer as agents see it.

    Each attempt builds an `LLMRequest`; its key (model + full request) is looked up in the cache
    before the engine is asked, so a re-run with the same seed replays without calling the model. A
    bad answer is retried with the error fed back as a new user turn; an engine failure is retried as
    is; after ``retries`` retries the caller's fallback is returned with ``ok=False``.
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
        """
        self.backend = backend
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
        self._started = False

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs ``coro`` to completion on this client's own event loop.

        Worlds step synchronously (Mesa) but decide concurrently; one loop for the whole run keeps
        connection pools and semaphores bound to a single loop.
        """
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    def close(self) -> None:
        """Releases the backend and the event loop."""
        self.run(self.backend.aclose())
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
        """
        return await self._ask(messages, None, lambda t: t, seed=seed, fallback=fallback, purpose=purpose,
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
        """
        return await self._ask(messages, schema, lambda t: parse(parse_json(t)), seed=seed, fallback=fallback,
                               purpose=purpose, agent=agent, max_tokens=max_tokens)

    async def _ask(
        self, messages: Sequence[Message], schema: Mapping[str, Any] | None, parse: Callable[[str], T], *,
        seed: int, fallback: T, purpose: str, agent: str | None, max_tokens: int | None,
    ) -> Outcome[T]:
        chat = list(messages)
        error = "no attempt made"
        attempts = self._retries + 1
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                self.stats.retries += 1
            request = LLMRequest(tuple(chat), schema, max_tokens or self._max_tokens, self._temperature, seed)
            meta = {"agent": agent, "purpose": purpose, "attempt": attempt}
            try:
                completion = await self._complete(request, meta)
                return Outcome(parse(completion.text), True, attempt)
            except BackendError as err:
                error = str(err)
            except ParseError as err:
                error = str(err)
                chat += [Message("assistant", completion.text), Message("user", err.feedback)]
        self.stats.failures += 1
        return Outcome(fallback, False, attempts, error)

    async def _complete(self, request: LLMRequest, meta: dict[str, Any]) -> Completion:
        key = request.key(self.backend.model_id)
        self.stats.calls += 1
        cached = self._cache.get(key) if self._cache is not None else None
        if cached is not None:
            self.stats.cache_hits += 1
            self._log(meta, key, request, cached, cached=True, latency=0.0)
            return cached
        if not self._started:
            self._started = True
            await self.backend.start()  # engine start-up is not a request: no timeout, not engine time
        async with self._slots:
            started = self._busy(+1)
            try:
                completion = await asyncio.wait_for(self.backend.generate(request), self._timeout_s)
            except (BackendError, TimeoutError) as err:
                self.stats.errors += 1
                error = str(err) or f"timed out after {self._timeout_s:g} s (llm.timeout_s)"
                self._log(meta, key, request, None, cached=False, latency=time.perf_counter() - started,
                          error=error)
                raise BackendError(error) from err
            finally:
                self._busy(-1)
            latency = time.perf_counter() - started
        self.stats.prompt_tokens += completion.prompt_tokens
        self.stats.completion_tokens += completion.completion_tokens
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
        self._call_log({
            **self.context,
            **meta,
            "key": key,
            "model": self.backend.model_id,
            "cached": cached,
            "request": request.to_dict(),
            "text": completion.text if completion else None,
            "prompt_tokens": completion.prompt_tokens if completion else 0,
            "completion_tokens": completion.completion_tokens if completion else 0,
            "latency_s": round(latency, 4),
            "error": error,
        })
