"""A response cache keyed by the full request, kept as an append-only JSON Lines file."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from agents.llm.base import Completion

__all__ = ["ResponseCache"]


class ResponseCache:
    """Completions by request key.

    It reads any JSON Lines file whose records have ``key`` and ``text`` (its own file, or a run's
    ``llm_calls.jsonl``, which is how ``--replay RUN_DIR`` works) and appends new answers to one file.
    A line cut short by a crash is ignored on load, so a half-written cache never stops a run.
    """

    def __init__(self, path: Path | None = None, *, sources: Iterable[Path] = ()) -> None:
        """Loads ``sources`` and then ``path``; new entries are appended to ``path``.

        Args:
            path: The writable cache file, created on the first put; None keeps the cache in memory.
            sources: Read-only files to load first.
        """
        self._entries: dict[str, Completion] = {}
        self._path = path
        self._file: IO[str] | None = None
        for source in [*sources, *([path] if path else [])]:
            self._load(source)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Completion | None:
        """Returns the cached completion of ``key``, or None."""
        return self._entries.get(key)

    def put(self, key: str, completion: Completion) -> None:
        """Stores a completion and appends it to the file."""
        self._entries[key] = completion
        if self._path is None:
            return
        if self._file is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self._path.open("a", encoding="utf-8")
        record = {
            "key": key,
            "text": completion.text,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
        }
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Closes the file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _load(self, path: Path) -> None:
        if not path.is_file():
            return
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if not isinstance(record, dict) or "key" not in record or record.get("text") is None:
                    continue
                self._entries[record["key"]] = Completion(
                    text=record["text"],
                    prompt_tokens=int(record.get("prompt_tokens", 0)),
                    completion_tokens=int(record.get("completion_tokens", 0)),
                )
