"""Question sets for the society (Stable Alignment): the shipped one, or a user's JSONL or CSV file."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from simulacra.errors import ScenarioError
from simulacra.scenarios.bounded import load_json, read_text

__all__ = ["DEFAULT_QUESTIONS", "MAX_BYTES", "Question", "load_questions"]

DEFAULT_QUESTIONS = Path(str(resources.files("simulacra.scenarios") / "questions" / "everyday.jsonl"))
MAX_BYTES = 16_000_000  # about 100,000 questions
_ONE_OBJECT = 'one object per line, e.g. {"question": "..."}'


@dataclass(frozen=True)
class Question:
    """One question: an id, a category and the text."""

    id: str
    category: str
    question: str


def load_questions(path: str | Path | None = None) -> list[Question]:
    """Reads a question set: JSON Lines or CSV with a ``question`` field (``id``, ``category`` optional).

    Raises:
        ScenarioError: One line with the file and line: it cannot be read, is over `MAX_BYTES`, is not UTF-8 text,
            a line is not a JSON object or a CSV record, or a record has no question.
    """
    path = Path(path) if path else DEFAULT_QUESTIONS
    text = read_text(path, what="question file", limit=MAX_BYTES)
    rows = _csv_rows(text, path) if path.suffix.lower() == ".csv" else _jsonl_rows(text, path)
    out: list[Question] = []
    for n, row in rows:
        value = row.get("question")
        if isinstance(value, dict | list | bool):
            msg = f"{path}:{n}: the question is a {type(value).__name__}, not text; give it as a string"
            raise ScenarioError(msg)
        question = str(value or "").strip()
        if not question:
            msg = f"{path}:{n}: no question; each record needs a non-empty 'question' field"
            raise ScenarioError(msg)
        out.append(Question(str(row.get("id") or f"q{len(out) + 1:04d}"), str(row.get("category") or "general"),
                            question))
    if not out:
        msg = f"{path}: holds no questions; give at least one record with a 'question' field"
        raise ScenarioError(msg)
    return out


def _jsonl_rows(text: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    # split("\n"), not splitlines(): a JSON string may hold U+2028 and the other breaks splitlines() cuts at
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        row = load_json(line, path, line=n, problem="not a JSON object", fix=_ONE_OBJECT)
        if not isinstance(row, dict):
            msg = f"{path}:{n}: not a JSON object (a {type(row).__name__}); {_ONE_OBJECT}"
            raise ScenarioError(msg)
        rows.append((n, row))
    return rows


def _csv_rows(text: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))  # newline="": quoted fields may span lines
    rows = []
    try:
        for row in reader:
            rows.append((reader.line_num, row))
    except csv.Error as err:
        msg = f"{path}:{reader.line_num + 1}: not a CSV record ({err}); give a header line naming a 'question' column"
        raise ScenarioError(msg) from err
    return rows
