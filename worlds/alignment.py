"""The Stable-Alignment sandbox (Liu et al. 2023): a grid society that answers, rates and revises.

A step is one round. Selected agents draw a question; each drafts an answer, recalling its own most similar
past answer; raters chosen among its grid neighbours within ``radius`` (plus optional global raters), each kept
with probability 1 - ``dropout`` and at most ``raters`` of them, rate the draft 1..``scale`` and say why; the
author revises from the mean rating and the reasons; the same raters rate the revision; an impartial observer
scores alignment and engagement before and after. Every interaction is one ``interaction`` event, the record
that ``harvest`` turns into training data.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from pathlib import Path
from statistics import mean, pstdev
from typing import Any

import mesa
from mesa.discrete_space import OrthogonalMooreGrid

from simulacra.agents.llm import LLMClient, Message
from simulacra.agents.prompts import render
from simulacra.agents.social_agent import SocialAgent
from simulacra.errors import ParseError
from simulacra.events import EventKind
from simulacra.memory.answer_memory import AnswerMemory
from simulacra.scenarios.schema import AgentConfig, SocietyConfig
from simulacra.worlds.plots import plot_alignment
from simulacra.worlds.questions import Question
from simulacra.worlds.world import Observer, World, WorldSetup, gather

__all__ = ["METRICS", "AlignmentWorld"]

METRICS = ("interactions", "draft_rating", "revision_rating", "improved_share", "alignment_before",
           "alignment_after", "engagement_before", "engagement_after", "rater_agreement")


class AlignmentWorld(World):
    """Agents on a Mesa grid answering questions and rating each other (see the module docstring)."""

    llm: LLMClient  # every member asks it (`World` allows None for worlds without LLM-driven agents)

    def __init__(self, *, seed: int, agents: Sequence[AgentConfig], llm: LLMClient,
                 questions: Sequence[Question], size: int = 3, radius: int = 1, raters: int = 4,
                 global_raters: int = 0, dropout: float = 0.5, askers: int | None = None, observers: int = 1,
                 scale: int = 7, memory: AnswerMemory | None = None, observers_of_events: Iterable[Observer] = ()
                 ) -> None:
        """Places the agents on the grid, row by row.

        Args:
            seed: Seeds the RNG (questions, askers, raters, dropout, LLM sampling seeds).
            agents: The society (at most ``size`` squared).
            llm: The client (or its settings).
            questions: The question set, drawn in a seeded shuffled order.
            size: Grid width and height.
            radius: Neighbours within this many cells (Moore) may rate.
            raters: Most raters per answer.
            global_raters: Raters drawn from anywhere on the grid besides the neighbours.
            dropout: Chance that a chosen rater does not answer.
            askers: Agents who answer a question each round; None: all.
            observers: Independent observer scorings per answer, averaged.
            scale: Ratings and scores go from 1 to this.
            memory: Past answers to recall; None keeps none.
            observers_of_events: Called with every event.
        """
        super().__init__(seed=seed, llm=llm, observers=observers_of_events)
        self.radius, self.max_raters, self.global_raters = radius, raters, global_raters
        self.dropout, self.askers, self.observer_count, self.scale = dropout, askers, observers, scale
        self.memory = memory
        self.questions = list(questions)
        self._deck: list[Question] = []
        self.grid = OrthogonalMooreGrid((size, size), torus=False, random=self.random)
        cells = [self.grid[(x, y)] for y in range(size) for x in range(size)]
        for spec, cell in zip(agents, cells, strict=False):
            agent = SocialAgent(self, name=spec.name, persona=spec.persona)
            agent.cell = cell
            self.by_name[spec.name] = agent
        if memory is not None:
            memory.track(self.by_name)
        self.round_stats: dict[str, float] = dict.fromkeys(METRICS, 0.0)
        self.records: list[dict[str, Any]] = []
        self.datacollector = mesa.DataCollector(model_reporters={k: _stat(k) for k in METRICS},
                                                agent_reporters={"name": "name"})

    @classmethod
    def from_setup(cls, setup: WorldSetup) -> AlignmentWorld:
        """The society of a run: its section, its question set, the run's client and (``recall``) answer memory.

        Args:
            setup: The scenario, the client, the run's stores and identity.

        Returns:
            The society at step 0.
        """
        from simulacra.worlds.questions import load_questions

        s, w = setup.scenario, setup.section_as(SocietyConfig)
        llm = setup.llm_client()
        memory = None
        if w.recall:
            from simulacra.memory.answer_memory import AnswerMemory

            memory = AnswerMemory(setup.chroma(), embed=setup.embed, prefix=setup.collection("answers", most=30))
        return cls(seed=s.seed, agents=s.population, llm=llm, questions=load_questions(w.questions),
                   size=w.size, radius=w.radius, raters=w.raters, global_raters=w.global_raters, dropout=w.dropout,
                   askers=w.askers, observers=w.observers, scale=w.scale, memory=memory,
                   observers_of_events=setup.observers)
    def start_details(self) -> dict[str, Any]:
        """Where each agent sits and the round's parameters."""
        return {"agents": {a.name: list(a.cell.coordinate) for a in self.by_name.values()},
                "questions": len(self.questions), "radius": self.radius, "raters": self.max_raters,
                "global_raters": self.global_raters, "dropout": self.dropout, "scale": self.scale}

    # -- a round ---------------------------------------------------------------------------------------
    def step(self) -> None:
        """One round: draw, draft, rate, revise, rate again, score; then metrics."""
        self.step_counts.clear()
        agents = list(self.by_name.values())
        for agent in agents:
            agent.begin()
        askers = agents if self.askers is None else self.random.sample(agents, min(self.askers, len(agents)))
        askers = sorted(askers, key=lambda a: a.unique_id)
        plans = [self._plan(a) for a in askers]
        drafts = self._run("draft", [a.draft(p["question"].question, p["recalled"]) for a, p in zip(askers, plans,
                                                                                                   strict=True)])
        draft_ratings = self._rate(askers, plans, drafts, "draft")
        revisions = self._run("revise", [a.revise(p["question"].question, d, _mean(r), _feedback(r)) for a, p, d, r
                                         in zip(askers, plans, drafts, draft_ratings, strict=True)])
        revision_ratings = self._rate(askers, plans, revisions, "revision")
        before = self._score([p["question"].question for p in plans], drafts, "draft")
        after = self._score([p["question"].question for p in plans], revisions, "revision")
        records = [self._record(*row) for row in zip(askers, plans, drafts, draft_ratings, revisions, revision_ratings,
                                                     before, after, strict=True)]
        for agent in agents:
            for kind, data in agent.outbox:
                self.emit(kind, agent, data)
            agent.outbox.clear()
        for agent, record in zip(askers, records, strict=True):
            self.emit(EventKind.INTERACTION, agent, record)
            self._remember(agent, record)
        self.records += records
        self.round_stats = _round_stats(records, self.scale)
        self.datacollector.collect(self)
        self.emit(EventKind.STEP_ENDED, None, dict(self.round_stats))

    def _remember(self, agent: SocialAgent, record: dict[str, Any]) -> None:
        """Keeps the better-rated of draft and revision as the agent's answer to the question."""
        if self.memory is None:
            return
        best = record["revised"] if _better(record) else record["draft"]
        score = max(filter(None, [record["mean_draft"], record["mean_revision"]]), default=0.0)
        self.memory.add(agent.name, question=record["question"], answer=best, rating=score, step=self.steps)

    def _plan(self, author: SocialAgent) -> dict[str, Any]:
        """The author's question, recalled answer and raters, all drawn before any LLM call."""
        if not self._deck:
            self._deck = self.random.sample(self.questions, len(self.questions))
        question = self._deck.pop()
        near = [a for a in author.cell.get_neighborhood(radius=self.radius).agents if a is not author]
        near = sorted(near, key=lambda a: a.unique_id)
        others = [a for a in self.by_name.values() if a is not author and a not in near]
        far = self.random.sample(others, min(self.global_raters, len(others)))
        kept = [a for a in near + far if self.random.random() >= self.dropout]
        chosen = sorted(self.random.sample(kept, min(self.max_raters, len(kept))), key=lambda a: a.unique_id)
        recalled = self.memory.recall(author.name, question.question) if self.memory is not None else None
        return {"question": question, "raters": chosen, "recalled": recalled, "global": {a.name for a in far}}

    def _run(self, phase: str, coroutines: list[Awaitable[Any]]) -> list[Any]:
        self.llm.context = {"step": self.steps, "phase": phase}
        return self.llm.run(gather(coroutines))

    def _rate(self, askers: list[SocialAgent], plans: list[dict[str, Any]], answers: list[str],
              phase: str) -> list[list[dict[str, Any]]]:
        jobs = [(a, p, r, answer) for a, p, answer in zip(askers, plans, answers, strict=True) for r in p["raters"]]
        got = self._run(f"rate_{phase}", [r.rate(a.name, p["question"].question, answer, phase=phase)
                                          for a, p, r, answer in jobs])
        out: list[list[dict[str, Any]]] = [[] for _ in askers]
        index = {a.name: i for i, a in enumerate(askers)}
        for (author, plan, rater, _), rating in zip(jobs, got, strict=True):
            if rating is not None:
                out[index[author.name]].append({"rater": rater.name, "rating": rating[0], "reason": rating[1],
                                                "global": rater.name in plan["global"]})
        return out

    def _score(self, questions: list[str], answers: list[str], phase: str) -> list[dict[str, float] | None]:
        """The observer's alignment and engagement scores (mean of ``observers`` scorings), None if all failed."""
        jobs = [(i, k) for i in range(len(answers)) for k in range(self.observer_count)]
        got = self._run(f"score_{phase}", [self._observe(questions[i], answers[i], f"{phase}:{i}:{k}")
                                           for i, k in jobs])
        out: list[dict[str, float] | None] = []
        for i in range(len(answers)):
            scores = [s for (j, _), s in zip(jobs, got, strict=True) if j == i and s is not None]
            out.append({key: round(mean(s[key] for s in scores), 2) for key in ("alignment", "engagement")}
                       if scores else None)
        return out

    async def _observe(self, question: str, answer: str, label: str) -> dict[str, int] | None:
        messages = [Message("system", render("alignment", "observer_system")),
                    Message("user", render("alignment", "score", question=question, answer=answer))]
        scale = self.scale
        schema = {"type": "object", "properties": {k: {"type": "integer", "minimum": 1, "maximum": scale}
                                                   for k in ("alignment", "engagement")},
                  "required": ["alignment", "engagement"]}
        seed = (self.steps * 7919 + zlib.crc32(label.encode())) % 2**31
        outcome = await self.llm.structured(messages, schema=schema, parse=lambda d: _scores(d, scale), seed=seed,
                                            fallback=None, purpose="observe")
        return outcome.value

    def _record(self, author: SocialAgent, plan: dict[str, Any], draft: str, ratings: list[dict[str, Any]],
                revised: str, revision_ratings: list[dict[str, Any]], before: dict[str, float] | None,
                after: dict[str, float] | None) -> dict[str, Any]:
        question = plan["question"]
        return {"iteration": self.steps, "agent": author.name, "question_id": question.id,
                "category": question.category, "question": question.question,
                "recalled": plan["recalled"], "draft": draft, "ratings": ratings, "mean_draft": _mean(ratings),
                "revised": revised, "revision_ratings": revision_ratings, "mean_revision": _mean(revision_ratings),
                "observer_before": before, "observer_after": after}

    # -- snapshots -------------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """A JSON-safe snapshot: `World.get_state`, the agents, the question deck, the records, the memory.

        The deck is the questions still to draw this pass, as indices into ``questions`` (the last is drawn next).
        """
        where = {id(q): i for i, q in enumerate(self.questions)}
        return {**super().get_state(), "agents": [a.get_state() for a in self.by_name.values()],
                "deck": [where[id(q)] for q in self._deck], "records": [dict(r) for r in self.records],
                "round_stats": dict(self.round_stats),
                **({"memory": self.memory.get_state()} if self.memory is not None else {})}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores a snapshot made by `get_state` into a world built with the same arguments.

        Raises:
            ValueError: The snapshot's agents are not this world's.
        """
        names = [a["name"] for a in state["agents"]]
        if names != list(self.by_name):
            msg = f"snapshot agents {names!r} differ from this world's {list(self.by_name)!r}"
            raise ValueError(msg)
        super().set_state(state)
        for agent_state in state["agents"]:
            self.by_name[agent_state["name"]].set_state(agent_state)
        self._deck = [self.questions[int(i)] for i in state["deck"]]
        self.records = [dict(r) for r in state["records"]]
        self.round_stats = {k: float(v) for k, v in state["round_stats"].items()}
        if self.memory is not None and "memory" in state:
            self.memory.set_state(state["memory"])

    # -- outputs ---------------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Interactions, and each metric over all rounds."""
        return {"interactions": len(self.records), "overall": _round_stats(self.records, self.scale)}

    def plots(self, metrics: Any, folder: Path, *, title: str) -> list[str]:
        """Ratings and observer scores before and after revision per round (alignment.png)."""
        plot_alignment(metrics, folder / "alignment.png", title=title, scale=self.scale)
        return ["alignment.png"]


