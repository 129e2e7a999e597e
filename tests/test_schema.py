import re
import subprocess
import sys
from pathlib import Path

import pytest

import run
from simulacra.errors import ScenarioError
from simulacra.scenarios.loading import load_scenario
from simulacra.scenarios.overrides import parse_override
from simulacra.scenarios.reference import reference_markdown
from tests.conftest import MINIMAL, ROOT


def test_shipped_town_scenario_is_valid() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "town.yaml")
    assert len(scenario.agents) == 5
    assert scenario.llm.backend == "llamacpp"
    assert {a.home for a in scenario.agents} <= {p.name for p in scenario.world.places}


def test_defaults_fill_sections(write) -> None:
    scenario = load_scenario(write(MINIMAL))
    assert scenario.seed == 0
    assert scenario.clock.minutes_per_step == 10
    assert [p.name for p in scenario.world.places] == ["plaza", "cafe", "park", "store"]
    assert scenario.llm.retries == 2


BAD = [
    ("unknown top-level key",
     MINIMAL.replace("steps: 2", "stesp: 2"),
     "{f}:2: stesp: unknown field 'stesp'; did you mean 'steps'? allowed: name, description, seed, steps, "
     "clock, world, agents, llm, memory, perception, cognition, outputs, inject, surveys"),
    ("wrong type",
     MINIMAL.replace("steps: 2", "steps: two"),
     "{f}:2: steps: Input should be a valid integer, unable to parse string as an integer (got 'two')"),
    ("out of range",
     MINIMAL.replace("steps: 2", "steps: -1"),
     "{f}:2: steps: Input should be greater than or equal to 1 (got -1)"),
    ("missing field",
     MINIMAL.replace("steps: 2\n", ""),
     "{f}:1: steps: required field is missing; add it (see the scenario reference in README.md)"),
    ("unknown place with did-you-mean",
     MINIMAL + "  - name: C\n    persona: x\n    home: caffe\n",
     "{f}:9: agents[2].home: unknown place 'caffe'; did you mean 'cafe'? allowed: plaza, cafe, park, store"),
    ("unknown world type",
     MINIMAL.replace("type: town", "type: city"),
     "{f}:3: world.type: unknown world type 'city'; did you mean 'society'? allowed: town, crafting, society, an "
     "import path package.module:Class, or a name in the entry-point group simulacra.worlds (none installed)"),
    ("nested unknown key",
     MINIMAL + "llm:\n  temprature: 0.5\n",
     "{f}:8: llm.temprature: unknown field 'temprature'; did you mean 'temperature'? allowed: backend, model, "
     "price, base_url, base_urls, server_slots, api_key_env, schema_mode, langchain_class, langchain_kwargs, "
     "structured_method, "
     "temperature, max_tokens, timeout_s, retries, max_concurrency, n_ctx, n_threads, engine_kwargs, cache, "
     "cache_path, backoff_s, backoff_max_s, down_after_s"),
    ("duplicate agent",
     MINIMAL.replace("name: B", "name: A"),
     "{f}:6: agents[1].name: duplicate agent name 'A'; names must be unique"),
    ("cross-field backend rule",
     MINIMAL + "llm:\n  backend: openai\n",
     "{f}:7: llm.base_url: the openai backend needs a server URL, e.g. base_url: http://127.0.0.1:8000/v1"),
    ("duplicate key",
     MINIMAL.replace("steps: 2", "steps: 2\nsteps: 3"),
     "{f}:3: steps: key given twice; keep one"),
    ("bad link",
     MINIMAL.replace("world: {type: town}", "world:\n  type: town\n  places:\n    - {name: x, links: [y]}"),
     "{f}:6: world.places[0].links[0]: unknown place 'y'; allowed: x"),
    ("agents of a kind the world does not have",
     MINIMAL.replace("world: {type: town}", "world: {type: crafting}") + "cognition: {kind: generative}\n",
     "{f}:7: cognition.kind: 'generative' agents do not live in the crafting world; allowed there: simple, "
     "babyagi"),
    ("babyagi in the society",
     MINIMAL.replace("world: {type: town}", "world: {type: society}")
     + "cognition: {kind: babyagi, objective: win}\n",
     "{f}:7: cognition.kind: 'babyagi' agents do not live in the society world; allowed there: simple"),
    ("malformed YAML",
     "name: t\nsteps: [1\n",
     "{f}:3: not valid YAML (expected ',' or ']', but got '<stream end>'); check indentation and quoting"),
    ("not a mapping",
     "- a\n- b\n",
     "{f}:1: a scenario is a mapping of fields (name, steps, world, agents, ...), got list"),
]


