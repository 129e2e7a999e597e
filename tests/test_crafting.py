import json
import re
from collections import Counter

import pytest

from simulacra.worlds.crafting import Change, CraftingWorld
from simulacra.worlds.crafting_bot import Bot
from simulacra.worlds.player import Player
from simulacra.worlds.tech_tree import RESOURCES, Recipe, TechTree

NOTHING = {r.block: 0.0 for r in RESOURCES if r.density > 0}


def empty(players=("A",), **kwargs) -> CraftingWorld:
    """A world with no blocks: each test puts the ones it needs."""
    return CraftingWorld(seed=1, players=list(players), density=NOTHING, **{"hazards": False, **kwargs})


def holding(world: CraftingWorld, name: str = "A", **items: int) -> Bot:
    world.by_name[name].inventory.update(items)
    return world.bot(name)


def spent(world: CraftingWorld, name: str = "A") -> int:
    return world.tick_budget - world.by_name[name].ticks_left


# -- the tech tree ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("inventory", "item", "count", "delta"), [
    ({"log": 1}, "planks", 4, {"log": -1, "planks": 4}),
    ({"log": 2}, "planks", 5, {"log": -2, "planks": 8}),
    ({"planks": 2}, "stick", 1, {"planks": -2, "stick": 4}),
    ({"planks": 4}, "crafting_table", 1, {"planks": -4, "crafting_table": 1}),
    ({"planks": 3, "stick": 2, "crafting_table": 1}, "wooden_pickaxe", 1,
     {"planks": -3, "stick": -2, "wooden_pickaxe": 1}),
    ({"cobblestone": 8, "crafting_table": 1}, "furnace", 1, {"cobblestone": -8, "furnace": 1}),
    ({"stick": 1, "coal": 1}, "torch", 4, {"stick": -1, "coal": -1, "torch": 4}),
    ({"iron_ingot": 3, "stick": 2, "crafting_table": 1}, "iron_pickaxe", 1,
     {"iron_ingot": -3, "stick": -2, "iron_pickaxe": 1}),
])
def test_craft_returns_the_inventory_change(inventory, item, count, delta) -> None:
    assert TechTree().craft(inventory, item, count) == Counter(delta)


@pytest.mark.parametrize(("inventory", "item", "count", "message"), [
    ({"planks": 1}, "wooden_pickaxe", 1, "cannot craft 1 wooden_pickaxe: needs 3 planks (you have 1) and 2 stick "
     "(you have 0); needs a crafting_table in your inventory or placed next to you"),
    ({"planks": 3}, "stick", 5, "cannot craft 5 stick: needs 4 planks (you have 3)"),
    ({}, "log", 1, "cannot craft log: it is not crafted; mine tree to get it"),
    ({}, "iron_ingot", 1, "cannot craft iron_ingot: it is smelted, not crafted; use smelt('iron_ingot')"),
    ({}, "woden_pickaxe", 1, "cannot craft 'woden_pickaxe': unknown item; items that can be crafted: "
     "crafting_table, diamond_pickaxe, furnace, iron_pickaxe, iron_sword, planks, stick, stone_pickaxe, "
     "stone_sword, torch, wooden_pickaxe, wooden_sword"),
])
def test_craft_says_what_is_missing(inventory, item, count, message) -> None:
    tree = TechTree()
    verdict = tree.can_craft(inventory, item, count)
    assert not verdict
    assert verdict.reason == message
    with pytest.raises(ValueError, match=re.escape(message)):
        tree.craft(inventory, item, count)


def test_can_craft_lists_missing_amounts_and_counts_placed_stations() -> None:
    tree = TechTree()
    assert tree.can_craft({"planks": 1}, "wooden_pickaxe").missing == {"planks": 2, "stick": 2, "crafting_table": 1}
    assert tree.can_craft({"planks": 3, "stick": 2}, "wooden_pickaxe", stations={"crafting_table"})


