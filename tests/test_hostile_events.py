"""Hostile event logs: one field of a real event replaced by a hostile value gives a dataset, ratings and answers, or
one ``error:`` line naming ``events.jsonl``; never a traceback.

Real run folders of every shipped world (``dry`` backend, two steps) are made once; each example copies one, takes
a random event of a random kind, replaces one field (a top-level field, a key of ``data`` or a key one level below
it) with a hostile value and runs the command in this process.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import run
from simulacra.testing import cli

WORLDS = ("town", "valentine", "babyagi", "voyager", "babyagi-crafting", "alignment")
RUBRIC = """\
name: r
description: A test rubric.
source: nowhere
dimensions:
  - {name: warmth, description: How warm the character is., min: 1, max: 7}
"""
SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
COUNTS: dict[str, Counter[str]] = {"world": Counter(), "kind": Counter(), "path": Counter(), "value": Counter(),
                                   "outcome": Counter()}


class _Runs(dict[str, tuple[Path, list[dict[str, Any]]]]):
    """The runs, shown short in hypothesis's reports."""

    def __repr__(self) -> str:
        return f"<runs of {', '.join(self)}>"


def _deep(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


# Each hostile value with its class, for the counts.
HOSTILE: st.SearchStrategy[tuple[str, Any]] = st.one_of(
    st.tuples(st.just("markup/control text"),
              st.lists(st.sampled_from([*"[]/{}<>\\\"'\x00\x1b\x07\n\r\t\u2028\u202e$%", "[bold]", "[/]", "<script>",
                                        "\x1b[31m", "{{x}}", "é", "\ud7ff"]), max_size=12).map("".join)),
    st.tuples(st.just("huge int"), st.integers(min_value=10**18, max_value=10**300)),
    st.tuples(st.just("negative int"), st.integers(max_value=-1, min_value=-(10**30))),
    st.tuples(st.just("float"), st.floats(allow_nan=True, allow_infinity=True)),
    st.tuples(st.just("bool"), st.booleans()),
    st.tuples(st.just("None"), st.none()),
    st.tuples(st.just("list"), st.lists(st.integers() | st.text(max_size=5), max_size=4)),
    st.tuples(st.just("dict"), st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4)),
    st.tuples(st.just("nested list 50 deep"), st.just(_deep(50))),
)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Path, list[dict[str, Any]]]]]:
    """A finished two-step run folder of each shipped world (dry backend), with its events."""
    root = tmp_path_factory.mktemp("hostile-events")
    out = _Runs()
    for world in WORLDS:
        folder = root / world
        assert cli("run", f"scenarios/{world}.yaml", "--out", folder, "--steps", "2", "--plain", "--set",
                   "llm.backend=dry", "--set", "llm.model=estimate") == 0
        lines = (folder / "events.jsonl").read_text(encoding="utf-8").splitlines()
        out[world] = (folder, [json.loads(line) for line in lines])
    yield out
    if os.environ.get("HOSTILE_COUNTS"):  # the counts by class, for a report; nothing is printed
        Path(os.environ["HOSTILE_COUNTS"]).write_text(json.dumps(COUNTS, indent=1), encoding="utf-8")


def _paths(event: dict[str, Any]) -> list[tuple[str, ...]]:
    """The fields of an event one can replace: top-level fields, keys of ``data`` and keys one level below."""
    paths: list[tuple[str, ...]] = [(key,) for key in event]
    for key, value in event["data"].items():
        paths.append(("data", key))
        if isinstance(value, dict):
            paths += [("data", key, sub) for sub in value]
    return paths


def _hostile_run(data: st.DataObject, worlds: dict[str, tuple[Path, list[dict[str, Any]]]], scratch: Path,
                 choices: tuple[str, ...] = WORLDS) -> Path:
    """A copy of a world's run folder with one field of one event replaced; the draw is counted."""
    world = data.draw(st.sampled_from(choices), label="world")
    folder, events = worlds[world]
    kind = data.draw(st.sampled_from(sorted({e["kind"] for e in events})), label="kind")
    index = data.draw(st.sampled_from([i for i, e in enumerate(events) if e["kind"] == kind]), label="event")
    event = json.loads(json.dumps(events[index]))
    path = data.draw(st.sampled_from(_paths(event)), label="path")
    value_class, value = data.draw(HOSTILE, label="value")
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    copy = Path(tempfile.mkdtemp(dir=scratch)) / world
    shutil.copytree(folder, copy)
    lines = [json.dumps(e) for e in events]
    lines[index] = json.dumps(event)
    (copy / "events.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    for name, drawn in (("world", world), ("kind", f"{world}:{kind}"), ("path", ".".join(path)),
                        ("value", value_class)):
        COUNTS[name][drawn] += 1
    return copy


