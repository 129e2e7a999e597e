"""The scenario schema: the one place where scenario YAML is parsed and validated.

`load_scenario` reads a file, applies ``--set`` style overrides and returns a frozen `Scenario`; every
problem becomes one `ScenarioError` line naming the file, the line, the field path, the bad value and
what is allowed. The validated sections become the world's ``__init__`` keyword arguments.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import warnings
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, Discriminator, Field, SerializeAsAny, Tag, ValidationError, model_validator

from simulacra.errors import ScenarioError
from simulacra.scenarios.bounded import load_yaml, read_text
from simulacra.scenarios.instruments import SurveyConfig
from simulacra.scenarios.population import CrowdConfig, PerceptionConfig, crowd_agents
from simulacra.scenarios.sections import Section, WorldSection, at

__all__ = [
    "OLD_WORLD_TYPES",
    "AgentConfig",
    "ClockConfig",
    "CraftingConfig",
    "CrowdConfig",
    "CognitionConfig",
    "DiffusionConfig",
    "FORKABLE",
    "InjectConfig",
    "LLMConfig",
    "MemoryConfig",
    "OutputsConfig",
    "PerceptionConfig",
    "PlaceConfig",
    "PriceConfig",
    "RetrievalConfig",
    "SandboxConfig",
    "SocietyConfig",
    "Scenario",
    "ScenarioDeprecation",
    "SurveyConfig",
    "TownConfig",
    "fork_refusal",
    "load_file",
    "load_scenario",
    "parse_override",
]


_Section = Section
_at = at


class PriceConfig(_Section):
    """What the engine's tokens cost, per million (a hosted API's list price), to show a run's cost."""

    input: float = Field(ge=0, allow_inf_nan=False, description="Price of a million prompt tokens, e.g. 0.15.")
    output: float = Field(ge=0, allow_inf_nan=False, description="Price of a million generated tokens, e.g. 0.60.")


BUILTIN_BACKENDS = ("llamacpp", "openai", "langchain", "vllm", "dry")


class LLMConfig(_Section):
    """Which engine drives the agents, and how it is asked."""

    backend: str = Field(
        "llamacpp", description="llamacpp (embedded, CPU), openai (any OpenAI-compatible server), langchain, "
        "vllm (in-process engine, batched), dry (no model: instant schema-valid made-up answers, real token "
        "counts; to check a scenario and its cost); or your own Backend subclass: an import path "
        "package.module:Class, or a name an installed package registers in the entry-point group "
        "simulacra.backends (built with Class.from_config(llm)).")
    model: str | None = Field(
        None, description="llamacpp: a GGUF file (empty: the shipped SmolLM2-135M-Instruct); openai: the served "
        "model name; vllm: a model folder; dry: whose tokenizer counts tokens, a GGUF file or a model folder "
        "(empty: the shipped SmolLM2; anything else: 4 characters per token).")
    price: PriceConfig | None = Field(None, description="Price per million tokens, e.g. {input: 0.15, output: "
                                      "0.60}: the live view and summary.json show the cost; empty: no cost shown.")
    base_url: str | None = Field(None, description="openai: the server URL up to /v1, e.g. http://127.0.0.1:8000/v1.")
    base_urls: list[str] = Field(default_factory=list, description="openai: more servers of the same model; "
                                 "requests go round-robin over base_url and these.")
    server_slots: int | None = Field(None, ge=1, le=4096, description="openai: at most this many requests in "
                                     "flight to each server from all runs on this machine together (a sweep's "
                                     "runs share it; lock files in the temp folder); empty: no shared cap.")
    api_key_env: str = Field("OPENAI_API_KEY", description="openai: environment variable holding the API key.")
    schema_mode: Literal["json_schema", "json_object"] = Field(
        "json_schema", description="openai: how a JSON schema is sent; llama.cpp's server needs json_object.")
    langchain_class: str | None = Field(
        None, description="langchain: import path of a BaseChatModel, e.g. langchain_openai.ChatOpenAI.")
    langchain_kwargs: dict[str, Any] = Field(default_factory=dict, description="langchain: the model's arguments.")
    structured_method: Literal["function_calling", "json_schema", "json_mode"] = Field(
        "function_calling", description="langchain: with_structured_output method.")
    temperature: float = Field(0.7, ge=0, le=2, description="Sampling temperature (0 = greedy).")
    max_tokens: int = Field(96, ge=1, le=8192, description="Cap on tokens generated per call.")
    timeout_s: float = Field(60.0, gt=0, description="Limit on one call, in seconds.")
    retries: int = Field(2, ge=0, le=10, description="Retries after a failed or invalid answer, error fed back.")
    max_concurrency: int = Field(16, ge=1, le=4096, description="Requests in flight at once (servers: the cap "
                                 "on concurrent HTTP requests; peers use 128-200).")
    n_ctx: int = Field(2048, ge=256, description="llamacpp: context window in tokens.")
    n_threads: int = Field(2, ge=1, description="llamacpp: CPU threads.")
    engine_kwargs: dict[str, Any] = Field(default_factory=dict, description="vllm: more vllm.LLM arguments, e.g. "
                                          "gpu_memory_utilization: 0.9 (default 0.5), tensor_parallel_size: 2.")
    cache: bool = Field(True, description="Reuse answers to identical requests (same seed replays the run); "
                        "the dry backend stores none (its answers cost nothing).")
    cache_path: str | None = Field(None, description="Cache file; empty: <outputs.dir>/llm-cache.jsonl.")
    backoff_s: float = Field(0.5, ge=0, le=60, description="Wait before the first retry of an engine failure; "
                             "doubles each retry, with random jitter of +-50 %.")
    backoff_max_s: float = Field(8.0, ge=0, le=600, description="Longest wait between retries.")
    down_after_s: float = Field(120.0, gt=0, description="If every call fails to reach the engine for this "
                                "long, the run keeps its last snapshot and stops (exit 3) with the command "
                                "that resumes it.")

    @model_validator(mode="after")
    def _backend_needs(self) -> LLMConfig:
        if self.backend not in BUILTIN_BACKENDS:
            from simulacra.agents.llm import user_backend

            try:
                user_backend(self.backend)
            except ValueError as err:
                raise _at("backend", str(err)) from None
        if self.backend == "vllm" and not self.model:
            raise _at("model", "the vllm backend needs a model folder, e.g. model: .cache/smollm2-bf16")
        if self.backend == "openai" and not self.base_url:
            raise _at("base_url", "the openai backend needs a server URL, e.g. base_url: http://127.0.0.1:8000/v1")
        if self.backend == "openai" and not self.model:
            raise _at("model", "the openai backend needs the served model's name, e.g. model: smollm2")
        if self.backend == "langchain" and not self.langchain_class:
            raise _at("langchain_class", "the langchain backend needs a class, e.g. langchain_openai.ChatOpenAI")
        return self