@pytest.mark.parametrize(("count", "shown"), [(0, "0"), (-2, "-2"), ("3", "'3'"), (True, "True")])
def test_count_must_be_a_positive_whole_number(count, shown) -> None:
    with pytest.raises(ValueError, match=re.escape(f"count must be a whole number of at least 1, got {shown}")):
        TechTree().craft({"log": 9}, "planks", count)


@pytest.mark.parametrize(("block", "needs"), [
    ("tree", None), ("log", None), ("stone", "wooden_pickaxe"), ("coal_ore", "wooden_pickaxe"),
    ("iron_ore", "stone_pickaxe"), ("diamond_ore", "iron_pickaxe"), ("diamond", "iron_pickaxe"),
])
def test_mining_requirement(block, needs) -> None:
    assert TechTree().mining_requirement(block) == needs


@pytest.mark.parametrize(("inventory", "block", "ticks"), [
    ({}, "tree", 4), ({"wooden_pickaxe": 1}, "tree", 2), ({"wooden_pickaxe": 1}, "stone", 3),
    ({"wooden_pickaxe": 1, "stone_pickaxe": 1}, "iron_ore", 3), ({"iron_pickaxe": 1}, "diamond_ore", 3),
])
def test_better_pickaxes_mine_faster(inventory, block, ticks) -> None:
    assert TechTree().mining_ticks(block, inventory) == ticks


def test_a_tech_tree_naming_unknown_items_is_refused() -> None:
    with pytest.raises(ValueError, match=re.escape("tables name items that no recipe makes and no block drops: "
                                                   "['gold_ingot']")):
        TechTree(recipes=[Recipe("gold_pickaxe", {"gold_ingot": 3})], resources=[], milestones=[])


@pytest.mark.parametrize(("inventory", "held"), [
    ({}, []), ({"wooden_sword": 1}, ["wooden_tool"]),
    ({"stone_pickaxe": 1, "iron_sword": 1}, ["stone_tool", "iron_tool"]), ({"diamond": 1}, ["diamond"]),
])
def test_milestones_held(inventory, held) -> None:
    assert TechTree().milestones_held(inventory) == held


# -- the full chain on a seeded map -------------------------------------------------------------------------------


def climb(world: CraftingWorld, name: str = "A") -> None:
    """Logs to a diamond in four iterations, one world step after each."""
    bot = world.begin_turn(name)
    bot.mine("log", 3)
    bot.craft("planks", 12)
    bot.craft("crafting_table")
    bot.craft("stick", 8)
    bot.craft("wooden_pickaxe")
    world.step()
    bot = world.begin_turn(name)
    bot.mine("cobblestone", 11)
    bot.mine("coal", 1)
    bot.craft("stone_pickaxe")
    bot.craft("furnace")
    world.step()
    bot = world.begin_turn(name)
    ore = bot.find("iron_ore")
    bot.move_to(ore["x"], ore["y"])
    bot.mine("iron_ore", 3)
    bot.smelt("iron_ingot", 3)
    bot.craft("iron_pickaxe")
    world.step()
    bot = world.begin_turn(name)
    ore = bot.find("diamond_ore")
    bot.move_to(ore["x"], ore["y"])
    bot.mine("diamond")
    world.step()


def test_the_chain_from_logs_to_a_diamond() -> None:
    world = CraftingWorld(seed=3, players=["A"], hazards=False)
    climb(world)
    inventory = world.bot("A").inventory()
    assert inventory["diamond"] == 1
    assert {"iron_pickaxe", "stone_pickaxe", "wooden_pickaxe", "furnace", "crafting_table"} <= set(inventory)
    assert world.milestone_steps == {"wooden_tool": 0, "stone_tool": 1, "iron_tool": 2, "diamond": 3}
    assert world.milestone_turns == {"wooden_tool": 1, "stone_tool": 2, "iron_tool": 3, "diamond": 4}
    assert world.by_name["A"].milestones == world.milestone_steps
    reached = [(c.step, c.item) for c in world.changes if c.kind == "milestone"]
    assert reached == [(0, "wooden_tool"), (1, "stone_tool"), (2, "iron_tool"), (3, "diamond")]
    table = world.datacollector.get_model_vars_dataframe()
    assert list(table["milestones"]) == [0, 1, 2, 3, 4]
    assert list(table["unique_items"]) == [0, 5, 9, 12, 13]


