"""One schema-constrained LLM call on behalf of an agent, with its persona, reported when it fails."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from agents.llm import Message
from agents.prompts import render

__all__ = ["ask"]

T = TypeVar("T")


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
    seed = (agent._seed + zlib.crc32(purpose.encode())) % 2**31  # noqa: SLF001 - the agent's own step seed
    outcome = await agent.model.llm.structured(messages, schema=schema, parse=parse, seed=seed, fallback=fallback,
                                               purpose=purpose, agent=agent.name)
    if not outcome.ok:
        agent.outbox.append(("llm_failure", {"purpose": purpose, "attempts": outcome.attempts,
                                             "error": outcome.error, "fallback": "default"}))
    return outcome.value
