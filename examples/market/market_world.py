"""A market: traders with generative memory post offers to their neighbours on a Mesa network, and trade."""

from __future__ import annotations

import mesa
import networkx as nx
from mesa.discrete_space import CellAgent, Network
from pydantic import Field

from simulacra import Message, World, WorldSection, WorldSetup, ask_as


class MarketSection(WorldSection):
    """The market: what is traded, and what each trader starts with (traders sit on a ring)."""

    goods: list[str] = Field(["apples", "bread"], min_length=1, description="What is traded.")
    cash: int = Field(30, ge=0, description="Each trader's coins at the start.")
    stock: int = Field(3, ge=0, le=100, description="Units of its own good each trader starts with.")


class Trader(CellAgent):
    """Offers its goods and takes its neighbours' offers, from what it remembers (a memory stream in Chroma)."""

    def __init__(self, world: MarketWorld, name: str, persona: str, own: str) -> None:
        super().__init__(world)
        self.name, self.persona, self.outbox, self.importance = name, persona, [], []
        self.cash, self.goods = world.section.cash, {g: world.section.stock * (g == own) for g in world.section.goods}
        self.stream, self.offer, self.deal, self.seed = world.setup.memory_stream(name), None, None, 0

    def ask(self, question: str, schema: dict, fallback: object, purpose: str):  # -> a coroutine of the answer
        """Asks the world's model, as this trader, with what it recalls of the market."""
        recalled = " ".join(m.text for m in self.stream.retrieve(question, self.model.sim_time(), k=4))
        prompt = (f"You are {self.name}, {self.persona}. You have {self.cash} coins and {self.goods}. You "
                  f"remember: {recalled or 'nothing yet.'} {question} Answer in JSON.")
        schema = {"type": "object", "required": list(schema), "properties": schema}
        return ask_as(self, [Message("user", prompt)], schema=schema, parse=dict, fallback=fallback,
                      purpose=purpose, seed=self.seed)

    async def post(self) -> None:
        """Offers one unit of a good it holds at a price, or nothing (price 0)."""
        held = [g for g, n in self.goods.items() if n]
        answer = await self.ask(f"Which good do you offer your neighbours ({', '.join(held)}), at what price in "
                                "coins (0: none)?", {"good": {"enum": held}, "price": {"type": "integer",
                                "minimum": 0, "maximum": 20}}, {"price": 0}, "offer") if held else {"price": 0}
        self.offer = (answer["good"], answer["price"]) if answer["price"] else None

    async def consider(self) -> None:
        """Takes the cheapest neighbour's offer of a good it lacks, or not."""
        offers = sorted((t.offer[1], t.name, t.offer[0]) for t in self.cell.neighborhood.agents
                        if t.offer and not self.goods[t.offer[0]] and t.offer[1] <= self.cash)
        self.deal = None
        if offers:
            price, seller, good = offers[0]
            answer = await self.ask(f"{seller} offers you {good} for {price} coins. Do you buy?",
                                    {"buy": {"type": "boolean"}}, {"buy": False}, "buy")
            self.deal = (self.model.by_name[seller], good) if answer["buy"] else None

    def remember(self, text: str, importance: int) -> None:
        """Keeps ``text`` for this step's end, when the world stores every trader's new memories."""
        self.stream.add("observation", text, self.model.sim_time())
        self.importance.append(importance)


class MarketWorld(World):
    """Traders on a ring: each step they post offers (all LLM calls at once), consider their neighbours', trade."""

    section = MarketSection

    def __init__(self, setup: WorldSetup) -> None:
        super().__init__(seed=setup.seed, llm=setup.llm, clock=setup.clock, observers=setup.observers)
        self.setup, self.section, self.trades, self.prices = setup, setup.section, 0, []
        goods = self.section.goods
        self.space = Network(nx.cycle_graph(len(setup.agents)), random=self.random)  # each has two neighbours
        for i, agent in enumerate(setup.agents):  # cognition.kind may name a Trader of your own (setup.mind)
            trader = (setup.mind or Trader)(self, agent.name, agent.persona, own=goods[i % len(goods)])
            trader.cell, self.by_name[trader.name] = self.space[i], trader
        self.datacollector = mesa.DataCollector(
            model_reporters={"trades": "trades", "mean_price": lambda m: sum(m.prices) / max(len(m.prices), 1)},
            agent_reporters={"cash": "cash"})

    def step(self) -> None:
        """Offers, then deals in a shuffled order (a seller sells one unit a step), then memories."""
        self.trades, self.prices, traders = 0, [], list(self.by_name.values())
        for trader in traders:
            trader.seed = self.draw_seed()
        self.phase("post")
        for seller in (t for t in traders if t.offer):
            self.emit("offer_posted", seller, {"good": seller.offer[0], "price": seller.offer[1]})
            for neighbour in seller.cell.neighborhood.agents:
                neighbour.remember(f"{seller.name} offered {seller.offer[0]} for {seller.offer[1]} coins.", 3)
        self.phase("consider")
        for buyer in self.random.sample(traders, len(traders)):
            seller, good = buyer.deal or (None, None)
            if seller is None or seller.offer is None or seller.offer[0] != good or buyer.cash < seller.offer[1]:
                continue
            price, seller.offer = seller.offer[1], None
            seller.goods[good], buyer.goods[good] = seller.goods[good] - 1, buyer.goods[good] + 1
            seller.cash, buyer.cash, self.trades = seller.cash + price, buyer.cash - price, self.trades + 1
            self.prices.append(price)
            self.emit("trade", buyer, {"seller": seller.name, "good": good, "price": price})
            buyer.remember(f"I bought {good} from {seller.name} for {price} coins.", 6)
            seller.remember(f"I sold {good} to {buyer.name} for {price} coins.", 6)
        for trader in traders:
            trader.stream.commit(trader.importance)
            trader.importance = []
        self.datacollector.collect(self)
        self.emit("step_ended", None, {"trades": self.trades})

    def get_state(self) -> dict:
        """Snapshots (resume, fork): ours, plus each trader's coins, goods and memories."""
        traders = {t.name: [t.cash, t.goods, t.stream.get_state()] for t in self.by_name.values()}
        return {**super().get_state(), "traders": traders}

    def set_state(self, state: dict) -> None:
        """Restores `get_state`'s snapshot."""
        super().set_state(state)
        for name, (cash, goods, memory) in state["traders"].items():
            self.by_name[name].cash, self.by_name[name].goods = cash, goods
            self.by_name[name].stream.set_state(memory)
