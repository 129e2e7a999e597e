"""The rules of a Minecraft-like tech tree (Voyager, Wang et al. 2023): items, recipes, blocks, tools, milestones.

Pure data and functions, no Mesa and no randomness: `worlds.crafting.CraftingWorld` applies them to a map and
its players. An inventory is any ``Mapping[str, int]`` (a ``Counter`` in the world); the functions never change
it, they return the change to apply.

The chain: tree → log → planks (1 log → 4) → stick (2 planks → 4) → crafting_table (4 planks) → wooden_pickaxe
→ stone → cobblestone → stone_pickaxe → furnace (8 cobblestone) → iron_ore smelted with coal or planks →
iron_ingot → iron_pickaxe → diamond_ore → diamond.

Mining time: a block kind has a base number of ticks per unit mined by hand; the best pickaxe held divides it
by 1 + its tier (wooden 1, stone 2, iron 3, diamond 4), rounded up, at least 1 tick.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "MILESTONES", "RECIPES", "RESOURCES", "Milestone", "Recipe", "Resource", "TechTree", "Verdict", "check_count",
]

CRAFTING_TABLE = "crafting_table"
FURNACE = "furnace"
PICKAXES = ("wooden_pickaxe", "stone_pickaxe", "iron_pickaxe", "diamond_pickaxe")  # tiers 1 to 4
SWORDS = ("wooden_sword", "stone_sword", "iron_sword")
FUEL = {"coal": 8, "planks": 1}  # items smelted per unit of fuel, in the order fuel is chosen


@dataclass(frozen=True)
class Recipe:
    """How an item is made: one batch consumes ``needs`` and yields ``makes`` items.

    ``station`` is not consumed: a crafting_table (crafting) or a furnace (smelting, which also burns fuel)
    held in the inventory or placed near the player.
    """

    item: str
    needs: Mapping[str, int]
    makes: int = 1
    station: str | None = None

    @property
    def smelted(self) -> bool:
        """Whether this is a furnace recipe."""
        return self.station == FURNACE

    def text(self) -> str:
        """The recipe as a prompt reads it, e.g. ``4 stick = 2 planks``."""
        parts = " + ".join(f"{n} {name}" for name, n in self.needs.items())
        where = {CRAFTING_TABLE: " (at a crafting_table)", FURNACE: " (smelted in a furnace, burns fuel)"}
        return f"{self.makes} {self.item} = {parts}{where.get(self.station or '', '')}"


@dataclass(frozen=True)
class Resource:
    """A kind of block: what mining it yields, the pickaxe tier it needs and where the map holds it.

    Attributes:
        block: The block's name on the map.
        drop: The item one unit yields.
        tier: Pickaxe tier needed (0: bare hands, 1: wooden_pickaxe, ... 4: diamond_pickaxe).
        ticks: Ticks to mine one unit by hand.
        amount: Least and most units a block holds (the world draws one in between).
        density: Chance that a cell in the depth band holds this block (0: only ever placed by players).
        depth: Band of rows as fractions of the map height, 0 being the surface.
    """

    block: str
    drop: str
    tier: int
    ticks: int
    amount: tuple[int, int] = (1, 1)
    density: float = 0.0
    depth: tuple[float, float] = (0.0, 1.0)


@dataclass(frozen=True)
class Milestone:
    """A tech-tree level, reached when a player first holds one of ``items``."""

    name: str
    items: tuple[str, ...]


@dataclass(frozen=True)
class Verdict:
    """Whether an action is possible; if not, ``reason`` says why in words an LLM can act on.

    It is truthy exactly when the action is possible.
    """

    ok: bool
    reason: str = ""
    missing: Mapping[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.ok


def _r(item: str, needs: dict[str, int], makes: int = 1, station: str | None = CRAFTING_TABLE) -> Recipe:
    return Recipe(item, MappingProxyType(needs), makes, station)


RECIPES = (
    _r("planks", {"log": 1}, 4, None),
    _r("stick", {"planks": 2}, 4, None),
    _r("crafting_table", {"planks": 4}, 1, None),
    _r("wooden_pickaxe", {"planks": 3, "stick": 2}),
    _r("wooden_sword", {"planks": 2, "stick": 1}),
    _r("stone_pickaxe", {"cobblestone": 3, "stick": 2}),
    _r("stone_sword", {"cobblestone": 2, "stick": 1}),
    _r("furnace", {"cobblestone": 8}),
    _r("torch", {"stick": 1, "coal": 1}, 4, None),
    _r("iron_ingot", {"iron_ore": 1}, 1, FURNACE),
    _r("iron_pickaxe", {"iron_ingot": 3, "stick": 2}),
    _r("iron_sword", {"iron_ingot": 2, "stick": 1}),
    _r("diamond_pickaxe", {"diamond": 3, "stick": 2}),
)
RESOURCES = (
    Resource("tree", "log", 0, 4, (3, 5), 0.15, (0.0, 0.2)),
    Resource("stone", "cobblestone", 1, 6, (3, 6), 0.25, (0.15, 1.0)),
    Resource("coal_ore", "coal", 1, 6, (2, 4), 0.06, (0.2, 1.0)),
    Resource("iron_ore", "iron_ore", 2, 8, (1, 3), 0.05, (0.4, 1.0)),
    Resource("diamond_ore", "diamond", 3, 10, (1, 2), 0.015, (0.75, 1.0)),
    Resource(CRAFTING_TABLE, CRAFTING_TABLE, 0, 2),  # placed by players; mining one picks it up
    Resource(FURNACE, FURNACE, 1, 4),
)
MILESTONES = (
    Milestone("wooden_tool", ("wooden_pickaxe", "wooden_sword")),
    Milestone("stone_tool", ("stone_pickaxe", "stone_sword")),
    Milestone("iron_tool", ("iron_pickaxe", "iron_sword")),
    Milestone("diamond", ("diamond", "diamond_pickaxe")),
)


class TechTree:
    """Items, recipes, block kinds and milestones, with the rules that check and apply them.

    The defaults are Voyager's tech tree in small (18 items); pass other tables to change it. Every name a
    table mentions must be an item some recipe makes or some block drops.
    """

    def __init__(
        self,
        *,
        recipes: Sequence[Recipe] = RECIPES,
        resources: Sequence[Resource] = RESOURCES,
        milestones: Sequence[Milestone] = MILESTONES,
    ) -> None:
        """Indexes the tables and checks that they only name known items.

        Args:
            recipes: One recipe per made item.
            resources: One entry per block kind.
            milestones: Tech-tree levels, in order.

        Raises:
            ValueError: A table names an item nothing yields, or an item has two recipes.
        """
        self.recipes: Mapping[str, Recipe] = MappingProxyType({r.item: r for r in recipes})
        self.resources: Mapping[str, Resource] = MappingProxyType({r.block: r for r in resources})
        self.milestones: tuple[Milestone, ...] = tuple(milestones)
        if len(self.recipes) != len(recipes):
            msg = f"two recipes make the same item: {sorted(r.item for r in recipes)}"
            raise ValueError(msg)
        made = set(self.recipes) | {r.drop for r in resources}
        named = {n for r in recipes for n in r.needs} | {i for m in milestones for i in m.items}
        named |= {r.station for r in recipes if r.station}
        if unknown := sorted(named - made):
            msg = f"tables name items that no recipe makes and no block drops: {unknown}"
            raise ValueError(msg)
        self.items: tuple[str, ...] = tuple(sorted(made))

    def block_for(self, name: str) -> str:
        """The block kind called ``name``, or the one kind whose drop is ``name`` (``log`` → ``tree``).

        Raises:
            ValueError: No block is called so or drops it.
        """
        if name in self.resources:
            return name
        kinds = [r.block for r in self.resources.values() if r.drop == name]
        if len(kinds) == 1:
            return kinds[0]
        msg = f"unknown block {name!r}; blocks: {', '.join(sorted(self.resources))}"
        raise ValueError(msg)

    def tool_tier(self, inventory: Mapping[str, int]) -> int:
        """The tier of the best pickaxe held (0: none)."""
        return max((t for t, p in enumerate(PICKAXES, 1) if inventory.get(p, 0) > 0), default=0)

    def mining_requirement(self, block: str) -> str | None:
        """The least pickaxe that mines ``block``, or None if bare hands do.

        Raises:
            ValueError: Unknown block.
        """
        tier = self.resources[self.block_for(block)].tier
        return PICKAXES[tier - 1] if tier else None

    def can_mine(self, inventory: Mapping[str, int], block: str) -> Verdict:
        """Whether the tools held can mine ``block``; if not, which pickaxe is needed."""
        kind = self.block_for(block)
        need, tier = self.mining_requirement(kind), self.tool_tier(inventory)
        if tier >= self.resources[kind].tier:
            return Verdict(True)
        have = PICKAXES[tier - 1] if tier else "no pickaxe"
        return Verdict(False, f"cannot mine {kind}: needs {need} or better, you have {have}", {str(need): 1})

    def mining_ticks(self, block: str, inventory: Mapping[str, int]) -> int:
        """Ticks to mine one unit of ``block`` with the best pickaxe held."""
        return max(1, math.ceil(self.resources[self.block_for(block)].ticks / (1 + self.tool_tier(inventory))))

    def can_craft(self, inventory: Mapping[str, int], item: str, count: int = 1, *,
                  stations: Collection[str] = ()) -> Verdict:
        """Whether ``count`` of ``item`` can be crafted now, and if not, what is missing.

        Args:
            inventory: What the player holds.
            item: What to craft.
            count: How many items are wanted; recipes make whole batches, so a few more may come out.
            stations: Stations placed near the player (held ones count too).

        Returns:
            The verdict; ``missing`` maps each lacking ingredient or station to how many more are needed.

        Raises:
            ValueError: ``count`` is not a whole number of at least 1 (misuse, not a missing ingredient).
        """
        recipe = self.recipes.get(item)
        if recipe is None or recipe.smelted:
            return Verdict(False, self._not_craftable(item))
        return self._check(inventory, recipe, check_count(count), stations, verb="craft")

    def craft(self, inventory: Mapping[str, int], item: str, count: int = 1, *,
              stations: Collection[str] = ()) -> Counter[str]:
        """The inventory change of crafting at least ``count`` ``item`` (whole batches).

        Returns:
            Item → change (negative for what is used up).

        Raises:
            ValueError: It cannot be crafted now; the message says what is missing.
        """
        verdict = self.can_craft(inventory, item, count, stations=stations)
        if not verdict:
            raise ValueError(verdict.reason)
        return self._apply(self.recipes[item], count)

    def smelt(self, inventory: Mapping[str, int], item: str, count: int = 1, *, fuel: str | None = None,
              stations: Collection[str] = ()) -> Counter[str]:
        """The inventory change of smelting ``count`` items in a furnace.

        Args:
            inventory: What the player holds.
            item: The result (``iron_ingot``) or the raw item (``iron_ore``).
            count: How many to smelt.
            fuel: ``coal`` (smelts 8 items a unit) or ``planks`` (1 item); None: the first one held in
                sufficient amount, coal first.
            stations: Stations placed near the player (a held furnace counts too).

        Returns:
            Item → change (negative for what is used up).

        Raises:
            ValueError: It cannot be smelted now; the message says what is missing.
        """
        recipe = self._smelt_recipe(item)
        if fuel is not None and fuel not in FUEL:
            msg = f"cannot smelt with {fuel!r}: fuels are {', '.join(FUEL)}"
            raise ValueError(msg)
        count = check_count(count)
        verdict = self._check(inventory, recipe, count, stations, verb="smelt", fuel=fuel)
        if not verdict:
            raise ValueError(verdict.reason)
        delta = self._apply(recipe, count)
        burn = self._fuel(inventory, recipe, count, fuel)
        delta[burn[0]] -= burn[1]
        return delta

    def milestones_held(self, inventory: Mapping[str, int]) -> list[str]:
        """Names of the milestones whose items the inventory holds, in tech-tree order."""
        return [m.name for m in self.milestones if any(inventory.get(i, 0) > 0 for i in m.items)]

    def describe(self) -> str:
        """Every recipe and block as prompt text, one a line."""
        lines = [r.text() for r in self.recipes.values()]
        for res in self.resources.values():
            tool = f"needs {PICKAXES[res.tier - 1]}+" if res.tier else "bare hands"
            lines.append(f"mine {res.block} → {res.drop} ({tool})")
        return "\n".join(lines)

    def _not_craftable(self, item: str) -> str:
        recipe = self.recipes.get(item)
        if recipe is not None:  # a furnace recipe
            return f"cannot craft {item}: it is smelted, not crafted; use smelt({item!r})"
        if item in self.items:
            kinds = [r.block for r in self.resources.values() if r.drop == item]
            return f"cannot craft {item}: it is not crafted; mine {kinds[0]} to get it"
        return f"cannot craft {item!r}: unknown item; items that can be crafted: {', '.join(self._craftable())}"

    def _craftable(self) -> list[str]:
        return sorted(r.item for r in self.recipes.values() if not r.smelted)

    def _smelt_recipe(self, item: str) -> Recipe:
        for recipe in self.recipes.values():
            if recipe.smelted and item in (recipe.item, *recipe.needs):
                return recipe
        smeltable = sorted(r.item for r in self.recipes.values() if r.smelted)
        msg = f"cannot smelt {item!r}: only {', '.join(smeltable)} can be smelted (from its raw item)"
        raise ValueError(msg)

    def _check(self, inventory: Mapping[str, int], recipe: Recipe, count: int, stations: Collection[str], *,
               verb: str, fuel: str | None = None) -> Verdict:
        batches = math.ceil(count / recipe.makes)
        missing = {n: k * batches - inventory.get(n, 0) for n, k in recipe.needs.items()
                   if inventory.get(n, 0) < k * batches}
        parts = [f"{k * batches} {n} (you have {inventory.get(n, 0)})" for n, k in recipe.needs.items() if n in missing]
        problems = [f"needs {' and '.join(parts)}"] if parts else []
        if recipe.station and inventory.get(recipe.station, 0) < 1 and recipe.station not in stations:
            missing[recipe.station] = 1
            problems.append(f"needs a {recipe.station} in your inventory or placed next to you")
        if recipe.smelted and not missing:
            try:
                self._fuel(inventory, recipe, count, fuel)
            except ValueError as err:
                problems.append(str(err))
        if not problems:
            return Verdict(True)
        return Verdict(False, f"cannot {verb} {count} {recipe.item}: {'; '.join(problems)}", missing)

    def _fuel(self, inventory: Mapping[str, int], recipe: Recipe, count: int, fuel: str | None) -> tuple[str, int]:
        needs = {f: math.ceil(count / per) for f, per in FUEL.items()}
        for name in [fuel] if fuel else list(FUEL):
            if inventory.get(name, 0) >= needs[name]:
                return name, needs[name]
        options = " or ".join(f"{needs[f]} {f} (you have {inventory.get(f, 0)})" for f in ([fuel] if fuel else FUEL))
        msg = f"needs fuel for {count} {recipe.item}: {options}"
        raise ValueError(msg)

    @staticmethod
    def _apply(recipe: Recipe, count: int) -> Counter[str]:
        batches = math.ceil(count / recipe.makes)
        delta: Counter[str] = Counter({n: -k * batches for n, k in recipe.needs.items()})
        delta[recipe.item] += recipe.makes * batches
        return delta


def check_count(count: int) -> int:
    """Returns ``count`` if it is a whole number of at least 1.

    Raises:
        ValueError: It is not.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        msg = f"count must be a whole number of at least 1, got {count!r}"
        raise ValueError(msg)
    return count
