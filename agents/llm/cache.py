"""A response cache keyed by the full request, kept as an append-only JSON Lines file."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from simulacra.agents.llm.base import Completion

__all__ = ["RecordedFailure", "ResponseCache"]


@dataclass(frozen=True)
class RecordedFailure:
    """An engine failure recorded in a run's call log; a replay meets it again at the same request."""

    error: str


class ResponseCache:
    """Completions by request key.

    It reads any JSON Lines file whose records have ``key`` and ``text`` (its own file, or a run's
    ``llm_calls.jsonl``, which is how ``--replay RUN_DIR`` works) and appends new answers to one file.
    A line cut short by a crash is ignored on load, so a half-written cache never stops a run.

    A run's call log also records the attempts that failed in the engine (``error``, no text). From the
    read-only ``sources``, each key's outcomes are handed out in the order they were recorded, failures
    included, so a replay of a run that met a timeout meets it at the same attempt; once a key's recorded
    outcomes are used up, its last answer is given again.
    """

    def __init__(self, path: Path | None = None, *, sources: Iterable[Path] = (), answers: Iterable[Path] = ()
                 ) -> None:
        """Loads ``sources``, ``answers`` and then ``path``; new entries are appended to ``path``.

        Args:
            path: The writable cache file, created on the first put; None keeps the cache in memory.
            sources: Read-only recordings replayed outcome by outcome, failures included (``--replay``).
            answers: Read-only files whose answers are reused and failures ignored (a resumed run's own log,
                where the failures are why it stopped).
        """
        self._entries: dict[str, Completion] = {}
        self._recorded: dict[str, deque[Completion | RecordedFailure]] = {}
        self._path = path
        self._file: IO[str] | None = None
        for source in sources:
            self._load(source, recorded=True)
        for source in answers:
            self._load(source, recorded=False)
        if path:
            self._load(path, recorded=False)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Completion | RecordedFailure | None:
        """Returns the next recorded outcome of ``key``, else its cached completion, else None."""
        outcomes = self._recorded.get(key)
        if outcomes:
            return outcomes.popleft()
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

    def _load(self, path: Path, *, recorded: bool) -> None:
        if not path.is_file():
            return
        with path.open(encoding="utf-8", errors="replace", newline="\n") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):
                    continue
                if not isinstance(record, dict) or not isinstance(record.get("key"), str):
                    continue
                outcome: Completion | RecordedFailure
                if isinstance(record.get("text"), str):
                    outcome = Completion(text=record["text"], prompt_tokens=_count(record.get("prompt_tokens")),
                                         completion_tokens=_count(record.get("completion_tokens")))
                    self._entries[record["key"]] = outcome
                elif recorded and isinstance(record.get("error"), str):
                    outcome = RecordedFailure(record["error"])
                else:
                    continue
                if recorded:
                    self._recorded.setdefault(record["key"], deque()).append(outcome)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