class RetrievalConfig(_Section):
    """Memory retrieval (Park et al. 2023): weighted recency + importance + relevance, each min-max normalised."""

    recency: float = Field(1.0, ge=0, description="Weight of recency (paper: 1).")
    importance: float = Field(1.0, ge=0, description="Weight of importance (paper: 1).")
    relevance: float = Field(1.0, ge=0, description="Weight of relevance, cosine similarity (paper: 1).")
    decay: float = Field(0.995, gt=0, le=1, description="Recency decay per sim hour since last access (paper: 0.995).")
    top_k: int = Field(5, ge=1, le=100, description="Memories retrieved per query.")


class MemoryConfig(_Section):
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


class CognitionConfig(_Section):
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
                raise _at("kind", str(err)) from None
        if self.kind == "babyagi" and not self.objective.strip():
            raise _at("objective", "a babyagi team needs an objective, e.g. objective: prepare a festival")
        if self.task_steps > self.claim_ttl:
            raise _at("claim_ttl", f"must be at least task_steps ({self.task_steps}), or working agents lose "
                      "their claims")
        return self


class ClockConfig(_Section):
    """Simulated time."""

    start: datetime = Field(datetime(2026, 2, 13, 8, 0), description="Sim time of step 1, e.g. 2026-02-13 08:00.")
    minutes_per_step: int = Field(10, ge=1, le=1440, description="Sim minutes that one step lasts.")


class PlaceConfig(_Section):
    """A named place of the town."""

    name: str = Field(min_length=1, description="Unique name, used in prompts and actions.")
    kind: str = Field("place", description="What it is: home, cafe, park, store, ...")
    description: str = Field("", description="One line shown to agents who are there.")
    links: list[str] = Field(default_factory=list, description="Places one step away (streets go both ways).")
    capacity: int | None = Field(None, ge=1, description="Most agents at once; empty: unlimited.")


DEFAULT_PLACES: tuple[PlaceConfig, ...] = (
    PlaceConfig(name="plaza", kind="square", description="the town square", links=["cafe", "park", "store"]),
    PlaceConfig(name="cafe", kind="cafe", description="Hobbs Cafe, coffee and pastries", links=["plaza"]),
    PlaceConfig(name="park", kind="park", description="Johnson Park, benches and a pond", links=["plaza"]),
    PlaceConfig(name="store", kind="store", description="Harvey Oak Supply Store", links=["plaza"]),
)