def _check(code: int, err: str, command: str) -> None:
    """Exit 0, or exit 2 with one ``error:`` line naming events.jsonl; never a traceback."""
    assert "Traceback" not in err, err
    assert code in (0, 2), (code, err)
    COUNTS["outcome"][f"{command} {code}"] += 1
    if code == 2:
        assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err
        assert "events.jsonl" in err, err


@SETTINGS
@given(data=st.data())
def test_harvest_of_a_hostile_event_is_a_dataset_or_one_line(
        data: st.DataObject, worlds: dict[str, tuple[Path, list[dict[str, Any]]]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    copy = _hostile_run(data, worlds, tmp_path)
    out = copy.parent / "data"
    capsys.readouterr()
    code = run.main(["harvest", str(copy), "--out", str(out)])
    _check(code, capsys.readouterr().err, "harvest")
    assert (out / "README.md").is_file() if code == 0 else not out.exists()


@SETTINGS
@given(data=st.data())
def test_rate_of_a_hostile_event_is_ratings_or_one_line(
        data: st.DataObject, worlds: dict[str, tuple[Path, list[dict[str, Any]]]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    copy = _hostile_run(data, worlds, tmp_path)
    rubric = copy.parent / "r.yaml"
    rubric.write_text(RUBRIC, encoding="utf-8")
    capsys.readouterr()
    code = run.main(["rate", str(copy), "--rubric", str(rubric)])
    _check(code, capsys.readouterr().err, "rate")
    assert (copy / "ratings" / "r.jsonl").is_file() if code == 0 else not (copy / "ratings").exists()


@settings(SETTINGS, max_examples=6)
@given(data=st.data())
def test_interview_of_a_run_with_a_hostile_event_answers_or_is_one_line(
        data: st.DataObject, worlds: dict[str, tuple[Path, list[dict[str, Any]]]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Interviews load snapshots, not the event log, so a hostile event changes nothing."""
    copy = _hostile_run(data, worlds, tmp_path, choices=("town", "valentine"))
    capsys.readouterr()
    code = run.main(["interview", str(copy), "--all", "How is your day going?"])
    _check(code, capsys.readouterr().err, "interview")
    assert code == 0 and any((copy / "interviews").glob("*.jsonl"))


@pytest.mark.parametrize(("line", "message"), [
    ('{"step": "1", "sim_time": null, "agent": null, "kind": "x", "data": {}}',
     'step is "1" (text), not a whole number, 0 or more'),
    ('{"step": -1, "sim_time": null, "agent": null, "kind": "x", "data": {}}',
     "step is -1 (a number), not a whole number, 0 or more"),
    ('{"step": 1.5, "sim_time": null, "agent": null, "kind": "x", "data": {}}',
     "step is 1.5 (a number), not a whole number, 0 or more"),
    ('{"step": true, "sim_time": null, "agent": null, "kind": "x", "data": {}}',
     "step is true (true or false), not a whole number, 0 or more"),
    ('{"step": 1, "sim_time": null, "agent": 7, "kind": "x", "data": {}}', "agent is 7 (a number), not text or null"),
    ('{"step": 1, "sim_time": null, "agent": null, "kind": "x", "data": []}', "data is [] (a list), not an object"),
    ('{"step": 1, "sim_time": null, "agent": null, "kind": "x"}',
     "no data (an event has step, sim_time, agent, kind, data)"),
    ('{"step": 1, "sim_time": null, "agent": "A", "kind": "said", "data": {"to": "B", "text": {}}}',
     "data.text is {} (an object), not text"),
])
def test_a_wrong_field_is_one_line_naming_the_line_and_field(
        worlds: dict[str, tuple[Path, list[dict[str, Any]]]], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        line: str, message: str) -> None:
    copy = tmp_path / "town"
    shutil.copytree(worlds["town"][0], copy)
    events = copy / "events.jsonl"
    kept = events.read_text(encoding="utf-8").splitlines(keepends=True)
    events.write_text("".join([kept[0], line + "\n", *kept[1:]]), encoding="utf-8")
    assert run.main(["harvest", str(copy), "--out", str(tmp_path / "data")]) == 2
    assert capsys.readouterr().err == f"error: {events}:2: {message}; harvest run folders that run.py wrote\n"


def test_a_line_being_written_is_left_out(worlds: dict[str, tuple[Path, list[dict[str, Any]]]],
                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A last line without its newline is a write in progress: rate reads the lines before it."""
    copy = tmp_path / "valentine"
    shutil.copytree(worlds["valentine"][0], copy)
    events = copy / "events.jsonl"
    events.write_text(events.read_text(encoding="utf-8") + '{"step": 3, "ki', encoding="utf-8")
    rubric = tmp_path / "r.yaml"
    rubric.write_text(RUBRIC, encoding="utf-8")
    assert run.main(["rate", str(copy), "--rubric", str(rubric)]) == 0
    assert capsys.readouterr().err == ""
