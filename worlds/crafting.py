"""A Minecraft-like crafting world without a game (Voyager, Wang et al. 2023), on a Mesa grid.

Map: a square `OrthogonalMooreGrid`; x goes across, y is depth (row 0 is the surface). Each cell holds at most
one block (a deposit with a count of units); players walk over blocks, one tick per cell, diagonals included,
so the distance between two cells is the larger of the x and y differences. Trees grow near the surface;
stone, coal, iron and diamonds lie deeper and get rarer (`worlds.tech_tree.RESOURCES`). Blocks are shared:
what one player mines is gone for all, and an empty block is removed.

Players act only through their `Bot` (the skill API handed to LLM-written code). Every call costs ticks from
the player's budget for the iteration; `CraftingWorld.begin_turn` refills it. Every effect is recorded as a
`Change` in `CraftingWorld.changes` and handed to the observers.

Hazards (``hazards=True``), drawn from the world's seeded RNG:
    * Night: every ``day_length``-th step is night. At its start a zombie finds each player with chance
      ZOMBIE_CHANCE. A player holding a sword slays it; one without loses ZOMBIE_DAMAGE health and one unit of
      a random item.
    * Lava lies next to a diamond_ore block with chance LAVA_CHANCE. Starting to mine a block next to lava burns
      LAVA_DAMAGE health, unless the player carries cobblestone: one is used up to seal the lava, which is gone.
    * Hard rock: each unit of a block that needs a pickaxe takes twice the ticks with chance HARD_CHANCE.
    * A player whose health reaches 0 loses the whole inventory and respawns where it started, at full health.
Health grows back REGEN a step.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mesa
from mesa.discrete_space import OrthogonalMooreGrid

from simulacra.agents.llm import LLMClient
from simulacra.agents.minds import Learns, TakesTurns
from simulacra.agents.sandbox import Sandbox
from simulacra.events import Event, EventKind
from simulacra.scenarios.cognition import CognitionConfig
from simulacra.scenarios.schema import CraftingConfig
from simulacra.worlds.crafting_bot import Bot
from simulacra.worlds.crafting_rules import (
    LAVA,
    LAVA_CHANCE,
    REGEN,
    STATION_REACH,
    ZOMBIE_CHANCE,
    ZOMBIE_DAMAGE,
    Block,
    Change,
    Pos,
    cell_distance,
    cells_around,
)
from simulacra.worlds.player import MAX_HEALTH, Player
from simulacra.worlds.plots import plot_tasks, plot_tech_tree
from simulacra.worlds.tech_tree import CRAFTING_TABLE, FURNACE, SWORDS, TechTree
from simulacra.worlds.world import World, WorldSetup

if TYPE_CHECKING:
    from simulacra.agents.tools import Tool
    from simulacra.memory.skill_library import SkillLibrary
    from simulacra.worlds.team import Team

__all__ = ["Block", "Change", "CraftingWorld", "cell_distance", "cells_around"]

ChangeObserver = Callable[["Change"], None]
COUNTED = ("skill_ran", "task_completed", "task_failed", "skill_added", "llm_failure", "milestone", "tool_called")


class CraftingWorld(World):
    """Players share a map of resource blocks and climb the tech tree by mining, crafting and smelting.

    A step: hazards of the step (night), then each player's `act` in a seeded shuffled order, then metrics.
    Metrics (`datacollector`): unique items obtained by anyone, milestones reached, units left on the map,
    night; per player inventory size, unique items and health. `milestone_steps` maps each milestone to the
    step it was first reached at (0: before the first step), `milestone_turns` to the number of iterations
    (`begin_turn` calls) the first player to reach it had begun, as Voyager counts prompting iterations.
    """

    by_name: dict[str, Player]

    def __init__(
        self,
        *,
        seed: int,
        players: Sequence[str],
        size: int = 24,
        density: Mapping[str, float] | None = None,
        hazards: bool = True,
        tick_budget: int = 200,
        day_length: int = 4,
        tech: TechTree | None = None,
        player_factory: Callable[..., Player] = Player,
        on_change: Iterable[ChangeObserver] = (),
        llm: LLMClient | None = None,
        observers: Iterable[Callable[[Event], None]] = (),
        sandbox: Sandbox | None = None,
        library: SkillLibrary | None = None,
        cognition: CognitionConfig | None = None,
        embed: Callable[..., Any] | None = None,
        chroma: Any | None = None,
    ) -> None:
        """Lays out the map from the seed and places the players on the surface.

        Args:
            seed: Seeds Mesa's RNG, from which the map and every hazard are drawn.
            players: Player names.
            size: Width and height of the map (at least 8).
            density: Block kind → chance that a cell of its depth band holds it; overrides the tech tree's.
            hazards: Night zombies, lava and hard rock.
            tick_budget: Ticks a player may spend in one iteration.
            day_length: Every this many steps, a step is night.
            tech: The rules; None: the default tech tree.
            player_factory: Called as ``player_factory(world, name=name)`` for each player.
            on_change: Called with every change as it is recorded.
            llm: The client LLM-driven players think through; None: rules only (plain players).
            observers: Called with every event (the run's event log, the live view).
            sandbox: Where players' skills run; None: the default limits.
            library: The shared skill library; None: no library (the paper's ablation).
            cognition: ``kind: babyagi`` sets up a team (``team``) that ``player_factory`` may hand its players:
                an objective, a task board and a result store; any other kind: none.
            embed: The team's embedder; None: all-MiniLM-L6-v2 from the installed package.
            chroma: Where the team stores task results; None: an in-memory Chroma.

        Raises:
            ValueError: Bad size, names, density, budget or day length.
        """
        super().__init__(seed=seed, llm=llm, observers=observers)
        _check_args(size, players, tick_budget, day_length)
        self.tech = tech or TechTree()
        self.size, self.hazards = size, hazards
        self.tick_budget, self.day_length = tick_budget, day_length
        self.on_change: list[ChangeObserver] = list(on_change)
        self.sandbox = sandbox or Sandbox()
        self.library = library
        self.changes: list[Change] = []
        self._tools: list[Tool] | None = None
        self.milestone_steps: dict[str, int] = {}
        self.milestone_turns: dict[str, int] = {}
        self.obtained: set[str] = set()
        self.grid = OrthogonalMooreGrid((size, size), torus=False, random=self.random)
        self.blocks: dict[Pos, Block] = {}
        self._lay_out(self._densities(density or {}))
        self.team: Team | None = None
        if cognition is not None and cognition.kind == "babyagi":
            from simulacra.worlds.team import Team  # Chroma is needed only by a team

            self.team = self.attach(Team.for_world(self, cognition, embed=embed, chroma=chroma))
        for i, name in enumerate(players):
            player = player_factory(self, name=name)
            player.spawn = ((i + 1) * size // (len(players) + 1), 0)
            player.cell = self.grid[player.spawn]
            self.by_name[name] = player
        self.datacollector = mesa.DataCollector(
            model_reporters={"unique_items": lambda m: len(m.obtained), "milestones": lambda m: len(m.milestone_steps),
                             "blocks_left": lambda m: m.units_left(), "night": lambda m: int(m.is_night),
                             **(_mind_reporters() if llm is not None else {}),
                             **{k: v for hook in self.hooks for k, v in hook.reporters().items()}},
            agent_reporters={"name": "name", "inventory_size": lambda p: p.inventory.total(),
                             "unique_items": lambda p: len(p.obtained), "health": "health"})
        for hook in self.hooks:
            hook.start(self)
        self.datacollector.collect(self)

    @classmethod
    def from_setup(cls, setup: WorldSetup) -> CraftingWorld:
        """The crafting world of a run: its section, the run's client, and the players ``cognition.kind`` names.

        Args:
            setup: The scenario, the client, the run's stores and identity.

        Returns:
            The world at step 0.
        """
        from simulacra.worlds.crafting_minds import CraftingMinds

        s, w = setup.scenario, setup.section_as(CraftingConfig)
        minds = CraftingMinds.of(setup)
        sandbox = Sandbox(cpu_s=w.sandbox.cpu_s, memory_mb=w.sandbox.memory_mb, wall_s=w.sandbox.wall_s)
        return cls(seed=s.seed, players=[a.name for a in s.population], size=w.size, density=w.density,
                   hazards=w.hazards, tick_budget=w.tick_budget, day_length=w.day_length, llm=setup.llm,
                   observers=setup.observers, sandbox=sandbox, player_factory=minds.player_factory,
                   library=minds.library, cognition=s.cognition, embed=minds.embed, chroma=minds.chroma)
    def _densities(self, density: Mapping[str, float]) -> dict[str, float]:
        known = {r.block: r.density for r in self.tech.resources.values() if r.density > 0}
        if unknown := sorted(set(density) - set(known)):
            msg = f"unknown block {unknown[0]!r} in density; blocks: {', '.join(sorted(known))}"
            raise ValueError(msg)
        out = {**known, **density}
        if bad := [k for k, d in out.items() if not 0 <= d <= 1]:
            msg = f"density of {bad[0]} must be a chance from 0 to 1, got {out[bad[0]]!r}"
            raise ValueError(msg)
        for y in range(self.size):
            if (total := sum(d for k, d in out.items() if self._in_band(k, y))) > 1:
                msg = (f"densities of the blocks that share row {y} add up to {total:.2f}, more than 1: "
                       f"lower some of {dict(density)!r}")
                raise ValueError(msg)
        return out

    def _in_band(self, kind: str, y: int) -> bool:
        low, high = self.tech.resources[kind].depth
        return int(low * self.size) <= y < max(int(high * self.size), int(low * self.size) + 1)

    def _lay_out(self, density: dict[str, float]) -> None:
        for y in range(self.size):
            for x in range(self.size):
                draw, total = self.random.random(), 0.0
                for kind, chance in density.items():
                    total += chance if self._in_band(kind, y) else 0.0
                    if draw < total:
                        self.put_block(kind, x, y)
                        break
        for kind, chance in density.items():  # every kind the density allows appears at least once
            free = [(x, y) for y in range(self.size) for x in range(self.size)
                    if self._in_band(kind, y) and (x, y) not in self.blocks]
            if chance > 0 and free and all(b.kind != kind for b in self.blocks.values()):
                self.put_block(kind, *self.random.choice(free))
        if self.hazards:
            for (x, y), block in sorted(self.blocks.items(), key=lambda item: item[0][::-1]):
                free = [p for p in cells_around(x, y, self.size) if p not in self.blocks]
                if block.kind == "diamond_ore" and free and self.random.random() < LAVA_CHANCE:
                    self.put_block(LAVA, *self.random.choice(free), count=1)

    def put_block(self, kind: str, x: int, y: int, count: int | None = None) -> Block:
        """Puts a block on a cell, replacing any there (map building, scenarios and tests).

        Args:
            kind: A block kind of the tech tree, or ``lava``.
            x: Column.
            y: Row (depth).
            count: Units it holds; None: drawn from the kind's amount range (lava: 1).

        Returns:
            The block.

        Raises:
            ValueError: Unknown kind, or a cell off the map.
        """
        if kind != LAVA and kind not in self.tech.resources:
            msg = f"unknown block {kind!r}; blocks: {', '.join(sorted([*self.tech.resources, LAVA]))}"
            raise ValueError(msg)
        if not (0 <= x < self.size and 0 <= y < self.size):
            msg = f"cell ({x}, {y}) is off the map: x and y go from 0 to {self.size - 1}"
            raise ValueError(msg)
        if count is None:
            low, high = self.tech.resources[kind].amount if kind != LAVA else (1, 1)
            count = self.random.randint(low, high)
        self.blocks[(x, y)] = Block(kind, count)
        return self.blocks[(x, y)]

    @property
    def is_night(self) -> bool:
        """Whether the current step is a night (zombies come at its start)."""
        return self.steps > 0 and self.steps % self.day_length == 0

    def units_left(self) -> int:
        """Units left in all mineable blocks of the map."""
        return sum(b.count for b in self.blocks.values() if b.kind != LAVA)

    def player(self, name: str) -> Player:
        """The player called ``name``.

        Raises:
            ValueError: There is none.
        """
        if name not in self.by_name:
            msg = f"no player {name!r}; players: {', '.join(self.by_name)}"
            raise ValueError(msg)
        return self.by_name[name]

    def bot(self, name: str) -> Bot:
        """The skill API of the player called ``name``."""
        return self.player(name).bot

    def begin_turn(self, player: Player | str) -> Bot:
        """Starts an iteration for a player: refills its ticks, counts the turn and returns its bot."""
        player = self.player(player) if isinstance(player, str) else player
        player.ticks_left = self.tick_budget
        player.turns += 1
        return player.bot

    metrics_start = 0  # the first metrics row is the map before step 1

    @property
    def api_docs(self) -> str:
        """The skill API as prompt text, one line per method (the full docstrings are in `Bot.api_docs`)."""
        return Bot.api_docs(brief=True)

    def start_details(self) -> dict[str, Any]:
        """The map's size, the blocks on it (counts by kind, and ``map``: kind, x, y, units) and where players start."""
        return {"size": self.size, "blocks": dict(sorted(Counter(b.kind for b in self.blocks.values()).items())),
                "map": [[b.kind, x, y, b.count] for (x, y), b in sorted(self.blocks.items())],
                "agents": {p.name: list(p.position) for p in self.by_name.values()},
                "skill_library": self.library is not None, "skills": len(self.library or ())}

    def step(self) -> None:
        """One iteration: hazards, then the players' round, then metrics.

        A mind's class names its async phases before and after the round: a Voyager agent proposes and writes,
        then criticises and learns; a BabyAGI player executes (chooses a tool call), then creates tasks, after
        which its team settles the board. Phases run concurrently for all players that have them; the round
        (`act`, which changes the shared map) runs in a seeded shuffled order. Plain players only `act`.
        """
        self.step_counts.clear()
        for hook in self.hooks:
            hook.before_step(self)
        mark = len(self.changes)
        self._hazards()
        if hazards := [c for c in self.changes_since(mark) if c["action"] in ("zombie", "death", "respawn")]:
            self.emit(EventKind.HAZARD, None, {"changes": hazards})
        minds: list[TakesTurns] = [a for a in self.by_name.values() if isinstance(a, TakesTurns)]
        for mind in minds:
            mind.begin()
        self._phases(minds, "PHASES_BEFORE")
        self.agents.shuffle_do("act")
        self._phases(minds, "PHASES_AFTER")
        for hook in self.hooks:
            hook.after_commit(self)
        self.datacollector.collect(self)
        if self.llm is not None:
            counts: dict[str, Any] = {k: self.step_counts[k] for k in COUNTED}
            for hook in self.hooks:
                counts.update(hook.step_counts())
            self.emit(EventKind.STEP_ENDED, None, counts)

    def _phases(self, minds: list[TakesTurns], which: str) -> None:
        names = list(dict.fromkeys(p for mind in minds for p in getattr(mind, which)))
        for name in names:
            self.phase(name, [m for m in minds if name in getattr(m, which)])

    def summary(self) -> dict[str, Any]:
        """Voyager's outcome figures: milestones (step and iteration first reached), items, tasks, skills."""
        minds = [p for p in self.by_name.values() if isinstance(p, Learns)]
        out: dict[str, Any] = {
            "milestones": dict(self.milestone_steps), "milestone_iterations": dict(self.milestone_turns),
            "unique_items": sorted(self.obtained),
            "inventories": {p.name: dict(sorted(p.inventory.items())) for p in self.by_name.values()},
        }
        if minds:
            out["tasks"] = {"completed": sum(len(p.completed) for p in minds),
                            "failed": sum(len(p.failed) for p in minds),
                            "by_agent": {p.name: {"completed": p.completed, "failed": p.failed} for p in minds}}
        for hook in self.hooks:
            if (said := hook.summary()) is not None:
                out[hook.name] = said
        if self.library is not None:
            out["skill_library"] = {"skills": len(self.library), "retrievals": self.library.retrievals,
                                    "versions": {n: len(self.library.versions(n)) for n in self.library.latest()}}
        return out

    def plots(self, metrics: Any, folder: Path, *, title: str) -> list[str]:
        """Items, milestones, skills and tasks over the iterations (tech_tree.png); a team's board (tasks.png)."""
        plot_tech_tree(metrics, folder / "tech_tree.png", title=title, milestones=self.milestone_steps)
        if not self.team:
            return ["tech_tree.png"]
        plot_tasks(metrics, folder / "tasks.png", title=title)
        return ["tech_tree.png", "tasks.png"]

    def facts(self) -> str:
        """What every player holds and the milestones reached, for a team's judge."""
        held = "; ".join(f"{p.name} holds {dict(sorted(p.inventory.items())) or 'nothing'}"
                         for p in self.by_name.values())
        return f"{held}; milestones reached: {', '.join(self.milestone_steps) or 'none'}"

    @property
    def tools(self) -> list[Tool]:
        """The skill API's actions as tools (for players that act by tool calls), with this world's names."""
        if self._tools is None:
            self._tools = Bot.tools(self.tech, self.size)
        return self._tools

    def _hazards(self) -> None:
        for player in self.by_name.values():
            if player.health < MAX_HEALTH:
                self.change_health(player, min(REGEN, MAX_HEALTH - player.health), "regen")
        if self.hazards and self.is_night:
            for player in self.by_name.values():
                if self.random.random() < ZOMBIE_CHANCE:
                    self._zombie(player)

    def _zombie(self, player: Player) -> None:
        if any(player.inventory[s] > 0 for s in SWORDS):
            self.record(player, "zombie", "health", "zombie_slain", 0)
            return
        held = sorted(player.inventory)
        if held:
            self.take(player, self.random.choice(held), 1, "zombie")
        self.change_health(player, -ZOMBIE_DAMAGE, "zombie")

    def record(self, player: Player | None, action: str, kind: str, item: str, delta: int,
               where: Pos | None = None) -> None:
        """Records a change and hands it to the observers."""
        x, y = where if where else (None, None)
        change = Change(self.steps, player.name if player else None, action, kind, item, delta, x, y)
        self.changes.append(change)
        for observer in self.on_change:
            observer(change)
        if kind == EventKind.MILESTONE and self.llm is not None:
            self.emit(EventKind.MILESTONE, player, {"milestone": item, "turn": player.turns if player else None})

    def changes_since(self, mark: int) -> list[dict[str, Any]]:
        """Changes recorded after the first ``mark`` (take ``len(world.changes)`` before a skill runs)."""
        return [c.to_dict() for c in self.changes[mark:]]

    def give(self, player: Player, item: str, n: int, action: str) -> None:
        """Adds items to an inventory, noting new items and milestones."""
        player.inventory[item] += n
        self.record(player, action, "inventory", item, n)
        player.obtained.add(item)
        self.obtained.add(item)
        for name in self.tech.milestones_held(player.inventory):
            if name not in player.milestones:
                player.milestones[name] = self.steps
                self.milestone_steps.setdefault(name, self.steps)
                self.milestone_turns.setdefault(name, player.turns)
                self.record(player, action, "milestone", name, 1)

    def take(self, player: Player, item: str, n: int, action: str) -> None:
        """Removes items from an inventory."""
        player.inventory[item] -= n
        if player.inventory[item] <= 0:
            del player.inventory[item]
        self.record(player, action, "inventory", item, -n)

    def change_health(self, player: Player, delta: int, action: str) -> bool:
        """Changes health by ``delta``; at 0 the player loses everything and respawns at full health.

        Returns:
            Whether the player died.
        """
        player.health += delta
        self.record(player, action, "health", "health", delta)
        if player.health > 0:
            return False
        for item, n in sorted(player.inventory.items()):
            self.take(player, item, n, "death")
        self.record(player, "death", "health", "health", MAX_HEALTH - player.health)
        player.health = MAX_HEALTH
        player.cell = self.grid[player.spawn]
        self.record(player, "respawn", "position", "", 0, player.spawn)
        return True

    def stations_near(self, player: Player) -> set[str]:
        """Kinds of stations placed within reach of the player."""
        return {b.kind for p, b in self.blocks.items()
                if b.kind in (CRAFTING_TABLE, FURNACE) and cell_distance(p, player.position) <= STATION_REACH}

    def get_state(self) -> dict[str, Any]:
        """Returns a JSON-safe snapshot: steps, RNG, map, players, milestones and changes."""
        return {**super().get_state(),
                "blocks": [[b.kind, x, y, b.count] for (x, y), b in sorted(self.blocks.items())],
                "players": [p.get_state() for p in self.by_name.values()],
                "milestone_steps": dict(self.milestone_steps), "milestone_turns": dict(self.milestone_turns),
                "obtained": sorted(self.obtained),
                "changes": [c.to_dict() for c in self.changes],
                **({"library": self.library.get_state()} if self.library is not None else {})}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores a snapshot made by `get_state` (same player names).

        Raises:
            ValueError: The snapshot's players are not this world's.
        """
        names = [p["name"] for p in state["players"]]
        if sorted(names) != sorted(self.by_name):
            msg = f"snapshot players {names!r} differ from this world's {list(self.by_name)!r}"
            raise ValueError(msg)
        super().set_state(state)  # the board too, before the players, who look up their tasks on it
        self.blocks = {(x, y): Block(kind, count) for kind, x, y, count in state["blocks"]}
        for player_state in state["players"]:
            self.by_name[player_state["name"]].set_state(player_state)
        self.milestone_steps = {k: int(v) for k, v in state["milestone_steps"].items()}
        self.milestone_turns = {k: int(v) for k, v in state["milestone_turns"].items()}
        self.obtained = set(state["obtained"])
        self.changes = [Change(**c) for c in state["changes"]]
        if self.library is not None:
            self.library.set_state(state["library"])


def _check_args(size: int, players: Sequence[str], tick_budget: int, day_length: int) -> None:
    if size < 8:
        msg = f"size must be at least 8, got {size!r}"
        raise ValueError(msg)
    if not players or len(set(players)) != len(players):
        msg = f"players must be one or more distinct names, got {list(players)!r}"
        raise ValueError(msg)
    if tick_budget < 1 or day_length < 1:
        msg = f"tick_budget and day_length must be at least 1, got {tick_budget!r} and {day_length!r}"
        raise ValueError(msg)


def _counter(kind: str) -> Callable[[CraftingWorld], int]:
    return lambda world: world.step_counts[kind]


def _mind_reporters() -> dict[str, Callable[[CraftingWorld], int]]:
    """Per-step counts of the Voyager loop's events and running totals of tasks and skills."""
    reporters: dict[str, Callable[[CraftingWorld], int]] = {k: _counter(k) for k in COUNTED}
    reporters["tasks_completed"] = lambda w: sum(len(p.completed) for p in w.by_name.values() if isinstance(p, Learns))
    reporters["tasks_failed"] = lambda w: sum(len(p.failed) for p in w.by_name.values() if isinstance(p, Learns))
    reporters["skills"] = lambda w: len(w.library) if w.library is not None else 0
    return reporters
