"""The scenario schema: the frozen pydantic models that a scenario file is validated into.

`scenarios.loading.load_scenario` reads a file, applies ``--set`` overrides (`scenarios.overrides`) and
validates it as a `Scenario`; every problem becomes one `ScenarioError` line (`scenarios.messages`). The
validated sections become the world's ``__init__`` keyword arguments. The ``llm`` section lives in
`scenarios.llm`, ``cognition`` and ``memory`` in `scenarios.cognition`, ``perception`` and a town's crowd in
`scenarios.population`, ``surveys`` in `scenarios.instruments`; this module holds the rest: the world sections,
the agents, the clock, outputs and the `Scenario` that gathers them.
"""

from __future__ import annotations

import math
import warnings
from datetime import datetime, timedelta
from functools import cached_property
from typing import Annotated, Any, Literal, TypeAlias, Union

from pydantic import BaseModel, Discriminator, Field, SerializeAsAny, Tag, ValidationError, model_validator

from simulacra.scenarios.cognition import MINDS, CognitionConfig, MemoryConfig, is_town_agent, mind_class
from simulacra.scenarios.instruments import SurveyConfig
from simulacra.scenarios.llm import AGENT_LLM_FIELDS, LLMConfig
from simulacra.scenarios.messages import choices, first_error
from simulacra.scenarios.population import CrowdConfig, PerceptionConfig, crowd_agents
from simulacra.scenarios.sections import Section, WorldSection, at

__all__ = [
    "MAX_SEED",
    "OLD_WORLD_TYPES",
    "WORLD_SECTIONS",
    "AgentConfig",
    "AnyWorldSection",
    "ClockConfig",
    "CraftingConfig",
    "DiffusionConfig",
    "InjectConfig",
    "OutputsConfig",
    "PlaceConfig",
    "SandboxConfig",
    "Scenario",
    "ScenarioDeprecation",
    "SocietyConfig",
    "TownConfig",
    "world_class",
]


class ClockConfig(Section):
    """Simulated time."""

    start: datetime = Field(datetime(2026, 2, 13, 8, 0), description="Sim time of step 1, e.g. 2026-02-13 08:00.")
    minutes_per_step: int = Field(10, ge=1, le=1440, description="Sim minutes that one step lasts.")


class PlaceConfig(Section):
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


class DiffusionConfig(Section):
    """Information diffusion to track (the paper's party): who knows, who came."""

    keywords: list[str] = Field(min_length=1, description="A memory containing one of these means the agent knows.")
    place: str = Field(description="Where the event happens.")
    start: datetime = Field(description="When it starts (sim time).")
    end: datetime = Field(description="When it ends (sim time).")

    @model_validator(mode="after")
    def _ends_after_start(self) -> DiffusionConfig:
        if (self.start.tzinfo is None) != (self.end.tzinfo is None):  # they cannot be compared
            raise at("end", "give start and end both with a time zone or both without")
        if self.end <= self.start:
            raise at("end", f"must be after start ({self.start:%Y-%m-%d %H:%M})")
        return self


class TownConfig(Section):
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
                raise at(f"places.{i}.name", f"duplicate place name {place.name!r}; names must be unique")
            seen.add(place.name)
            for j, link in enumerate(place.links):
                if link not in known:
                    raise at(f"places.{i}.links.{j}", f"unknown place {link!r}; {choices(link, names)}")
        if self.diffusion and self.diffusion.place not in names:
            where = self.diffusion.place
            raise at("diffusion.place", f"unknown place {where!r}; {choices(where, names)}")
        return self


class SandboxConfig(Section):
    """Limits of the process each generated skill runs in."""

    cpu_s: float = Field(5, gt=0, le=120, description="CPU seconds a skill may use.")
    memory_mb: int = Field(256, ge=64, le=8192, description="Address space of the skill's process, MiB.")
    wall_s: float = Field(10, gt=0, le=600, description="Wall-clock seconds before the skill is killed.")


class CraftingConfig(Section):
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
            raise at("skills", "a library to load needs skill_library: true; drop one of the two")
        return self


class SocietyConfig(Section):
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
MAX_SEED = 2**32 - 1  # NumPy's legacy seeds and llama.cpp's are 32-bit unsigned; a sweep's seeds stay below it

# World type -> its section's model (the tag pydantic puts in an error's location).
WORLD_SECTIONS: dict[str, type[BaseModel]] = {
    "town": TownConfig, "crafting": CraftingConfig, "society": SocietyConfig,
}


