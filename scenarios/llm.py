"""The ``llm`` section of a scenario: which engine drives the agents, and how it is asked.

Its defaults are the engine layer's own ``DEFAULT_*`` constants (`agents.llm.base` and the backend modules), so
a default has one source; its built-in backends are `agents.llm.BACKENDS`.

Parts:
    LLMConfig: the section.
    PriceConfig: what the engine's tokens cost, to show a run's cost.
    AGENT_LLM_FIELDS: the fields an agent may set for itself (``agents[i].llm``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from simulacra.agents.llm import BACKENDS
from simulacra.agents.llm.base import (
    DEFAULT_BACKOFF_MAX_S,
    DEFAULT_BACKOFF_S,
    DEFAULT_DOWN_AFTER_S,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_TOKENS,
    DEFAULT_N_CTX,
    DEFAULT_RETRIES,
    DEFAULT_TEMPERATURE,
    DEFAULT_TIMEOUT_S,
)
from simulacra.agents.llm.langchain import DEFAULT_STRUCTURED_METHOD
from simulacra.agents.llm.llamacpp import DEFAULT_N_THREADS
from simulacra.agents.llm.openai_compat import DEFAULT_SCHEMA_MODE
from simulacra.scenarios.sections import Section, at

__all__ = ["AGENT_LLM_FIELDS", "LLMConfig", "PriceConfig"]


class PriceConfig(Section):
    """What the engine's tokens cost, per million (a hosted API's list price), to show a run's cost."""

    input: float = Field(ge=0, allow_inf_nan=False, description="Price of a million prompt tokens, e.g. 0.15.")
    output: float = Field(ge=0, allow_inf_nan=False, description="Price of a million generated tokens, e.g. 0.60.")


class LLMConfig(Section):
    """Which engine drives the agents, and how it is asked."""

    backend: str = Field(
        "llamacpp", description="llamacpp (embedded, CPU), openai (any OpenAI-compatible server), langchain, "
        "vllm (in-process engine, batched), dry (no model: instant schema-valid made-up answers, real token "
        "counts; to check a scenario and its cost); or your own Backend subclass: an import path "
        "package.module:Class, or a name an installed package registers in the entry-point group "
        "simulacra.backends (built with Class.from_config(llm)).")
    model: str | None = Field(
        None, description="llamacpp: a GGUF file (empty: the shipped SmolLM2-135M-Instruct); openai: the served "
        "model name; vllm: a model folder; dry: whose tokenizer counts tokens, a GGUF file or a model folder "
        "(empty: the shipped SmolLM2; anything else: 4 characters per token).")
    price: PriceConfig | None = Field(None, description="Price per million tokens, e.g. {input: 0.15, output: "
                                      "0.60}: the live view and summary.json show the cost; empty: no cost shown.")
    base_url: str | None = Field(None, description="openai: the server URL up to /v1, e.g. http://127.0.0.1:8000/v1.")
    base_urls: list[str] = Field(default_factory=list, description="openai: more servers of the same model; "
                                 "requests go round-robin over base_url and these.")
    server_slots: int | None = Field(None, ge=1, le=4096, description="openai: at most this many requests in "
                                     "flight to each server from all runs on this machine together (a sweep's "
                                     "runs share it; lock files in the temp folder); empty: no shared cap.")
    api_key_env: str = Field("OPENAI_API_KEY", description="openai: environment variable holding the API key.")
    schema_mode: Literal["json_schema", "json_object"] = Field(
        DEFAULT_SCHEMA_MODE, description="openai: how a JSON schema is sent; llama.cpp's server needs json_object.")
    langchain_class: str | None = Field(
        None, description="langchain: import path of a BaseChatModel, e.g. langchain_openai.ChatOpenAI.")
    langchain_kwargs: dict[str, Any] = Field(default_factory=dict, description="langchain: the model's arguments.")
    structured_method: Literal["function_calling", "json_schema", "json_mode"] = Field(
        DEFAULT_STRUCTURED_METHOD, description="langchain: with_structured_output method.")
    temperature: float = Field(DEFAULT_TEMPERATURE, ge=0, le=2, description="Sampling temperature (0 = greedy).")
    max_tokens: int = Field(DEFAULT_MAX_TOKENS, ge=1, le=8192, description="Cap on tokens generated per call.")
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, description="Limit on one call, in seconds.")
    retries: int = Field(DEFAULT_RETRIES, ge=0, le=10, description="Retries after a failed or invalid answer, "
                         "error fed back.")
    max_concurrency: int = Field(DEFAULT_MAX_CONCURRENCY, ge=1, le=4096, description="Requests in flight at once "
                                 "(servers: the cap on concurrent HTTP requests; peers use 128-200).")
    n_ctx: int = Field(DEFAULT_N_CTX, ge=256, description="llamacpp: context window in tokens.")
    n_threads: int = Field(DEFAULT_N_THREADS, ge=1, description="llamacpp: CPU threads.")
    engine_kwargs: dict[str, Any] = Field(default_factory=dict, description="vllm: more vllm.LLM arguments, e.g. "
                                          "gpu_memory_utilization: 0.9 (default 0.5), tensor_parallel_size: 2.")
    cache: bool = Field(True, description="Reuse answers to identical requests (same seed replays the run); "
                        "the dry backend stores none (its answers cost nothing).")
    cache_path: str | None = Field(None, description="Cache file; empty: <outputs.dir>/llm-cache.jsonl.")
    backoff_s: float = Field(DEFAULT_BACKOFF_S, ge=0, le=60, description="Wait before the first retry of an engine "
                             "failure; doubles each retry, with random jitter of +-50 %.")
    backoff_max_s: float = Field(DEFAULT_BACKOFF_MAX_S, ge=0, le=600, description="Longest wait between retries.")
    down_after_s: float = Field(DEFAULT_DOWN_AFTER_S, gt=0, description="If every call fails to reach the engine "
                                "for this long, the run keeps its last snapshot and stops (exit 3) with the command "
                                "that resumes it.")

    @model_validator(mode="after")
    def _backend_needs(self) -> LLMConfig:
        if self.backend not in BACKENDS:
            from simulacra.agents.llm import backend_class

            try:
                backend_class(self.backend)
            except ValueError as err:
                raise at("backend", str(err)) from None
        if self.backend == "vllm" and not self.model:
            raise at("model", "the vllm backend needs a model folder, e.g. model: .cache/smollm2-bf16")
        if self.backend == "openai" and not self.base_url:
            raise at("base_url", "the openai backend needs a server URL, e.g. base_url: http://127.0.0.1:8000/v1")
        if self.backend == "openai" and not self.model:
            raise at("model", "the openai backend needs the served model's name, e.g. model: smollm2")
        if self.backend == "langchain" and not self.langchain_class:
            raise at("langchain_class", "the langchain backend needs a class, e.g. langchain_openai.ChatOpenAI")
        return self


# The llm fields an agent may set for itself (``agents[i].llm``): what picks and configures its engine. The rest
# (cache, retries, timeouts, sampling defaults, price) belong to the run's one client.
AGENT_LLM_FIELDS = ("backend", "model", "base_url", "base_urls", "server_slots", "api_key_env", "schema_mode",
                    "langchain_class", "langchain_kwargs", "structured_method", "n_ctx", "n_threads",
                    "engine_kwargs")
