"""The transcript rater (``python run.py rate``): an LLM judge scores each agent of a finished run on a rubric.

The judge reads the rubric and one agent's transcript, rebuilt from the run's ``events.jsonl`` as one short line
per thing the agent said or did (`describe`; the latest lines that fit in ``max_chars``, or in the window of an
engine that runs in this process), and nothing else: no persona, no memories. Its answer is held to the
rubric's scales twice: by the schema (an ``enum`` per dimension, which grammars enforce) and by `parse_scores`,
whose refusal is fed back to the judge for a retry. Everything is checked before anything is written, and only
``ratings/`` changes in the run folder: the scores, a Markdown table, a bar chart and the judge's answer cache
(so rating again replays the same answers).

Parts:
    Rater: rates the agents of one run on one rubric.
    describe, fit: a transcript's lines and their cut (from `worlds.transcript`).
    score_schema, parse_scores: the judge's answer: its schema, its check.
    rubric_path, shipped_rubrics: a rubric's file; the rubrics that ship in ``scenarios/rubrics/``.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from simulacra.agents.llm import LLMClient, Message, Outcome, ResponseCache, make_backend, make_client
from simulacra.agents.prompts import render
from simulacra.agents.respondent import instrument_seed
from simulacra.errors import ParseError, ScenarioError
from simulacra.instruments.transcript import agent_lines, describe, fit, read_events
from simulacra.runs.lineage import Lineage
from simulacra.runs.runner import RUN_FILES
from simulacra.scenarios.instruments import Rubric
from simulacra.scenarios.loading import load_file
from simulacra.scenarios.overrides import split_override

__all__ = ["RUBRICS", "Rater", "describe", "fit", "parse_scores", "rubric_path", "score_schema", "shipped_rubrics"]

REASONING_CHARS = 300
NOTHING = "(nothing said or done)"
# SmolLM2's tokenizer reads a judge prompt (timestamps, names, quotes) at about 2.9-3.0 characters a token
# (measured on valentine transcripts); 2.8 leaves a margin. The chat template adds about a dozen tokens.
CHARS_PER_TOKEN = 2.8
TEMPLATE_TOKENS = 24
MIN_CHARS = 500  # a transcript shorter than this says too little to judge
# A folder, not importlib.resources: ``scenarios`` is a namespace package, which an editable install's path hook
# makes unreadable to importlib.resources on Python 3.11 (as for worlds.questions.DEFAULT_QUESTIONS).
RUBRICS = Path(str(resources.files("simulacra.scenarios") / "rubrics"))  # shipped with the package
Scores = tuple[dict[str, int], str]


class Rater:
    """Rates every agent of one finished run on one rubric, with an LLM judge.

    Attributes:
        run_dir: The run folder.
        rubric: The rubric scored.
        scenario: The run's scenario, with the judge's overrides (its ``llm`` section chooses the judge).
        agents: The agents rated, in the run's order.
        transcripts: What the judge reads of each agent.
        out: Where the ratings go (``RUN_DIR/ratings``).
    """

    def __init__(self, run_dir: Path, rubric: str | Path, *, judge_overrides: Sequence[str] = (),
                 console: Console | None = None, client: LLMClient | None = None, max_chars: int = 4000) -> None:
        """Checks the run folder, the rubric and the overrides and builds the transcripts; writes nothing.

        Args:
            run_dir: A folder that ``python run.py FILE`` wrote.
            rubric: A rubric YAML file, or the name of a shipped one (`shipped_rubrics`).
            judge_overrides: ``--judge-set`` overrides: ``llm.*`` fields only, e.g. ``llm.backend=openai``.
            console: Where the table is printed.
            client: The judge; None builds one from the scenario's ``llm`` section, caching its answers in
                ``ratings/llm-cache.jsonl``.
            max_chars: The most characters of one transcript (the latest lines are kept).

        Raises:
            SimError: One line: not a run folder, a bad rubric, an override that is not ``llm.*`` or not valid,
                a damaged event log, or a run with no agent events.
        """
        self.run_dir = Path(run_dir)
        lineage = Lineage(self.run_dir)
        self.rubric_file = rubric_path(rubric)
        self.rubric = _load_rubric(self.rubric_file)
        try:
            self.scenario = lineage.scenario(_judge_sets(judge_overrides))
        except ScenarioError as err:
            msg = str(err)
            if msg.startswith("--set "):  # name the option the user typed
                msg = "--judge-set " + msg.removeprefix("--set ")
            raise ScenarioError(msg) from None
        self.run_seed = lineage.seed(self.scenario)  # a reseeded fork's own seed
        events_file = self.run_dir / RUN_FILES["events"]
        self.agents, lines = agent_lines(read_events(events_file), [a.name for a in self.scenario.population])
        if not any(lines.values()):
            msg = f"{events_file}: no agent events to rate (nobody said or did anything); rate a run that ran steps"
            raise ScenarioError(msg)
        self.max_tokens = 40 + 8 * len(self.rubric.dimensions) + 100  # braces and keys, each score, the reasoning
        self.transcript_chars = self._room(max_chars)
        self.transcripts = {agent: fit(lines[agent], self.transcript_chars) or NOTHING for agent in self.agents}
        self.console = console or Console()
        self.out = self.run_dir / "ratings"
        self._client = client

    def seed(self, agent: str) -> int:
        """The judge's sampling seed for ``agent``."""
        return instrument_seed(self.run_seed, "rate", self.rubric.name, agent)

    def run(self) -> list[dict[str, Any]]:
        """Asks the judge about every agent at once, writes the ratings and prints them.

        Returns:
            One record per agent per dimension, agents in order: run, scenario, agent, rubric, dimension, score
            (None when the judge gave no valid answer), min, max, ok, reasoning, model, seed.

        Raises:
            BackendError: The judge's engine cannot be built, or it is down (`agents.errors.BackendDown`).
        """
        client, cache = (self._client, None) if self._client is not None else self._judge_client()
        try:
            outcomes = client.run(self._judge_all(client))
        finally:
            if cache is not None:
                client.close()
                cache.close()
        records = self._records(outcomes, model=client.backend.model_id)
        paths = self._write(records)
        self._show(records, paths)
        return records

    def markdown(self, records: Sequence[Mapping[str, Any]]) -> str:
        """The ratings as Markdown: a table of agents by dimensions with a mean row, then the judge's reasons."""
        dims = self.rubric.dimensions
        first = records[0] if records else {}
        rows = [f"# Ratings: {self.rubric.name}", "",
                f"Run `{first.get('run')}` (scenario {self.scenario.name}), judged by `{first.get('model')}`.", ""]
        if self.rubric.source:
            rows += [f"Rubric source: {_cell(self.rubric.source)}", ""]
        rows += ["| agent | " + " | ".join(f"{d.name} ({d.min}..{d.max})" for d in dims) + " |",
                 "|---|" + "---:|" * len(dims)]
        for agent in self.agents:
            cells = [_score(_find(records, agent, d.name)) for d in dims]
            rows.append(f"| {_cell(agent)} | " + " | ".join(cells) + " |")
        rows += ["| **mean** | " + " | ".join(_mean(records, d.name) for d in dims) + " |", "", "## Reasoning", ""]
        for agent in self.agents:
            record = _find(records, agent, dims[0].name)
            why = (_cell(record["reasoning"] or "") or "(no reasoning given)") if record and record["ok"] else \
                "(no valid answer from the judge)"
            rows.append(f"- **{_cell(agent)}**: {why}")
        return "\n".join(rows) + "\n"

    def _room(self, max_chars: int) -> int:
        """The most characters of one transcript.

        ``max_chars``, or fewer when the judge runs in this process (llamacpp, vllm) and its window (``llm.n_ctx``)
        would not hold the prompt and the answer: a prompt past the window fails every attempt.
        """
        llm = self.scenario.llm
        if llm.backend not in ("llamacpp", "vllm"):
            return max_chars  # a server's window is its own; the user sets max_chars
        rest = len(render("judge", "system")) + len(self._prompt("", ""))
        fits = int((llm.n_ctx - self.max_tokens - TEMPLATE_TOKENS) * CHARS_PER_TOKEN) - rest
        return min(max_chars, max(fits, MIN_CHARS))

    def _prompt(self, agent: str, transcript: str) -> str:
        return render("judge", "judge", rubric=self.rubric.name, description=self.rubric.description,
                      dimensions=self.rubric.dimensions, agent=agent, transcript=transcript)

    # -- judging -------------------------------------------------------------------------------------------
    def _judge_client(self) -> tuple[LLMClient, ResponseCache]:
        """The judge built like `worlds.runner.Runner`'s client; answers cached in the ratings folder."""
        cache = ResponseCache(self.out / "llm-cache.jsonl")  # created on the first answer
        return make_client(self.scenario.llm, cache=cache, queue=True, backend=make_backend(self.scenario.llm)), cache

    async def _judge_all(self, client: LLMClient) -> list[Outcome[Scores | None]]:
        """Asks about every agent at once (a gather inside the client's loop: its requests go out together)."""
        return list(await asyncio.gather(*(self._judge(client, agent) for agent in self.agents)))

    async def _judge(self, client: LLMClient, agent: str) -> Outcome[Scores | None]:
        """Asks the judge to score one agent's transcript."""
        messages = [Message("system", render("judge", "system")),
                    Message("user", self._prompt(agent, self.transcripts[agent]))]
        return await client.structured(messages, schema=score_schema(self.rubric),
                                       parse=lambda data: parse_scores(self.rubric, data), seed=self.seed(agent),
                                       fallback=None, purpose=f"rate:{self.rubric.name}", agent=agent,
                                       max_tokens=self.max_tokens)

    def _records(self, outcomes: Sequence[Outcome[Scores | None]], *, model: str) -> list[dict[str, Any]]:
        records = []
        for agent, outcome in zip(self.agents, outcomes, strict=True):
            scores, reasoning = outcome.value if outcome.ok and outcome.value is not None else ({}, None)
            for d in self.rubric.dimensions:
                records.append({"run": self.run_dir.resolve().name, "scenario": self.scenario.name, "agent": agent,
                                "rubric": self.rubric.name, "dimension": d.name, "score": scores.get(d.name),
                                "min": d.min, "max": d.max, "ok": outcome.ok, "reasoning": reasoning,
                                "model": model, "seed": self.seed(agent)})
        return records

    # -- output --------------------------------------------------------------------------------------------
    def _write(self, records: list[dict[str, Any]]) -> list[Path]:
        """Writes ``ratings/<rubric>.jsonl``, ``.md`` and ``.png``, each through a temporary file."""
        from simulacra.worlds.plots import plot_ratings

        self.out.mkdir(exist_ok=True)
        name = self.rubric.name
        jsonl, md, png = (self.out / f"{name}.{ext}" for ext in ("jsonl", "md", "png"))
        _replace(jsonl, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        _replace(md, self.markdown(records))
        part = self.out / f".{name}.part.png"  # the suffix tells matplotlib the format
        title = f"{self.scenario.name} ({self.run_dir.resolve().name}): {name}, judged by {records[0]['model']}"
        plot_ratings(records, self.rubric, part, title=title)
        os.replace(part, png)
        return [jsonl, md, png]

    def _show(self, records: Sequence[Mapping[str, Any]], paths: Sequence[Path]) -> None:
        """Prints the scores as a Rich table, then where they were written."""
        dims = self.rubric.dimensions
        table = Table(title=escape(f"{self.rubric.name} ratings of {self.run_dir.resolve().name}"))
        table.add_column("agent")
        for d in dims:
            table.add_column(escape(f"{d.name}\n({d.min}..{d.max})"), justify="right")
        for agent in self.agents:
            table.add_row(escape(agent), *(_score(_find(records, agent, d.name)) for d in dims))
        table.add_row("mean", *(_mean(records, d.name) for d in dims), style="bold")
        self.console.print(table)
        self.console.print(f"ratings written to {', '.join(str(p) for p in paths)}", highlight=False, markup=False,
                           soft_wrap=True)


# -- the judge's answer --------------------------------------------------------------------------------------
def score_schema(rubric: Rubric) -> dict[str, Any]:
    """The JSON schema of the judge's answer: a short reasoning and one whole number per dimension, in range."""
    properties: dict[str, Any] = {"reasoning": {"type": "string", "maxLength": REASONING_CHARS}}
    for d in rubric.dimensions:
        properties[d.name] = {"type": "integer", "enum": list(range(d.min, d.max + 1))}
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def parse_scores(rubric: Rubric, data: Any) -> Scores:
    """The scores and the reasoning in the judge's answer ``data``.

    Returns:
        (dimension -> score, reasoning cut to 300 characters).

    Raises:
        ParseError: Not an object, or a score missing, not a whole number (``true`` is not one) or out of its
            range; the feedback names every dimension's range.
    """
    problems = [f"a JSON {type(data).__name__}, not an object"] if not isinstance(data, dict) else []
    values = data if isinstance(data, dict) else {}
    for d in rubric.dimensions:
        value = values.get(d.name)
        if d.name not in values:
            problems.append(f"{d.name} is missing")
        elif not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{d.name} = {json.dumps(value)[:40]} is not a whole number")
        elif not d.min <= value <= d.max:
            problems.append(f"{d.name} = {value} is outside {d.min}..{d.max}")
    if problems:
        why = "; ".join(problems)
        ranges = ", ".join(f"{d.name} {d.min}..{d.max}" for d in rubric.dimensions)
        msg = f"scores refused: {why[:200]}"
        raise ParseError(msg, feedback=f"Those scores are not allowed ({why[:160]}). Give each dimension one whole "
                                       f"number in its range: {ranges}. Reply as JSON: {_example(rubric)}.")
    reasoning = values.get("reasoning")
    reasoning = " ".join(reasoning.split())[:REASONING_CHARS] if isinstance(reasoning, str) else ""
    return {d.name: values[d.name] for d in rubric.dimensions}, reasoning


def _example(rubric: Rubric) -> str:
    return '{"reasoning": "..."' + "".join(f', "{d.name}": {d.min}..{d.max}' for d in rubric.dimensions) + "}"


# -- the rubric ----------------------------------------------------------------------------------------------
def shipped_rubrics() -> dict[str, Path]:
    """The rubrics that ship with Simulacra (``scenarios/rubrics/<name>.yaml``), by name."""
    return {path.stem: path for path in sorted(RUBRICS.glob("*.yaml"))}


def rubric_path(rubric: str | Path) -> Path:
    """The file of ``rubric``: a path as given, or the file of a shipped rubric named so.

    Raises:
        ScenarioError: A bare name that is neither a file nor a shipped rubric.
    """
    path, shipped = Path(rubric), shipped_rubrics()
    if isinstance(rubric, str) and rubric in shipped and not path.exists():
        return shipped[rubric]
    if path.suffix or len(path.parts) > 1 or path.exists():
        return path
    msg = (f"--rubric {str(rubric)[:80]!r}: no such file and no shipped rubric; give a rubric YAML file or one "
           f"of: {', '.join(shipped)}")
    raise ScenarioError(msg)


def _load_rubric(path: Path) -> Rubric:
    rubric = load_file(path, Rubric, what="rubric")
    for n, d in enumerate(rubric.dimensions):
        if d.name == "reasoning":
            msg = f"{path}: dimensions[{n}].name: 'reasoning' is where the judge explains its scores; rename it"
            raise ScenarioError(msg)
    return rubric


def _judge_sets(items: Sequence[str]) -> list[str]:
    """The ``--judge-set`` overrides, refused unless each sets an ``llm.*`` field."""
    for item in items:
        key, _ = split_override(item)
        if not key.startswith("llm."):
            msg = f"--judge-set {item[:80]!r}: only llm.* fields choose the judge; e.g. --judge-set llm.backend=openai"
            raise ScenarioError(msg)
    return list(items)


# -- small helpers -------------------------------------------------------------------------------------------
def _find(records: Sequence[Mapping[str, Any]], agent: str, dimension: str) -> Mapping[str, Any] | None:
    return next((r for r in records if r["agent"] == agent and r["dimension"] == dimension), None)


def _score(record: Mapping[str, Any] | None) -> str:
    return "–" if record is None or record["score"] is None else str(record["score"])


def _mean(records: Sequence[Mapping[str, Any]], dimension: str) -> str:
    scores = [r["score"] for r in records if r["dimension"] == dimension and r["score"] is not None]
    return f"{statistics.fmean(scores):.2f}" if scores else "–"


def _cell(text: str) -> str:
    """Text fit for one Markdown table cell or list item: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _replace(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file, so a reader never sees half a file."""
    part = path.with_name(f".{path.name}.part")
    part.write_text(text, encoding="utf-8")
    os.replace(part, path)