def test_a_milestone_keeps_the_step_it_was_first_reached() -> None:
    world = empty(["A", "B"])
    world.step()
    holding(world, "B", planks=2, stick=1, crafting_table=1).craft("wooden_sword")
    world.step()
    world.begin_turn("A")
    holding(world, "A", planks=3, stick=2, crafting_table=1).craft("wooden_pickaxe")
    assert world.milestone_steps == {"wooden_tool": 1}
    assert world.milestone_turns == {"wooden_tool": 0}
    assert {n: p.milestones for n, p in world.by_name.items()} == {"A": {"wooden_tool": 2}, "B": {"wooden_tool": 1}}
    assert [(c.step, c.player) for c in world.changes if c.kind == "milestone"] == [(1, "B"), (2, "A")]


def test_datacollector_columns() -> None:
    world = CraftingWorld(seed=3, players=["A", "B"], hazards=False)
    world.begin_turn("A").mine("log", 2)
    world.step()
    model = world.datacollector.get_model_vars_dataframe()
    assert list(model.columns) == ["unique_items", "milestones", "blocks_left", "night"]
    assert model["unique_items"].tolist() == [0, 1]
    assert model["blocks_left"].iloc[0] - model["blocks_left"].iloc[1] == 2
    agents = world.datacollector.get_agent_vars_dataframe()
    assert list(agents.columns) == ["name", "inventory_size", "unique_items", "health"]
    last = agents.xs(1, level="Step").set_index("name")
    assert last["inventory_size"].to_dict() == {"A": 2, "B": 0}
    assert last["unique_items"].to_dict() == {"A": 1, "B": 0}


# -- gating, stations, smelting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("inventory", "block", "message"), [
    ({}, "stone", "cannot mine stone: needs wooden_pickaxe or better, you have no pickaxe"),
    ({"wooden_pickaxe": 1}, "iron_ore", "cannot mine iron_ore: needs stone_pickaxe or better, you have wooden_pickaxe"),
    ({"stone_pickaxe": 1}, "diamond", "cannot mine diamond_ore: needs iron_pickaxe or better, you have stone_pickaxe"),
    ({}, "lava", "cannot mine lava; keep away or carry cobblestone, which seals lava next to what you mine"),
    ({}, "gold", "unknown block 'gold'; blocks: coal_ore, crafting_table, diamond_ore, furnace, iron_ore, stone, "
     "tree"),
])
def test_tools_gate_mining(inventory, block, message) -> None:
    world = empty()
    for i, kind in enumerate(["stone", "iron_ore", "diamond_ore", "lava"]):
        world.put_block(kind, 8 + i, 1, count=3)
    bot = holding(world, **inventory)
    with pytest.raises(ValueError, match=re.escape(message)):
        bot.mine(block)
    assert spent(world) == 0
    assert world.changes == []


def test_a_placed_crafting_table_serves_everyone_within_reach() -> None:
    world = empty(["A", "B"])
    a = holding(world, "A", crafting_table=1, planks=6, stick=4)
    b = holding(world, "B", planks=3, stick=2)
    assert a.place("crafting_table") == {"block": "crafting_table", "x": 8, "y": 0}
    a.craft("wooden_pickaxe")
    with pytest.raises(ValueError, match=re.escape("needs a crafting_table in your inventory or placed next to you")):
        b.craft("wooden_pickaxe")
    b.move_to(10, 1)
    b.craft("wooden_pickaxe")
    assert world.by_name["B"].milestones == {"wooden_tool": 0}
    assert a.mine("crafting_table") == {"block": "crafting_table", "mined": 1, "got": {"crafting_table": 1}}
    assert (8, 0) not in world.blocks