class DiffusionConfig(_Section):
    """Information diffusion to track (the paper's party): who knows, who came."""

    keywords: list[str] = Field(min_length=1, description="A memory containing one of these means the agent knows.")
    place: str = Field(description="Where the event happens.")
    start: datetime = Field(description="When it starts (sim time).")
    end: datetime = Field(description="When it ends (sim time).")

    @model_validator(mode="after")
    def _ends_after_start(self) -> DiffusionConfig:
        if (self.start.tzinfo is None) != (self.end.tzinfo is None):  # they cannot be compared
            raise _at("end", "give start and end both with a time zone or both without")
        if self.end <= self.start:
            raise _at("end", f"must be after start ({self.start:%Y-%m-%d %H:%M})")
        return self


class TownConfig(_Section):
    """The town world: named places joined by streets."""

    type: Literal["town"] = Field(description="World type.")
    places: list[PlaceConfig] = Field(default_factory=lambda: list(DEFAULT_PLACES), min_length=1,
                                      description="The map; default: plaza, cafe, park, store.")
    diffusion: DiffusionConfig | None = Field(None, description="Track how news spreads (valentine scenario).")
    crowd: CrowdConfig | None = Field(None, description="Townspeople generated from seeded templates besides the "
                                      "named agents (see Population).")

    @model_validator(mode="after")
    def _map_is_consistent(self) -> TownConfig:
        names = [p.name for p in self.places]
        known, seen = set(names), set()  # sets: a map of 10,000 places is checked in milliseconds
        for i, place in enumerate(self.places):
            if place.name in seen:
                raise _at(f"places.{i}.name", f"duplicate place name {place.name!r}; names must be unique")
            seen.add(place.name)
            for j, link in enumerate(place.links):
                if link not in known:
                    raise _at(f"places.{i}.links.{j}", f"unknown place {link!r}; {_choices(link, names)}")
        if self.diffusion and self.diffusion.place not in names:
            place = self.diffusion.place
            raise _at("diffusion.place", f"unknown place {place!r}; {_choices(place, names)}")
        return self


class SandboxConfig(_Section):
    """Limits of the process each generated skill runs in."""

    cpu_s: float = Field(5, gt=0, le=120, description="CPU seconds a skill may use.")
    memory_mb: int = Field(256, ge=64, le=8192, description="Address space of the skill's process, MiB.")
    wall_s: float = Field(10, gt=0, le=600, description="Wall-clock seconds before the skill is killed.")


class CraftingConfig(_Section):
    """The crafting world (Voyager): a Minecraft-like tech tree on a grid, agents that learn code skills."""

    type: Literal["crafting"] = Field(description="World type.")
    size: int = Field(24, ge=8, le=256, description="Width and height of the map; y is depth.")
    density: dict[str, float] = Field(default_factory=dict, description="Block kind -> chance a cell of its "
                                      "depth holds one (tree, stone, coal_ore, iron_ore, diamond_ore).")
    hazards: bool = Field(True, description="Night zombies, lava by diamonds, hard rock.")
    tick_budget: int = Field(200, ge=1, description="Ticks a player's skill may spend in one step.")
    day_length: int = Field(4, ge=1, description="Every this many steps, a step is night.")
    skill_library: bool = Field(True, description="Store verified skills and retrieve them for new tasks; false "
                                "runs the paper's ablation without a library.")
    skills: str | None = Field(None, description="Start from the skill library of an earlier run (its run "
                               "folder or skills/ folder); empty: an empty library.")
    max_rounds: int = Field(4, ge=1, le=20, description="Write-run-critique rounds before a task is given up "
                            "(paper: 4).")
    top_k: int = Field(5, ge=0, le=20, description="Skills retrieved into the prompt for a task (paper: 5).")
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig, description="Limits of each skill's process.")

    @model_validator(mode="after")
    def _library_to_load_needs_a_library(self) -> CraftingConfig:
        if self.skills and not self.skill_library:
            raise _at("skills", "a library to load needs skill_library: true; drop one of the two")
        return self


class SocietyConfig(_Section):
    """The society of Stable Alignment: agents on a grid answer, rate their neighbours and revise.

    Its type was called ``sandbox`` before; `Scenario` still takes that name, with a `ScenarioDeprecation`.
    """

    type: Literal["society"] = Field(description="World type (the old name, sandbox, still works).")
    size: int = Field(3, ge=1, le=100, description="Grid width and height; agents fill it row by row "
                      "(reference code: 3).")
    radius: int = Field(1, ge=1, description="Neighbours within this many cells (Moore) may rate an answer.")
    raters: int = Field(4, ge=0, le=50, description="Most raters per answer (reference code: 4).")
    global_raters: int = Field(0, ge=0, le=50, description="Raters drawn from anywhere besides the neighbours "
                               "(the reference code's global interaction; off by default).")
    dropout: float = Field(0.5, ge=0, lt=1, description="Chance that a chosen rater does not answer (reference "
                           "code: 0.5).")
    askers: int | None = Field(None, ge=1, description="Agents who answer a question each round; empty: all.")
    observers: int = Field(1, ge=1, le=5, description="Observer scorings (alignment, engagement) per answer.")
    scale: int = Field(7, ge=2, le=10, description="Ratings and observer scores go from 1 to this (paper: 7).")
    questions: str | None = Field(None, description="A JSONL or CSV question set (fields: question, and "
                                  "optionally id, category); empty: the shipped scenarios/questions/everyday.jsonl.")
    recall: bool = Field(True, description="Recall the agent's most similar past answer (Chroma) into the prompt.")


