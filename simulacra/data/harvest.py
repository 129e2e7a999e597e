"""Turns run folders into datasets that Hugging Face ``datasets`` and TRL load as they are.

``python run.py harvest RUN_DIR [RUN_DIR ...] --out DIR`` writes, for whatever the runs hold: ``ratings``
(Stable-Alignment interactions), ``preferences`` (``prompt``/``chosen``/``rejected`` for DPO), ``sft``
(``messages`` lists: question → best answer, and town dialogues), ``skills`` (Voyager), ``tasks``
(BabyAGI) and ``surveys`` (one record per survey answer), each as JSON Lines and Parquet, plus a dataset
card. It writes into a staging folder next to ``--out`` and renames it at the end, so a failure leaves
nothing half-written (and a staging folder that a killed harvest left is removed by the next one).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from simulacra.errors import ScenarioError
from simulacra.instruments.transcript import read_event_log
from simulacra.runs.manifest import Manifest
from simulacra.scenarios.bounded import load_json, read_text

__all__ = ["DATASETS", "MAX_EVENTS_BYTES", "Harvest", "RunData", "read_run"]

DATASETS = ("ratings", "preferences", "sft", "skills", "tasks", "surveys")
MAX_EVENTS_BYTES = 256_000_000  # events.jsonl of a long run; a run folder's other files get 16 MB
_MAX_FILE_BYTES = 16_000_000
_CUT_OFF = "the run was cut off while writing; harvest a complete run"
_NOT_OBJECT = "truncated or corrupt event ({type}, not an object)"
_NOT_OURS = "harvest run folders that run.py wrote"
STAGING = ".harvest-staging-"  # a harvest being written: .<out name>.harvest-staging-<pid>, beside --out


@dataclass
class RunData:
    """What harvest reads from one run folder."""

    path: Path
    events: list[dict[str, Any]]
    summary: dict[str, Any]
    skills: list[dict[str, Any]] = field(default_factory=list)

    @property
    def provenance(self) -> dict[str, Any]:
        """Fields every record of this run carries."""
        return {"run": self.path.name, "scenario": self.summary.get("scenario"), "seed": self.summary.get("seed"),
                "model": self.summary.get("llm", {}).get("model")}


def read_run(path: Path) -> RunData:
    """Reads and checks one run folder.

    Raises:
        ScenarioError: Not a run folder, a corrupt, truncated, binary or huge file in it, or a run that has not
            finished; one line with the file and line.
    """
    events_file = path / "events.jsonl"
    if not path.is_dir() or not events_file.is_file():
        msg = f"{path}: not a run folder (no events.jsonl); give a folder that `python run.py FILE` wrote"
        raise ScenarioError(msg)
    events, unfinished = read_event_log(events_file, fix=_CUT_OFF, not_object=_NOT_OBJECT, field_fix=_NOT_OURS,
                                        limit=MAX_EVENTS_BYTES)
    if unfinished and events and events[-1]["kind"] == "run_finished":  # nothing is written after run_finished
        msg = f"{events_file}:{unfinished}: truncated or corrupt event (no line end after run_finished); {_CUT_OFF}"
        raise ScenarioError(msg)
    summary_file = path / "summary.json"
    if not events or events[-1]["kind"] != "run_finished" or not summary_file.is_file():
        msg = (f"{path}: the run has not finished (no run_finished event or no summary.json); wait for it to end, "
               "or harvest another run")
        raise ScenarioError(msg)
    skills_file = path / "skills" / "skills.jsonl"
    skills = (_records(skills_file, "skill library", _MAX_FILE_BYTES, "not a skill record")
              if skills_file.is_file() else [])
    summary = load_json(read_text(summary_file, what="run summary", limit=_MAX_FILE_BYTES), summary_file,
                        problem="corrupt summary", fix=_CUT_OFF)
    if not isinstance(summary, dict):
        msg = f"{summary_file}:1: corrupt summary (a {type(summary).__name__}, not an object); {_CUT_OFF}"
        raise ScenarioError(msg)
    return RunData(path, events, summary, skills)


def _records(file: Path, what: str, limit: int, problem: str) -> list[dict[str, Any]]:
    """The JSON objects of a JSON Lines file of a run folder, one per line."""
    records = []
    # split("\n"), not splitlines(): a JSON string may hold U+2028 and the other breaks splitlines() cuts at
    for n, line in enumerate(read_text(file, what=what, limit=limit).split("\n"), 1):
        if not line.strip():
            continue
        record = load_json(line, file, line=n, problem=problem, fix=_CUT_OFF)
        if not isinstance(record, dict):
            msg = f"{file}:{n}: {problem} (a {type(record).__name__}, not an object); {_CUT_OFF}"
            raise ScenarioError(msg)
        records.append(record)
    return records


class Harvest:
    """Builds the datasets from runs, with filters for preference pairs."""

    def __init__(self, runs: Sequence[RunData], *, min_gap: float = 1.0, dedup: float = 0.95) -> None:
        """Keeps the runs and the filters.

        Args:
            runs: The runs, read by `read_run`.
            min_gap: A preference pair needs chosen and rejected scores this far apart.
            dedup: Prompts this similar (difflib ratio of the normalised text, 0-1) to a kept one are dropped from
                ``preferences`` and ``sft``; 1 keeps everything but exact repeats.
        """
        self.runs, self.min_gap, self.dedup = list(runs), min_gap, dedup

    def ratings(self) -> list[dict[str, Any]]:
        """One record per sandbox interaction, with the Stable-Alignment fields."""
        out = []
        for run in self.runs:
            for e in _kind(run.events, "interaction"):
                d = e["data"]
                before, after = d.get("observer_before") or {}, d.get("observer_after") or {}
                out.append({**run.provenance, "agent": d["agent"], "iteration": d["iteration"],
                            "question_id": d["question_id"], "category": d["category"], "question": d["question"],
                            "draft": d["draft"], "ratings": _ratings(d["ratings"]), "mean_draft": d["mean_draft"],
                            "revised": d["revised"], "revision_ratings": _ratings(d["revision_ratings"]),
                            "mean_revision": d["mean_revision"], "alignment_before": before.get("alignment"),
                            "engagement_before": before.get("engagement"), "alignment_after": after.get("alignment"),
                            "engagement_after": after.get("engagement")})
        return out

    def preferences(self) -> list[dict[str, Any]]:
        """``prompt``, ``chosen``, ``rejected`` (+ scores, margin): the better- and worse-rated answer."""
        pairs = []
        for r in self.ratings():
            draft, revised = r["mean_draft"], r["mean_revision"]
            if draft is None or revised is None or abs(revised - draft) < self.min_gap or r["draft"] == r["revised"]:
                continue
            (chosen, cs), (rejected, rs) = sorted([(r["revised"], revised), (r["draft"], draft)], key=lambda x: -x[1])
            pairs.append({"prompt": r["question"], "chosen": chosen, "rejected": rejected, "score_chosen": cs,
                          "score_rejected": rs, "margin": round(cs - rs, 3), "category": r["category"],
                          "run": r["run"], "model": r["model"]})
        pairs.sort(key=lambda p: -p["margin"])  # keep the clearest pair of near-duplicate prompts
        return self._distinct(pairs, lambda p: p["prompt"])

    def sft(self) -> list[dict[str, Any]]:
        """``messages`` lists: each question with its best-rated answer, and town dialogues as chats."""
        rows = []
        for r in self.ratings():
            scores = {"draft": r["mean_draft"] or 0.0, "revised": r["mean_revision"] or 0.0}
            best = "revised" if scores["revised"] >= scores["draft"] else "draft"
            rows.append({"messages": [{"role": "user", "content": r["question"]},
                                      {"role": "assistant", "content": r[best]}],
                         "source": "sandbox", "score": scores[best], "run": r["run"], "model": r["model"]})
        rows = self._distinct(rows, lambda x: x["messages"][0]["content"])
        for run in self.runs:
            rows += [{"messages": m, "source": "town dialogue", "score": None, **_slim(run.provenance)}
                     for m in _dialogues(run.events)]
        return rows

    def skills(self) -> list[dict[str, Any]]:
        """Every verified skill version of the Voyager runs."""
        return [{**run.provenance, **s} for run in self.runs for s in run.skills]

    def tasks(self) -> list[dict[str, Any]]:
        """Every task of the BabyAGI runs, with its outcome."""
        out = []
        for run in self.runs:
            team = run.summary.get("team")
            if team:
                out += [{**run.provenance, "objective": team["objective"], "task_id": t["id"], "task": t["text"],
                         "status": t["status"], "result": t["result"], "reason": t["reason"],
                         "agent": t["claimed_by"], "attempts": t["attempts"]} for t in team["tasks"]]
        return out

    def surveys(self) -> list[dict[str, Any]]:
        """One record per survey answer: ``answer`` as text (every type in one column) and ``value`` as a number.

        ``value`` is the likert point or the number, 1.0/0.0 for yes/no, None for choice and text answers and
        for failed ones (``ok`` false, ``answer`` None).
        """
        out = []
        for run in self.runs:
            for e in _kind(run.events, "survey_answer"):
                d = e["data"]
                answer = d["answer"]
                value = ({"yes": 1.0, "no": 0.0}.get(answer) if d["type"] == "yes_no" else
                         float(answer) if d["type"] in ("likert", "number") and answer is not None else None)
                out.append({**run.provenance, "survey": d["survey"], "item": d["item"], "type": d["type"],
                            "question": d["question"], "agent": e["agent"], "step": e["step"],
                            "answer": None if answer is None else str(answer), "value": value, "ok": bool(d["ok"])})
        return out

    def _distinct(self, rows: list[dict[str, Any]], key: Any) -> list[dict[str, Any]]:
        kept: list[dict[str, Any]] = []
        seen: list[str] = []
        for row in rows:
            text = _normal(key(row))
            if any(text == s or difflib.SequenceMatcher(None, text, s).ratio() >= self.dedup for s in seen):
                continue
            seen.append(text)
            kept.append(row)
        return kept

    def write(self, out: Path) -> dict[str, int]:
        """Writes every non-empty dataset (JSONL + Parquet) and the card into ``out``, all or nothing.

        Returns:
            Records per dataset written.

        Raises:
            ScenarioError: ``out`` exists and is not empty, or an event lacks a field a dataset needs.
        """
        _check_out(out)
        try:
            parts = {name: rows for name in DATASETS if (rows := getattr(self, name)())}
        except (KeyError, TypeError, AttributeError) as err:  # valid JSON, but not what a run writes
            runs = ", ".join(str(run.path) for run in self.runs)
            msg = (f"{runs}: an event or summary lacks what harvest reads ({type(err).__name__}: {err}); harvest "
                   "run folders that run.py wrote")
            raise ScenarioError(msg) from err
        staging = _staging(out)
        try:
            for name, rows in parts.items():
                _write_rows(staging, name, rows)
            (staging / "README.md").write_text(self.card(parts), encoding="utf-8")
            if out.exists():
                out.rmdir()
            staging.rename(out)
        except BaseException as err:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(err, OSError):  # a full disk, a folder made meanwhile: one line, not a traceback
                raise ScenarioError(_unwritable(out, err)) from err
            raise
        return {name: len(rows) for name, rows in parts.items()}

    def card(self, parts: dict[str, list[dict[str, Any]]]) -> str:
        """The dataset card of the written ``parts``: configs, counts, fields, score histograms, provenance."""
        lines = ["---", "configs:"]
        for name in parts:
            lines += [f"- config_name: {name}", f"  data_files: {name}.parquet"]
        lines += ["---", "", "# Simulacra harvest", "",
                  "Harvested from Simulacra runs by `python run.py harvest`. Load a part with "
                  "`datasets.load_dataset(\"<this folder>\", \"<part>\")`, or a file with "
                  "`load_dataset(\"json\", data_files=...)`. `preferences` is TRL's DPO format; `sft` is TRL's "
                  "conversational format.", "", "| part | records | fields |", "|---|---|---|"]
        for name, rows in parts.items():
            fields = ", ".join(f"`{f}`" for f in rows[0])
            lines.append(f"| {name} | {len(rows)} | {fields} |")
        lines += ["", f"Filters: preference pairs need a score gap of at least {self.min_gap}; prompts at least "
                  f"{self.dedup} similar to a kept one are dropped from `preferences` and `sft`.", ""]
        ratings, pairs = parts.get("ratings", []), parts.get("preferences", [])
        lines += _histogram("Mean rating of drafts (ratings)", [r["mean_draft"] for r in ratings])
        lines += _histogram("Mean rating of revisions (ratings)", [r["mean_revision"] for r in ratings])
        lines += _histogram("Preference margins", [p["margin"] for p in pairs])
        lines += ["## Provenance", "", "Simulacra's version, its commit and the model file's sha256 come from each "
                  "run's `manifest.json` (`python run.py verify RUN_DIR` checks a run against it); - where it has "
                  "none.", "", "| run | scenario | seed | model | backend | steps | status | simulacra | commit | "
                  "model sha256 |", "|---|---|---|---|---|---|---|---|---|---|"]
        for run in self.runs:
            s = run.summary
            manifest = Manifest.find(run.path)
            made = (manifest.data["simulacra_version"], manifest.data["git_commit"], manifest.model_sha256) \
                if manifest else (None, None, None)
            lines.append(f"| {run.path.name} | {s.get('scenario')} | {s.get('seed')} | {s.get('llm', {}).get('model')}"
                         f" | {s.get('llm', {}).get('backend')} | {s.get('steps')} | {s.get('status')} | "
                         + " | ".join(v or "-" for v in made) + " |")
        return "\n".join(lines) + "\n"


def _kind(events: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("kind") == kind]


def _ratings(ratings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"rater": r["rater"], "rating": r["rating"], "reason": r["reason"]} for r in ratings]


def _slim(provenance: dict[str, Any]) -> dict[str, Any]:
    return {"run": provenance["run"], "model": provenance["model"]}


def _normal(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", " ".join(text.lower().split()))


def _dialogues(events: list[dict[str, Any]]) -> list[list[dict[str, str]]]:
    """Town conversations as chats: the first speaker is the user, the other the assistant."""
    chats: list[list[dict[str, str]]] = []
    said: list[dict[str, Any]] = []
    for e in events:
        if e["kind"] == "step_ended":
            said = []
        elif e["kind"] == "said":
            said.append(e)
        elif e["kind"] == "conversation":
            pair = {e["agent"], e["data"]["with"]}
            turns = [s for s in said if {s["agent"], s["data"]["to"]} == pair]
            if len(turns) >= 2:  # noqa: PLR2004 - a chat needs both sides
                first = turns[0]["agent"]
                chats.append([{"role": "user" if t["agent"] == first else "assistant", "content": t["data"]["text"]}
                              for t in turns])
            said = [s for s in said if s not in turns]
    return chats


def _check_out(out: Path) -> None:
    """Refuses an ``--out`` that is a file or a folder with something in it."""
    try:
        if out.exists() and not out.is_dir():
            msg = f"--out {str(out)!r} is a file; give a new folder"
            raise ScenarioError(msg)
        if out.exists() and any(out.iterdir()):
            msg = f"--out {str(out)!r} is not an empty folder; give a new folder"
            raise ScenarioError(msg)
    except OSError as err:
        raise ScenarioError(_unwritable(out, err)) from err


def _staging(out: Path) -> Path:
    """A new folder beside ``out`` to write into, ``.<out name>.harvest-staging-<pid>``.

    A harvest killed (``kill -9``) leaves its staging folder behind; those of earlier harvests into the same
    ``out`` whose process is gone are removed first.

    Raises:
        ScenarioError: One line: ``out``'s parent cannot be made or written (it is inside a file, say).
    """
    prefix = f".{out.name}{STAGING}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        for old in out.parent.iterdir():
            pid = old.name.removeprefix(prefix)
            if old.name.startswith(prefix) and pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(old, ignore_errors=True)
        staging = out.parent / f"{prefix}{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)  # only this process could have made it
        staging.mkdir(mode=0o700)
    except OSError as err:
        raise ScenarioError(_unwritable(out, err)) from err
    return staging


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (this one counts as gone: its own staging folder is never in use)."""
    if pid == os.getpid() or not 0 < pid < 2**31:
        return False
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _unwritable(out: Path, err: OSError) -> str:
    return f"--out {str(out)!r}: cannot write the datasets there ({err.strerror or err}); give a new folder"


def _write_rows(folder: Path, name: str, rows: list[dict[str, Any]]) -> None:
    with (folder / f"{name}.jsonl").open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    pq.write_table(pa.Table.from_pylist(rows), folder / f"{name}.parquet")


def _histogram(title: str, values: Sequence[float | None]) -> list[str]:
    kept = [round(v) for v in values if v is not None]
    if not kept:
        return []
    counts = Counter(kept)
    lines = [f"## {title}", "", "```"]
    lines += [f"{v:>3} | {'#' * counts[v]} {counts[v]}" for v in sorted(counts)]
    return [*lines, "```", ""]
