"""Any OpenAI-compatible chat server: ``vllm serve``, llama.cpp's server, hosted APIs."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal

from simulacra.agents.llm.base import DEFAULT_TIMEOUT_S, Backend, Completion, LLMRequest
from simulacra.agents.llm.server_slots import ServerSlots
from simulacra.errors import BackendError

if TYPE_CHECKING:
    from simulacra.scenarios.llm import LLMConfig

__all__ = ["DEFAULT_API_KEY", "DEFAULT_SCHEMA_MODE", "OpenAIBackend", "response_format"]

SchemaMode = Literal["json_schema", "json_object"]

DEFAULT_API_KEY = "not-needed"  # sent when the key's environment variable is unset; local servers ignore it
DEFAULT_SCHEMA_MODE: SchemaMode = "json_schema"

_SERVER: ContextVar[int | None] = ContextVar("simulacra_server", default=None)  # the server a turn holds


def response_format(schema: Any, mode: SchemaMode) -> dict[str, Any]:
    """Builds the ``response_format`` field that makes a server enforce ``schema``.

    Args:
        schema: The JSON schema.
        mode: ``json_schema`` is the OpenAI standard (vLLM); ``json_object`` with a ``schema`` key is
            what llama.cpp's server accepts (it rejects ``json_schema``).

    Returns:
        The field's value.
    """
    if mode == "json_object":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}


class OpenAIBackend(Backend):
    """Chat completions over HTTP with the official ``openai`` client.

    The client's own retries are off (``max_retries=0``): `LLMClient` retries with backoff and counts
    every failure. Connection errors, timeouts, HTTP errors (429, 5xx) and bodies that are not a chat
    completion all raise `BackendError`.
    """

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        base_urls: Sequence[str] = (),
        api_key: str = DEFAULT_API_KEY,
        schema_mode: SchemaMode = DEFAULT_SCHEMA_MODE,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        server_slots: int | None = None,
    ) -> None:
        """Creates the client; nothing is sent until the first request.

        Args:
            base_url: The server's URL up to and including ``/v1``.
            model: The model name the server serves.
            base_urls: More servers of the same model; requests go round-robin over all of them.
            api_key: Sent as a bearer token; local servers ignore it.
            schema_mode: How a JSON schema is passed (see `response_format`).
            timeout_s: Per-request HTTP timeout.
            server_slots: At most this many requests in flight to each server from every process on this
                machine (`ServerSlots`); a request goes to the first server with a free slot. None: no cap.
        """
        from openai import AsyncOpenAI

        self._urls = [base_url, *(u for u in base_urls if u != base_url)]
        self._clients = [AsyncOpenAI(base_url=u, api_key=api_key, timeout=timeout_s, max_retries=0) for u in self._urls]
        self._next = 0
        self._model = model
        self._schema_mode: SchemaMode = schema_mode
        self._slots = ServerSlots(self._urls, server_slots) if server_slots else None

    @classmethod
    def from_config(cls, config: LLMConfig) -> OpenAIBackend:
        """A client of ``llm.base_url`` (and ``llm.base_urls``) serving ``llm.model``.

        The API key is read from the environment variable ``llm.api_key_env`` (unset: `DEFAULT_API_KEY`).
        """
        return cls(base_url=config.base_url or "", base_urls=config.base_urls, model=config.model or "",
                   schema_mode=config.schema_mode, api_key=os.environ.get(config.api_key_env, DEFAULT_API_KEY),
                   timeout_s=config.timeout_s, server_slots=config.server_slots)

    @property
    def model_id(self) -> str:
        """The served model's name."""
        return f"openai:{self._model}"

    def turn(self) -> contextlib.AbstractAsyncContextManager[object]:
        """Holds a slot on a server with room (`ServerSlots`), when a cap is set."""
        return self._held(self._slots) if self._slots else contextlib.nullcontext()

    @contextlib.asynccontextmanager
    async def _held(self, slots: ServerSlots) -> AsyncIterator[int]:
        index, fd = await slots.take(self._next)
        self._next = (index + 1) % len(self._clients)
        token = _SERVER.set(index)
        try:
            yield index
        finally:
            _SERVER.reset(token)
            ServerSlots.give_back(fd)

    async def _generate(self, request: LLMRequest) -> Completion:
        import openai

        kwargs: dict[str, Any] = {
            "model": self._model,
            "messages": [m.to_dict() for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "seed": request.seed,
        }
        if request.schema is not None:
            kwargs["response_format"] = response_format(request.schema, self._schema_mode)
        index = _SERVER.get()
        if index is None:
            index, self._next = self._next, (self._next + 1) % len(self._clients)
        try:
            out = await self._clients[index].chat.completions.create(**kwargs)
        except openai.OpenAIError as err:  # connection, timeout, HTTP 429 and 5xx, ...: not retried here
            msg = f"OpenAI-compatible server at {self._urls[index]!r} failed: {err}"
            raise BackendError(msg) from err
        except ValueError as err:  # the client leaves a body cut short undecoded (json.JSONDecodeError)
            msg = f"OpenAI-compatible server at {self._urls[index]!r} sent a body that is not JSON: {err}"
            raise BackendError(msg) from err
        choices = getattr(out, "choices", None)
        message = getattr(choices[0], "message", None) if choices else None
        if message is None:
            msg = f"OpenAI-compatible server at {self._urls[index]!r} sent no choices: {str(out)[:80]!r}"
            raise BackendError(msg)
        usage = getattr(out, "usage", None)
        return Completion(
            text=message.content or "",
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            extra={"base_url": self._urls[index]},
        )

    async def aclose(self) -> None:
        """Closes the HTTP connections."""
        for client in self._clients:
            await client.close()