class ScenarioDeprecation(FutureWarning):
    """A scenario used an old name that still works; the message says what to write instead."""


OLD_WORLD_TYPES = {"sandbox": "society"}  # old world.type -> new

# World type -> its section's model (the tag pydantic puts in an error's location).
_WORLDS: dict[str, type[BaseModel]] = {"town": TownConfig, "crafting": CraftingConfig, "society": SocietyConfig}


def _world_tag(value: Any) -> str | None:
    """Which member of `WorldConfig` validates ``value``: a built-in's type, or ``user`` for your world's section."""
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if kind in _WORLDS:
        return str(kind)
    return "user" if isinstance(value, WorldSection) else None


# A built-in world's section, or yours: `Scenario` validates your world's fields with its own section model
# (`world_class`) before this union sees them, and this union keeps that model as it is.
WorldConfig = Annotated[Union[  # noqa: UP007
    Annotated[TownConfig, Tag("town")], Annotated[CraftingConfig, Tag("crafting")],
    Annotated[SocietyConfig, Tag("society")], Annotated[SerializeAsAny[WorldSection], Tag("user")]],
    Field(discriminator=Discriminator(_world_tag))]


def world_class(name: str) -> type:
    """Your world class that ``world.type`` names (see `simulacra.plugins`): a `simulacra.World` with a section.

    Raises:
        ValueError: One line: an unknown name, a path that does not import, or a class that is no such world.
    """
    import mesa

    from simulacra.plugins import find_class

    def check(found: type) -> str | None:
        if not issubclass(found, mesa.Model) or not any(c.__name__ == "World" for c in found.__mro__):
            return "is not a simulacra.World subclass; a world is one (see the README's tutorial)"
        section = getattr(found, "section", None)
        if not (isinstance(section, type) and issubclass(section, WorldSection)):
            return "has no section: set section = a simulacra.WorldSection subclass that lists its fields"
        return None

    return find_class(name, what="world", builtins=_WORLDS, check=check, label="world type")


def _user_world(world: dict[str, Any]) -> WorldSection:
    """Your world's section, validated by its own model; errors as ``@world.field@message`` (see `_describe`)."""
    try:
        cls = world_class(str(world["type"]))
    except ValueError as err:
        raise _at("world.type", str(err)) from None
    section: type[WorldSection] = cls.section
    try:
        return section.model_validate(world)
    except ValidationError as err:
        loc, message = _first_error(err, section)
        raise _at(".".join(["world", *loc]), message) from None


# The llm fields an agent may set for itself (``agents[i].llm``): what picks and configures its engine. The rest
# (cache, retries, timeouts, sampling defaults, price) belong to the run's one client.
AGENT_LLM_FIELDS = ("backend", "model", "base_url", "base_urls", "server_slots", "api_key_env", "schema_mode",
                    "langchain_class", "langchain_kwargs", "structured_method", "n_ctx", "n_threads",
                    "engine_kwargs")


class InjectConfig(_Section):
    """Something that reaches one agent at a given step, from outside (a fork's counterfactual)."""

    step: int = Field(ge=1, description="The step at whose start the agent hears it.")
    to: str = Field(min_length=1, description="The agent who hears it (a name from agents).")
    text: str = Field(min_length=1, max_length=500, description="What they hear, e.g. 'Isabella tells you "
                      "about her Valentine's Day party at Hobbs Cafe tonight at 17:00'.")


class AgentConfig(_Section):
    """One agent."""

    name: str = Field(min_length=1, description="Unique name.")
    persona: str = Field(min_length=1, description="Who they are, in a sentence or two; goes into every prompt.")
    home: str | None = Field(None, description="Town: a place name, where they live (required there).")
    start: str | None = Field(None, description="A place name where they are at step 0; empty: home.")
    goal: str = Field("", description="What they want today (optional).")
    memories: list[str] = Field(default_factory=list, description="Seed memories (generative agents), one "
                                "statement each, e.g. 'Isabella is planning a party'.")
    llm: dict[str, Any] | None = Field(None, description="This agent's engine: fields of the llm section that "
                                       "differ from it (backend, model, base_url, base_urls, n_ctx, ...; a YAML "
                                       "anchor gives a group the same). Agents with the same settings share one "
                                       "engine; each engine gets a step's calls together.")