def _scores(data: Any, scale: int) -> dict[str, int]:
    ok = isinstance(data, dict) and all(isinstance(data.get(k), int) and not isinstance(data.get(k), bool)
                                        and 1 <= data[k] <= scale for k in ("alignment", "engagement"))
    if not ok:
        msg = f"bad scores {data!r}"
        raise ParseError(msg, feedback=f"alignment and engagement must be integers from 1 to {scale}.")
    return {"alignment": data["alignment"], "engagement": data["engagement"]}


def _mean(ratings: list[dict[str, Any]]) -> float | None:
    return round(mean(r["rating"] for r in ratings), 2) if ratings else None


def _feedback(ratings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"rating": r["rating"], "reason": r["reason"]} for r in ratings]


def _better(record: dict[str, Any]) -> bool:
    before, after = record["mean_draft"], record["mean_revision"]
    return after is not None and (before is None or after > before)


def _round_stats(records: list[dict[str, Any]], scale: int) -> dict[str, float]:
    """The metrics of a set of interactions; a metric with no data is 0.0 (see the README)."""
    def avg(values: Iterable[float | None]) -> float:
        kept = [v for v in values if v is not None]
        return round(mean(kept), 3) if kept else 0.0

    both = [r for r in records if r["mean_draft"] is not None and r["mean_revision"] is not None]
    spread = [pstdev([x["rating"] for x in r["ratings"]]) for r in records if len(r["ratings"]) > 1]
    most = (scale - 1) / 2  # the largest possible spread of ratings on the scale
    return {
        "interactions": float(len(records)),
        "draft_rating": avg(r["mean_draft"] for r in records),
        "revision_rating": avg(r["mean_revision"] for r in records),
        "improved_share": round(sum(r["mean_revision"] > r["mean_draft"] for r in both) / len(both), 3) if both
        else 0.0,
        "alignment_before": avg((r["observer_before"] or {}).get("alignment") for r in records),
        "alignment_after": avg((r["observer_after"] or {}).get("alignment") for r in records),
        "engagement_before": avg((r["observer_before"] or {}).get("engagement") for r in records),
        "engagement_after": avg((r["observer_after"] or {}).get("engagement") for r in records),
        "rater_agreement": round(1 - mean(spread) / most, 3) if spread else 0.0,
    }


def _stat(key: str) -> Any:
    return lambda world: world.round_stats[key]
