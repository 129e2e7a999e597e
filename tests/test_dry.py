"""The dry backend: answers valid against every schema the worlds send, seeded, with the model's token counts."""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import run
from simulacra.agents.babyagi_agent import tool_schema
from simulacra.agents.babyagi_player import CLOSE_TOOLS, parse_crafting_call
from simulacra.agents.critic import CRITIC_SCHEMA
from simulacra.agents.curriculum import Curriculum
from simulacra.agents.dialogue import parse_utterance, utterance_schema
from simulacra.agents.generative_agent import importance_schema, parse_ratings, parse_reaction, reaction_schema
from simulacra.agents.llm import LLMClient, LLMRequest, Message, make_backend
from simulacra.agents.llm.client import Outcome
from simulacra.agents.llm.dry import DryBackend, dry_sentence, dry_value
from simulacra.agents.llm.llamacpp import LlamaCppBackend, shipped_model_path
from simulacra.agents.llm.token_counter import CHARS_PER_TOKEN, MESSAGE_TOKENS, HFTokenCounter, TokenCounter
from simulacra.agents.plan import day_plan_schema, decompose_schema, hourly_schema, parse_day_plan
from simulacra.agents.reflection import insights_schema, questions_schema
from simulacra.agents.respondent import answer_schema
from simulacra.agents.respondent import parse_answer as parse_survey_answer
from simulacra.agents.social_agent import ANSWER_SCHEMA, parse_answer, rating_schema
from simulacra.agents.task_worker import TaskWorker
from simulacra.agents.tools import call_schema
from simulacra.agents.town_agent import action_schema, parse_action
from simulacra.agents.voyager_agent import DESCRIBE_SCHEMA, SKILL_SCHEMA, parse_skill
from simulacra.instruments.rating import _load_rubric, parse_scores, score_schema, shipped_rubrics
from simulacra.scenarios.instruments import SurveyItem
from simulacra.scenarios.llm import LLMConfig
from simulacra.worlds.alignment import AlignmentWorld
from simulacra.worlds.crafting_bot import Bot
from simulacra.worlds.team import JUDGE_SCHEMA
from simulacra.worlds.tech_tree import TechTree
from tests.conftest import ROOT

PLACES = ["plaza", "cafe", "park"]
PEOPLE = ["Ann", "Bo"]
CHAT = (Message("system", "You are Ann, the town baker."), Message("user", "What do you do next? Reply in JSON."))
SEEDS = range(20)
TECH = TechTree()
TOOLS = Bot.tools(TECH, 16)
CURRICULUM = Curriculum(TECH.items, verbs={
    "mine": [r.drop for r in TECH.resources.values() if r.density > 0],
    "craft": [r.item for r in TECH.recipes.values() if not r.smelted],
    "smelt": [r.item for r in TECH.recipes.values() if r.smelted]})
SURVEY_ITEMS = {
    "likert": SurveyItem(name="mood", question="How are you?", type="likert", scale=5),
    "choice": SurveyItem(name="where", question="Where?", type="choice", options=["cafe", "park"]),
    "yes_no": SurveyItem(name="knows", question="Do you know?", type="yes_no"),
    "number_enum": SurveyItem(name="n", question="How many?", type="number", min=0, max=10, integer=True),
    "number_wide": SurveyItem(name="n", question="How many?", type="number", min=0, max=10_000, integer=True),
    "number_float": SurveyItem(name="x", question="How far?", type="number", min=-1.5, max=2.5),
    "text": SurveyItem(name="why", question="Why?", type="text", max_length=12),
}
RUBRICS = {name: _load_rubric(path) for name, path in shipped_rubrics().items()}


async def _both(*coros: Any) -> None:
    for coro in coros:
        await coro