class OutputsConfig(_Section):
    """What a run writes and shows."""

    dir: str = Field("runs", description="Parent folder of run folders (runs/<scenario>-<timestamp>/).")
    live: bool = Field(True, description="Rich live view when stdout is a terminal (else plain lines).")
    plots: bool = Field(True, description="Write PNG plots of the metrics into the run folder.")
    snapshot_every: int = Field(1, ge=0, description="Write snapshots/step-NNNNNN.json every this many steps "
                                "(and after the last); 0: none (the run cannot be resumed or forked).")
    snapshots_keep: int = Field(3, ge=0, description="Keep the newest this many snapshots; 0: all (fork "
                                "anywhere).")


class Scenario(_Section):
    """A whole scenario file."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="Used in run folder names.")
    description: str = Field("", description="Free text.")
    seed: int = Field(0, description="Seeds the world's RNG (and through it every LLM sampling seed).")
    steps: int = Field(ge=1, description="How many steps to run.")
    clock: ClockConfig = Field(default_factory=ClockConfig, description="Simulated time.")
    world: WorldConfig = Field(description="World type and parameters: town, crafting or society (below), or your "
                               "own world by import path (type: package.module:Class) or by a name in the "
                               "entry-point group simulacra.worlds, with the fields its section declares "
                               "(see the tutorial).")
    agents: list[AgentConfig] = Field(min_length=1, description="The agents.")
    llm: LLMConfig = Field(default_factory=LLMConfig, description="The engine.")
    memory: MemoryConfig = Field(default_factory=MemoryConfig, description="Memory settings.")
    perception: PerceptionConfig = Field(default_factory=PerceptionConfig, description="Town: how many others an "
                                         "agent perceives, and how far it sees.")
    cognition: CognitionConfig = Field(default_factory=CognitionConfig, description="How agents think.")
    outputs: OutputsConfig = Field(default_factory=OutputsConfig, description="Run folder and live view.")
    inject: list[InjectConfig] = Field(default_factory=list, description="Town: news delivered to agents at a "
                                       "step, as if someone said it to them (what a fork usually adds).")
    surveys: list[SurveyConfig] = Field(default_factory=list, max_length=50, description="Surveys asked during "
                                        "the run (see Instruments): answers become survey_answer events, metrics "
                                        "columns and a plot per survey.")

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, data: Any) -> Any:
        """Takes a renamed value under its old name, with a warning that gives the new one."""
        world = data.get("world") if isinstance(data, dict) else None
        if isinstance(world, dict) and world.get("type") in OLD_WORLD_TYPES:
            old, new = world["type"], OLD_WORLD_TYPES[world["type"]]
            warnings.warn(f"world.type {old!r} is now {new!r} ('sandbox' means the skill sandbox); the old name "
                          f"still works for now: write type: {new}", ScenarioDeprecation, stacklevel=2)
            data = {**data, "world": {**world, "type": new}}
        elif isinstance(world, dict) and isinstance(world.get("type"), str) and world["type"] not in _WORLDS:
            data = {**data, "world": _user_world(world)}  # your world: its own section model
        return data

    def agent_llm(self, index: int) -> LLMConfig:
        """The ``llm`` section that agent ``index`` (of ``agents``) uses: the scenario's, with its overrides.

        Raises:
            ValueError: ``agents.<index>.llm`` names a field that is not an engine's, or a bad value (as ``_at``).
        """
        override = self.agents[index].llm
        if not override:
            return self.llm
        run_wide = sorted(set(override) - set(AGENT_LLM_FIELDS))
        if run_wide:
            field = run_wide[0]
            hint = ("applies to the whole run; set it in the llm section" if field in LLMConfig.model_fields
                    else f"is not an llm field; {_choices(field, list(AGENT_LLM_FIELDS))}")
            raise _at(f"agents.{index}.llm.{field}", f"{field!r} {hint}")
        try:
            return LLMConfig.model_validate({**self.llm.model_dump(exclude_unset=True), **override})
        except ValidationError as err:
            loc, message = _first_error(err, LLMConfig)
            raise _at(".".join(["agents", str(index), "llm", *loc]), message) from None

    @cached_property
    def population(self) -> list[AgentConfig]:
        """Everyone who lives in the world: the named ``agents``, then a town's generated crowd (`crowd_agents`)."""
        crowd = self.world.crowd if isinstance(self.world, TownConfig) else None
        if crowd is None:
            return list(self.agents)
        places = [p.name for p in self.world.places]
        made = crowd_agents(crowd, seed=self.seed, places=places, taken=(a.name for a in self.agents))
        return [*self.agents, *(AgentConfig.model_construct(**person, memories=[]) for person in made)]

    @model_validator(mode="after")
    def _agents_fit_world(self) -> Scenario:
        seen: set[str] = set()  # not names[:i]: that is quadratic in the number of agents
        for i, agent in enumerate(self.agents):
            if agent.name in seen:
                raise _at(f"agents.{i}.name", f"duplicate agent name {agent.name!r}; names must be unique")
            seen.add(agent.name)
            if agent.llm is not None:
                self.agent_llm(i)  # raises at agents.i.llm.<field>
        if isinstance(self.world, TownConfig) and self.world.crowd:
            places = [p.name for p in self.world.places]
            for i, home in enumerate(self.world.crowd.homes):
                if home not in places:
                    raise _at(f"world.crowd.homes.{i}", f"unknown place {home!r}; {_choices(home, places)}")
            seen.update(a.name for a in self.population[len(self.agents):])
        names = [a.name for a in self.population]
        if isinstance(self.world, SocietyConfig) and len(self.agents) > self.world.size ** 2:
            raise _at("agents", f"{len(self.agents)} agents do not fit a {self.world.size}x{self.world.size} grid; "
                      f"raise world.size to {math.ceil(math.sqrt(len(self.agents)))} or drop agents")
        for i, item in enumerate(self.inject):
            if item.to not in seen:
                raise _at(f"inject.{i}.to", f"unknown agent {item.to!r}; {_choices(item.to, names)}")
        if self.inject and not isinstance(self.world, TownConfig):
            raise _at("inject", f"the {self.world.type} world takes no injected news; only the town does")
        self._surveys_fit(names, seen)
        kinds = {"crafting": ("simple", "babyagi"), "society": ("simple",)}.get(self.world.type)
        if kinds and self.cognition.kind not in kinds:
            raise _at("cognition.kind", f"{self.cognition.kind!r} agents do not live in the {self.world.type} world; "
                      f"allowed there: {', '.join(kinds)}")
        if not isinstance(self.world, TownConfig):
            return self
        if self.cognition.kind not in MINDS and not is_town_agent(mind_class(self.cognition.kind)):
            raise _at("cognition.kind", f"{self.cognition.kind!r} is not a TownAgent subclass; a mind in the town "
                      "is one (simulacra.agents.town_agent.TownAgent)")
        places = [p.name for p in self.world.places]
        known = set(places)
        for i, agent in enumerate(self.agents):
            if agent.home is None:
                raise _at(f"agents.{i}.home", f"a townsperson needs a home; allowed: {', '.join(places)}")
            for key in ("home", "start"):
                value = getattr(agent, key)
                if value is not None and value not in known:
                    raise _at(f"agents.{i}.{key}", f"unknown place {value!r}; {_choices(value, places)}")
        return self


    def _surveys_fit(self, names: list[str], known: set[str]) -> None:
        """Survey names are unique; they ask known agents, at steps the run has; only townspeople remember."""
        for i, survey in enumerate(self.surveys):
            if survey.name in [s.name for s in self.surveys[:i]]:
                raise _at(f"surveys.{i}.name", f"duplicate survey name {survey.name!r}; names must be unique")
            late = [s for s in survey.at if isinstance(s, int) and s > self.steps]
            if late:
                raise _at(f"surveys.{i}.at", f"step {late[0]} is after the last step ({self.steps}); use end for "
                          "the last step")
            for j, name in enumerate([] if survey.ask == "all" else survey.ask):
                if name not in known:
                    raise _at(f"surveys.{i}.ask.{j}", f"unknown agent {name!r}; {_choices(name, names)}")
            if survey.remember and not isinstance(self.world, TownConfig):
                raise _at(f"surveys.{i}.remember", f"agents of the {self.world.type} world keep no memory of "
                          "answers; only townspeople remember (set remember: false)")


