"""The crafting world's minds: the one place it picks its players by ``cognition.kind`` (Voyager or BabyAGI).

Parts:
    CraftingMinds: what `CraftingWorld.from_setup` builds for a run's players: their factory and the stores
        they share (a skill library, or a BabyAGI team's Chroma and encoder).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simulacra.scenarios.schema import CraftingConfig

if TYPE_CHECKING:
    from simulacra.memory.skill_library import SkillLibrary
    from simulacra.memory.stream import Embed
    from simulacra.worlds.crafting import CraftingWorld
    from simulacra.worlds.player import Player
    from simulacra.worlds.world import WorldSetup

__all__ = ["CraftingMinds"]


@dataclass(frozen=True)
class CraftingMinds:
    """A run's players: how each is made, and what they share.

    Attributes:
        player_factory: Called as ``player_factory(world, name=name)`` for each player.
        library: The Voyager players' shared skill library (None: the paper's ablation, or BabyAGI players).
        chroma: Where a BabyAGI team stores task results (None: Voyager players).
        embed: The run's encoder, for the library or the team.
    """

    player_factory: Callable[..., Player]
    library: SkillLibrary | None = None
    chroma: Any | None = None
    embed: Embed | None = None

    @classmethod
    def of(cls, setup: WorldSetup) -> CraftingMinds:
        """The players ``cognition.kind`` asks for: ``babyagi`` (a team on one task board), else Voyager."""
        s, w = setup.scenario, setup.section_as(CraftingConfig)
        personas = {a.name: a.persona for a in s.population}
        if s.cognition.kind == "babyagi":
            from simulacra.agents.babyagi_player import BabyAGIPlayer

            def worker(world: CraftingWorld, *, name: str) -> BabyAGIPlayer:
                if world.team is None:  # the world attaches a team (``kind: babyagi``) before it makes players
                    msg = "a BabyAGI crafting world makes its players after its team; this world has no team"
                    raise RuntimeError(msg)
                return BabyAGIPlayer(world, name=name, team=world.team, task_steps=s.cognition.task_steps,
                                     persona=personas[name])

            return cls(worker, chroma=setup.chroma(), embed=setup.embed)
        from simulacra.agents.voyager_agent import VoyagerAgent

        library = None
        if w.skill_library:
            from simulacra.memory.skill_library import SkillLibrary

            library = SkillLibrary(setup.chroma(), embed=setup.embed, folder=setup.run_dir / "skills",
                                   collection=setup.collection("skills"))
            if w.skills:
                library.load(w.skills)

        def player(world: CraftingWorld, *, name: str) -> VoyagerAgent:
            return VoyagerAgent(world, name=name, persona=personas[name], max_rounds=w.max_rounds, top_k=w.top_k)

        return cls(player, library=library, embed=setup.embed if library else None)
