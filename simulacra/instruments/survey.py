"""Surveys asked during a run (a scenario's ``surveys:``): each answer an event, the shares and means per step.

A survey due at step S is asked after the world's step S (step 0: after ``run_started``, before the first step),
of every agent it names, all items at once (their requests reach the engine together). Asking draws nothing from
the world's RNG and, unless ``remember: true``, leaves nothing in the agents: a run with a survey does what the
same run without it does. Answers are schema-constrained by the item's type (`agents.respondent`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pandas as pd

from simulacra.agents.respondent import Recalls, Response, instrument_seed, respond, respondent
from simulacra.errors import SimError
from simulacra.events import EventKind
from simulacra.scenarios.instruments import SurveyConfig, SurveyItem
from simulacra.worlds.world import gather

if TYPE_CHECKING:
    from simulacra.worlds.world import World

__all__ = ["Surveys"]


@runtime_checkable
class _Remembers(Protocol):
    """A respondent that can keep what it answered (a survey with ``remember: true``)."""

    def remember(self, kind: str, text: str) -> None:
        """Keeps ``text`` as a memory of ``kind``."""
        ...


class Surveys:
    """The surveys of one run: when each is due, asking it, and the figures of the answers so far.

    Attributes:
        answers: One record per answer (survey, item, step, agent, answer, ok), in the order they were emitted.
    """

    def __init__(self, surveys: Sequence[SurveyConfig], *, total_steps: int, seed: int, top_k: int = 5) -> None:
        """Prepares the schedule.

        Args:
            surveys: The scenario's surveys.
            total_steps: The run's steps (``end`` means this one).
            seed: The scenario's seed (every answer's sampling seed is made from it and names).
            top_k: Memories a generative agent retrieves for a question.
        """
        self.surveys = list(surveys)
        self.total_steps = total_steps
        self.seed = seed
        self.top_k = top_k
        self.answers: list[dict[str, Any]] = []

    def __bool__(self) -> bool:
        return bool(self.surveys)

    def due(self, step: int) -> list[SurveyConfig]:
        """The surveys asked at the end of ``step``."""
        return [s for s in self.surveys if step in s.steps(self.total_steps)]

    def ask(self, world: World, step: int) -> int:
        """Asks every survey due at ``step`` and emits one ``survey_answer`` event per answer.

        Returns:
            How many answers were asked for.
        """
        jobs = [(survey, item, agent) for survey in self.due(step) for agent in _respondents(survey, world)
                for item in survey.items]
        if not jobs:
            return 0
        llm = world.llm_client()
        llm.context = {"step": step, "phase": "survey"}
        time = world.clock_text()
        responses: list[Response] = llm.run(gather(
            respond(agent, llm, question=item.question, item=item, template="survey", time=time, k=self.top_k,
                    seed=instrument_seed(self.seed, "survey", survey.name, step, agent.name, item.name),
                    purpose=f"survey:{survey.name}:{item.name}")
            for survey, item, agent in jobs))
        for (survey, item, agent), response in zip(jobs, responses, strict=True):
            record = {"survey": survey.name, "item": item.name, "step": step, "agent": agent.name,
                      "answer": response.answer, "ok": response.ok}
            self.answers.append(record)
            world.emit(EventKind.SURVEY_ANSWER, agent, {
                "survey": survey.name, "item": item.name, "type": item.type, "question": item.question,
                "answer": response.answer, "ok": response.ok, "attempts": response.attempts, "error": response.error,
                "memories": [m.id for m in response.memories]})
            if survey.remember and response.ok and isinstance(agent, _Remembers):  # `_respondents` checked it
                agent.remember("said", f'I was asked "{item.question}" and I answered: {response.answer}')
        return len(jobs)

    # -- figures ---------------------------------------------------------------------------------------
    def figures(self, survey: SurveyConfig, item: SurveyItem, step: int) -> dict[str, float]:
        """The figures of one item at one step: n, failed, and shares (options) or mean and spread (numbers)."""
        rows = [a for a in self.answers if (a["survey"], a["item"], a["step"]) == (survey.name, item.name, step)]
        values = [a["answer"] for a in rows if a["ok"]]
        out: dict[str, float] = {"n": float(len(values)), "failed": float(len(rows) - len(values))}
        if item.type in ("yes_no", "choice", "likert"):
            options: list[Any] = (["yes", "no"] if item.type == "yes_no" else list(item.options)
                                  if item.type == "choice" else list(range(1, item.scale + 1)))
            for option in options:
                out[str(option)] = values.count(option) / len(values) if values else math.nan
        if item.type in ("likert", "number"):
            out["mean"] = statistics.fmean(values) if values else math.nan
            out["sd"] = statistics.pstdev(values) if values else math.nan
        return out

    def asked(self, survey: SurveyConfig) -> list[int]:
        """The steps at which ``survey`` was asked so far."""
        return sorted({a["step"] for a in self.answers if a["survey"] == survey.name})

    def frame(self) -> pd.DataFrame:
        """One row per step a survey was asked: columns ``survey.<name>.<item>.<figure>``."""
        rows: dict[int, dict[str, float]] = {}
        for survey in self.surveys:
            for step in self.asked(survey):
                for item in survey.items:
                    figures = self.figures(survey, item, step)
                    rows.setdefault(step, {}).update({f"survey.{survey.name}.{item.name}.{k}": v
                                                      for k, v in figures.items()})
        frame = pd.DataFrame.from_dict(rows, orient="index").sort_index()
        frame.index.name = "step"
        return frame.reset_index()

    def join(self, metrics: pd.DataFrame) -> pd.DataFrame:
        """``metrics`` (one row per step, a ``step`` column) with the survey columns; a step-0 survey adds a row."""
        frame = self.frame()
        if frame.empty:
            return metrics
        return metrics.merge(frame, on="step", how="outer").sort_values("step").reset_index(drop=True)

    def summary(self) -> dict[str, Any]:
        """``summary.json``'s ``surveys``: per survey and item, the question, the type and each step's figures."""
        return {survey.name: {item.name: {
            "question": item.question, "type": item.type,
            "steps": {str(step): {k: (None if math.isnan(v) else round(v, 4))
                                  for k, v in self.figures(survey, item, step).items()}
                      for step in self.asked(survey)}} for item in survey.items} for survey in self.surveys}

    def plots(self, folder: Path, *, title: str) -> list[str]:
        """Writes ``survey-<name>.png`` for each survey asked at least once; returns the file names."""
        from simulacra.worlds.plots import plot_survey

        written = []
        frame = self.frame()
        for survey in self.surveys:
            if self.asked(survey):
                name = f"survey-{survey.name}.png"
                plot_survey(frame, survey, folder / name, title=title)
                written.append(name)
        return written

    def get_state(self) -> dict[str, Any]:
        """The answers so far (JSON-safe), for a snapshot."""
        return {"answers": [dict(a) for a in self.answers]}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores `get_state` output."""
        self.answers = [dict(a) for a in state.get("answers", [])]


def _respondents(survey: SurveyConfig, world: World) -> list[Recalls]:
    """The agents a survey asks, in the scenario's order (`respondent`: their recall, or their stream).

    Raises:
        SimError: One line: an agent's mind cannot be asked, or cannot remember its answer (``remember``).
    """
    names = list(world.by_name) if survey.ask == "all" else list(survey.ask)
    agents = [respondent(world, world.by_name[name]) for name in names]
    for agent in agents:
        if survey.remember and not callable(getattr(agent, "remember", None)):
            msg = (f"surveys {survey.name!r}: agent {agent.name!r} ({type(agent).__name__}) cannot remember its "
                   "answer (no remember(kind, text)); set remember: false for this survey")
            raise SimError(msg)
    return agents
