"""The instruments' sections: scheduled surveys (a scenario's ``surveys:``) and the rubrics a rater scores with.

Parts:
    SurveyItem: one question with its response type (likert, choice, number, yes_no, text).
    SurveyConfig: one survey: its name, when it is asked, whom, and its items.
    Dimension, Rubric: what a transcript judge scores (``python run.py rate``).
    RESPONSE_TYPES: the response types.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from simulacra.scenarios.sections import Section, at

__all__ = ["RESPONSE_TYPES", "Dimension", "Rubric", "SurveyConfig", "SurveyItem"]

RESPONSE_TYPES = ("likert", "choice", "number", "yes_no", "text")
_NAME = r"^[A-Za-z0-9_]+$"


class SurveyItem(Section):
    """One survey item: a question and the type of answer it takes (the engine is held to that type)."""

    name: str = Field(pattern=_NAME, max_length=40, description="Short name (letters, digits, _), used in "
                      "metrics columns, e.g. knows.")
    question: str = Field(min_length=1, max_length=500, description="What the agent is asked, e.g. 'Do you "
                          "know about a Valentine's Day party?'.")
    type: Literal["likert", "choice", "number", "yes_no", "text"] = Field(
        description="likert (1..scale, with labels), choice (one of options), number (min..max), yes_no, text.")
    scale: int = Field(5, ge=2, le=11, description="likert: points of the scale (answers 1..scale).")
    labels: list[str] = Field(default_factory=list, description="likert: one label per point, lowest first "
                              "(e.g. [strongly disagree, ..., strongly agree]); empty: numbers only.")
    options: list[str] = Field(default_factory=list, description="choice: the options (at least 2).")
    min: float | None = Field(None, allow_inf_nan=False, ge=-1e12, le=1e12,
                              description="number: the smallest answer allowed (required there).")
    max: float | None = Field(None, allow_inf_nan=False, ge=-1e12, le=1e12,
                              description="number: the largest answer allowed (required there).")
    integer: bool = Field(False, description="number: whole numbers only.")
    max_length: int = Field(200, ge=1, le=2000, description="text: most characters of an answer.")

    @model_validator(mode="after")
    def _type_needs(self) -> SurveyItem:
        if self.type == "likert" and self.labels and len(self.labels) != self.scale:
            raise at("labels", f"{len(self.labels)} labels for a {self.scale}-point scale; give one per point "
                     "or none")
        if self.type == "choice":
            if len(self.options) < 2:
                raise at("options", "a choice item needs at least 2 options, e.g. options: [cafe, park]")
            if len(set(self.options)) != len(self.options):
                raise at("options", f"options repeat: {self.options!r}; each must be unique")
        elif self.options:
            raise at("options", f"only choice items take options; this item's type is {self.type!r}")
        if self.type == "number":
            if self.min is None or self.max is None:
                raise at("min" if self.min is None else "max", "a number item needs min and max, e.g. min: 0, max: 10")
            if self.max <= self.min:
                raise at("max", f"must be greater than min ({self.min:g})")
        return self


class SurveyConfig(Section):
    """A survey asked during the run: at given steps, of all agents or some; answers do not enter memory."""

    name: str = Field(pattern=_NAME, max_length=40, description="Short name (letters, digits, _); names the "
                      "plot survey-<name>.png and the metrics columns survey.<name>.<item>.<figure>.")
    at: list[int | Literal["start", "end"]] = Field(
        default_factory=list, description="Steps at whose end it is asked; 0 or start: before the first step; "
        "end: after the last (whatever --steps says).")
    every: int | None = Field(None, ge=1, description="Also ask every this many steps (after steps N, 2N, ...).")
    ask: Literal["all"] | list[str] = Field("all", description="Who answers: all, or a list of agent names.")
    remember: bool = Field(False, description="Town: the question and the agent's answer become a memory "
                           "(it may change what the agent does next); false: asking leaves no trace in the agent.")
    items: list[SurveyItem] = Field(min_length=1, max_length=50, description="The questions.")

    @model_validator(mode="after")
    def _when_and_what(self) -> SurveyConfig:
        if not self.at and self.every is None:
            raise at("at", "say when the survey is asked: at: [start, end] or every: N")
        if any(isinstance(s, int) and s < 0 for s in self.at):
            raise at("at", f"steps start at 0 (before the first step); got {self.at!r}")
        names = [i.name for i in self.items]
        for n, name in enumerate(names):
            if name in names[:n]:
                raise at(f"items.{n}.name", f"duplicate item name {name!r}; names must be unique in a survey")
        return self

    def steps(self, total: int) -> set[int]:
        """The steps (0..``total``) at whose end this survey is asked."""
        out = {0 if s == "start" else total if s == "end" else int(s) for s in self.at}
        if self.every:
            out.update(range(self.every, total + 1, self.every))
        return {s for s in out if s <= total}


class Dimension(Section):
    """One dimension of a rubric, scored on a whole-number scale."""

    name: str = Field(pattern=_NAME, max_length=40, description="Short name, e.g. believability.")
    description: str = Field(min_length=1, max_length=2000, description="What the judge looks for.")
    min: int = Field(ge=-100, le=100, description="The lowest score.")
    max: int = Field(ge=-100, le=100, description="The highest score.")

    @model_validator(mode="after")
    def _scale(self) -> Dimension:
        if self.max <= self.min:
            raise at("max", f"must be greater than min ({self.min})")
        return self


class Rubric(Section):
    """What a transcript judge scores: named dimensions with scales and descriptions."""

    name: str = Field(pattern=_NAME, max_length=40, description="Names the output files ratings/<name>.*.")
    description: str = Field("", max_length=2000, description="What the rubric measures; shown to the judge.")
    source: str = Field("", max_length=500, description="Where the rubric comes from (a paper).")
    dimensions: list[Dimension] = Field(min_length=1, max_length=20, description="The dimensions scored.")

    @model_validator(mode="after")
    def _unique(self) -> Rubric:
        names = [d.name for d in self.dimensions]
        for n, name in enumerate(names):
            if name in names[:n]:
                raise at(f"dimensions.{n}.name", f"duplicate dimension {name!r}; names must be unique")
        return self
