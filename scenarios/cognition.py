"""The sections of how agents think: ``cognition`` (which mind, its planning and reflection) and ``memory``.

Parts:
    CognitionConfig: the ``cognition`` section.
    MemoryConfig, RetrievalConfig: the ``memory`` section and its retrieval weights.
    MINDS: the built-in minds (``cognition.kind``).
    mind_class: your mind class that ``cognition.kind`` names.
    is_town_agent: whether a mind class is a town agent.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from simulacra.scenarios.sections import Section, at

__all__ = ["MINDS", "CognitionConfig", "MemoryConfig", "RetrievalConfig", "is_town_agent", "mind_class"]


class RetrievalConfig(Section):
    """Memory retrieval (Park et al. 2023): weighted recency + importance + relevance, each min-max normalised."""

    recency: float = Field(1.0, ge=0, description="Weight of recency (paper: 1).")
    importance: float = Field(1.0, ge=0, description="Weight of importance (paper: 1).")
    relevance: float = Field(1.0, ge=0, description="Weight of relevance, cosine similarity (paper: 1).")
    decay: float = Field(0.995, gt=0, le=1, description="Recency decay per sim hour since last access (paper: 0.995).")
    top_k: int = Field(5, ge=1, le=100, description="Memories retrieved per query.")


class MemoryConfig(Section):
    """What an agent remembers and where (generative agents keep their memory stream in Chroma)."""

    recent: int = Field(8, ge=0, le=200, description="How many recent memories go into each prompt.")
    chroma_path: str | None = Field(None, description="Embedded Chroma folder; empty: <run folder>/chroma.")
    chroma_url: str | None = Field(None, description="A Chroma server (http://host:port) instead of the folder.")
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig, description="Retrieval weights.")


MINDS = ("simple", "generative", "babyagi")  # the built-in minds (cognition.kind)


def mind_class(name: str) -> type:
    """Your mind class that ``cognition.kind`` names (see `simulacra.plugins`).

    Raises:
        ValueError: One line: an unknown name, a path that does not import, or a class that is not a mesa Agent.
    """
    import mesa

    from simulacra.plugins import find_class

    def check(found: type) -> str | None:
        return None if issubclass(found, mesa.Agent) else "is not a mesa.Agent subclass; a mind is an agent class"

    return find_class(name, what="mind", builtins=MINDS, check=check)


def is_town_agent(cls: type) -> bool:
    """Whether ``cls`` is a `simulacra.agents.town_agent.TownAgent` (told by its bases, without importing it)."""
    return any(c.__name__ == "TownAgent" and c.__module__ == "simulacra.agents.town_agent" for c in cls.__mro__)


class CognitionConfig(Section):
    """How agents think: simple (one decision per step) or generative (Park et al. 2023)."""

    kind: str = Field(
        "simple", description="simple: one LLM decision per step (crafting world: Voyager agents; society "
        "world: its own agents); generative: memory stream, planning, reacting, dialogue and reflection (town); "
        "babyagi: a team works one objective from a shared task board, through the world's actions as tools "
        "(town, crafting); or your own mind, a mesa.Agent class (in the town a TownAgent), by import path "
        "package.module:Class or by a name in the entry-point group simulacra.minds.")
    reflection_threshold: int = Field(150, ge=1, description="Reflect when importance since the last "
                                      "reflection exceeds this (paper: 150).")
    reflection_recent: int = Field(100, ge=1, description="Recent memories the reflection questions come from.")
    reflection_questions: int = Field(3, ge=1, le=10, description="Salient questions per reflection (paper: 3).")
    reflection_insights: int = Field(5, ge=1, le=10, description="Insights per reflection (paper: 5).")
    dialogue_turns: int = Field(4, ge=1, le=20, description="Most utterances in one conversation.")
    dialogue_cooldown_steps: int = Field(6, ge=0, description="Steps before the same pair may talk again.")
    plan_hours: int = Field(8, ge=1, le=24, description="Hours the hourly schedule covers from the first step.")
    importance_batch: int = Field(8, ge=1, le=32, description="Memories rated per LLM call.")
    objective: str = Field("", description="babyagi: the team's objective (required there).")
    first_tasks: list[str] = Field(default_factory=list, description="babyagi: tasks on the board at the start; "
                                   "empty: one task, 'Make a plan for: <objective>'.")
    task_steps: int = Field(3, ge=1, le=50, description="babyagi: steps an agent works on one task; then what it "
                            "did becomes the task's result.")
    max_tasks: int = Field(20, ge=1, le=500, description="babyagi: most open and claimed tasks on the board.")
    max_attempts: int = Field(3, ge=1, le=20, description="babyagi: attempts before a task fails for good.")
    claim_ttl: int = Field(4, ge=1, description="babyagi: steps a claim lasts without the task closing; then it "
                           "goes back to the board.")
    dedup_threshold: float = Field(0.9, gt=0, le=1, description="babyagi: a new task this similar (cosine, "
                                   "MiniLM) to a listed one is dropped.")
    results_top_k: int = Field(5, ge=0, le=20, description="babyagi: past results retrieved for a task.")

    @model_validator(mode="after")
    def _babyagi_needs_an_objective(self) -> CognitionConfig:
        if self.kind not in MINDS:
            try:
                mind_class(self.kind)
            except ValueError as err:
                raise at("kind", str(err)) from None
        if self.kind == "babyagi" and not self.objective.strip():
            raise at("objective", "a babyagi team needs an objective, e.g. objective: prepare a festival")
        if self.task_steps > self.claim_ttl:
            raise at("claim_ttl", f"must be at least task_steps ({self.task_steps}), or working agents lose "
                      "their claims")
        return self
