"""The world as the web view draws it, rebuilt from the event log one event at a time.

Each world kind has a `Frame`: it starts from ``run_started`` and applies the events that change what is drawn.
`Frame.picture` is the JSON the page draws for the step just applied. Nothing here reads snapshots, which a
run may thin (``outputs.snapshots_mb``): the event log is the record.

The log is untrusted input: a value of the wrong type (a place that is not a string, a cell that is not two whole
numbers) is left out of the picture, never kept to break it later.
"""

from __future__ import annotations

from typing import Any

from simulacra.events import EventKind
from simulacra.worlds.crafting_rules import MAX_HEALTH

__all__ = ["CraftingFrame", "Frame", "SocietyFrame", "TownFrame", "make_frame"]


class Frame:
    """Agents and nothing else: the frame of a world this view does not know how to draw."""

    kind = "agents"

    def __init__(self, start: dict[str, Any]) -> None:
        """Starts from ``run_started``'s data."""
        self.agents: dict[str, Any] = _dict(start.get("agents"))
        self.names: list[str] = list(self.agents)

    def begin_step(self) -> None:
        """Forgets what belonged to the step before (who talked, who was rated)."""

    def apply(self, agent: str | None, kind: str, data: Any) -> None:
        """Applies one event of the step."""

    def picture(self) -> dict[str, Any]:
        """What the page draws now (JSON-safe, a fresh object)."""
        return {"kind": self.kind, "agents": list(self.names)}


class TownFrame(Frame):
    """Town: who is at which place, and who talked to whom in the step."""

    kind = "town"

    def __init__(self, start: dict[str, Any]) -> None:
        """Places and where each agent starts."""
        super().__init__(start)
        self.where: dict[str, str] = {name: place for name, place in self.agents.items() if isinstance(place, str)}
        self.talks: list[list[str]] = []

    def begin_step(self) -> None:
        """A step's talk is drawn in that step only."""
        self.talks = []

    def apply(self, agent: str | None, kind: str, data: Any) -> None:
        """``moved`` changes a place; ``said`` draws a talk."""
        to = _dict(data).get("to")
        if not agent or not isinstance(to, str):
            return
        if kind == EventKind.MOVED:
            self.where[agent] = to
        elif kind == EventKind.SAID:
            self.talks.append([agent, to])

    def picture(self) -> dict[str, Any]:
        """Each agent's place and the step's talks (speaker, listener)."""
        return {"kind": self.kind, "where": dict(self.where), "talks": [list(t) for t in self.talks]}


class CraftingFrame(Frame):
    """Crafting: the blocks left on the map, each player's cell, health and inventory."""

    kind = "crafting"

    def __init__(self, start: dict[str, Any]) -> None:
        """The map (``run_started``'s ``map``; logs older than it show players only) and the players' cells."""
        super().__init__(start)
        size = start.get("size")
        self.size = size if _whole(size) else 0
        self.blocks: dict[tuple[int, int], list[Any]] = {
            (block[1], block[2]): [block[0], block[3]] for block in _list(start.get("map"))
            if isinstance(block, list) and len(block) == 4 and isinstance(block[0], str) and _cell(block[1:3])
            and _number(block[3])}
        self.players = {name: {"x": xy[0], "y": xy[1], "health": MAX_HEALTH, "inventory": {}}
                        for name, xy in self.agents.items() if _cell(xy)}
        self.acted: set[str] = set()

    def begin_step(self) -> None:
        """Who acted is drawn per step."""
        self.acted = set()

    def apply(self, agent: str | None, kind: str, data: Any) -> None:
        """The world changes a skill run, a tool call or a hazard recorded."""
        if agent and kind in ("skill_ran", "tool_called"):
            self.acted.add(agent)
        if kind in ("skill_ran", "tool_called", "hazard"):
            for change in _list(_dict(data).get("changes")):
                if isinstance(change, dict) and isinstance(change.get("item"), str) and _number(change.get("delta")):
                    self._change(change)

    def _change(self, change: dict[str, Any]) -> None:
        who = change.get("player")
        player = self.players.get(who) if isinstance(who, str) else None
        what, item, delta = change.get("kind"), change["item"], change["delta"]
        cell = _xy(change.get("x"), change.get("y"))
        if what == "block" and cell is not None:
            kind, count = self.blocks.get(cell, [item, 0])
            if count + delta > 0:
                self.blocks[cell] = [kind, count + delta]
            else:
                self.blocks.pop(cell, None)
        elif player is None:
            return
        elif what == "position" and cell is not None:
            player["x"], player["y"] = cell
        elif what == "inventory":
            held = player["inventory"]
            held[item] = held.get(item, 0) + delta
            if held[item] <= 0:
                del held[item]
        elif what == "health" and item == "health":
            player["health"] += delta

    def picture(self) -> dict[str, Any]:
        """Size, blocks ([kind, x, y, units]) and players."""
        return {"kind": self.kind, "size": self.size,
                "blocks": [[kind, x, y, count] for (x, y), (kind, count) in sorted(self.blocks.items())],
                "players": {name: {**p, "inventory": dict(p["inventory"])} for name, p in self.players.items()},
                "acted": sorted(self.acted)}


class SocietyFrame(Frame):
    """The society (Stable Alignment): each agent's seat on the grid and the ratings of its latest answer."""

    kind = "society"

    def __init__(self, start: dict[str, Any]) -> None:
        """Seats and the rating scale."""
        super().__init__(start)
        self.cells = {name: list(xy) for name, xy in self.agents.items() if _cell(xy)}
        scale = start.get("scale")
        self.scale = scale if _number(scale) else None
        self.ratings: dict[str, dict[str, Any]] = {}
        self.rated: list[list[str]] = []

    def begin_step(self) -> None:
        """Who rated whom is drawn per step."""
        self.rated = []

    def apply(self, agent: str | None, kind: str, data: Any) -> None:
        """An ``interaction``: the answerer's mean ratings, before and after revising, and its raters."""
        if kind != EventKind.INTERACTION or not agent or not isinstance(data, dict):
            return
        draft, revised, question = data.get("mean_draft"), data.get("mean_revision"), data.get("question")
        self.ratings[agent] = {"draft": draft if _number(draft) else None,
                               "revised": revised if _number(revised) else None,
                               "question": question if isinstance(question, str) else None}
        self.rated.extend([r["rater"], agent] for r in _list(data.get("ratings"))
                          if isinstance(r, dict) and isinstance(r.get("rater"), str) and r["rater"])

    def picture(self) -> dict[str, Any]:
        """Seats, scale, latest ratings per agent and the step's rater → answerer pairs."""
        return {"kind": self.kind, "cells": {k: list(v) for k, v in self.cells.items()}, "scale": self.scale,
                "ratings": {k: dict(v) for k, v in self.ratings.items()}, "rated": [list(r) for r in self.rated]}


FRAMES: dict[str, type[Frame]] = {"town": TownFrame, "crafting": CraftingFrame, "society": SocietyFrame}


def make_frame(world_type: str | None, start: dict[str, Any]) -> Frame:
    """The frame for a world type (`Frame` for one it does not know)."""
    return FRAMES.get(world_type or "", Frame)(start)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _xy(x: Any, y: Any) -> tuple[int, int] | None:
    return (x, y) if _whole(x) and _whole(y) else None


def _cell(value: Any) -> bool:
    """Two whole numbers (a list or a tuple): a cell of a grid."""
    return isinstance(value, list | tuple) and len(value) == 2 and _whole(value[0]) and _whole(value[1])