@pytest.mark.parametrize(("case", "text", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_scenarios_give_one_exact_line(write, case: str, text: str, message: str) -> None:
    path = write(text)
    with pytest.raises(ScenarioError, match=f"^{re.escape(message.format(f=path))}$"):
        load_scenario(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ScenarioError, match=re.escape(f"{path}: cannot read the scenario (No such file")):
        load_scenario(path)


def test_overrides_are_validated_like_the_file(write) -> None:
    path = write(MINIMAL)
    assert load_scenario(path, ["steps=5", "llm.temperature=0", "agents.1.goal=sing"]).steps == 5
    assert load_scenario(path, ["agents.1.goal=sing"]).agents[1].goal == "sing"
    with pytest.raises(ScenarioError, match=re.escape(
            "--set llm.backend=opena: llm.backend: unknown backend 'opena'; did you mean 'openai'? allowed: "
            "llamacpp, openai, langchain, vllm, dry, an import path package.module:Class, or a name in the "
            "entry-point group simulacra.backends")):
        load_scenario(path, ["llm.backend=opena"])
    with pytest.raises(ScenarioError, match=re.escape("--set llm.temprature=1: llm.temprature: unknown field")):
        load_scenario(path, ["llm.temprature=1"])


@pytest.mark.parametrize("text", ["novalue", "=3"])
def test_override_syntax(text: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(f"--set {text!r}: expected KEY=VALUE")):
        parse_override(text)


def test_override_value_is_yaml() -> None:
    assert parse_override("llm.langchain_kwargs={a: 1}") == (["llm", "langchain_kwargs"], {"a": 1})


def test_cli_validate_exit_status_and_no_traceback(write) -> None:
    bad = write(MINIMAL.replace("steps: 2", "steps: -1"))
    good = write(MINIMAL, "good.yaml")
    out = subprocess.run([sys.executable, "run.py", "validate", str(bad)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr == f"error: {bad}:2: steps: Input should be greater than or equal to 1 (got -1)\n"
    out = subprocess.run([sys.executable, "run.py", "validate", str(good)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"{good}: valid (town world, 2 agents, 2 steps, llamacpp backend)\n"
    out = subprocess.run([sys.executable, "run.py", str(good), "--steps", "0"], cwd=ROOT, capture_output=True,
                         text=True)
    assert (out.returncode, out.stderr) == (2, "error: --set steps=0: steps: Input should be greater than or "
                                               "equal to 1 (got 0)\n")


def test_readme_reference_matches_schema() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert reference_markdown() in readme, "README is stale: paste the output of `python run.py schema`"


@pytest.mark.parametrize(("override", "allowed"), [
    ("steps=9", True), ("llm.temperature=0", True), ("llm.backend=openai", True), ("agents.1.persona=x", True),
    ("agents.0.goal=go to the party", True), ("inject=[]", True), ("memory.retrieval.top_k=3", True),
    ("surveys=[]", True), ("surveys.0.items.0.question=Who?", True),
    ("seed=9", True), ("agents.*.llm.model=m.gguf", True), ("agents.3.llm={model: m.gguf}", True),
    ("agents.*.name=Z", False), ("agents.0.name=Z", False), ("agents=[]", False), ("world.size=9", False),
    ("clock.minutes_per_step=5", False), ("memory.chroma_url=http://x", False), ("outputs.dir=elsewhere", False),
])
def test_fork_refusal_allows_only_forkable_fields(override: str, allowed: bool) -> None:
    from simulacra.scenarios.overrides import fork_refusal

    why = fork_refusal(override)
    assert (why is None) is allowed
    if not allowed:
        key = override.partition("=")[0]
        assert why.startswith(f"--set {override!r}: {key!r} cannot change at a fork")


def test_injected_news_must_name_an_agent_and_live_in_the_town(write) -> None:
    path = write(MINIMAL + "inject:\n  - {step: 2, to: C, text: hello}\n")
    with pytest.raises(ScenarioError, match=re.escape(f"{path}:8: inject[0].to: unknown agent 'C'; allowed: A, B")):
        load_scenario(path)
    crafting = MINIMAL.replace("world: {type: town}", "world: {type: crafting}").replace(", home: cafe", "")
    path = write(crafting.replace(", home: park", "") + "inject:\n  - {step: 2, to: A, text: hello}\n", "c.yaml")
    with pytest.raises(ScenarioError, match=re.escape("inject: the crafting world takes no injected news")):
        load_scenario(path)


def test_an_override_one_past_a_lists_end_appends(write) -> None:
    path = write(MINIMAL)
    scenario = load_scenario(path, ["agents.2={name: C, persona: a nurse, home: plaza}"])
    assert [a.name for a in scenario.agents] == ["A", "B", "C"]
    with pytest.raises(ScenarioError, match=re.escape("--set 'agents.4=x': 'agents.4' does not name a field")):
        load_scenario(path, ["agents.4=x"])


def test_a_star_sets_the_field_in_every_item_of_a_list(write) -> None:
    path = write(MINIMAL)
    scenario = load_scenario(path, ["agents.*.llm.model=other.gguf", "agents.*.goal=rest"])
    assert [(a.llm or {}).get("model") for a in scenario.agents] == ["other.gguf", "other.gguf"]
    assert [a.goal for a in scenario.agents] == ["rest", "rest"]
    assert scenario.agent_llm(1).model == "other.gguf" and scenario.llm.model != "other.gguf"  # the run's stays
    with pytest.raises(ScenarioError, match=re.escape("--set 'steps.*.x=1': 'steps.*' is not a section")):
        load_scenario(path, ["steps.*.x=1"])


def test_the_old_world_type_sandbox_still_runs_with_a_one_line_warning(write, capsys) -> None:
    from simulacra.scenarios.schema import ScenarioDeprecation

    path = write(MINIMAL.replace("world: {type: town}", "world: {type: sandbox}"))
    with pytest.warns(ScenarioDeprecation, match=re.escape("world.type 'sandbox' is now 'society'")):
        assert load_scenario(path).world.type == "society"
    assert run.main(["validate", str(path)]) == 0
    out = capsys.readouterr()
    assert "valid (society world" in out.out
    assert out.err == ("warning: world.type 'sandbox' is now 'society' ('sandbox' means the skill sandbox); the old "
                       "name still works for now: write type: society\n")


# LLMConfig fields whose defaults the engine layer also has: the client's, a request's and the backends'.
SHARED_LLM_DEFAULTS = ("max_tokens", "temperature", "timeout_s", "retries", "max_concurrency", "backoff_s",
                       "backoff_max_s", "down_after_s", "n_ctx", "n_threads", "schema_mode", "structured_method",
                       "server_slots")


def test_the_llm_sections_defaults_are_the_engine_layers() -> None:
    """A default has one source: what LLMClient, LLMRequest and each backend take unasked is the scenario's."""
    import inspect

    from simulacra.agents.llm import LLMClient, LLMRequest
    from simulacra.agents.llm.langchain import LangChainBackend
    from simulacra.agents.llm.llamacpp import LlamaCppBackend
    from simulacra.agents.llm.openai_compat import OpenAIBackend
    from simulacra.agents.llm.vllm_engine import VLLMBackend
    from simulacra.scenarios.llm import LLMConfig

    seen = []
    for owner in (LLMClient, LLMRequest, LlamaCppBackend, OpenAIBackend, LangChainBackend, VLLMBackend):
        for name, param in inspect.signature(owner).parameters.items():
            field = {"max_model_len": "n_ctx"}.get(name, name)
            if field in SHARED_LLM_DEFAULTS:
                seen.append((owner.__name__, field, param.default))
    assert {field for _, field, _ in seen} == set(SHARED_LLM_DEFAULTS)
    assert [(owner, field, LLMConfig.model_fields[field].default) for owner, field, _ in seen] == seen
    assert LLMConfig().max_tokens == 96  # the README's figure