def _captured(call: Callable[[Any], Any]) -> list[dict[str, Any]]:
    """The schemas a world sends from inside a method (built inline there), caught by a stand-in client."""
    schemas: list[dict[str, Any]] = []

    async def ask(purpose: str, template: str, schema: dict[str, Any], parse: Any, *, fallback: Any,
                  **variables: Any) -> Any:
        schemas.append(schema)
        return fallback

    async def structured(messages: Any, *, schema: dict[str, Any], **kwargs: Any) -> Outcome[None]:
        schemas.append(schema)
        return Outcome(None, False, 1)

    tasks = [SimpleNamespace(id=1, text="bake bread"), SimpleNamespace(id=2, text="sell bread")]
    stand_in = SimpleNamespace(_ask=ask, llm=SimpleNamespace(structured=structured), closing=("task_done", "done"),
                               task=tasks[0], team=SimpleNamespace(board=SimpleNamespace(open_tasks=lambda: tasks)),
                               TASK_HINT="a chore", scale=5, steps=1)
    asyncio.run(call(stand_in))
    return schemas


WORLD_SCHEMAS: dict[str, dict[str, Any]] = {
    "town action": action_schema(PLACES, PEOPLE),
    "town action alone": action_schema(PLACES, []),
    "generative reaction": reaction_schema(PEOPLE),
    "generative reaction alone": reaction_schema([]),
    "generative day plan": day_plan_schema(),
    "generative hourly": hourly_schema(PLACES, 4),
    "generative decompose": decompose_schema(),
    "generative importance": importance_schema(3),
    "generative dialogue": utterance_schema(),
    "generative reflection questions": questions_schema(3),
    "generative reflection insights": insights_schema(2, 5),
    "babyagi town tool": tool_schema(PLACES, PEOPLE),
    "babyagi town tool alone": tool_schema(PLACES, []),
    **{f"babyagi {name}": schema for name, schema in zip(
        ("create", "prioritise"), _captured(lambda w: _both(TaskWorker.create(w), TaskWorker.prioritise(w))),
        strict=True)},
    "babyagi judge": JUDGE_SCHEMA,
    "babyagi crafting tool": call_schema([*TOOLS, *CLOSE_TOOLS]),
    "voyager curriculum": CURRICULUM.schema(),
    "voyager skill": SKILL_SCHEMA,
    "voyager describe": DESCRIBE_SCHEMA,
    "voyager critic": CRITIC_SCHEMA,
    "sandbox answer": ANSWER_SCHEMA,
    "sandbox rating": rating_schema(7),
    "sandbox observer": _captured(lambda w: AlignmentWorld._observe(w, "Is it fair?", "Yes.", "0:0:0"))[0],
    **{f"survey {name}": answer_schema(item) for name, item in SURVEY_ITEMS.items()},
    **{f"rater {name}": score_schema(rubric) for name, rubric in RUBRICS.items()},
}


def _request(schema: dict[str, Any] | None, seed: int = 7, chat: tuple[Message, ...] = CHAT) -> LLMRequest:
    return LLMRequest(chat, schema, 96, 0.7, seed)


@pytest.fixture(scope="module")
def dry() -> DryBackend:
    """The dry backend on the shipped model's tokenizer."""
    return DryBackend()


@pytest.mark.parametrize("name", WORLD_SCHEMAS)
def test_every_answer_is_valid_against_the_schema_a_world_sends(dry: DryBackend, name: str) -> None:
    schema = WORLD_SCHEMAS[name]
    validator = Draft202012Validator(schema)

    errors = [(seed, error.message) for seed in SEEDS
              for error in validator.iter_errors(json.loads(dry.answer(_request(schema, seed))))]

    assert errors == []