# What a fork may change: fields read when the world is built or each step, not part of the snapshot's
# structure. ``*`` stands for a list index. Everything else (the world, who lives there, the clock, memory
# stores) would not match the parent's snapshot. A new seed re-seeds the restored world's RNGs (see `Origin`).
FORKABLE: tuple[str, ...] = (
    "steps", "seed", "description", "inject", "inject.*", "llm.*", "agents.*.persona", "agents.*.goal",
    "cognition.objective",
    "cognition.reflection_threshold", "cognition.dialogue_turns", "cognition.dialogue_cooldown_steps",
    "cognition.task_steps", "memory.retrieval.*", "outputs.live", "outputs.plots",
    "outputs.snapshot_every", "outputs.snapshots_keep", "surveys", "surveys.*",
)


def fork_refusal(override: str) -> str | None:
    """Why ``--set KEY=VALUE`` cannot be applied at a fork, or None when it can (see `FORKABLE`)."""
    keys, _ = parse_override(override)
    key = ".".join(keys)
    if any(fnmatch.fnmatchcase(key, pattern) for pattern in FORKABLE):
        return None
    return (f"--set {override!r}: {key!r} cannot change at a fork (the snapshot was made with the parent's); "
            f"forkable: {', '.join(FORKABLE)}")


def _choices(value: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(value, allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}allowed: {', '.join(allowed)}"


_MAX_OVERRIDE = 100_000  # characters of one --set KEY=VALUE


def parse_override(text: str) -> tuple[list[str], Any]:
    """Splits ``a.b.c=value`` into a key path and a YAML-parsed value (text that is not YAML stays text).

    Raises:
        ScenarioError: The text has no ``=`` or an empty key, is longer than 100,000 characters, or its value
            passes the YAML limits of `scenarios.bounded.load_yaml` (aliases, nesting).
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        msg = f"--set {_cut(text)!r}: expected KEY=VALUE, e.g. --set llm.backend=openai"
        raise ScenarioError(msg)
    label = f"--set {_printable(_cut(key.strip()))}"
    if len(text) > _MAX_OVERRIDE:
        msg = f"{label}: {len(text):,} characters, more than the {_MAX_OVERRIDE:,} allowed; put the value in the file"
        raise ScenarioError(msg)
    try:
        value = load_yaml(raw, label)[0] if raw.strip() else None
    except ScenarioError as err:
        if not isinstance(err.__cause__, yaml.YAMLError):
            raise
        value = raw
    return key.strip().split("."), value


def load_scenario(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Scenario:
    """Reads, overrides and validates a scenario file.

    Args:
        path: The YAML file.
        overrides: ``KEY=VALUE`` strings (``--set``); list items are addressed by index (agents.0.name).

    Returns:
        The validated scenario.

    Raises:
        ScenarioError: One line naming the file, line, field, bad value and the fix.
    """
    path = Path(path)
    data, root = load_yaml(read_text(path, what="scenario"), path)  # bounded: size, aliases, nesting
    if not isinstance(data, dict):
        kind = type(data).__name__
        msg = f"{path}:1: a scenario is a mapping of fields (name, steps, world, agents, ...), got {kind}"
        raise ScenarioError(msg)
    lines = _line_map(root, path)
    set_by: dict[tuple[str, ...], str] = {}
    for item in overrides:
        keys, value = parse_override(item)
        _apply(data, keys, value, item)
        set_by[tuple(keys)] = item
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        # An unknown key usually explains a "missing" one (a typo), so report it first.
        first = min(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
        raise ScenarioError(_printable(_describe(first, path, lines, set_by))) from None


M = TypeVar("M", bound=BaseModel)


def load_file(path: Path, model: type[M], *, what: str) -> M:
    """Reads a YAML file other than a scenario (a rubric, say) within bounds and validates it as ``model``.

    Raises:
        ScenarioError: One line: the file and line, the field, what is wrong and what is allowed.
    """
    data, root = load_yaml(read_text(path, what=what), path)
    if not isinstance(data, dict):
        msg = f"{path}:1: a {what} is a mapping of fields ({', '.join(model.model_fields)}), got {type(data).__name__}"
        raise ScenarioError(msg)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        loc, message = _first_error(err, model)
        where = _where(tuple(loc), path, _line_map(root, path), {})
        field = _dotted(loc) or "(top level)"
        raise ScenarioError(_printable(f"{where}: {field}: {message}")) from None


def _first_error(err: ValidationError, model: type[BaseModel]) -> tuple[list[str], str]:
    """The error of ``err`` to report, as the field's path in ``model`` and a message that says what is allowed.

    An unknown key comes first: it usually explains a missing one.
    """
    error = min(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
    loc = [str(p) for p in error["loc"] if not str(p).startswith("function-")]
    message = error["msg"]
    if error["type"] == "value_error" and message.startswith("Value error, @"):
        rel, _, message = message.removeprefix("Value error, @").partition("@")
        loc += rel.split(".")
    if error["type"] == "extra_forbidden":
        fields = list(getattr(_model_at(model, loc[:-1]), "model_fields", {}))
        message = f"unknown field {_cut(loc[-1])!r}; {_choices(loc[-1], fields)}"
    elif error["type"] == "missing":
        message = "required field is missing; add it"
    elif error["type"] == "value_error":
        message = message.removeprefix("Value error, ")
    else:
        message = f"{message.rstrip('.')} (got {_cut(repr(error.get('input')), 200)})"
    return loc, message


def _model_at(model: Any, loc: list[str]) -> Any:
    for part in loc:
        if not part.isdigit():
            model = _unwrap(getattr(model, "model_fields", {})[part].annotation) if part in getattr(
                model, "model_fields", {}) else None
    return model


def _apply(data: dict[str, Any], keys: list[str], value: Any, item: str) -> None:
    node: Any = data
    for depth, key in enumerate(keys[:-1]):
        if isinstance(node, list) and _index(key) < len(node):
            node = node[_index(key)]
        elif isinstance(node, dict):
            node = node.setdefault(key, {})
        else:
            msg = f"--set {item!r}: {'.'.join(keys[:depth + 1])!r} is not a section or an existing list index"
            raise ScenarioError(msg)
    last = keys[-1]
    if isinstance(node, list) and _index(last) < len(node):
        node[_index(last)] = value
    elif isinstance(node, list) and _index(last) == len(node):  # one past the end appends
        node.append(value)
    elif isinstance(node, dict):
        node[last] = value
    else:
        msg = f"--set {item!r}: {'.'.join(keys)!r} does not name a field"
        raise ScenarioError(msg)


def _index(key: str) -> int:
    """A list index named by an override's key part, or a huge number when it names none."""
    return int(key) if key.isascii() and key.isdigit() and len(key) < 10 else 1 << 62


def _line_map(root: yaml.Node | None, path: Path) -> dict[tuple[str, ...], int]:
    """Maps each field path to its 1-based line; also rejects duplicate keys (YAML keeps the last)."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, at: tuple[str, ...]) -> None:
        lines.setdefault(at, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                name = str(key.value)
                if name in seen:
                    dotted = _printable(_cut(".".join([*at, name])))
                    msg = f"{path}:{key.start_mark.line + 1}: {dotted}: key given twice; keep one"
                    raise ScenarioError(msg)
                seen.add(name)
                lines[(*at, name)] = key.start_mark.line + 1
                walk(value, (*at, name))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*at, str(i)))

    if root is not None:
        walk(root, ())
    return lines


def _describe(error: Any, path: Path, lines: dict[tuple[str, ...], int], set_by: dict[tuple[str, ...], str]) -> str:
    loc = [str(part) for part in error["loc"] if not str(part).startswith("function-")]
    tag = None
    if loc[:1] == ["world"] and len(loc) > 1 and loc[1] in _WORLDS:  # the discriminator tag is not a YAML key
        tag = loc.pop(1)
    message = error["msg"]
    if error["type"] == "value_error" and message.startswith("Value error, @"):
        rel, _, message = message.removeprefix("Value error, @").partition("@")
        loc += rel.split(".")
    where = _where(tuple(loc), path, lines, set_by)
    field = _dotted(loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        allowed = _fields_at(loc[:-1], tag)
        return f"{where}: {field}: unknown field {_cut(loc[-1])!r}; {_choices(loc[-1], allowed)}"
    if error["type"] == "union_tag_invalid":
        tags = error["ctx"]["expected_tags"].replace("'", "")
        return f"{where}: {field}.type: unknown world type {error['ctx']['tag']!r}; allowed: {tags}"
    if error["type"] == "missing":
        return f"{where}: {field}: required field is missing; add it (see the scenario reference in README.md)"
    if error["type"] == "value_error":
        return f"{where}: {field}: {message}"
    return f"{where}: {field}: {message.rstrip('.')} (got {_cut(repr(error.get('input')), 200)})"


def _where(
    loc: tuple[str, ...], path: Path, lines: dict[tuple[str, ...], int], set_by: dict[tuple[str, ...], str]
) -> str:
    for n in range(len(loc), -1, -1):
        if loc[:n] in set_by:
            return f"--set {_cut(set_by[loc[:n]])}"
        if loc[:n] in lines:
            return f"{path}:{lines[loc[:n]]}"
    return str(path)


def _dotted(loc: list[str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def _fields_at(loc: list[str], world: str | None = None) -> list[str]:
    """The field names allowed at ``loc`` in the schema; ``world`` is the world's type (its section's model)."""
    model: Any = Scenario
    for part in loc:
        if part.isdigit():
            continue
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return []
        model = _WORLDS[world] if model is Scenario and part == "world" and world else _unwrap(fields[part].annotation)
    return list(getattr(model, "model_fields", {}))


def _cut(text: str, most: int = 100) -> str:
    """``text``, shortened to ``most`` characters for a message."""
    return text if len(text) <= most else text[:most] + "..."


def _printable(text: str) -> str:
    """``text`` with newlines and other control characters escaped, so that a message stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _unwrap(annotation: Any) -> Any:
    while not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if get_origin(annotation) is None or not args:
            return annotation
        annotation = args[0]
    return annotation
