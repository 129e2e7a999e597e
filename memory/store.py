"""The vector store interface a memory stream persists to; `ChromaStore` is the implementation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["StoredMemories", "VectorStore"]

Metadata = Mapping[str, str | int | float | bool]


@dataclass(frozen=True)
class StoredMemories:
    """What a store holds for one agent, in insertion order."""

    ids: list[str]
    texts: list[str]
    embeddings: npt.NDArray[np.float32]
    metadatas: list[dict[str, Any]]


class VectorStore(ABC):
    """Durable memories, one namespace per agent (so one agent's reads never scan another's).

    | method            | override? | what it does                                   |
    |-------------------|-----------|------------------------------------------------|
    | `add`             | required  | store new memories with their embeddings       |
    | `update_metadata` | required  | change metadata (last access) of stored ones   |
    | `load`            | required  | everything stored for one agent                |
    | `delete`          | required  | remove memories (a rewind to a snapshot)       |
    | `close`           | optional  | release the client                             |
    """

    @abstractmethod
    def add(self, agent: str, ids: Sequence[str], texts: Sequence[str], embeddings: npt.NDArray[np.float32],
            metadatas: Sequence[Metadata]) -> None:
        """Stores new memories of ``agent``."""

    @abstractmethod
    def update_metadata(self, agent: str, ids: Sequence[str], metadatas: Sequence[Metadata]) -> None:
        """Replaces the metadata of stored memories."""

    @abstractmethod
    def load(self, agent: str) -> StoredMemories:
        """Returns every memory of ``agent``."""

    @abstractmethod
    def delete(self, agent: str, ids: Sequence[str]) -> None:
        """Removes stored memories of ``agent`` (ids it does not hold are ignored)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Releases the client."""