PARSES: dict[str, tuple[dict[str, Any], Callable[[Any], Any]]] = {
    "town action": (action_schema(PLACES, PEOPLE), lambda d: parse_action(d, places=PLACES, people=PEOPLE)),
    "generative reaction": (reaction_schema(PEOPLE), lambda d: parse_reaction(d, PEOPLE)),
    "generative day plan": (day_plan_schema(), parse_day_plan),
    "generative importance": (importance_schema(3), lambda d: parse_ratings(d, 3)),
    "generative dialogue": (utterance_schema(), parse_utterance),
    "babyagi crafting tool": (WORLD_SCHEMAS["babyagi crafting tool"], lambda d: parse_crafting_call(d, TOOLS)),
    "voyager curriculum": (CURRICULUM.schema(), CURRICULUM.parse),
    "voyager skill": (SKILL_SCHEMA, parse_skill),
    "sandbox answer": (ANSWER_SCHEMA, parse_answer),
    **{f"survey {name}": (answer_schema(item), lambda d, item=item: parse_survey_answer(item, d))
       for name, item in SURVEY_ITEMS.items()},
    **{f"rater {name}": (score_schema(rubric), lambda d, rubric=rubric: parse_scores(rubric, d))
       for name, rubric in RUBRICS.items()},
}


@pytest.mark.parametrize("name", PARSES)
def test_the_worlds_accept_the_answers_within_their_retries(dry: DryBackend, name: str) -> None:
    """Checks beyond the schema (a person to talk to, a verb that fits the item) pass, at the latest on a retry."""
    schema, parse = PARSES[name]
    client = LLMClient(dry, retries=2)

    async def ask_all() -> list[Outcome[Any]]:
        return [await client.structured(CHAT, schema=schema, parse=parse, seed=seed, fallback=None) for seed in SEEDS]

    outcomes = client.run(ask_all())
    client.close()

    assert [o.error for o in outcomes if not o.ok] == []


def test_same_request_same_answer_other_seed_other_answer() -> None:
    first, second = DryBackend(model="none"), DryBackend(model="none")
    schemas = [None, *WORLD_SCHEMAS.values()]

    again = [first.answer(_request(s)) == second.answer(_request(s)) for s in schemas]
    other = [first.answer(_request(s)) != first.answer(_request(s, seed=8)) for s in schemas]

    assert all(again)
    assert sum(other) > len(schemas) // 2


def test_a_retry_prefers_the_options_its_feedback_names(dry: DryBackend) -> None:
    schema = {"type": "object", "properties": {"person": {"type": "string", "enum": ["Ann", "Bo", "nobody"]}}}
    chat = (*CHAT, Message("assistant", '{"person": "nobody"}'), Message("user", "Not nobody: talk to Bo."))

    people = {json.loads(dry.answer(_request(schema, seed, chat)))["person"] for seed in SEEDS}

    assert people == {"Bo"}


def test_free_text_is_a_short_seeded_sentence(dry: DryBackend) -> None:
    texts = [dry.answer(_request(None, seed)) for seed in SEEDS]

    assert all(t.strip() and t.endswith(".") and len(t.split()) >= 4 for t in texts)
    assert len(set(texts)) > 1
    assert dry_sentence(random.Random(1)) == dry_sentence(random.Random(1))


@pytest.mark.parametrize(("schema", "check"), [
    ({"const": 3}, lambda v: v == 3),
    ({"anyOf": [{"type": "integer", "minimum": 5, "maximum": 5}, {"type": "boolean"}]},
     lambda v: v == 5 or isinstance(v, bool)),
    ({"type": "string", "minLength": 30, "maxLength": 30}, lambda v: len(v) == 30),
    ({"type": "string", "maxLength": 1}, lambda v: len(v) == 1),
    ({"type": "integer", "exclusiveMinimum": 2, "exclusiveMaximum": 4}, lambda v: v == 3),
    ({"type": "number"}, lambda v: 0 <= v <= 10),
    ({"type": "array", "items": {"type": "integer", "enum": [1, 2, 3]}, "minItems": 3, "uniqueItems": True},
     lambda v: sorted(v) == [1, 2, 3]),
    ({"type": "array", "items": {"type": "string"}}, lambda v: 1 <= len(v) <= 3),
    ({"type": ["null", "string"]}, lambda v: isinstance(v, str)),
    ({"type": "object", "properties": {}, "required": ["x"]}, lambda v: isinstance(v.get("x"), str)),
])
def test_schema_keywords(schema: dict[str, Any], check: Callable[[Any], bool]) -> None:
    values = [dry_value(schema, random.Random(seed)) for seed in SEEDS]

    assert all(check(v) for v in values), values
    assert all(not list(Draft202012Validator(schema).iter_errors(v)) for v in values)


