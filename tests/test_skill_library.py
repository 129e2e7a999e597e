"""The skill library on a real Chroma: store, version, retrieve by description, persist and load elsewhere."""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

import chromadb
import pytest

from simulacra.errors import ScenarioError
from simulacra.memory.skill_library import LIBRARY_FILE, SkillLibrary, function_name
from tests.fakes import bag_of_words

WOOD = "def mine_wood(bot):\n    bot.mine('tree')\n"
PLANKS = "def craft_planks(bot):\n    bot.craft('planks')\n"
STONE = "def mine_stone(bot):\n    bot.mine('stone')\n"


def library(request: pytest.FixtureRequest, folder: Path | None = None, suffix: str = "") -> SkillLibrary:
    name = f"skills{zlib.crc32((request.node.nodeid + suffix).encode())}"
    return SkillLibrary(chromadb.EphemeralClient(), embed=bag_of_words, folder=folder, collection=name)


def test_retrieves_the_skills_whose_descriptions_match_the_task(request: pytest.FixtureRequest) -> None:
    lib = library(request)
    lib.add("mine_wood", WOOD, "chop a tree to collect wood logs", task="Mine 1 log")
    lib.add("craft_planks", PLANKS, "craft planks from logs at hand", task="Craft planks")
    lib.add("mine_stone", STONE, "mine stone with a pickaxe to get cobblestone", task="Mine cobblestone")
    assert [s.name for s in lib.retrieve("collect wood logs from a tree", k=1)] == ["mine_wood"]
    assert [s.name for s in lib.retrieve("get cobblestone with a pickaxe", k=2)][0] == "mine_stone"
    assert len(lib.retrieve("anything", k=5)) == 3  # never more than the library holds
    assert lib.retrieve("anything", k=0) == []
    assert lib.retrievals == 3


def test_a_rewritten_skill_gets_a_new_version_and_only_the_latest_is_retrieved(request: pytest.FixtureRequest) -> None:
    lib = library(request)
    first = lib.add("mine_wood", WOOD, "chop a tree to collect wood logs")
    second = lib.add("mine_wood", WOOD.replace("'tree'", "'tree', 3"), "chop trees to collect three wood logs")
    assert (first.version, second.version, len(lib)) == (1, 2, 1)
    assert [s.version for s in lib.versions("mine_wood")] == [1, 2]
    found = lib.retrieve("chop a tree to collect wood logs", k=5)
    assert [(s.name, s.version) for s in found] == [("mine_wood", 2)]
    assert lib.latest()["mine_wood"].code.count("3") == 1


def test_the_folder_copy_is_loaded_by_another_library(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    folder = tmp_path / "run" / "skills"
    lib = library(request, folder)
    lib.add("mine_wood", WOOD, "chop a tree to collect wood logs", agent="Steve", iteration=1)
    lib.add("mine_wood", WOOD, "chop trees for logs", agent="Steve", iteration=3)
    lib.add("craft_planks", PLANKS, "craft planks from logs", agent="Alex", iteration=2)
    lines = [json.loads(line) for line in (folder / LIBRARY_FILE).read_text().splitlines()]
    assert [(r["name"], r["version"]) for r in lines] == [("mine_wood", 1), ("mine_wood", 2), ("craft_planks", 1)]
    assert (folder / "code" / "mine_wood.v2.py").read_text() == WOOD

    other = library(request, suffix="other")
    assert other.load(tmp_path / "run") == 3  # a run folder, its skills folder or the file itself
    assert {n: s.version for n, s in other.latest().items()} == {"mine_wood": 2, "craft_planks": 1}
    assert [s.name for s in other.retrieve("craft planks from logs", k=1)] == ["craft_planks"]
    assert [(s.name, s.version) for s in other.retrieve("chop trees for logs", k=5)].count(("mine_wood", 1)) == 0
    with pytest.raises(ScenarioError, match=re.escape("skills ['craft_planks', 'mine_wood'] already exist")):
        other.load(folder)


def test_loading_a_folder_without_a_library_says_what_to_give(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=re.escape(f"skills: {str(tmp_path)!r} holds no skill library")):
        library(request).load(tmp_path)
    (tmp_path / LIBRARY_FILE).write_text('{"name": "x"}\n')
    with pytest.raises(ScenarioError, match=re.escape(f"{tmp_path / LIBRARY_FILE}:1: not a skill record")):
        library(request).load(tmp_path)


@pytest.mark.parametrize(("code", "name"), [
    (WOOD, "mine_wood"),
    ("import math\n\ndef a(bot):\n    pass\n\ndef b(bot):\n    a(bot)\n", "a"),
    ("x = 1\n", None),
    ("    def nested(bot):\n        pass\n", None),
])
def test_function_name_is_the_first_top_level_def(code: str, name: str | None) -> None:
    assert function_name(code) == name


def test_an_empty_library_folder_loads_as_nothing(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    library(request, tmp_path / "skills")  # a run whose agents verified no skill still leaves a library
    other = library(request, suffix="other")
    assert other.load(tmp_path) == 0 and len(other) == 0 and other.retrieve("anything") == []
