"""Population settings of the town: how much an agent perceives, and crowds of townspeople made from templates.

Parts:
    PerceptionConfig: attention bandwidth and vision radius (Park et al. 2023 perceive at most 8 others).
    CrowdConfig: townspeople generated from seeded templates, on top of the scenario's named agents.
    crowd_agents: the generated townspeople of a crowd, as agent dicts.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from pydantic import Field

from simulacra.scenarios.sections import Section

__all__ = ["FIRST_NAMES", "LAST_NAMES", "PerceptionConfig", "CrowdConfig", "crowd_agents"]

FIRST_NAMES = (
    "Ada", "Ben", "Cora", "Dev", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira", "Luca", "Mei", "Nadia",
    "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wen", "Ximena", "Yusuf", "Zoe", "Amir", "Bea",
    "Carlos", "Dana", "Emil", "Fatima", "Gus", "Hana", "Ivan", "June", "Kofi", "Lena", "Milo", "Nora",
)
LAST_NAMES = (
    "Abara", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito", "Jensen", "Kowalski",
    "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov", "Quist", "Rossi", "Silva", "Tanaka", "Urban", "Varga",
    "Weber", "Xu", "Yilmaz", "Zhang", "Adler", "Brandt", "Castro", "Diaz",
)
TRADES = (
    "a baker", "a nurse", "a teacher", "a carpenter", "a student", "a retired engineer", "a librarian", "a painter",
    "a shop clerk", "a bus driver", "a gardener", "a journalist", "a musician", "a pharmacist", "a cook", "a tailor",
)
TRAITS = (
    "cheerful", "curious", "quiet", "talkative", "careful", "restless", "kind", "stubborn", "funny", "shy",
    "ambitious", "patient",
)
GOALS = (
    "meet a friend for coffee", "buy groceries", "read in a quiet spot", "catch up on the town news",
    "take a long walk", "finish some work", "find someone to talk to", "run errands around town",
)
PERSONA = "{name} is {trade}. {first} is {trait} and {likes}."
LIKES = (
    "likes long conversations", "enjoys the park", "loves good coffee", "collects old books", "follows the local news",
    "plays chess on weekends", "cooks for the neighbours", "knows everyone on the street",
)


class PerceptionConfig(Section):
    """What a townsperson perceives each step (town only)."""

    bandwidth: int | None = Field(8, ge=1, le=1000, description="Most other people an agent perceives by name "
                                  "(paper: attention bandwidth 8); the rest are counted as 'and N others'. "
                                  "Empty: everyone.")
    radius: int = Field(1, ge=0, le=3, description="Streets away an agent sees who is where (0: only its own "
                        "place).")


class CrowdConfig(Section):
    """Townspeople generated from seeded templates, added after the named ``agents`` (town only)."""

    count: int = Field(ge=1, le=100_000, description="How many townspeople to generate.")
    seed: int | None = Field(None, description="Seeds the names, personas, goals and homes; empty: the scenario's "
                             "seed.")
    homes: list[str] = Field(default_factory=list, description="Places the crowd lives in, spread evenly; empty: "
                             "every place.")
    goals: list[str] = Field(default_factory=list, description="Goals to draw from; empty: a built-in list of "
                             "everyday errands.")


def crowd_agents(crowd: CrowdConfig, *, seed: int, places: list[str], taken: Iterable[str]) -> list[dict[str, Any]]:
    """The generated townspeople: unique names, a persona from templates, a goal and a home, all seeded.

    Args:
        crowd: The crowd section.
        seed: The scenario's seed (used when the crowd has none).
        places: The town's place names (homes come from ``crowd.homes`` or these).
        taken: Names already used by the named agents.

    Returns:
        Agent dicts (``name``, ``persona``, ``home``, ``goal``) in a reproducible order.
    """
    rng = random.Random(f"simulacra-crowd:{crowd.seed if crowd.seed is not None else seed}")
    homes = crowd.homes or places
    goals = crowd.goals or list(GOALS)
    used = set(taken)
    people = []
    for i in range(crowd.count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        name, n = f"{first} {last}", 1
        while name in used:  # 1,200 first-last pairs: past a few hundred people, a number tells namesakes apart
            n += 1
            name = f"{first} {last} {n}"
        used.add(name)
        persona = PERSONA.format(name=name, first=first, trade=rng.choice(TRADES), trait=rng.choice(TRAITS),
                                 likes=rng.choice(LIKES))
        people.append({"name": name, "persona": persona, "home": homes[i % len(homes)], "goal": rng.choice(goals)})
    return people
