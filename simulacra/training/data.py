"""What `run.py train` reads: harvest folders, checked, and split by question into training and held-out rows.

A harvest folder is what ``python run.py harvest`` wrote: a dataset card ``README.md`` that starts the Simulacra
way and JSON Lines parts. ``preferences`` (``prompt``, ``chosen``, ``rejected``, ``score_chosen``,
``score_rejected``) feeds ``dpo`` and ``stable-alignment``; ``sft`` (``messages``) feeds ``sft``. Every file is
untrusted: bounded in size, each record checked for the fields and types the trainers read, one line naming the
file, the record and the fix when something is off.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulacra.errors import ScenarioError
from simulacra.scenarios.bounded import read_text

__all__ = ["METHODS", "MAX_PART_BYTES", "TrainingData", "load_harvests", "split_key"]

METHODS = ("sft", "dpo", "stable-alignment")
MAX_PART_BYTES = 256_000_000
_CARD = "# Simulacra harvest"
_HARVEST = "give folders that `python run.py harvest RUN_DIR --out DIR` wrote"
_PART = {"sft": "sft", "dpo": "preferences", "stable-alignment": "preferences"}


@dataclass
class TrainingData:
    """The rows of one method from one or more harvests, with where they came from."""

    method: str
    rows: list[dict[str, Any]]
    files: list[dict[str, Any]] = field(default_factory=list)  # path, sha256, records (the model card's provenance)
    runs: list[dict[str, Any]] = field(default_factory=list)  # run, scenario, seed, model (from each record)

    def split(self, heldout: float, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(training, held-out) by question: every row of a question falls on the same side.

        Raises:
            ScenarioError: One side would be empty (too few distinct questions for ``heldout``).
        """
        train: list[dict[str, Any]] = []
        held: list[dict[str, Any]] = []
        for row in self.rows:
            (held if split_key(question(row), seed) < heldout else train).append(row)
        if not train or not held:
            questions = len({question(r) for r in self.rows})
            side = "training" if not train else "held-out"
            msg = (f"{self.files[0]['path']}: the {side} split is empty ({questions} distinct question(s), held-out "
                   f"fraction {heldout}); harvest more runs or set --set train.heldout=F with 0 < F < 1")
            raise ScenarioError(msg)
        return train, held


def split_key(text: str, seed: int | str) -> float:
    """A question's place in [0, 1), the same on every machine: its normalised text hashed with the seed.

    A text seed (the shipped question split's ``"compare"``) is independent of every ``--seed``'s split.
    """
    digest = hashlib.sha256(f"{seed}\n{_normal(text)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def question(row: dict[str, Any]) -> str:
    """The question a row answers: a preference pair's prompt, an SFT chat's first user message."""
    if "prompt" in row:
        return str(row["prompt"])
    return next(str(m["content"]) for m in row["messages"] if m["role"] == "user")


def load_harvests(folders: list[Path], method: str) -> TrainingData:
    """Reads the part ``method`` trains on from every folder.

    Raises:
        ScenarioError: Not a harvest, a missing or empty part, a record without the fields or types the trainer
            reads, or a dataset with nothing to learn (every pair's answers equal); one line.
    """
    part = _PART[method]
    data = TrainingData(method=method, rows=[])
    for folder in folders:
        card = folder / "README.md"
        if (not folder.is_dir() or not card.is_file()
                or _CARD not in read_text(card, what="dataset card", limit=1_000_000, regular=True)[:4000]):
            msg = (f"{folder}: not a harvest folder (no README.md dataset card from `python run.py harvest`); "
                   f"{_HARVEST}")
            raise ScenarioError(msg)
        file = folder / f"{part}.jsonl"
        if not file.is_file():
            have = ", ".join(sorted(p.stem for p in folder.glob("*.jsonl"))) or "none"
            msg = (f"{file}: missing: --method {method} trains on the harvest's {part} (this harvest has: {have}); "
                   f"{_fix(method)}")
            raise ScenarioError(msg)
        text = read_text(file, what=f"harvest part {part}", limit=MAX_PART_BYTES, regular=True)
        rows = [_check(file, n, line, method) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        data.files.append({"path": str(file), "sha256": hashlib.sha256(text.encode()).hexdigest(),
                           "records": len(rows)})
        data.rows += rows
    if not data.rows:
        msg = f"{data.files[0]['path']}: no records; {_fix(method)}"
        raise ScenarioError(msg)
    if method != "sft" and all(r["chosen"] == r["rejected"] for r in data.rows):
        msg = f"{data.files[0]['path']}: every pair's chosen and rejected answers are the same: nothing to prefer"
        raise ScenarioError(msg)
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in data.rows:
        key = (row.get("run"), row.get("scenario"), row.get("seed"), row.get("model"))
        seen.setdefault(key, {"run": key[0], "scenario": key[1], "seed": key[2], "model": key[3]})
    data.runs = list(seen.values())
    return data


def _check(file: Path, n: int, line: str, method: str) -> dict[str, Any]:
    where = f"{file}:{n}"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        msg = f"{where}: not JSON ({err.msg}); harvest again, or fix that line"
        raise ScenarioError(msg) from None
    if not isinstance(row, dict):
        msg = f"{where}: a {type(row).__name__}, not an object with the fields of a harvest record; {_HARVEST}"
        raise ScenarioError(msg)
    if method == "sft":
        messages = row.get("messages")
        if (not isinstance(messages, list) or not messages
                or not all(isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                           for m in messages)
                or not any(m["role"] == "user" for m in messages) or messages[-1]["role"] != "assistant"):
            msg = (f"{where}: 'messages' must be a list of {{role, content}} texts with a user turn, ending with the "
                   f"assistant's; {_HARVEST}")
            raise ScenarioError(msg)
        return row
    for key in ("prompt", "chosen", "rejected"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            msg = (f"{where}: '{key}' must be a non-empty text (a preference pair has prompt, chosen, rejected); "
                   f"{_HARVEST}")
            raise ScenarioError(msg)
    for key in ("score_chosen", "score_rejected"):
        value = row.get(key)
        if method == "stable-alignment" and (isinstance(value, bool) or not isinstance(value, int | float)
                                             or value != value or abs(value) > 1e6):  # noqa: PLR0124 - NaN
            msg = (f"{where}: '{key}' must be a number (stable-alignment weighs each pair by its rating gap); "
                   f"{_HARVEST}")
            raise ScenarioError(msg)
    return row


def _fix(method: str) -> str:
    if method == "sft":
        return "harvest runs whose agents answered questions or talked (alignment, town)"
    return ("harvest alignment runs whose revisions were rated apart from their drafts (lower `harvest --min-gap` "
            "to keep closer pairs)")


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())
