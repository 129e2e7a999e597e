"""The world as the web view draws it, rebuilt from the event log one event at a time.

Each world kind has a `Frame`: it starts from ``run_started`` and applies the events that change what is drawn.
`Frame.picture` is the JSON the page draws for the step just applied. Nothing here reads snapshots, which a
run keeps only the newest few of (``outputs.snapshots_keep``): the event log is the record.
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
        agents = start.get("agents") or {}
        self.names: list[str] = list(agents)

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
        self.where: dict[str, str] = dict(start.get("agents") or {})
        self.talks: list[list[str]] = []

    def begin_step(self) -> None:
        """A step's talk is drawn in that step only."""
        self.talks = []

    def apply(self, agent: str | None, kind: str, data: Any) -> None:
        """``moved`` changes a place; ``said`` draws a talk."""
        if kind == EventKind.MOVED and agent:
            self.where[agent] = data["to"]
        elif kind == EventKind.SAID and agent:
            self.talks.append([agent, data["to"]])

    def picture(self) -> dict[str, Any]:
        """Each agent's place and the step's talks (speaker, listener)."""
        return {"kind": self.kind, "where": dict(self.where), "talks": [list(t) for t in self.talks]}


class CraftingFrame(Frame):
    """Crafting: the blocks left on the map, each player's cell, health and inventory."""

    kind = "crafting"

    def __init__(self, start: dict[str, Any]) -> None:
        """The map (``run_started``'s ``map``; logs older than it show players only) and the players' cells."""
        super().__init__(start)
        self.size = int(start.get("size") or 0)
        self.blocks: dict[tuple[int, int], list[Any]] = {(x, y): [kind, count] for kind, x, y, count
                                                          in start.get("map") or ()}
        self.players = {name: {"x": xy[0], "y": xy[1], "health": MAX_HEALTH, "inventory": {}}
                        for name, xy in (start.get("agents") or {}).items()}
        self.acted: set[str] = set()

    def begin_step(self) -> None:
        """Who acted is drawn per step."""
        self.acted = set()

    def apply(self, agent: str | None, kind: str, data: Any) -> None:
        """The world changes a skill run, a tool call or a hazard recorded."""
        if agent and kind in ("skill_ran", "tool_called"):
            self.acted.add(agent)
        if isinstance(data, dict) and kind in ("skill_ran", "tool_called", "hazard"):
            for change in data.get("changes") or ():
                self._change(change)

    def _change(self, change: dict[str, Any]) -> None:
        player = self.players.get(change.get("player") or "")
        what, item, delta = change["kind"], change["item"], change["delta"]
        if what == "block":
            cell = (change["x"], change["y"])
            kind, count = self.blocks.get(cell, [item, 0])
            if count + delta > 0:
                self.blocks[cell] = [kind, count + delta]
            else:
                self.blocks.pop(cell, None)
        elif player is None:
            return
        elif what == "position":
            player["x"], player["y"] = change["x"], change["y"]
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
        self.cells = {name: list(xy) for name, xy in (start.get("agents") or {}).items()}
        self.scale = start.get("scale")
        self.ratings: dict[str, dict[str, Any]] = {}
        self.rated: list[list[str]] = []

    def begin_step(self) -> None:
        """Who rated whom is drawn per step."""
        self.rated = []

    def apply(self, agent: str | None, kind: str, data: Any) -> None:
        """An ``interaction``: the answerer's mean ratings, before and after revising, and its raters."""
        if kind != EventKind.INTERACTION or not agent:
            return
        self.ratings[agent] = {"draft": data.get("mean_draft"), "revised": data.get("mean_revision"),
                               "question": data.get("question")}
        self.rated.extend([r["rater"], agent] for r in data.get("ratings") or () if r.get("rater"))

    def picture(self) -> dict[str, Any]:
        """Seats, scale, latest ratings per agent and the step's rater → answerer pairs."""
        return {"kind": self.kind, "cells": {k: list(v) for k, v in self.cells.items()}, "scale": self.scale,
                "ratings": {k: dict(v) for k, v in self.ratings.items()}, "rated": [list(r) for r in self.rated]}


FRAMES: dict[str, type[Frame]] = {"town": TownFrame, "crafting": CraftingFrame, "society": SocietyFrame}


def make_frame(world_type: str | None, start: dict[str, Any]) -> Frame:
    """The frame for a world type (`Frame` for one it does not know)."""
    return FRAMES.get(world_type or "", Frame)(start)
