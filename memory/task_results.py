"""BabyAGI's result store: finished tasks' results in Chroma, retrieved as context for the next task."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from simulacra.memory.embedder import ChromaEmbedding
from simulacra.memory.task_board import Task

__all__ = ["DEFAULT_TOP_K", "TaskResults"]

DEFAULT_TOP_K = 5  # BabyAGI's context_agent asks for the top 5 results

ResultRow = tuple[int, str, str, str, int]  # task id, task text, result, agent, step


class TaskResults:
    """Task results in a Chroma collection, embedded by the injected embedder.

    BabyAGI embeds the result alone; here the document is ``"<task>: <result>"``, so a query phrased like a task
    finds the results of similar tasks as well as results that mention it.
    """

    def __init__(self, client: Any, *, embed: Callable[[Sequence[str]], npt.NDArray[np.float32]],
                 collection: str = "task_results") -> None:
        """Opens (or creates) the collection.

        Args:
            client: A ``chromadb`` client (persistent, server or ephemeral).
            embed: Texts to unit vectors (the project's MiniLM embedder; a fake one in unit tests).
            collection: The collection's name (unique per run when a Chroma server is shared).
        """
        self._embed = embed
        self._collection = client.get_or_create_collection(
            collection, embedding_function=ChromaEmbedding(embed), metadata={"hnsw:space": "cosine"})
        self._stored: int = self._collection.count()  # a reopened collection keeps its ids; new ones follow them

    def __len__(self) -> int:
        """How many results are stored."""
        return self._stored

    @property
    def collection(self) -> str:
        """The Chroma collection's name."""
        return str(self._collection.name)

    def add(self, task: Task | Mapping[str, Any] | ResultRow) -> str:
        """Stores one result.

        Args:
            task: A done `Task`; a dict with ``id``, ``text``, ``result`` and optionally ``agent`` (else
                ``claimed_by``) and ``step`` (else ``claimed_at``), such as a ``task_done`` event's data; or a
                tuple ``(task_id, task_text, result, agent, step)``.

        Returns:
            The Chroma id of the stored result (unique even when a task's result is stored twice).

        Raises:
            TypeError: ``task`` is none of these.
        """
        task_id, text, result, agent, step = _row(task)
        chroma_id = f"r{self._stored}.task{task_id}"
        document = f"{text}: {result}"
        self._collection.add(ids=[chroma_id], documents=[document], embeddings=self._embed([document]),
                             metadatas=[{"task_id": task_id, "task": text, "result": result, "agent": agent,
                                         "step": step}])
        self._stored += 1
        return chroma_id

    def retrieve(self, query: str, k: int = DEFAULT_TOP_K) -> list[dict[str, Any]]:
        """The ``k`` stored results nearest to ``query``, best first (never more than are stored).

        Returns:
            Dicts with ``task_id``, ``task``, ``result``, ``agent`` and ``step``.
        """
        if k <= 0 or not self._stored:
            return []
        got = self._collection.query(query_embeddings=self._embed([query]), n_results=min(k, self._stored),
                                     include=["metadatas"])
        return [dict(m) for m in got["metadatas"][0]]

    def get_state(self) -> dict[str, Any]:
        """How many results are stored (the results themselves stay in Chroma)."""
        return {"stored": self._stored}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Rewinds the collection to the snapshot's count: results stored later (ids ``r<n>.…``) are deleted.

        Raises:
            ValueError: The collection holds fewer results than the snapshot counts (another Chroma).
        """
        stored = int(state["stored"])
        ids = self._collection.get(include=[])["ids"]
        kept = [i for i in ids if _index(i) < stored]
        if len(kept) != stored:
            msg = (f"the collection {self.collection!r} holds {len(kept)} results before r{stored}, the snapshot "
                   f"{stored}; resume with the run's own Chroma")
            raise ValueError(msg)
        if newer := [i for i in ids if _index(i) >= stored]:
            self._collection.delete(ids=newer)
        self._stored = stored


def _index(chroma_id: str) -> int:
    """The ``n`` of a result's id ``r<n>.task<id>`` (its place in the collection)."""
    return int(chroma_id.removeprefix("r").partition(".")[0])


def _row(task: Task | Mapping[str, Any] | ResultRow) -> ResultRow:
    if isinstance(task, Task):
        return task.id, task.text, task.result, task.claimed_by or "", task.claimed_at or 0
    if isinstance(task, Mapping) and {"id", "text", "result"} <= task.keys():
        agent = task.get("agent") or task.get("claimed_by") or ""
        step = task.get("step", task.get("claimed_at"))
        return int(task["id"]), str(task["text"]), str(task["result"]), str(agent), int(step or 0)
    if isinstance(task, tuple) and len(task) == 5:
        task_id, text, result, agent, step = task
        return int(task_id), str(text), str(result), str(agent), int(step)
    msg = (f"cannot store a result from {task!r}; give a Task, a task dict (id, text, result, agent, step) "
           "or a tuple (task_id, task_text, result, agent, step)")
    raise TypeError(msg)
