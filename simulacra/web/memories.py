"""The memories a generative run stored in its Chroma, as of a step, read from a copy of ``chroma/``.

Opening a Chroma folder writes to it (its SQLite file and index headers change), and a run folder is a record
that the view must not touch, so the first request copies ``chroma/`` to a temporary folder, as interviews do.
"""

from __future__ import annotations

import math
import tempfile
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["StoredMemories"]


class StoredMemories:
    """Each agent's memory stream in a finished run's ``chroma/`` folder."""

    def __init__(self, run_dir: Path) -> None:
        """Nothing is read until `upto` is first called."""
        self.source = run_dir / "chroma"
        self._lock = threading.Lock()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._collections: dict[str, Any] | None = None

    @property
    def present(self) -> bool:
        """Whether the run kept a Chroma folder."""
        return (self.source / "chroma.sqlite3").is_file()

    def upto(self, agent: str, sim_time: str, *, most: int = 10) -> list[dict[str, Any]] | None:
        """The agent's newest ``most`` memories created at or before ``sim_time``; None: it has no stream."""
        collection = self._open().get(agent)
        if collection is None:
            return None
        got = collection.get(include=["documents", "metadatas"])
        until = datetime.fromisoformat(sim_time) if sim_time else None
        rows = [(meta, text, ident) for meta, text, ident in zip(got["metadatas"], got["documents"], got["ids"],
                                                                 strict=True)
                if until is None or datetime.fromisoformat(str(meta["created"])) <= until]
        rows.sort(key=lambda row: int(row[0].get("seq", 0)), reverse=True)
        # The store is the run's, so untrusted: an importance that JSON cannot carry (NaN, infinity) is left out.
        return [{"text": text, "kind": meta.get("kind"), "importance": _finite(meta.get("importance")),
                 "created": meta.get("created"), "id": ident} for meta, text, ident in rows[:most]]

    def _open(self) -> dict[str, Any]:
        with self._lock:
            if self._collections is None:
                from simulacra.memory.chroma_store import open_client
                from simulacra.memory.embedder import ChromaEmbedding
                from simulacra.runs.run_files import copy_run_part

                self._tmp = tempfile.TemporaryDirectory(prefix="simulacra-view-")
                copy = Path(self._tmp.name) / "chroma"
                copy_run_part(self.source, copy)  # a link in the run folder is refused, never followed
                client = open_client(path=copy)
                self._collections = {}
                for found in client.list_collections():
                    agent = (found.metadata or {}).get("agent")
                    if agent:  # a memory stream (skill libraries and answer memories have none)
                        self._collections[agent] = client.get_collection(found.name,
                                                                         embedding_function=ChromaEmbedding(_never_embed))
            return self._collections

    def close(self) -> None:
        """Deletes the copy."""
        if self._tmp is not None:
            self._tmp.cleanup()


def _finite(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else None


def _never_embed(texts: list[str]) -> Any:
    msg = "the web view reads stored memories and never embeds text"
    raise RuntimeError(msg)
