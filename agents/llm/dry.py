"""A backend without a model: instant answers made up from each request's JSON schema, with real token counts.

For checking a scenario end to end and seeing what it would cost before paying for a model
(``--set llm.backend=dry``), and for measuring the framework alone in benchmarks.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simulacra.agents.llm.base import Backend, Completion, LLMRequest
from simulacra.agents.llm.token_counter import TokenCounter, token_counter

if TYPE_CHECKING:
    from simulacra.scenarios.llm import LLMConfig

__all__ = ["WORDS", "DryBackend", "Feedback", "dry_sentence", "dry_value"]

WORDS = ("morning", "coffee", "walk", "park", "friend", "book", "quiet", "market", "bread", "garden", "letter",
         "music", "plan", "talk", "read", "bright", "window", "street", "river", "lunch", "paper", "warm",
         "bench", "news", "visit", "table", "chair", "shop", "party", "note")
ARRAY_ITEMS = (1, 3)  # items of an array without minItems/maxItems
STRING_WORDS = (2, 6)
NUMBER_SPAN = 10  # an integer or number bounded on one side only (or neither) is drawn this far from its bound
MAX_TRIES = 20  # draws of a unique array item before a repeat is allowed


class DryBackend(Backend):
    """Answers every request at once, without a model: a value of the request's schema, or a sentence.

    Answers come from a generator seeded by the request (its key: messages, schema, sampling settings and
    seed), so the same request always gets the same answer and a run is reproducible; a retry (its chat holds
    the feedback) gets a new one. Every schema keyword the worlds use is honoured (see `dry_value`); a string
    property named ``code`` holds a Python function of ``bot`` (a Voyager skill). A first answer ignores the
    prompt, so checks beyond the schema (a town's ``talk_to`` needs a person, not ``nobody``; a curriculum's
    verb must fit its item) fail now and then; a retry heeds its `Feedback` as a model would.

    Token counts are the configured model's (`agents.llm.token_counter.token_counter`): ``prompt_tokens`` is
    the chat as the model's chat template renders it (a GGUF's as llama.cpp renders it, so the count equals
    llama.cpp's; without a template, the contents plus 4 tokens per message), ``completion_tokens`` the answer's
    text. With no tokenizer at hand (``llm.model`` names a hosted model) both are estimated, 4 characters per
    token. The runner never stores dry answers in its cache: a cached answer would count no tokens.

    Attributes:
        counter: What counts the tokens.
        token_counter: How tokens are counted, for people, e.g. ``tokenizer of SmolLM2-135M-Instruct.Q4_1.gguf``.
    """

    name = "dry"

    def __init__(self, *, model: str | None = None, counter: TokenCounter | None = None) -> None:
        """Loads the tokenizer only (never the weights).

        Args:
            model: The scenario's ``llm.model``: a GGUF file, a model folder, or None for the shipped SmolLM2;
                anything else (a served model's name) is counted by estimate.
            counter: Counts the tokens instead of the one ``model`` names.
        """
        self.counter = counter or token_counter(model)
        self.token_counter = self.counter.method

    @classmethod
    def from_config(cls, config: LLMConfig) -> DryBackend:
        """Counts tokens with ``llm.model``'s tokenizer (the shipped SmolLM2's when it is empty)."""
        return cls(model=config.model)

    @property
    def model_id(self) -> str:
        """``dry:`` and the tokenizer's name (part of every cache key)."""
        return f"dry:{self.counter.name}"

    async def _generate(self, request: LLMRequest) -> Completion:
        text = self.answer(request)
        return Completion(text=text, prompt_tokens=self.counter.prompt(request.messages),
                          completion_tokens=self.counter.count(text))

    def answer(self, request: LLMRequest) -> str:
        """Returns the text answered to ``request``: JSON of a value of its schema, or a sentence without one."""
        rng = random.Random(int(request.key(self.name), 16))  # the key covers the messages, schema and seed
        if request.schema is None:
            return dry_sentence(rng)
        chat = request.messages
        retry = len(chat) > 1 and chat[-2].role == "assistant"  # the client's feedback follows the bad answer
        feedback = Feedback(chat[-2].content, chat[-1].content) if retry else None
        return json.dumps(dry_value(request.schema, rng, feedback=feedback), ensure_ascii=False)


@dataclass(frozen=True)
class Feedback:
    """What a retry heeds: the answer refused and the feedback on it.

    Of an enum, a value the feedback names (as a word) that the refused answer did not hold is drawn first,
    then one the feedback names, then any: "You cannot smelt log; items you can smelt: iron_ingot, glass"
    keeps ``smelt`` and moves from ``log`` to ``iron_ingot`` or ``glass``.
    """

    answer: str
    text: str

    def pick(self, options: list[Any], rng: random.Random) -> Any:
        """Draws one of ``options`` as the docstring of the class says."""
        named = [o for o in options if isinstance(o, str) and o and re.search(rf"\b{re.escape(o)}\b", self.text)]
        fresh = [o for o in named if json.dumps(o, ensure_ascii=False) not in self.answer]
        return rng.choice(fresh or named or options)


