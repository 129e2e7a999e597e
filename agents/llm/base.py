"""The one interface every LLM backend implements, the plain records that cross it, and the layer's defaults.

The ``DEFAULT_*`` constants are the one source of the LLM defaults: `LLMRequest`, `agents.llm.client.LLMClient`,
the backends and a scenario's ``llm`` section (`scenarios.llm.LLMConfig`) all take theirs from here (a
backend's own settings, such as llama.cpp's threads, from its module).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "DEFAULT_BACKOFF_MAX_S",
    "DEFAULT_BACKOFF_S",
    "DEFAULT_DOWN_AFTER_S",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_N_CTX",
    "DEFAULT_RETRIES",
    "DEFAULT_TEMPERATURE",
    "DEFAULT_TIMEOUT_S",
    "WORST_CHARS_PER_TOKEN",
    "Backend",
    "Completion",
    "LLMRequest",
    "LazyBackend",
    "Message",
]

# Sampling: what a request asks for unless it says otherwise.
DEFAULT_MAX_TOKENS = 96
DEFAULT_TEMPERATURE = 0.7
# The engine: its context window in tokens (llama.cpp's n_ctx, vLLM's max_model_len).
DEFAULT_N_CTX = 2048
# The client: retries after a failed or invalid answer, the limit on one call, requests in flight, the waits
# between retries of an engine failure, and how long every call may fail before the run stops.
DEFAULT_RETRIES = 2
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_CONCURRENCY = 16
DEFAULT_BACKOFF_S = 0.5
DEFAULT_BACKOFF_MAX_S = 8.0
DEFAULT_DOWN_AFTER_S = 120.0
# Room for an answer a schema bounds: SmolLM2's worst is about 2 characters a token (times, numbers, numbered lists).
# A mind's cap below its schema's longest answer cuts it, and a cut answer is retried whole (the valentine run's
# reflections and Klaus's utterances were, three times each).
WORST_CHARS_PER_TOKEN = 2

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    """One chat message."""

    role: Role
    content: str

    def to_dict(self) -> dict[str, str]:
        """Returns the OpenAI-style dict of this message."""
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class LLMRequest:
    """Everything that determines a completion: the cache key is computed from all of it.

    Attributes:
        messages: The chat, oldest first.
        schema: A JSON schema the answer must satisfy, or None for free text.
        max_tokens: Cap on generated tokens.
        temperature: Sampling temperature; 0 is greedy.
        seed: Sampling seed, drawn from the world's seeded RNG.
    """

    messages: tuple[Message, ...]
    schema: Mapping[str, Any] | None = None
    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = DEFAULT_TEMPERATURE
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-safe dict of the request."""
        return {
            "messages": [m.to_dict() for m in self.messages],
            "schema": self.schema,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
        }

    def key(self, model_id: str) -> str:
        """Returns the cache key of this request sent to the model named ``model_id``."""
        blob = json.dumps({"model": model_id, **self.to_dict()}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class Completion:
    """What a backend answered."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """An LLM engine behind one async method.

    The public methods are written once here; a backend implements the private ones.

    | method            | override?  | what it does                                                  |
    |-------------------|------------|---------------------------------------------------------------|
    | `_generate`       | required   | answer one request; raise `BackendError` when the engine fails |
    | `model_id`        | required   | a stable name of the model (part of every cache key)          |
    | `_generate_batch` | optional   | answer many requests at once (default: all concurrently)      |
    | `start`           | optional   | slow start-up, run once before the first (timed) request      |
    | `aclose`          | optional   | release the engine or connections                             |
    | `from_config`     | optional   | build it from a scenario's ``llm`` section (default: no args) |

    Every backend, ours and yours, is built by `agents.llm.make_backend` as ``cls.from_config(llm)``.

    Callers use `generate` and `generate_batch`. A world issues all of a step's requests together, so a
    batching engine (vLLM) sees them as one batch.
    """

    name: str = "base"

    @classmethod
    def from_config(cls, config: Any) -> Backend:
        """Builds the backend a scenario's ``llm`` section names; `agents.llm.make_backend` builds every one so.

        Args:
            config: The scenario's `scenarios.llm.LLMConfig`: ``model``, ``base_url``, ``n_ctx`` and the rest.

        Returns:
            The backend; by default ``cls()``.
        """
        return cls()

    @property
    @abstractmethod
    def model_id(self) -> str:
        """A stable name of the model, part of every cache key."""

    async def generate(self, request: LLMRequest) -> Completion:
        """Answers one request.

        Args:
            request: What to send.

        Returns:
            The engine's completion.

        Raises:
            BackendError: The engine failed or could not be reached.
        """
        return await self._generate(request)

    async def generate_batch(self, requests: Sequence[LLMRequest]) -> list[Completion]:
        """Answers many requests, in order.

        Args:
            requests: What to send.

        Returns:
            One completion per request.

        Raises:
            BackendError: The engine failed or could not be reached.
        """
        return await self._generate_batch(requests)

    @abstractmethod
    async def _generate(self, request: LLMRequest) -> Completion: ...

    async def _generate_batch(self, requests: Sequence[LLMRequest]) -> list[Completion]:
        return list(await asyncio.gather(*(self._generate(r) for r in requests)))

    async def start(self) -> None:  # noqa: B027 - optional hook, empty on purpose
        """Does slow start-up work; the client calls it once, outside any request timeout."""

    def turn(self) -> AbstractAsyncContextManager[object]:
        """Waits for the engine's turn before a request, outside the request's timeout; none by default.

        A backend whose engine is shared with other processes (a server's concurrency cap) holds its place here.
        """
        return contextlib.nullcontext()

    async def aclose(self) -> None:  # noqa: B027 - optional hook, empty on purpose
        """Releases the engine or its connections."""


class LazyBackend(Backend):
    """Builds the real backend on the first request, so a run replayed from the cache never starts an engine.

    ``model_id`` is given up front and must equal the real backend's (it is part of every cache key).
    """

    name = "lazy"

    def __init__(self, factory: Callable[[], Backend], *, model_id: str) -> None:
        """Wraps ``factory``, called at most once."""
        self._factory = factory
        self._model_id = model_id
        self.inner: Backend | None = None

    @property
    def model_id(self) -> str:
        """The real backend's model id."""
        return self._model_id

    def _backend(self) -> Backend:
        if self.inner is None:
            self.inner = self._factory()
        return self.inner

    async def start(self) -> None:
        """Builds the real backend (on a cache miss; a fully replayed run never gets here)."""
        await self._backend().start()

    def turn(self) -> AbstractAsyncContextManager[object]:
        """The real backend's turn."""
        return self._backend().turn()

    async def _generate(self, request: LLMRequest) -> Completion:
        return await self._backend().generate(request)

    async def _generate_batch(self, requests: Sequence[LLMRequest]) -> list[Completion]:
        return await self._backend().generate_batch(requests)

    async def aclose(self) -> None:
        """Closes the real backend if it was ever built."""
        if self.inner is not None:
            await self.inner.aclose()