@pytest.mark.parametrize(("inventory", "item", "count", "message"), [
    ({"iron_ore": 1, "coal": 1}, "iron_ingot", 1,
     "cannot smelt 1 iron_ingot: needs a furnace in your inventory or placed next to you"),
    ({"iron_ore": 1, "furnace": 1}, "iron_ore", 1,
     "cannot smelt 1 iron_ingot: needs fuel for 1 iron_ingot: 1 coal (you have 0) or 1 planks (you have 0)"),
    ({"iron_ore": 3, "furnace": 1, "planks": 2}, "iron_ingot", 3,
     "cannot smelt 3 iron_ingot: needs fuel for 3 iron_ingot: 1 coal (you have 0) or 3 planks (you have 2)"),
    ({"furnace": 1, "coal": 1}, "iron_ingot", 2, "cannot smelt 2 iron_ingot: needs 2 iron_ore (you have 0)"),
    ({"furnace": 1, "log": 1}, "log", 1, "cannot smelt 'log': only iron_ingot can be smelted (from its raw item)"),
])
def test_smelting_needs_a_furnace_ore_and_fuel(inventory, item, count, message) -> None:
    world = empty()
    with pytest.raises(ValueError, match=re.escape(message)):
        holding(world, **inventory).smelt(item, count)
    assert world.by_name["A"].inventory == Counter(inventory)


@pytest.mark.parametrize(("inventory", "fuel", "after"), [
    ({"iron_ore": 3, "coal": 1, "planks": 5}, None, {"iron_ingot": 3, "planks": 5}),
    ({"iron_ore": 3, "coal": 1, "planks": 5}, "planks", {"iron_ingot": 3, "coal": 1, "planks": 2}),
    ({"iron_ore": 2, "planks": 2}, None, {"iron_ingot": 2}),
])
def test_smelting_burns_fuel(inventory, fuel, after) -> None:
    world = empty()
    bot = holding(world, furnace=1, **inventory)
    made = bot.smelt("iron_ore", inventory["iron_ore"], fuel=fuel)
    assert made["made"] == inventory["iron_ore"]
    assert world.by_name["A"].inventory == Counter({"furnace": 1, **after})
    assert spent(world) == 5 * inventory["iron_ore"]


# -- shared, exhaustible blocks -----------------------------------------------------------------------------------


def test_a_tree_is_gone_once_mined_out_for_everyone() -> None:
    world = empty(["A", "B"])
    world.put_block("tree", 12, 1, count=3)
    a, b = world.bot("A"), world.bot("B")
    with pytest.raises(ValueError, match=re.escape("mined 3 of 5 tree: no tree left within 8 cells of (11, 1)")):
        a.mine("log", 5)
    assert world.by_name["A"].inventory == Counter({"log": 3})
    assert world.blocks == {}
    assert a.find("tree") is None
    with pytest.raises(ValueError, match=re.escape("mined 0 of 1 tree: no tree left within 8 cells of (16, 0); "
                                                   "use find('tree') and move_to(x, y)")):
        b.mine("log")
    assert world.by_name["B"].inventory == Counter()


def test_two_players_share_one_tree() -> None:
    world = empty(["A", "B"])
    world.put_block("tree", 12, 0, count=4)
    world.bot("A").mine("log", 2)
    world.bot("B").mine("log", 1)
    assert world.bot("B").nearby(4) == [{"block": "tree", "x": 12, "y": 0, "distance": 1, "count": 1}]
    world.bot("B").mine("log", 1)
    assert world.blocks == {}
    mined = [(c.player, c.delta) for c in world.changes if c.kind == "block"]
    assert mined == [("A", -1), ("A", -1), ("B", -1), ("B", -1)]
    assert [(p.name, p.position) for p in world.by_name.values()] == [("A", (11, 0)), ("B", (13, 0))]
    world.step()
    assert world.datacollector.get_model_vars_dataframe()["unique_items"].tolist() == [0, 1]


