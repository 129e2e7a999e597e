"""The LLM layer: one async interface, several backends.

Parts:
    Backend: the interface every engine implements (`agents.llm.base`, with the layer's ``DEFAULT_*``).
    LLMRequest, Completion, Message: what crosses it.
    LLMClient, Outcome, LLMStats: what agents call; caching, retries with feedback, the call log.
    ResponseCache: completions by request key, append-only on disk.
    BACKENDS: the built-in backends, name -> "module:Class", imported on demand.
    backend_class: the `Backend` subclass ``llm.backend`` names: a built-in, or yours by import path or entry point.
    make_backend: builds that backend as ``cls.from_config(llm)``, ours and yours alike.
    make_client: the client of a scenario's ``llm`` section (a run's, an interview's, a judge's).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from simulacra.agents.llm.base import Backend, Completion, LLMRequest, Message
from simulacra.agents.llm.cache import ResponseCache
from simulacra.agents.llm.client import LLMClient, LLMStats, Outcome

if TYPE_CHECKING:
    from simulacra.scenarios.llm import LLMConfig

__all__ = [
    "BACKENDS",
    "Backend",
    "Completion",
    "LLMClient",
    "LLMRequest",
    "LLMStats",
    "Message",
    "Outcome",
    "ResponseCache",
    "backend_class",
    "make_backend",
    "make_client",
]

# The built-in backends, by ``llm.backend``: read-only, imported on demand. Yours are named by import path or
# entry point; all are found by `backend_class` and built the same way, by ``from_config``.
BACKENDS = MappingProxyType({
    "llamacpp": "simulacra.agents.llm.llamacpp:LlamaCppBackend",
    "openai": "simulacra.agents.llm.openai_compat:OpenAIBackend",
    "langchain": "simulacra.agents.llm.langchain:LangChainBackend",
    "vllm": "simulacra.agents.llm.vllm_engine:VLLMBackend",
    "dry": "simulacra.agents.llm.dry:DryBackend",
})


def backend_class(name: str) -> type[Backend]:
    """The `Backend` subclass that ``name`` points to.

    ``name`` is a built-in's name (`BACKENDS`), an import path ``package.module:Class``, or a name that an
    installed package registers in the entry-point group ``simulacra.backends`` (see `simulacra.plugins`).

    Raises:
        ValueError: One line: unknown name, a path that does not import, or a class that is not a `Backend`.
    """
    from simulacra.plugins import find_class

    def check(found: type) -> str | None:
        if issubclass(found, Backend):
            return None
        return "is not a subclass of simulacra.agents.llm.Backend; write one (see agents/llm/base.py)"

    return find_class(BACKENDS.get(name, name), what="backend", builtins=BACKENDS, check=check)


def make_backend(config: LLMConfig) -> Backend:
    """Builds the backend named by ``config.backend`` as ``cls.from_config(config)`` (`backend_class`).

    Raises:
        BackendError: The engine cannot be created (missing model file, bad class path).
    """
    return backend_class(config.backend).from_config(config)


def make_client(config: LLMConfig, *, cache: ResponseCache | None = None, call_log: Any = None,
                queue: bool = False, backend: Backend | None = None) -> LLMClient:
    """The client of ``config``: its backend (`make_backend`), retries, timeouts, sampling and concurrency.

    Args:
        config: A scenario's ``llm`` section.
        cache: Where answers are looked up and stored; None: no cache.
        call_log: Receives one record per attempt.
        queue: Send an in-process llama.cpp engine one request at a time. It answers one at a time anyway; queued
            in the client instead of the engine, a request's ``timeout_s`` starts when its turn comes (for long
            answers to many agents, such as interviews and judgements).
        backend: The engine, if already built; None: `make_backend` builds it.

    Raises:
        BackendError: The engine cannot be created.
    """
    concurrency = 1 if queue and config.backend == "llamacpp" else config.max_concurrency
    return LLMClient(backend or make_backend(config), cache=cache, call_log=call_log, retries=config.retries,
                     timeout_s=config.timeout_s, max_tokens=config.max_tokens, temperature=config.temperature,
                     max_concurrency=concurrency, backoff_s=config.backoff_s, backoff_max_s=config.backoff_max_s,
                     down_after_s=config.down_after_s)
