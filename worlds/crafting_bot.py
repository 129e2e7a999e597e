"""The skill API of the crafting world: what LLM-written code (and the sandbox proxying it) calls to act."""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from simulacra.agents.tools import Tool, ToolCall, tools_from_methods
from simulacra.worlds.crafting_rules import (
    CRAFT_TICKS,
    HARD_CHANCE,
    LAVA,
    LAVA_DAMAGE,
    MINE_RADIUS,
    SMELT_TICKS,
    Block,
    Pos,
    cell_distance,
    cells_around,
)
from simulacra.worlds.tech_tree import CRAFTING_TABLE, FURNACE, TechTree, check_count

if TYPE_CHECKING:
    from simulacra.worlds.player import Player

__all__ = ["Bot"]


class Bot:
    """The skill API of one player: what LLM-written code calls to act in the world.

    Every method takes and returns JSON-safe values (ints, strings, lists, dicts, None) and costs ticks. When an
    action is impossible it raises ValueError saying why and what to do instead; effects made before the error
    (items mined, cells walked) stay.
    """

    API = ("status", "position", "inventory", "nearby", "find", "move_to", "mine", "craft", "smelt", "place", "chat")
    # as tools: the actions first (small models lean to the first listed); status etc. are in the prompt already
    TOOLS = ("mine", "craft", "place", "smelt", "move_to", "find", "nearby", "chat")

    def __init__(self, player: Player) -> None:
        """Binds the API to a player."""
        self.player = player
        self.world = player.model

    @classmethod
    def api_docs(cls, *, brief: bool = False) -> str:
        """The API as prompt text: one signature and docstring per method, built from the code.

        Args:
            brief: Only each docstring's first line (small models have small context windows).
        """
        entries = []
        for name in cls.API:
            method = getattr(cls, name)
            params = list(inspect.signature(method).parameters.values())[1:]
            args = ", ".join(_param_text(p) for p in params)
            lines = (inspect.getdoc(method) or "").splitlines()
            doc = "\n".join(f"    {line}" if line else "" for line in (lines[:1] if brief else lines))
            entries.append(f"bot.{name}({args}) -> {inspect.signature(method).return_annotation}\n{doc}")
        head = ("Every call costs ticks from your budget for this iteration (status() shows ticks_left); once it "
                "is spent, calls raise ValueError('out of time for this iteration ...'). A call that cannot be done "
                "raises ValueError saying why; what was done before the error stays done.")
        return "\n\n".join([head, *entries])

    @classmethod
    def tools(cls, tech: TechTree, size: int) -> list[Tool]:
        """The API's actions as tools for agents that act by tool calls (BabyAGI), with the world's names.

        Args:
            tech: The rules, whose blocks and items become the allowed values of ``block`` and ``item``.
            size: The map's size, which bounds ``x``, ``y`` and ``radius``.
        """
        blocks = sorted({*tech.resources, *(r.drop for r in tech.resources.values())})
        return tools_from_methods(cls, cls.TOOLS, arguments={
            "block": {"enum": blocks}, "item": {"enum": list(tech.items)}, "count": {"minimum": 1, "maximum": 64},
            "x": {"minimum": 0, "maximum": size - 1}, "y": {"minimum": 0, "maximum": size - 1},
            "radius": {"minimum": 0, "maximum": size}, "fuel": {"enum": ["coal", "planks"]},
            "message": {"maxLength": 120}})

    def call(self, call: ToolCall) -> Any:
        """Performs a tool call (one of `TOOLS`) and returns what the method returns.

        Raises:
            ValueError: The tool is not one of `TOOLS`, or the action is impossible (the method's message).
        """
        if call.tool not in self.TOOLS:
            msg = f"unknown tool {call.tool!r}; tools: {', '.join(self.TOOLS)}"
            raise ValueError(msg)
        return getattr(self, call.tool)(**call.args)

    def api(self) -> dict[str, Callable[..., Any]]:
        """Name → bound method, for a sandbox that proxies the calls."""
        return {name: getattr(self, name) for name in self.API}

    def _spend(self, ticks: int, progress: str = "") -> None:
        p = self.player
        if p.ticks_left < ticks or p.ticks_left <= 0:
            p.ticks_left = 0
            done = f" ({progress})" if progress else ""
            msg = (f"out of time for this iteration{done}: each iteration has {self.world.tick_budget} ticks; "
                   "finish in the next one")
            raise ValueError(msg)
        p.ticks_left -= ticks

    def status(self) -> dict[str, Any]:
        """Where you are, your health, the ticks left in this iteration, night or not, milestones. Costs 1 tick.

        Returns:
            {"x", "y", "health", "ticks_left", "night", "milestones": [names]}.
        """
        self._spend(1)
        x, y = self.player.position
        return {"x": x, "y": y, "health": self.player.health, "ticks_left": self.player.ticks_left,
                "night": self.world.is_night, "milestones": sorted(self.player.milestones)}

    def position(self) -> dict[str, int]:
        """Your cell; y is depth, 0 being the surface. Costs 1 tick.

        Returns:
            {"x", "y"}.
        """
        self._spend(1)
        x, y = self.player.position
        return {"x": x, "y": y}

    def inventory(self) -> dict[str, int]:
        """What you hold. Costs 1 tick.

        Returns:
            Item → count.
        """
        self._spend(1)
        return dict(sorted(self.player.inventory.items()))

    def nearby(self, radius: int = 8) -> list[dict[str, Any]]:
        """Blocks within ``radius`` cells, nearest first. Costs 1 tick.

        Args:
            radius: How far to look (distance counts diagonal steps as 1).

        Returns:
            [{"block", "x", "y", "distance", "count"}, ...]; count is the units left in the block.
        """
        _whole(radius, "radius", 0)
        self._spend(1)
        return [e for e in self._blocks() if e["distance"] <= radius]

    def find(self, block: str) -> dict[str, Any] | None:
        """The nearest block of a kind anywhere on the map. Costs 2 ticks.

        Args:
            block: A block ("tree", "iron_ore") or what it drops ("log" finds a tree).

        Returns:
            {"block", "x", "y", "distance", "count"}, or None if there is none left.
        """
        kind = self._kind(block)
        self._spend(2)
        return next((e for e in self._blocks() if e["block"] == kind), None)

    def move_to(self, x: int, y: int) -> dict[str, int]:
        """Walks to a cell, 1 tick a cell, diagonal steps included.

        Args:
            x: Column, from 0.
            y: Row (depth), from 0.

        Returns:
            {"x", "y"}: where you are now.
        """
        if not all(isinstance(v, int) and 0 <= v < self.world.size for v in (x, y)):
            msg = f"cannot move to ({x!r}, {y!r}): x and y are whole numbers from 0 to {self.world.size - 1}"
            raise ValueError(msg)
        self._walk((x, y), reach=0)
        x, y = self.player.position
        return {"x": x, "y": y}

    def mine(self, block: str, count: int = 1) -> dict[str, Any]:
        """Mines units from the nearest blocks of a kind within 8 cells, walking next to each.

        A unit takes the kind's ticks divided by 1 + your best pickaxe's tier (wooden 1 ... diamond 4). A block
        that is mined out is gone for everyone.

        Args:
            block: A block ("tree", "stone", "coal_ore", "iron_ore", "diamond_ore") or what it drops ("log",
                "cobblestone", "coal", "diamond").
            count: Units to mine.

        Returns:
            {"block", "mined", "got": {item: n}}.

        Raises:
            ValueError: Your pickaxe is too weak, or fewer units are within 8 cells (what was mined stays).
        """
        kind = self._kind(block)
        if kind == LAVA:
            msg = "cannot mine lava; keep away or carry cobblestone, which seals lava next to what you mine"
            raise ValueError(msg)
        verdict = self.world.tech.can_mine(self.player.inventory, kind)
        if not verdict:
            raise ValueError(verdict.reason)
        count, mined = check_count(count), 0
        while mined < count:
            target = next((e for e in self._blocks() if e["block"] == kind and e["count"] > 0
                           and e["distance"] <= MINE_RADIUS), None)
            if target is None:
                x, y = self.player.position
                msg = (f"mined {mined} of {count} {kind}: no {kind} left within {MINE_RADIUS} cells of ({x}, {y}); "
                       f"use find({kind!r}) and move_to(x, y)")
                raise ValueError(msg)
            mined = self._mine_block((target["x"], target["y"]), mined, count)
        return {"block": kind, "mined": mined, "got": {self.world.tech.resources[kind].drop: mined}}

    def craft(self, item: str, count: int = 1) -> dict[str, Any]:
        """Crafts items; recipes make whole batches, so you may get a few more. 1 tick a batch.

        Tools and the furnace need a crafting_table held or placed within 2 cells.

        Args:
            item: What to craft, e.g. "planks", "stick", "wooden_pickaxe".
            count: How many you want.

        Returns:
            {"item", "made", "used": {item: n}}.

        Raises:
            ValueError: Something is missing; the message lists it.
        """
        tech = self.world.tech
        delta = tech.craft(self.player.inventory, _text(item, "item"), count,
                           stations=self.world.stations_near(self.player))
        self._spend(CRAFT_TICKS * (delta[item] // tech.recipes[item].makes))
        return self._apply(delta, item, "craft")

    def smelt(self, item: str, count: int = 1, fuel: str | None = None) -> dict[str, Any]:
        """Smelts items in a furnace held or placed within 2 cells, 5 ticks each.

        Args:
            item: The result ("iron_ingot") or the raw item ("iron_ore").
            count: How many to smelt.
            fuel: "coal" (1 smelts 8 items) or "planks" (1 smelts 1); None: coal if you have enough, else planks.

        Returns:
            {"item", "made", "used": {item: n}}.

        Raises:
            ValueError: No furnace, raw items or fuel; the message says which.
        """
        delta = self.world.tech.smelt(self.player.inventory, _text(item, "item"), count, fuel=fuel,
                                      stations=self.world.stations_near(self.player))
        made = next(k for k, v in delta.items() if v > 0)
        self._spend(SMELT_TICKS * delta[made])
        return self._apply(delta, made, "smelt")

    def place(self, item: str) -> dict[str, Any]:
        """Places a crafting_table or furnace you hold on your cell, or the nearest free one. Costs 1 tick.

        Anyone within 2 cells of it can use it; mining it picks it up again.

        Args:
            item: "crafting_table" or "furnace".

        Returns:
            {"block", "x", "y"}.
        """
        if item not in (CRAFTING_TABLE, FURNACE) or self.player.inventory[item] < 1:
            msg = (f"cannot place {item!r}: only a crafting_table or furnace can be placed, and you have none"
                   if item in (CRAFTING_TABLE, FURNACE) else f"cannot place {item!r}: only a crafting_table or "
                   "furnace can be placed")
            raise ValueError(msg)
        x, y = self.player.position
        free = [p for p in [(x, y), *cells_around(x, y, self.world.size)] if p not in self.world.blocks]
        if not free:
            msg = f"cannot place {item}: every cell around ({x}, {y}) holds a block; mine one or move"
            raise ValueError(msg)
        self._spend(1)
        self.world.take(self.player, item, 1, "place")
        self.world.put_block(item, *free[0], count=1)
        self.world.record(self.player, "place", "block", item, 1, free[0])
        return {"block": item, "x": free[0][0], "y": free[0][1]}

    def chat(self, message: str) -> dict[str, Any]:
        """Says something to every other player; it reaches their inbox. Costs 1 tick.

        Args:
            message: What to say (500 characters at most are kept).

        Returns:
            {"said", "to": [names]}.
        """
        self._spend(1)
        said = str(message)[:500]
        heard = [p for p in self.world.by_name.values() if p is not self.player]
        for p in heard:
            p.inbox.append(f"{self.player.name}: {said}")
        return {"said": said, "to": [p.name for p in heard]}

    def _kind(self, block: str) -> str:
        return LAVA if block == LAVA else self.world.tech.block_for(_text(block, "block"))

    def _blocks(self) -> list[dict[str, Any]]:
        here = self.player.position
        found = [{"block": b.kind, "x": x, "y": y, "distance": cell_distance((x, y), here), "count": b.count}
                 for (x, y), b in self.world.blocks.items()]
        return sorted(found, key=lambda e: (e["distance"], e["y"], e["x"]))

    def _walk(self, goal: Pos, *, reach: int, progress: str = "") -> None:
        start = (x, y) = self.player.position
        walked = 0
        try:
            while cell_distance((x, y), goal) > reach:
                self._spend(1, progress or f"walked to ({x}, {y}) on the way to {goal}")
                x, y = x + _sign(goal[0] - x), y + _sign(goal[1] - y)
                walked += 1
        finally:
            if (x, y) != start:
                self.player.cell = self.world.grid[(x, y)]
                self.world.record(self.player, "move", "position", "", walked, (x, y))

    def _mine_block(self, where: Pos, mined: int, count: int) -> int:
        """Mines from one block until ``count`` units are mined in all; returns the new total."""
        world, player, tech = self.world, self.player, self.world.tech
        block = world.blocks[where]
        self._walk(where, reach=1, progress=f"mined {mined} of {count} {block.kind}")
        self._lava(where)
        while mined < count and block.count > 0:
            ticks = tech.mining_ticks(block.kind, player.inventory)
            hard = world.hazards and tech.resources[block.kind].tier > 0 and world.random.random() < HARD_CHANCE
            self._spend(ticks * (2 if hard else 1), f"mined {mined} of {count} {block.kind}")
            block.count -= 1
            world.record(player, "mine", "block", block.kind, -1, where)
            world.give(player, tech.resources[block.kind].drop, 1, "mine")
            mined += 1
        if block.count == 0:
            del world.blocks[where]
        return mined

    def _lava(self, where: Pos) -> None:
        world, player = self.world, self.player
        for lava in [p for p in cells_around(*where, world.size) if world.blocks.get(p, Block("", 0)).kind == LAVA]:
            if player.inventory["cobblestone"] > 0:
                world.take(player, "cobblestone", 1, "seal")
                del world.blocks[lava]
                world.record(player, "seal", "block", LAVA, -1, lava)
                continue
            if world.change_health(player, -LAVA_DAMAGE, "lava"):
                msg = (f"you died in lava at {lava}: you lost everything and respawned at {player.spawn}; "
                       "carry cobblestone to seal lava")
                raise ValueError(msg)

    def _apply(self, delta: Counter[str], made: str, action: str) -> dict[str, Any]:
        used = {k: -v for k, v in sorted(delta.items()) if v < 0}
        for item, n in used.items():
            self.world.take(self.player, item, n, action)
        self.world.give(self.player, made, delta[made], action)
        return {"item": made, "made": delta[made], "used": used}


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        msg = f"{what} must be a name in quotes, got {value!r}"
        raise ValueError(msg)
    return value


def _whole(value: object, what: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        msg = f"{what} must be a whole number of at least {least}, got {value!r}"
        raise ValueError(msg)
    return value


def _param_text(param: inspect.Parameter) -> str:
    text = f"{param.name}: {param.annotation}" if param.annotation is not param.empty else param.name
    return text if param.default is param.empty else f"{text} = {param.default!r}"


def _sign(v: int) -> int:
    return (v > 0) - (v < 0)
