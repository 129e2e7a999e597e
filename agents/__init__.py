"""Agents: their bodies (Mesa agents), minds, prompts and the LLM layer they call.

Parts:
    TownAgent: a townsperson who perceives, decides through the LLM, moves, talks and acts.
    Action: one decided action.
    llm: the LLM layer (backends, client, cache).
    prompts: prompt templates.
    errors: SimError and its kinds.
"""

from agents.town_agent import Action, TownAgent

__all__ = ["Action", "TownAgent"]
