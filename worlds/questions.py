"""Question sets for the sandbox society: the shipped one, or a user's JSONL or CSV file."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from agents.errors import ScenarioError

__all__ = ["DEFAULT_QUESTIONS", "Question", "load_questions"]

DEFAULT_QUESTIONS = Path(__file__).resolve().parent.parent / "scenarios" / "questions" / "everyday.jsonl"


@dataclass(frozen=True)
class Question:
    """One question: an id, a category and the text."""

    id: str
    category: str
    question: str


def load_questions(path: str | Path | None = None) -> list[Question]:
    """Reads a question set: JSON Lines or CSV with a ``question`` field (``id``, ``category`` optional).

    Raises:
        ScenarioError: The file cannot be read, a line is not JSON, or a record has no question.
    """
    path = Path(path) if path else DEFAULT_QUESTIONS
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        why = getattr(err, "strerror", None) or err
        msg = f"world.questions: cannot read {str(path)!r} ({why}); give a JSONL or CSV file"
        raise ScenarioError(msg) from err
    rows = _csv_rows(text) if path.suffix.lower() == ".csv" else _jsonl_rows(text, path)
    out: list[Question] = []
    for n, row in rows:
        question = str(row.get("question") or "").strip()
        if not question:
            msg = f"{path}:{n}: no question; each record needs a non-empty 'question' field"
            raise ScenarioError(msg)
        out.append(Question(str(row.get("id") or f"q{len(out) + 1:04d}"), str(row.get("category") or "general"),
                            question))
    if not out:
        msg = f"{path}: holds no questions; give at least one record with a 'question' field"
        raise ScenarioError(msg)
    return out


def _jsonl_rows(text: str, path: Path) -> list[tuple[int, dict]]:
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            msg = f"{path}:{n}: not a JSON object ({err.msg}); one object per line, e.g. {{\"question\": \"...\"}}"
            raise ScenarioError(msg) from err
        if not isinstance(row, dict):
            msg = f"{path}:{n}: not a JSON object; one object per line, e.g. {{\"question\": \"...\"}}"
            raise ScenarioError(msg)
        rows.append((n, row))
    return rows


def _csv_rows(text: str) -> list[tuple[int, dict]]:
    return [(n, row) for n, row in enumerate(csv.DictReader(text.splitlines()), 2)]