def _world_tag(value: Any) -> str | None:
    """Which member of `WorldConfig` validates ``value``: a built-in's type, or ``user`` for your world's section."""
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if kind in WORLD_SECTIONS:
        return str(kind)
    return "user" if isinstance(value, WorldSection) else None


# A built-in world's section, or yours: `Scenario` validates your world's fields with its own section model
# (`world_class`) before this union sees them, and this union keeps that model as it is.
WorldConfig = Annotated[Union[  # noqa: UP007
    Annotated[TownConfig, Tag("town")], Annotated[CraftingConfig, Tag("crafting")],
    Annotated[SocietyConfig, Tag("society")], Annotated[SerializeAsAny[WorldSection], Tag("user")]],
    Field(discriminator=Discriminator(_world_tag))]
# What a validated `Scenario.world` is: a built-in world's section, or your world's own section model.
AnyWorldSection: TypeAlias = TownConfig | CraftingConfig | SocietyConfig | WorldSection
_NO_SECTION = "has no section: set section = a simulacra.WorldSection subclass that lists its fields"


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
        if _section_model(found) is None:
            return _NO_SECTION
        return None

    return find_class(name, what="world", builtins=WORLD_SECTIONS, check=check, label="world type")


def _section_model(found: type) -> type[WorldSection] | None:
    """The section model (``section``, a `WorldSection` subclass) that the world class ``found`` declares, or None."""
    section = getattr(found, "section", None)
    return section if isinstance(section, type) and issubclass(section, WorldSection) else None


def _user_world(world: dict[str, Any]) -> WorldSection:
    """Your world's section, validated by its own model; errors as ``@world.field@message`` (`messages.describe`)."""
    try:
        cls = world_class(str(world["type"]))
    except ValueError as err:
        raise at("world.type", str(err)) from None
    section = _section_model(cls)
    if section is None:  # `world_class` refused such a class already; checked again for the type checker
        raise at("world.type", f"world type {world['type']!r}: {cls.__qualname__} {_NO_SECTION}")
    try:
        return section.model_validate(world)
    except ValidationError as err:
        loc, message = first_error(err, section)
        raise at(".".join(["world", *loc]), message) from None


class InjectConfig(Section):
    """Something that reaches one agent at a given step, from outside (a fork's counterfactual)."""

    step: int = Field(ge=1, description="The step at whose start the agent hears it.")
    to: str = Field(min_length=1, description="The agent who hears it (a name from agents).")
    text: str = Field(min_length=1, max_length=500, description="What they hear, e.g. 'Isabella tells you "
                      "about her Valentine's Day party at Hobbs Cafe tonight at 17:00'.")


class AgentConfig(Section):
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


class OutputsConfig(Section):
    """What a run writes and shows."""

    dir: str = Field("runs", description="Parent folder of run folders (runs/<scenario>-<timestamp>/).")
    live: bool = Field(True, description="Rich live view when stdout is a terminal (else plain lines).")
    plots: bool = Field(True, description="Write PNG plots of the metrics into the run folder.")
    snapshot_every: int = Field(1, ge=0, description="Write snapshots/step-NNNNNN.json every this many steps "
                                "(and after the last); 0: none (the run cannot be resumed or forked).")
    snapshots_keep: int = Field(0, ge=0, description="Keep only the newest this many snapshots; 0: no count "
                                "limit (fork or interview at any step, within snapshots_mb).")
    snapshots_mb: float = Field(256.0, ge=0, allow_inf_nan=False, description="Megabytes a run's snapshots may "
                                "take together; beyond it they are thinned, evenly over the run (the newest 3 "
                                "always stay); 0: no limit.")


