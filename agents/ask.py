"""One schema-constrained LLM call on behalf of an agent, with its persona, reported when it fails."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from simulacra.agents.llm import Message
from simulacra.agents.prompts import render
from simulacra.events import EventKind

__all__ = ["ask", "ask_as", "purpose_seed"]

T = TypeVar("T")


def purpose_seed(step_seed: int, purpose: str) -> int:
    """The sampling seed of one purpose of an agent's step: its step seed moved by the purpose's checksum."""
    return (step_seed + zlib.crc32(purpose.encode())) % 2**31


async def ask_as(agent: Any, messages: Sequence[Message], *, schema: Mapping[str, Any], parse: Callable[[Any], T],
                 fallback: T, purpose: str, seed: int, fallback_label: str = "default",
                 max_tokens: int | None = None) -> T:
    """The one way an agent asks its world's model: a schema-bound call, and an ``llm_failure`` event if it fails.

    Args:
        agent: Has ``name``, ``model`` (the world, with ``llm``) and ``outbox`` (events it emits when it applies).
        messages: The chat.
        schema: The JSON schema the engine enforces.
        parse: Turns the JSON into a value; raises `ParseError` with feedback.
        fallback: Returned when every attempt fails.
        purpose: Label for the call log.
        seed: The sampling seed (see `purpose_seed`).
        fallback_label: What the ``llm_failure`` event says was done instead.
        max_tokens: Room for the answer; None uses ``llm.max_tokens``.

    Returns:
        The parsed value or the fallback.
    """
    outcome = await agent.model.llm.structured(messages, schema=schema, parse=parse, seed=seed, fallback=fallback,
                                               purpose=purpose, agent=agent.name, max_tokens=max_tokens)
    if not outcome.ok:
        agent.outbox.append((EventKind.LLM_FAILURE, {"purpose": purpose, "attempts": outcome.attempts,
                                             "error": outcome.error, "fallback": fallback_label}))
    value: T = outcome.value
    return value


async def ask(agent: Any, prompts: str, purpose: str, template: str, schema: dict[str, Any],
              parse: Callable[[Any], T], *, fallback: T, system: Mapping[str, Any], **variables: Any) -> T:
    """Renders ``system`` and ``template`` of ``agents/prompts/<prompts>.yaml`` and asks the world's client.

    Args:
        agent: Has ``name``, ``model`` (the world, with ``llm``), ``outbox`` and ``_seed`` (this step's seed).
        prompts: The prompt file's name.
        purpose: Label for the call log; each purpose also gets its own sampling seed.
        template: The user prompt's template.
        schema: The JSON schema the engine enforces.
        parse: Turns the JSON into a value; raises `ParseError` with feedback.
        fallback: Returned when every attempt fails (an ``llm_failure`` event says so).
        system: The system template's variables.
        **variables: The user template's variables.

    Returns:
        The parsed value or the fallback.
    """
    messages = [Message("system", render(prompts, "system", name=agent.name, **system)),
                Message("user", render(prompts, template, name=agent.name, **variables))]
    seed = purpose_seed(agent._seed, purpose)  # noqa: SLF001 - the agent's own step seed
    return await ask_as(agent, messages, schema=schema, parse=parse, fallback=fallback, purpose=purpose, seed=seed)
