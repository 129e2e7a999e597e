"""A run's engines: the one place a scenario's ``llm`` section (and each agent's own) becomes a client.

A run, an interview and a sweep's runs all ask through a client built here, so each agent's calls reach the
engine it had in the run (``agents[i].llm``), and every engine gets a step's calls together.

Parts:
    agent_engines: agent name -> its own engine; agents with the same settings share one.
    run_client: the client of a run or an instrument, routed to those engines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from simulacra.agents.llm import Backend, LLMClient, ResponseCache, make_backend, make_client

if TYPE_CHECKING:
    from simulacra.scenarios.schema import Scenario

__all__ = ["agent_engines", "run_client"]


def agent_engines(scenario: Scenario) -> dict[str, Backend]:
    """Agent name -> its own engine (``agents[i].llm``); agents with the same settings share one.

    Args:
        scenario: The validated scenario.

    Returns:
        The routes of `LLMClient.routes`: only the agents with settings of their own.
    """
    engines: dict[str, Backend] = {}
    routes: dict[str, Backend] = {}
    for i, agent in enumerate(scenario.agents):
        if agent.llm:
            config = scenario.agent_llm(i)
            key = config.model_dump_json()
            if key not in engines:
                engines[key] = make_backend(config)
            routes[agent.name] = engines[key]
    return routes


def run_client(scenario: Scenario, *, cache: ResponseCache | None = None,
               call_log: Callable[[dict[str, Any]], None] | None = None, queue: bool = False) -> LLMClient:
    """The client a run (or an instrument over a run) asks through: the scenario's engine, each agent's own.

    Args:
        scenario: The validated scenario.
        cache: Answers to reuse (a replay, a resume, an interview's own cache), or None.
        call_log: Called with every attempt's record (``llm_calls.jsonl``), or None.
        queue: Calls wait their turn for the engine without counting the wait against their timeout
            (instruments, which ask outside a run's phases).

    Returns:
        The client, its ``routes`` set.
    """
    llm = scenario.llm
    client = make_client(llm, cache=cache, call_log=call_log, backend=make_backend(llm), queue=queue)
    client.routes = agent_engines(scenario)
    return client