def test_nearby_and_find_sort_by_distance() -> None:
    world = empty()
    for x, y, kind in [(12, 5, "stone"), (10, 1, "tree"), (13, 1, "tree"), (20, 20, "iron_ore")]:
        world.put_block(kind, x, y, count=2)
    bot = world.bot("A")
    assert [(e["x"], e["y"]) for e in bot.nearby()] == [(13, 1), (10, 1), (12, 5)]
    assert [e["block"] for e in bot.nearby(2)] == ["tree", "tree"]
    assert bot.find("iron_ore") == {"block": "iron_ore", "x": 20, "y": 20, "distance": 20, "count": 2}
    assert bot.find("log")["x"] == 13


# -- time budget --------------------------------------------------------------------------------------------------


def test_the_tick_budget_stops_an_endless_loop() -> None:
    world = empty(tick_budget=10)
    bot = world.bot("A")
    calls = 0
    with pytest.raises(ValueError, match=re.escape("out of time for this iteration")):
        for _ in range(1000):
            bot.inventory()
            calls += 1
    assert calls == 10
    assert world.begin_turn("A") is bot
    assert bot.position() == {"x": 12, "y": 0}


def test_running_out_of_time_keeps_what_was_done() -> None:
    world = empty(tick_budget=7)
    world.put_block("tree", 12, 1, count=5)
    with pytest.raises(ValueError, match=re.escape("out of time for this iteration (mined 1 of 3 tree): each "
                                                   "iteration has 7 ticks")):
        world.bot("A").mine("log", 3)
    assert world.by_name["A"].inventory == Counter({"log": 1})
    world.begin_turn("A")
    with pytest.raises(ValueError, match=re.escape("out of time for this iteration (walked to (19, 7)")):
        world.bot("A").move_to(22, 20)
    assert world.by_name["A"].position == (19, 7)
    assert world.changes[-1] == Change(0, "A", "move", "position", "", 7, 19, 7)


# -- hazards ------------------------------------------------------------------------------------------------------


def night_run(seed: int) -> CraftingWorld:
    world = CraftingWorld(seed=seed, players=["A", "B"])
    holding(world, "A", wooden_sword=1, log=5)
    holding(world, "B", planks=5, log=5)
    for _ in range(40):
        world.step()
    return world


def test_hazards_are_the_same_for_the_same_seed() -> None:
    first, again, other = night_run(7), night_run(7), night_run(8)
    assert first.get_state() == again.get_state()
    assert first.changes != other.changes
    assert first.blocks != other.blocks


def test_a_sword_keeps_zombies_off() -> None:
    world = night_run(7)
    zombie = [c for c in world.changes if c.action == "zombie"]
    assert {c.step % 4 for c in zombie} == {0}
    armed = [c for c in zombie if c.player == "A"]
    assert armed and all(c.item == "zombie_slain" and c.delta == 0 for c in armed)
    assert world.by_name["A"].inventory == Counter({"wooden_sword": 1, "log": 5})
    bitten = [c for c in zombie if c.player == "B" and c.kind == "health"]
    lost = [c for c in zombie if c.player == "B" and c.kind == "inventory"]
    assert bitten and all(c.delta == -6 for c in bitten)
    assert len(lost) == len(bitten)
    assert world.by_name["B"].inventory.total() == 10 - len(lost)
    assert list(world.datacollector.get_model_vars_dataframe()["night"].iloc[:9]) == [0, 0, 0, 0, 1, 0, 0, 0, 1]


@pytest.mark.parametrize(("inventory", "health", "after", "left"), [
    ({"iron_pickaxe": 1, "cobblestone": 2}, 20, {"iron_pickaxe": 1, "cobblestone": 1, "diamond": 1}, 20),
    ({"iron_pickaxe": 1}, 20, {"iron_pickaxe": 1, "diamond": 1}, 12),
])
def test_lava_burns_unless_sealed(inventory, health, after, left) -> None:
    world = empty()
    world.put_block("diamond_ore", 12, 1, count=1)
    world.put_block("lava", 13, 2, count=1)
    world.by_name["A"].health = health
    holding(world, **inventory).mine("diamond")
    assert world.by_name["A"].inventory == Counter(after)
    assert world.by_name["A"].health == left
    assert ((13, 2) in world.blocks) == ("cobblestone" not in inventory)