class Scenario(Section):
    """A whole scenario file."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="Used in run folder names.")
    description: str = Field("", description="Free text.")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seeds the world's RNG (and through it every LLM "
                      "sampling seed); 0 to 4294967295, the seeds NumPy and llama.cpp take.")
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
        elif isinstance(world, dict) and isinstance(world.get("type"), str) and world["type"] not in WORLD_SECTIONS:
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
                    else f"is not an llm field; {choices(field, list(AGENT_LLM_FIELDS))}")
            raise at(f"agents.{index}.llm.{field}", f"{field!r} {hint}")
        try:
            return LLMConfig.model_validate({**self.llm.model_dump(exclude_unset=True), **override})
        except ValidationError as err:
            loc, message = first_error(err, LLMConfig)
            raise at(".".join(["agents", str(index), "llm", *loc]), message) from None

    @cached_property
    def population(self) -> list[AgentConfig]:
        """Everyone who lives in the world: the named ``agents``, then a town's generated crowd (`crowd_agents`)."""
        world = self.world
        if not isinstance(world, TownConfig) or world.crowd is None:
            return list(self.agents)
        places = [p.name for p in world.places]
        made = crowd_agents(world.crowd, seed=self.seed, places=places, taken=(a.name for a in self.agents))
        return [*self.agents, *(AgentConfig.model_construct(**person, memories=[]) for person in made)]

    @model_validator(mode="after")
    def _clock_fits_the_calendar(self) -> Scenario:
        """The last step's sim time (and the one after it) must be a date Python can hold: year 9999 at most."""
        minutes = self.clock.minutes_per_step * self.steps
        try:
            self.clock.start + timedelta(minutes=minutes)
        except OverflowError:
            raise at("clock.start", f"{self.clock.start:%Y-%m-%d %H:%M} + {self.steps} steps of "
                     f"{self.clock.minutes_per_step} minutes passes the year 9999; give an earlier start or fewer "
                     "steps") from None
        return self

    @model_validator(mode="after")
    def _agents_fit_world(self) -> Scenario:
        seen: set[str] = set()  # not names[:i]: that is quadratic in the number of agents
        for i, agent in enumerate(self.agents):
            if agent.name in seen:
                raise at(f"agents.{i}.name", f"duplicate agent name {agent.name!r}; names must be unique")
            seen.add(agent.name)
            if agent.llm is not None:
                self.agent_llm(i)  # raises at agents.i.llm.<field>
        if isinstance(self.world, TownConfig) and self.world.crowd:
            places = [p.name for p in self.world.places]
            for i, home in enumerate(self.world.crowd.homes):
                if home not in places:
                    raise at(f"world.crowd.homes.{i}", f"unknown place {home!r}; {choices(home, places)}")
            seen.update(a.name for a in self.population[len(self.agents):])
        names = [a.name for a in self.population]
        if isinstance(self.world, SocietyConfig) and len(self.agents) > self.world.size ** 2:
            raise at("agents", f"{len(self.agents)} agents do not fit a {self.world.size}x{self.world.size} grid; "
                      f"raise world.size to {math.ceil(math.sqrt(len(self.agents)))} or drop agents")
        for i, item in enumerate(self.inject):
            if item.to not in seen:
                raise at(f"inject.{i}.to", f"unknown agent {item.to!r}; {choices(item.to, names)}")
        if self.inject and not isinstance(self.world, TownConfig):
            raise at("inject", f"the {self.world.type} world takes no injected news; only the town does")
        self._surveys_fit(names, seen)
        kinds = {"crafting": ("simple", "babyagi"), "society": ("simple",)}.get(self.world.type)
        if kinds and self.cognition.kind not in kinds:
            raise at("cognition.kind", f"{self.cognition.kind!r} agents do not live in the {self.world.type} world; "
                      f"allowed there: {', '.join(kinds)}")
        if not isinstance(self.world, TownConfig):
            return self
        if self.cognition.kind not in MINDS and not is_town_agent(mind_class(self.cognition.kind)):
            raise at("cognition.kind", f"{self.cognition.kind!r} is not a TownAgent subclass; a mind in the town "
                      "is one (simulacra.agents.town_agent.TownAgent)")
        places = [p.name for p in self.world.places]
        known = set(places)
        for i, agent in enumerate(self.agents):
            if agent.home is None:
                raise at(f"agents.{i}.home", f"a townsperson needs a home; allowed: {', '.join(places)}")
            for key in ("home", "start"):
                value = getattr(agent, key)
                if value is not None and value not in known:
                    raise at(f"agents.{i}.{key}", f"unknown place {value!r}; {choices(value, places)}")
        return self


    def _surveys_fit(self, names: list[str], known: set[str]) -> None:
        """Survey names are unique; they ask known agents, at steps the run has; only townspeople remember."""
        for i, survey in enumerate(self.surveys):
            if survey.name in [s.name for s in self.surveys[:i]]:
                raise at(f"surveys.{i}.name", f"duplicate survey name {survey.name!r}; names must be unique")
            late = [s for s in survey.at if isinstance(s, int) and s > self.steps]
            if late:
                raise at(f"surveys.{i}.at", f"step {late[0]} is after the last step ({self.steps}); use end for "
                          "the last step")
            for j, name in enumerate([] if survey.ask == "all" else survey.ask):
                if name not in known:
                    raise at(f"surveys.{i}.ask.{j}", f"unknown agent {name!r}; {choices(name, names)}")
            if survey.remember and not isinstance(self.world, TownConfig):
                raise at(f"surveys.{i}.remember", f"agents of the {self.world.type} world keep no memory of "
                          "answers; only townspeople remember (set remember: false)")
