"""A backend of the user's own, named by import path or registered by an installed package's entry point."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import run
from tests.conftest import ROOT
from tests.helpers import installed_plugin, read_events

# A user's package: a Backend that always picks the first option the schema offers.
BACKEND = '''
import json

from simulacra.agents.llm import Backend, Completion


def first(schema):
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object":
        return {k: first(v) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [first(schema.get("items", {}))] * schema.get("minItems", 1)
    return {"integer": 1, "number": 1.0, "boolean": True}.get(kind, "first")


class FirstChoice(Backend):
    name = "first"

    def __init__(self, label="first"):
        self.label = label

    @classmethod
    def from_config(cls, config):
        return cls(label=config.model or "first")

    @property
    def model_id(self):
        return f"first:{self.label}"

    async def _generate(self, request):
        text = json.dumps(first(request.schema or {"type": "string"}))
        return Completion(text=text, prompt_tokens=10, completion_tokens=5)
'''


def town_run(tmp_path: Path, backend: str, *extra: str) -> tuple[int, Path]:
    out = tmp_path / backend.replace(":", "_").replace(".", "_")
    status = run.main([str(ROOT / "scenarios" / "town.yaml"), "--steps", "1", "--out", str(out), "--plain",
                       "--set", f"llm.backend={backend}", "--set", "llm.cache=false", *extra])
    return status, out


def chose_first(run_dir: Path) -> None:
    decided = [e for e in read_events(run_dir) if e["kind"] == "decided"]
    assert len(decided) == 5 and all(e["data"]["kind"] == "do" and e["data"]["text"] == "first" for e in decided)
    calls = [json.loads(line) for line in (run_dir / "llm_calls.jsonl").read_text().splitlines()]
    assert calls and {c["model"] for c in calls} == {"first:mine"}


def test_a_backend_by_import_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_engines.py").write_text(BACKEND)
    monkeypatch.syspath_prepend(str(tmp_path))
    status, out = town_run(tmp_path, "my_engines:FirstChoice", "--set", "llm.model=mine")
    assert status == 0
    chose_first(out)


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[str]:
    """A package installed into the test venv (not in our tree) that registers the backend as ``first``."""
    with installed_plugin(tmp_path / "pkg", "simulacra.backends", "first", "simulacra_first_choice", BACKEND,
                          "FirstChoice") as name:
        yield name


def test_a_backend_by_entry_point(installed: str, tmp_path: Path) -> None:
    status, out = town_run(tmp_path, installed, "--set", "llm.model=mine")
    assert status == 0
    chose_first(out)


@pytest.mark.parametrize(("backend", "expected"), [
    ("gpt5", "llm.backend: unknown backend 'gpt5'; allowed: llamacpp, openai, langchain, vllm, dry, an import path "
             "package.module:Class, or a name in the entry-point group simulacra.backends"),
    ("no_such_module:Engine", "llm.backend: backend 'no_such_module:Engine': cannot import 'no_such_module:Engine' "
                              "(ModuleNotFoundError: No module named 'no_such_module')"),
    ("json:JSONDecoder", "llm.backend: backend 'json:JSONDecoder': 'json:JSONDecoder' is not a subclass of "
                         "simulacra.agents.llm.Backend"),
    ("json:dumps", "llm.backend: backend 'json:dumps': 'json:dumps' is not a class"),
])
def test_a_bad_backend_gets_one_line(tmp_path: Path, backend: str, expected: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["validate", str(ROOT / "scenarios" / "town.yaml"), "--set", f"llm.backend={backend}"]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and err.startswith("error: ")
