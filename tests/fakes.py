"""A scripted LLM backend for unit tests of parsing and control flow (never for a scenario's default)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from simulacra.agents.llm.base import Backend, Completion, LLMRequest
from simulacra.errors import BackendError

Script = Callable[[LLMRequest], str]


class ScriptedBackend(Backend):
    """Answers each request with ``script(request)``; a script may raise `BackendError` or sleep."""

    name = "scripted"

    def __init__(self, script: Script, *, delay_s: float = 0.0) -> None:
        self.script = script
        self.delay_s = delay_s
        self.requests: list[LLMRequest] = []

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