def dry_sentence(rng: random.Random) -> str:
    """A short sentence of `WORDS`, e.g. ``Quiet garden bread walk.``."""
    words = [rng.choice(WORDS) for _ in range(rng.randint(4, 9))]
    return " ".join(words).capitalize() + "."


def dry_value(schema: Mapping[str, Any] | bool, rng: random.Random, *, name: str = "",
              feedback: Feedback | None = None) -> Any:
    """A value valid against ``schema``.

    Handles ``const``, ``enum``, ``anyOf``/``oneOf`` (one branch), and the types object (every property,
    required or not), array (``items``, ``minItems``/``maxItems``, ``uniqueItems``; 1 to 3 items by default),
    string (``minLength``/``maxLength``; a few words), integer and number (``minimum``/``maximum`` and their
    exclusive forms), boolean and null. A schema without a type is read from its keywords, else a string.

    Args:
        schema: A JSON schema (``true`` allows anything).
        rng: Draws every choice.
        name: The property the value is for (``code`` gets Python).
        feedback: A retry's: guides the enums' draws (`Feedback.pick`).

    Returns:
        The value, JSON-safe.
    """
    if not isinstance(schema, Mapping):
        return _string({}, rng, name)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        options = list(schema["enum"])
        return feedback.pick(options, rng) if feedback else rng.choice(options)
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        branch = rng.choice(list(branches))
        return dry_value({**_without(schema, "anyOf", "oneOf"), **branch}, rng, name=name, feedback=feedback)
    kind = _kind(schema)
    if kind == "object":
        return _object(schema, rng, feedback)
    if kind == "array":
        return _array(schema, rng, name, feedback)
    if kind in ("integer", "number"):
        return _number(schema, rng, integer=kind == "integer")
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return _string(schema, rng, name)


def _without(schema: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in keys}


def _kind(schema: Mapping[str, Any]) -> str:
    """The schema's type: the first non-null one of a list, else read from its keywords."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"] or kind
        kind = kinds[0] if kinds else None
    if kind:
        return str(kind)
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def _object(schema: Mapping[str, Any], rng: random.Random, feedback: Feedback | None) -> dict[str, Any]:
    """Every listed property (so ``additionalProperties: false`` holds), and any required one not listed."""
    properties = schema.get("properties") or {}
    out = {key: dry_value(sub, rng, name=key, feedback=feedback) for key, sub in properties.items()}
    for key in schema.get("required") or []:
        out.setdefault(key, dry_value({}, rng, name=key))
    return out


def _array(schema: Mapping[str, Any], rng: random.Random, name: str, feedback: Feedback | None) -> list[Any]:
    low, high = schema.get("minItems"), schema.get("maxItems")
    if low is None:  # neither bound: ARRAY_ITEMS; one: the other from ARRAY_ITEMS, on its side of the given one
        low = ARRAY_ITEMS[0] if high is None else min(ARRAY_ITEMS[0], high)
    if high is None:
        high = max(low, ARRAY_ITEMS[1])
    items = schema.get("items", {})
    out: list[Any] = []
    for _ in range(rng.randint(low, max(low, high))):
        value = dry_value(items, rng, name=name, feedback=feedback)
        for _ in range(MAX_TRIES if schema.get("uniqueItems") else 0):
            if value not in out:
                break
            value = dry_value(items, rng, name=name, feedback=feedback)
        out.append(value)
    return out


def _number(schema: Mapping[str, Any], rng: random.Random, *, integer: bool) -> int | float:
    low, high = schema.get("minimum"), schema.get("maximum")
    low_open, high_open = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    step = 1 if integer else 0.01
    if low_open is not None and (low is None or low_open >= low):
        low = low_open + step
    if high_open is not None and (high is None or high_open <= high):
        high = high_open - step
    if low is None:  # neither bound: 0 to NUMBER_SPAN; one: NUMBER_SPAN away from it
        low = 0 if high is None else high - NUMBER_SPAN
    if high is None:
        high = low + NUMBER_SPAN
    if integer:
        return rng.randint(math.ceil(low), max(math.ceil(low), math.floor(high)))
    return min(max(round(rng.uniform(low, high), 2), low), high)


def _string(schema: Mapping[str, Any], rng: random.Random, name: str) -> str:
    """A few words (Python for ``code``), at least ``minLength`` and at most ``maxLength`` characters."""
    low, high = int(schema.get("minLength", 1)), schema.get("maxLength")
    if name == "code":
        text = f"def {rng.choice(WORDS)}_{rng.choice(WORDS)}(bot):\n    return bot.status()\n"
    else:
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(*STRING_WORDS)))
    while len(text) < low:
        text += " " + rng.choice(WORDS)
    if high is not None and len(text) > high:
        text = text[:int(high)].rstrip() or text[:int(high)]
        text = text.ljust(min(low, int(high)), "x")
    return text
