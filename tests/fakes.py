"""A scripted LLM backend for unit tests of parsing and control flow (never for a scenario's default).

A test builds it directly (``ScriptedBackend(script)``) or names it in a scenario, as a user names a backend of
their own: ``llm.backend: tests.fakes:ScriptedBackend`` with ``llm.model: <module>:<function>``, the script's
import path (`engine_sets`). A run then reaches it by the one road every backend takes, ``make_backend``, in
this process, a child process or a sweep's worker alike; `built` collects what such runs built.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from simulacra.agents.llm.base import Backend, Completion, LLMRequest
from simulacra.errors import BackendError
from simulacra.plugins import IMPORT_PATH

Script = Callable[[LLMRequest], str]

BACKEND = "tests.fakes:ScriptedBackend"  # what llm.backend says
_WATCHED: dict[str, list[ScriptedBackend]] = {}  # script path -> the backends built for it (see `built`)


def engine_sets(script: str) -> list[str]:
    """The overrides (``--set`` or `load_scenario`'s) that make a run's engine ``script``, a ``module:function``."""
    return [f"llm.backend={BACKEND}", f"llm.model={script}"]


@contextmanager
def built(script: str) -> Iterator[list[ScriptedBackend]]:
    """The backends `ScriptedBackend.from_config` builds for ``script`` while the block runs, oldest first."""
    backends = _WATCHED[script] = []
    try:
        yield backends
    finally:
        del _WATCHED[script]


class ScriptedBackend(Backend):
    """Answers each request with ``script(request)``; a script may raise `BackendError` or sleep."""

    name = "scripted"

    def __init__(self, script: Script, *, delay_s: float = 0.0) -> None:
        self.script = script
        self.delay_s = delay_s
        self.requests: list[LLMRequest] = []

    @classmethod
    def from_config(cls, config: Any) -> ScriptedBackend:
        """The backend a scenario names: ``llm.model`` is its script's import path, ``module:function``.

        Raises:
            BackendError: ``llm.model`` is not such a path, or it does not import.
        """
        path = config.model or ""
        if not IMPORT_PATH.match(path):
            msg = f"llm.model {path!r}: the scripted backend needs its script as module:function"
            raise BackendError(msg)
        module, _, name = path.partition(":")
        try:
            script = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as err:
            msg = f"llm.model {path!r}: cannot import the script ({type(err).__name__}: {err})"
            raise BackendError(msg) from err
        backend = cls(script)
        _WATCHED.get(path, []).append(backend)
        return backend

    @property
    def model_id(self) -> str:
        return "scripted"

    async def _generate(self, request: LLMRequest) -> Completion:
        self.requests.append(request)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        text = self.script(request)
        return Completion(text=text, prompt_tokens=10, completion_tokens=len(text.split()))


def failing(request: LLMRequest) -> str:
    msg = "engine down"
    raise BackendError(msg)


def bag_of_words(texts, dims: int = 256):
    """A deterministic embedder for unit tests: hashed bag of words, unit length."""
    import zlib

    import numpy as np

    out = np.zeros((len(texts), dims), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().replace(".", " ").replace(",", " ").split():
            out[row, zlib.crc32(word.encode()) % dims] += 1.0
        norm = np.linalg.norm(out[row])
        if norm:
            out[row] /= norm
    return out