def test_dying_in_lava_loses_everything() -> None:
    world = empty()
    world.put_block("diamond_ore", 7, 5, count=2)
    world.put_block("lava", 6, 6, count=1)
    world.by_name["A"].health = 8
    bot = holding(world, iron_pickaxe=1, log=3)
    with pytest.raises(ValueError, match=re.escape("you died in lava at (6, 6): you lost everything and respawned "
                                                   "at (12, 0); carry cobblestone to seal lava")):
        bot.mine("diamond")
    player = world.by_name["A"]
    assert (player.inventory, player.health, player.position) == (Counter(), 20, (12, 0))
    assert world.blocks[(7, 5)].count == 2


@pytest.mark.parametrize(("hazards", "ticks"), [(False, 60), (True, 69)])
def test_hard_rock_takes_longer(hazards, ticks) -> None:
    world = empty(hazards=hazards)
    world.put_block("stone", 12, 1, count=20)
    holding(world, wooden_pickaxe=1).mine("stone", 20)
    assert spent(world) == ticks


# -- extension, state, API ----------------------------------------------------------------------------------------


class Lumberjack(Player):
    def act(self) -> None:
        self.model.begin_turn(self).mine("log")


def test_step_runs_each_players_act() -> None:
    world = empty(["A", "B"], player_factory=lambda model, name: (Lumberjack if name == "A" else Player)(model,
                                                                                                        name=name))
    world.put_block("tree", 8, 1, count=5)
    world.step()
    world.step()
    assert world.by_name["A"].inventory == Counter({"log": 2})
    assert world.by_name["B"].inventory == Counter()
    assert world.milestone_steps == {}


def test_change_observers_and_changes_since() -> None:
    seen: list[Change] = []
    world = empty(on_change=[seen.append])
    world.put_block("tree", 12, 1, count=5)
    mark = len(world.changes)
    world.bot("A").mine("log", 2)
    assert world.changes_since(mark) == [
        {"step": 0, "player": "A", "action": "mine", "kind": "block", "item": "tree", "delta": -1, "x": 12, "y": 1},
        {"step": 0, "player": "A", "action": "mine", "kind": "inventory", "item": "log", "delta": 1, "x": None,
         "y": None},
    ] * 2
    assert seen == world.changes


def test_state_round_trip() -> None:
    world = CraftingWorld(seed=3, players=["A", "B"])
    climb(world, "A")
    world.begin_turn("B").mine("log", 2)
    state = json.loads(json.dumps(world.get_state()))
    copy = CraftingWorld(seed=99, players=["A", "B"])
    copy.set_state(state)
    assert copy.get_state() == world.get_state()
    for w in (world, copy):
        w.begin_turn("A").mine("stone", 6)
        w.step()
    assert copy.get_state() == world.get_state()
    with pytest.raises(ValueError, match=re.escape("snapshot players ['A', 'B'] differ from this world's ['A']")):
        CraftingWorld(seed=3, players=["A"]).set_state(state)


def test_api_results_are_json() -> None:
    world = empty()
    world.put_block("tree", 9, 1, count=5)
    api = world.bot("A").api()
    assert list(api) == list(Bot.API)
    results = [
        api["status"](), api["position"](), api["inventory"](), api["nearby"](3), api["find"]("stone"),
        api["find"]("tree"), api["move_to"](9, 0), api["mine"]("log", 4), api["craft"]("planks", 8),
        api["craft"]("crafting_table"), api["place"]("crafting_table"), api["chat"]("hi"),
    ]
    assert json.loads(json.dumps(results)) == results
    holding(world, iron_ore=1, coal=1, furnace=1)
    smelted = api["smelt"]("iron_ore")
    assert json.dumps(smelted) == '{"item": "iron_ingot", "made": 1, "used": {"coal": 1, "iron_ore": 1}}'