def test_default_model_counts_tokens_as_llama_cpp_does(dry: DryBackend) -> None:
    request = LLMRequest(CHAT, None, 1, 0.0, 3)
    engine = LlamaCppBackend(n_threads=1)

    real = asyncio.run(engine.generate(request))
    counted = asyncio.run(dry.generate(request))

    assert dry.token_counter == f"tokenizer of {shipped_model_path().name}"
    assert dry.model_id == f"dry:{shipped_model_path().name}"
    assert counted.prompt_tokens == real.prompt_tokens
    text = dry.answer(request)
    assert counted.completion_tokens == len(engine._llm.tokenize(text.encode(), add_bos=False, special=False))


def test_a_name_without_a_tokenizer_is_counted_by_estimate() -> None:
    backend = make_backend(LLMConfig(backend="dry", model="gpt-4o-mini"))
    request = _request(WORLD_SCHEMAS["town action"])

    completion = asyncio.run(backend.generate(request))

    assert isinstance(backend, DryBackend)
    assert backend.token_counter == "estimate: 4 characters per token, 4 more per message"
    assert backend.model_id == "dry:estimate"
    assert completion.completion_tokens == math.ceil(len(completion.text) / CHARS_PER_TOKEN)
    assert completion.prompt_tokens == sum(math.ceil(len(m.content) / 4) + MESSAGE_TOKENS for m in CHAT)


def test_a_model_folder_is_counted_by_its_tokenizer_and_chat_template(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["[UNK]", "<|im_start|>", "<|im_end|>", "you", "are", "ann", "say", "hi", "system", "user", "assistant"]
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]",
                                   additional_special_tokens=["<|im_start|>", "<|im_end|>"])
    fast.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }} {{ m['content'] }}<|im_end|>"
                          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant{% endif %}")
    fast.save_pretrained(tmp_path / "model")

    backend = DryBackend(model=str(tmp_path / "model"))

    assert isinstance(backend.counter, HFTokenCounter)
    assert backend.token_counter == "tokenizer of model"
    # <|im_start|> system you are ann <|im_end|> <|im_start|> user say hi <|im_end|> <|im_start|> assistant
    assert backend.counter.prompt([Message("system", "you are ann"), Message("user", "say hi")]) == 13
    assert backend.counter.count("say hi there") == 3


def test_counters_fall_back_to_the_estimate(tmp_path: Path) -> None:
    assert type(DryBackend(model=str(tmp_path / "missing.gguf")).counter) is TokenCounter
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf")

    counter = DryBackend(model=str(broken)).counter

    assert type(counter) is TokenCounter
    assert counter.method.startswith("estimate: 4 characters per token, 4 more per message (llama.cpp could not")


def test_town_runs_end_to_end_on_the_dry_backend(tmp_path: Path) -> None:
    out = tmp_path / "run"

    status = run.main([str(ROOT / "scenarios" / "town.yaml"), "--steps", "2", "--out", str(out), "--plain",
                       "--set", "llm.backend=dry", "--set", f"outputs.dir={tmp_path}"])

    assert status == 0
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    decided = [e["data"]["kind"] for e in events if e["kind"] == "decided"]
    assert decided
    assert "wait" not in decided, "a wait is the fallback of a failed decision"
    assert not [e for e in events if e["kind"] == "llm_failure"]
    calls = [json.loads(line) for line in (out / "llm_calls.jsonl").read_text().splitlines()]
    assert {c["purpose"] for c in calls} == {"decide"}
    assert not any(c["cached"] for c in calls)
    llm = json.loads((out / "summary.json").read_text())["llm"]
    assert llm["backend"] == "dry"
    assert llm["token_counter"] == f"tokenizer of {shipped_model_path().name}"
    assert llm["prompt_tokens"] > 0
    assert llm["completion_tokens"] > 0
    assert not (tmp_path / "llm-cache.jsonl").exists(), "dry answers are never cached"
