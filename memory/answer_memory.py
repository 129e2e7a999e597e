"""What each sandbox agent answered before: question → answer pairs in Chroma, recalled by question similarity."""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from simulacra.memory.embedder import ChromaEmbedding

__all__ = ["AnswerMemory"]

Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]


class AnswerMemory:
    """A Chroma collection per agent of its past answers, each with the mean rating it got."""

    def __init__(self, client: Any, *, embed: Embed, prefix: str = "answers") -> None:
        """Keeps the client; collections are made on first use.

        Args:
            client: A ``chromadb`` client.
            embed: Texts to unit vectors (MiniLM; a fake one in unit tests).
            prefix: Collection name prefix, unique per run when a Chroma server is shared.
        """
        self._client, self._embed, self._prefix = client, embed, prefix
        self._function = ChromaEmbedding(embed)
        self._collections: dict[str, Any] = {}

    def _collection(self, agent: str) -> Any:
        if agent not in self._collections:
            slug = re.sub(r"[^a-zA-Z0-9_-]", "-", agent).strip("-")[:30] or "agent"
            name = f"{self._prefix}-{slug}-{zlib.crc32(agent.encode()):08x}"
            self._collections[agent] = self._client.get_or_create_collection(
                name, embedding_function=self._function, metadata={"hnsw:space": "cosine"})
        return self._collections[agent]

    def track(self, agents: Iterable[str]) -> None:
        """Opens the agents' collections now, so that `get_state` counts and `set_state` rewinds every one.

        Without it a collection is opened on first use, and an agent that first answered in an abandoned step
        would keep that answer after a resume.
        """
        for agent in agents:
            self._collection(agent)

    def get_state(self) -> dict[str, Any]:
        """How many answers each agent's collection holds (the answers themselves stay in Chroma)."""
        return {"counts": {agent: int(c.count()) for agent, c in sorted(self._collections.items())}}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Rewinds every open collection to the snapshot's count: later answers (ids ``a<n>``) are deleted.

        Raises:
            ValueError: A collection holds fewer answers than the snapshot counts (another Chroma).
        """
        counts = {str(agent): int(n) for agent, n in state["counts"].items()}
        self.track(counts)
        for agent, collection in self._collections.items():
            count = counts.get(agent, 0)
            ids = collection.get(include=[])["ids"]
            kept = [i for i in ids if _index(i) < count]
            if len(kept) != count:
                msg = (f"the answers of {agent!r} hold {len(kept)} entries before a{count}, the snapshot {count}; "
                       "resume with the run's own Chroma")
                raise ValueError(msg)
            if newer := [i for i in ids if _index(i) >= count]:
                collection.delete(ids=newer)

    def add(self, agent: str, *, question: str, answer: str, rating: float, step: int) -> None:
        """Remembers one answer (embedded by its question)."""
        collection = self._collection(agent)
        collection.add(ids=[f"a{collection.count()}"], documents=[question], embeddings=self._embed([question]),
                       metadatas=[{"answer": answer, "rating": float(rating), "step": step}])

    def recall(self, agent: str, question: str, *, min_similarity: float = 0.5) -> dict[str, Any] | None:
        """The agent's past answer to the most similar question, if similar enough (cosine)."""
        collection = self._collection(agent)
        if collection.count() == 0:
            return None
        got = collection.query(query_embeddings=self._embed([question]), n_results=1,
                               include=["documents", "metadatas", "distances"])
        similarity = 1.0 - float(got["distances"][0][0])
        if similarity < min_similarity:
            return None
        meta = got["metadatas"][0][0]
        return {"question": got["documents"][0][0], "answer": meta["answer"], "rating": round(meta["rating"], 1),
                "similarity": round(similarity, 3)}


def _index(chroma_id: str) -> int:
    """The ``n`` of an answer's id ``a<n>`` (its place in the agent's collection)."""
    return int(chroma_id.removeprefix("a"))
