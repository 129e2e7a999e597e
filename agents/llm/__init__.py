"""The LLM layer: one async interface, several backends.

Parts:
    Backend: the interface every engine implements (`agents.llm.base`).
    LLMRequest, Completion, Message: what crosses it.
    LLMClient, Outcome, LLMStats: what agents call; caching, retries with feedback, the call log.
    ResponseCache: completions by request key, append-only on disk.
    BACKENDS: backend name -> "module.Class", imported on demand.
    make_backend: builds the backend a scenario's ``llm`` section names (a built-in, or yours: `user_backend`).
    make_client: the client of a scenario's ``llm`` section (a run's, an interview's, a judge's).
"""

from __future__ import annotations

import importlib
import os
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from simulacra.agents.llm.base import Backend, Completion, LLMRequest, Message
from simulacra.agents.llm.cache import ResponseCache
from simulacra.agents.llm.client import LLMClient, LLMStats, Outcome

if TYPE_CHECKING:
    from simulacra.scenarios.schema import LLMConfig

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
    "make_backend",
    "make_client",
    "user_backend",
]

BACKENDS = MappingProxyType({
    "llamacpp": "simulacra.agents.llm.llamacpp.LlamaCppBackend",
    "openai": "simulacra.agents.llm.openai_compat.OpenAIBackend",
    "langchain": "simulacra.agents.llm.langchain.LangChainBackend",
    "vllm": "simulacra.agents.llm.vllm_engine.VLLMBackend",
    "dry": "simulacra.agents.llm.dry.DryBackend",
})




def _backend_class(name: str) -> type[Backend]:
    if name not in BACKENDS:
        return user_backend(name)
    module, _, cls = BACKENDS[name].rpartition(".")
    return getattr(importlib.import_module(module), cls)


def user_backend(name: str) -> type[Backend]:
    """The `Backend` subclass that ``name`` points to.

    ``name`` is an import path ``package.module:Class``, or a name that an installed package registers in the
    entry-point group ``simulacra.backends`` (see `simulacra.plugins`).

    Raises:
        ValueError: One line: unknown name, a path that does not import, or a class that is not a `Backend`.
    """
    from simulacra.plugins import find_class

    def check(found: type) -> str | None:
        if issubclass(found, Backend):
            return None
        return "is not a subclass of simulacra.agents.llm.Backend; write one (see agents/llm/base.py)"

    return find_class(name, what="backend", builtins=BACKENDS, check=check)


def make_backend(config: LLMConfig) -> Backend:
    """Builds the backend named by ``config.backend`` with the settings it uses.

    Raises:
        BackendError: The engine cannot be created (missing model file, bad class path).
    """
    cls = _backend_class(config.backend)
    if config.backend not in BACKENDS:
        return cls.from_config(config)
    if config.backend == "llamacpp":
        return cls(model_path=config.model, n_ctx=config.n_ctx, n_threads=config.n_threads)
    if config.backend == "dry":
        return cls(model=config.model)  # the model's tokenizer counts the tokens
    if config.backend == "vllm":
        from pathlib import Path

        from simulacra.agents.llm.base import LazyBackend

        # Started on the first cache miss: a replayed run needs no engine (vLLM takes minutes to start on CPU).
        return LazyBackend(lambda: cls(model=config.model, max_model_len=config.n_ctx,
                                       engine_kwargs=config.engine_kwargs),
                           model_id=f"vllm:{Path(config.model or '').name}")
    if config.backend == "openai":
        return cls(base_url=config.base_url, base_urls=config.base_urls, model=config.model,
                   schema_mode=config.schema_mode,
                   api_key=os.environ.get(config.api_key_env, "not-needed"), timeout_s=config.timeout_s,
                   server_slots=config.server_slots)
    from simulacra.agents.llm.langchain import load_chat_model

    return cls(load_chat_model(config.langchain_class or "", config.langchain_kwargs),
               structured_method=config.structured_method)


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