def test_api_docs_list_every_method() -> None:
    docs = Bot.api_docs()
    meta = {"api", "api_docs", "call", "tools"}  # about the API, not part of it
    public = {n for n in vars(Bot) if not n.startswith("_") and callable(getattr(Bot, n))} - meta
    assert public == set(Bot.API)
    for name in Bot.API:
        assert f"bot.{name}(" in docs
        assert getattr(Bot, name).__doc__.splitlines()[0] in docs
    assert "bot.mine(block: str, count: int = 1) -> dict[str, Any]" in docs


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"size": 5}, "size must be at least 8, got 5"),
    ({"players": ["A", "A"]}, "players must be one or more distinct names, got ['A', 'A']"),
    ({"density": {"gold_ore": 0.1}}, "unknown block 'gold_ore' in density; blocks: coal_ore, diamond_ore, "
     "iron_ore, stone, tree"),
    ({"density": {"stone": 0.9}}, "densities of the blocks that share row 3 add up to 1.05, more than 1: lower some "
     "of {'stone': 0.9}"),
    ({"density": {"tree": -0.1}}, "density of tree must be a chance from 0 to 1, got -0.1"),
    ({"tick_budget": 0}, "tick_budget and day_length must be at least 1, got 0 and 4"),
])
def test_bad_world_arguments(kwargs, message) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        CraftingWorld(**{"seed": 1, "players": ["A"], **kwargs})


def test_the_map_is_layered_by_depth() -> None:
    world = CraftingWorld(seed=5, players=["A"], size=40)
    rows = {kind: [y for (_, y), b in world.blocks.items() if b.kind == kind] for kind in NOTHING}
    assert max(rows["tree"]) < 8 and min(rows["diamond_ore"]) >= 30 and min(rows["iron_ore"]) >= 16
    counts = Counter(b.kind for b in world.blocks.values())
    assert counts["stone"] > counts["iron_ore"] > counts["diamond_ore"] > 0
    assert all(3 <= b.count <= 5 for b in world.blocks.values() if b.kind == "tree")


@pytest.mark.parametrize(("call", "message"), [
    (lambda bot: bot.move_to(24, 0), "cannot move to (24, 0): x and y are whole numbers from 0 to 23"),
    (lambda bot: bot.move_to("3", 0), "cannot move to ('3', 0): x and y are whole numbers from 0 to 23"),
    (lambda bot: bot.find(["tree"]), "block must be a name in quotes, got ['tree']"),
    (lambda bot: bot.nearby(-1), "radius must be a whole number of at least 0, got -1"),
    (lambda bot: bot.mine("log", 0), "count must be a whole number of at least 1, got 0"),
    (lambda bot: bot.place("log"), "cannot place 'log': only a crafting_table or furnace can be placed"),
    (lambda bot: bot.place("furnace"), "cannot place 'furnace': only a crafting_table or furnace can be placed, "
     "and you have none"),
    (lambda bot: bot.smelt("iron_ore", fuel="lava"), "cannot smelt with 'lava': fuels are coal, planks"),
])
def test_misuse_is_explained(call, message) -> None:
    world = empty()
    world.put_block("tree", 12, 1, count=3)
    with pytest.raises(ValueError, match=re.escape(message)):
        call(world.bot("A"))
    assert world.changes == []


@pytest.mark.parametrize(("args", "message"), [
    (("gold_ore", 1, 1), "unknown block 'gold_ore'; blocks: coal_ore, crafting_table, diamond_ore, furnace, "
     "iron_ore, lava, stone, tree"),
    (("tree", 1, 24), "cell (1, 24) is off the map: x and y go from 0 to 23"),
])
def test_put_block_checks_its_arguments(args, message) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        empty().put_block(*args)


def test_unknown_players_are_named() -> None:
    with pytest.raises(ValueError, match=re.escape("no player 'C'; players: A, B")):
        empty(["A", "B"]).begin_turn("C")


def test_chat_reaches_the_other_players() -> None:
    world = empty(["A", "B", "C"])
    assert world.bot("A").chat("iron at (3, 12)") == {"said": "iron at (3, 12)", "to": ["B", "C"]}
    assert [p.inbox for p in world.by_name.values()] == [[], ["A: iron at (3, 12)"], ["A: iron at (3, 12)"]]
