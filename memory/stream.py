"""An agent's memory stream (Park et al. 2023, section 4.1): every memory object, scored for retrieval.

Durable copies live in a `VectorStore` (Chroma); the embeddings and scores are kept in numpy as well, so
retrieving over one agent's memories is a matrix-vector product, not a filtered vector query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from simulacra.memory.scoring import RetrievalWeights, retrieval_scores, top_k
from simulacra.memory.store import VectorStore

__all__ = ["KINDS", "MemoryNode", "MemoryStream"]

KINDS = ("observation", "action", "utterance", "plan", "reflection")
Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]


@dataclass(frozen=True)
class MemoryNode:
    """One memory object."""

    id: str
    kind: str
    text: str
    created: datetime
    last_access: datetime
    importance: int
    evidence: tuple[str, ...] = field(default_factory=tuple)
    seq: int = 0

    def metadata(self) -> dict[str, str | int]:
        """Chroma metadata (scalars only: evidence ids are joined by spaces)."""
        return {"kind": self.kind, "created": self.created.isoformat(), "last_access": self.last_access.isoformat(),
                "importance": self.importance, "evidence": " ".join(self.evidence), "seq": self.seq}

    @classmethod
    def from_stored(cls, id_: str, text: str, meta: dict[str, Any]) -> MemoryNode:
        """Rebuilds a node from what the store holds."""
        return cls(id=id_, kind=str(meta["kind"]), text=text, created=datetime.fromisoformat(str(meta["created"])),
                   last_access=datetime.fromisoformat(str(meta["last_access"])), importance=int(meta["importance"]),
                   evidence=tuple(str(meta.get("evidence", "")).split()), seq=int(meta["seq"]))


@dataclass(frozen=True)
class _Pending:
    kind: str
    text: str
    created: datetime
    evidence: tuple[str, ...]


class MemoryStream:
    """One agent's memories.

    Lifecycle: `add` buffers a memory during a step; at the end of the step the agent rates the buffered
    ones (`pending`) and `commit` embeds, stores and indexes them, so no agent reads another's half-done
    step. `retrieve` scores every committed memory and updates the last access of the ones it returns.
    """

    def __init__(self, agent: str, *, store: VectorStore, embed: Embed, weights: RetrievalWeights,
                 top_k: int = 5) -> None:
        """Creates an empty stream (use `load` to read back a stored one).

        Args:
            agent: The owner's name (the store's namespace).
            store: Where memories are persisted.
            embed: Texts to unit vectors.
            weights: Retrieval weights and recency decay.
            top_k: How many memories `retrieve` returns by default.
        """
        self.agent = agent
        self.weights = weights
        self.top_k = top_k
        self.nodes: list[MemoryNode] = []
        self.importance_since_reflection = 0
        self.retrievals = 0
        self._store = store
        self._embed = embed
        self._pending: list[_Pending] = []
        self._vectors: npt.NDArray[np.float32] = np.zeros((0, 0), dtype=np.float32)
        self._importance = np.zeros(0, dtype=np.float64)
        self._access_hours = np.zeros(0, dtype=np.float64)  # last access, in hours since the epoch
        self._touched: set[int] = set()

    def __len__(self) -> int:
        return len(self.nodes)

    def add(self, kind: str, text: str, created: datetime, evidence: Sequence[str] = ()) -> None:
        """Buffers a memory until `commit`."""
        if kind not in KINDS:
            msg = f"unknown memory kind {kind!r}; use one of {', '.join(KINDS)}"
            raise ValueError(msg)
        self._pending.append(_Pending(kind, text, created, tuple(evidence)))

    def pending(self) -> list[str]:
        """Texts of the buffered memories, to be rated."""
        return [p.text for p in self._pending]

    def commit(self, ratings: Sequence[int], vectors: npt.NDArray[np.float32] | None = None) -> list[MemoryNode]:
        """Embeds, stores and indexes the buffered memories with their importance ratings.

        Args:
            ratings: One rating (1-10) per pending memory, in order.
            vectors: Their embeddings, if already made (a world embeds every agent's memories of a step in one
                encoder call); None: embedded here.

        Returns:
            The new nodes.
        """
        if len(ratings) != len(self._pending):
            msg = f"got {len(ratings)} ratings for {len(self._pending)} pending memories"
            raise ValueError(msg)
        self._flush_access()
        if not self._pending:
            return []
        start = len(self.nodes)
        new = [MemoryNode(id=f"{self.agent}:{start + i}", kind=p.kind, text=p.text, created=p.created,
                          last_access=p.created, importance=int(r), evidence=p.evidence, seq=start + i)
               for i, (p, r) in enumerate(zip(self._pending, ratings, strict=True))]
        self._pending.clear()
        if vectors is None:
            vectors = self._embed([n.text for n in new])
        elif len(vectors) != len(new):
            msg = f"got {len(vectors)} vectors for {len(new)} pending memories"
            raise ValueError(msg)
        self._store.add(self.agent, [n.id for n in new], [n.text for n in new], vectors, [n.metadata() for n in new])
        self._index(new, vectors)
        self.importance_since_reflection += sum(n.importance for n in new)
        return new

    def retrieve(self, query: str, now: datetime, k: int | None = None,
                 kinds: Sequence[str] | None = None, *, touch: bool = True) -> list[MemoryNode]:
        """The ``k`` memories with the best recency + importance + relevance score for ``query``.

        Args:
            query: What to look for.
            now: The current sim time (recency is measured from here).
            k: How many; None uses ``top_k``.
            kinds: Restrict the candidates to these kinds.
            touch: Make ``now`` the last access of the memories returned and count the retrieval; False reads
                only (an interview or survey leaves the stream as it was).

        Returns:
            The best memories, best first.
        """
        if not self.nodes:
            return []
        self.retrievals += int(touch)
        n = len(self.nodes)
        # Without a kind filter every memory is a candidate: slices, not fancy indexing, so nothing is copied.
        candidates: slice | npt.NDArray[np.int64] = slice(0, n)
        if kinds is not None:
            candidates = np.array([i for i, node in enumerate(self.nodes) if node.kind in kinds], dtype=np.int64)
            if candidates.size == 0:
                return []
        q = self._embed([query])[0]
        relevance = self._vectors[candidates] @ q
        hours = np.maximum(_hours(now) - self._access_hours[candidates], 0.0)
        scores = retrieval_scores(hours, self._importance[candidates], relevance, self.weights)
        best = top_k(scores, k if k is not None else self.top_k)
        chosen = best if isinstance(candidates, slice) else [int(candidates[i]) for i in best]
        if not touch:
            return [self.nodes[i] for i in chosen]
        self._access_hours[chosen] = _hours(now)
        for i in chosen:
            self.nodes[i] = replace(self.nodes[i], last_access=now)
            self._touched.add(i)
        return [self.nodes[i] for i in chosen]

    def recent(self, n: int) -> list[MemoryNode]:
        """The ``n`` most recently created memories, oldest first."""
        return self.nodes[-n:] if n > 0 else []

    def mentions(self, keywords: Sequence[str]) -> bool:
        """Whether any committed memory contains one of ``keywords`` (case-insensitive)."""
        words = [k.lower() for k in keywords]
        return any(w in node.text.lower() for node in self.nodes for w in words)

    def load(self) -> None:
        """Reads back every memory the store holds for this agent."""
        stored = self._store.load(self.agent)
        nodes = [MemoryNode.from_stored(i, t, m) for i, t, m in zip(stored.ids, stored.texts, stored.metadatas,
                                                                     strict=True)]
        self.nodes, self._vectors = [], np.zeros((0, 0), dtype=np.float32)
        self._importance, self._access_hours = np.zeros(0), np.zeros(0)
        if nodes:
            self._index(nodes, stored.embeddings)

    def get_state(self) -> dict[str, Any]:
        """JSON-safe state beyond what the store holds: how many memories, and their last accesses.

        ``accessed`` lists ``[seq, last access]`` for the memories retrieved since they were made (the others'
        last access is their creation). It is kept here, not only in the store, because the store hears of a
        retrieval at the next commit, which may belong to a step that is abandoned.
        """
        return {"count": len(self.nodes), "importance_since_reflection": self.importance_since_reflection,
                "retrievals": self.retrievals,
                "accessed": [[n.seq, n.last_access.isoformat()] for n in self.nodes if n.last_access != n.created],
                "pending": [[p.kind, p.text, p.created.isoformat(), list(p.evidence)] for p in self._pending]}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores `get_state` output: rewinds the store to the snapshot's memories and reloads them.

        Memories the store holds from after the snapshot (``seq`` at or past its ``count``) are deleted, and
        last accesses are set back to the snapshot's, in memory and in the store.

        Raises:
            ValueError: The store holds fewer of this agent's memories than the snapshot counts (another store).
        """
        self._rewind(int(state["count"]), {int(seq): datetime.fromisoformat(t) for seq, t in state["accessed"]})
        self.importance_since_reflection = int(state["importance_since_reflection"])
        self.retrievals = int(state["retrievals"])
        self._pending = [_Pending(k, t, datetime.fromisoformat(c), tuple(e)) for k, t, c, e in state["pending"]]

    def _rewind(self, count: int, accessed: dict[int, datetime]) -> None:
        stored = self._store.load(self.agent)
        nodes = [MemoryNode.from_stored(i, t, m) for i, t, m in zip(stored.ids, stored.texts, stored.metadatas,
                                                                     strict=True)]
        keep = [i for i, n in enumerate(nodes) if n.seq < count]
        if len(keep) != count:
            msg = (f"the store holds {len(keep)} memories of {self.agent!r} before seq {count}, the snapshot "
                   f"{count}; resume with the run's own Chroma (memory.chroma_path or chroma_url)")
            raise ValueError(msg)
        if newer := [n.id for n in nodes if n.seq >= count]:
            self._store.delete(self.agent, newer)
        kept = [replace(nodes[i], last_access=accessed.get(nodes[i].seq, nodes[i].created)) for i in keep]
        changed = [n for i, n in zip(keep, kept, strict=True) if n.last_access != nodes[i].last_access]
        if changed:
            self._store.update_metadata(self.agent, [n.id for n in changed], [n.metadata() for n in changed])
        self.nodes, self._vectors = [], np.zeros((0, 0), dtype=np.float32)
        self._importance, self._access_hours = np.zeros(0), np.zeros(0)
        self._touched.clear()
        if kept:
            self._index(kept, stored.embeddings[keep])

    def _index(self, nodes: list[MemoryNode], vectors: npt.NDArray[np.float32]) -> None:
        self.nodes.extend(nodes)
        n = len(self.nodes)
        if self._vectors.shape[0] < n:  # grow by doubling: appends stay amortised O(1)
            grown = np.zeros((max(n, 2 * self._vectors.shape[0], 64), vectors.shape[1]), dtype=np.float32)
            if n > len(nodes):
                grown[: n - len(nodes)] = self._vectors[: n - len(nodes)]
            self._vectors = grown
        self._vectors[n - len(nodes): n] = vectors
        self._importance = np.concatenate([self._importance, [float(x.importance) for x in nodes]])
        self._access_hours = np.concatenate([self._access_hours, [_hours(x.last_access) for x in nodes]])

    def _flush_access(self) -> None:
        """Writes changed last-access times to the store (once per step, not once per retrieval)."""
        if self._touched:
            ids = sorted(self._touched)
            self._store.update_metadata(self.agent, [self.nodes[i].id for i in ids],
                                        [self.nodes[i].metadata() for i in ids])
            self._touched.clear()


def _hours(moment: datetime) -> float:
    return moment.timestamp() / 3600.0
