"""Hostile input files: each gives one line naming the file and what is wrong, within time and memory bounds.

Scenarios (through `load_scenario` and ``run.py validate``), ``--set`` values, question sets, skill files,
skill libraries and run folders; then property tests that mutate every shipped scenario.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import zlib
from datetime import UTC, timedelta, timezone
from pathlib import Path
from typing import Any

import chromadb
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import run
from simulacra.errors import ScenarioError
from simulacra.memory.skill_library import LIBRARY_FILE, SkillLibrary
from simulacra.scenarios import bounded
from simulacra.scenarios.bounded import _PYTHON_MESSAGE_BYTES, MAX_DEPTH, MAX_VALUES, load_json, load_yaml, read_text
from simulacra.scenarios.loading import load_scenario
from simulacra.scenarios.overrides import parse_override
from simulacra.scenarios.schema import CraftingConfig, SandboxConfig, Scenario, SocietyConfig
from simulacra.worlds.questions import load_questions
from tests.conftest import MINIMAL, ROOT
from tests.fakes import bag_of_words

SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


def laughs() -> str:
    """The "billion laughs": nine levels of nine aliases, 342 bytes that name 10**9 strings."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _allowed(model: Any) -> str:
    return ", ".join(model.model_fields)


# --- read_text -----------------------------------------------------------------------------------------------

def test_read_text_refuses_what_is_not_a_small_utf8_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ScenarioError, match=re.escape(
            f"{missing}: cannot read the scenario (No such file or directory); check the path")):
        read_text(missing, what="scenario")
    with pytest.raises(ScenarioError, match=re.escape(
            f"{tmp_path}: cannot read the question file (it is a folder); give the path of a file")):
        read_text(tmp_path, what="question file")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a" * 1_000_001)
    with pytest.raises(ScenarioError, match=re.escape(
            f"{big}: the scenario is 1,000,001 bytes, more than the 1,000,000 bytes allowed; give a smaller file")):
        read_text(big, what="scenario")
    with pytest.raises(ScenarioError, match=re.escape(
            "/dev/zero: the skill file is more than the 1,000 bytes allowed; give a smaller file")):
        read_text("/dev/zero", what="skill file", limit=1_000)  # reports no size: read 1,001 bytes and stop
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: t\nplace: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ScenarioError, match=re.escape(
            f"{latin}:2: not UTF-8 text (byte 0xe9 at offset 18); save the scenario as UTF-8")):
        read_text(latin, what="scenario")
    binary = tmp_path / "skill.py"
    binary.write_bytes(b"def f():\n\x00\x01")
    with pytest.raises(ScenarioError, match=re.escape(
            f"{binary}:2: not text (a NUL byte at offset 9); give the skill file as a UTF-8 text file")):
        read_text(binary, what="skill file")
    bom = tmp_path / "bom.yaml"
    bom.write_bytes("\ufeffname: t\n".encode())
    assert read_text(bom, what="scenario") == "name: t\n"

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", refuse)  # root reads any file, so a chmod cannot show this
    with pytest.raises(ScenarioError, match=re.escape(
            f"{bom}: cannot read the scenario (Permission denied); make it readable (chmod u+r) or give another "
            "file")):
        read_text(bom, what="scenario")


# --- load_yaml -----------------------------------------------------------------------------------------------

YAML_LIMITS = [
    ("more than 100 aliases", "a: &a 1\nb: [" + ", ".join(["*a"] * 101) + "]\n",
     "f.yaml:2: more than 100 YAML aliases (*a); write the values out instead"),
    ("billion laughs", laughs(),
     "f.yaml:5: more than 25,000 values (each use of an alias counts them again); shorten the file"),
    ("a loop", "a: &a [1, *a]\n",
     "f.yaml:1: alias *a is inside the value it names (a loop); YAML loops are not allowed"),
    ("too deep", "a: " + "[" * 50 + "]" * 50 + "\n",
     "f.yaml:1: nested more than 50 levels deep; flatten the structure"),
    ("too deep through an alias", "a: &a " + "[" * 30 + "]" * 30 + "\nb: " + "[" * 21 + "*a" + "]" * 21 + "\n",
     "f.yaml:2: nested more than 50 levels deep; flatten the structure"),
    ("deeper than libyaml allows", "[" * 30_000,
     "f.yaml:1: nested more than 50 levels deep; flatten the structure"),
    ("undefined alias", "a: *b\n",
     "f.yaml:1: not valid YAML (found undefined alias *b); define &b before using it"),
    ("anchor given twice", "a: &x 1\nb: &x 2\n",
     "f.yaml:2: not valid YAML (found duplicate anchor &x); give each anchor once"),
    ("two documents", "a: 1\n---\nb: 2\n",
     "f.yaml:2: not valid YAML (a second document starts here; a file holds one); remove the '---' line or split "
     "the file"),
    ("impossible date", "start: 2026-13-45\n",
     "f.yaml:1: not valid YAML (cannot read '2026-13-45' as timestamp (month must be in 1..12)); quote the value to "
     "keep it as text"),
    ("python tag", "a: !!python/object/apply:os.system [ls]\n",
     "f.yaml:1: not valid YAML (could not determine a constructor for the tag "
     "'tag:yaml.org,2002:python/object/apply:os.system'); quote the value to keep it as text"),
    ("control character", "a: b\nc: \x07\n",
     "f.yaml:2: not valid YAML (character '\\x07' is not allowed); remove it or write it as an escape"),
]


@pytest.mark.parametrize(("case", "text", "message"), YAML_LIMITS, ids=[c[0] for c in YAML_LIMITS])
def test_load_yaml_limits_give_one_exact_line(case: str, text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=f"^{re.escape(message)}$"):
        load_yaml(text, "f.yaml")


def test_load_yaml_at_the_limits_and_its_data_shares_nothing() -> None:
    data, root = load_yaml("\n" + "[" * MAX_DEPTH + "]" * MAX_DEPTH, "f.yaml")
    assert root is not None and root.start_mark.line == 1
    for _ in range(MAX_DEPTH - 1):
        data = data[0]
    assert data == []
    data, _ = load_yaml("base: &b {x: 1}\none: *b\ntwo:\n  <<: *b\n  y: 2\n", "f.yaml")
    assert data == {"base": {"x": 1}, "one": {"x": 1}, "two": {"x": 1, "y": 2}}
    data["one"]["x"] = 5  # an override of one place changes no other
    assert data["base"] == {"x": 1}
    _, root = load_yaml("two:\n  <<: {x: 1}\n  x: 2\n", "f.yaml")
    assert [k.value for k, _ in root.value[0][1].value] == ["<<", "x"]  # merge keys stay as written


def test_load_json_bounds_nesting_and_names_the_line() -> None:
    with pytest.raises(ScenarioError, match=re.escape("runs/x/events.jsonl:7: not valid JSON (Expecting ',' "
                                                      "delimiter); check the file")):
        load_json('{"a": 1\n "b": 2}', "runs/x/events.jsonl", line=6)
    for depth in (MAX_DEPTH + 1, 100_000):  # the depth check, then the recursion limit
        with pytest.raises(ScenarioError, match=re.escape(
                "s.json:1: corrupt snapshot (nested more than 50 levels deep); take an earlier one")):
            load_json("[" * depth + "]" * depth, "s.json", problem="corrupt snapshot", fix="take an earlier one")
    with pytest.raises(ScenarioError, match=re.escape("s.json:1: not valid JSON (Exceeds the limit (4300 digits)")):
        load_json("9" * 5000, "s.json")
    data = load_json("[" * MAX_DEPTH + "]" * MAX_DEPTH, "s.json")
    for _ in range(MAX_DEPTH - 1):
        data = data[0]
    assert data == []


# --- scenarios: world sections and --set ---------------------------------------------------------------------

WORLD_KEYS = [
    ("crafting", "world: {type: crafting, sizee: 10}", "{f}:3: world.sizee: unknown field 'sizee'; did you mean "
     "'size'? allowed: " + _allowed(CraftingConfig)),
    ("society", "world: {type: society, radious: 1}", "{f}:3: world.radious: unknown field 'radious'; did you mean "
     "'radius'? allowed: " + _allowed(SocietyConfig)),
    ("crafting's sandbox", "world: {type: crafting, sandbox: {cpu: 1}}", "{f}:3: world.sandbox.cpu: unknown field "
     "'cpu'; did you mean 'cpu_s'? allowed: " + _allowed(SandboxConfig)),
]


@pytest.mark.parametrize(("case", "world", "message"), WORLD_KEYS, ids=[c[0] for c in WORLD_KEYS])
def test_unknown_key_in_a_world_section_names_the_key_and_the_fields(write, case: str, world: str,
                                                                      message: str) -> None:
    path = write(MINIMAL.replace("world: {type: town}", world))
    with pytest.raises(ScenarioError, match=f"^{re.escape(message.format(f=path))}$"):
        load_scenario(path)


def test_time_zones_that_cannot_be_compared(write) -> None:
    path = write(MINIMAL.replace("world: {type: town}", "world:\n  type: town\n  diffusion: {keywords: [x], "
                                 "place: cafe, start: 2026-02-14 17:00:00+02:00, end: 2026-02-14 19:00}"))
    with pytest.raises(ScenarioError, match=re.escape(
            f"{path}:5: world.diffusion.end: give start and end both with a time zone or both without")):
        load_scenario(path)


def test_set_values_are_bounded_and_never_a_traceback(write) -> None:
    with pytest.raises(ScenarioError, match=re.escape(
            "--set description: 100,013 characters, more than the 100,000 allowed; put the value in the file")):
        parse_override("description=" + "x" * 100_001)
    with pytest.raises(ScenarioError, match=re.escape(
            "--set llm.langchain_kwargs:5: more than 25,000 values (each use of an alias counts them again)")):
        parse_override("llm.langchain_kwargs=" + laughs())
    with pytest.raises(ScenarioError, match=re.escape(
            "--set llm.langchain_kwargs:1: nested more than 50 levels deep; flatten the structure")):
        parse_override("llm.langchain_kwargs=" + "[" * 10_000)
    assert parse_override("description=a: b: c") == (["description"], "a: b: c")  # not YAML: stays text
    assert parse_override("goal=!!int x") == (["goal"], "!!int x")
    path = write(MINIMAL)
    with pytest.raises(ScenarioError, match=re.escape(
            "--set 'agents.\u00b2.goal=x': 'agents.\u00b2' is not a section or an existing list index")):
        load_scenario(path, ["agents.\u00b2.goal=x"])  # '²'.isdigit(), but int('²') raises
    with pytest.raises(ScenarioError, match=re.escape(  # the newline is shown escaped: the message stays one line
            "--set steps=a\\nb: steps: Input should be a valid integer, unable to parse string as an integer (got "
            "'a b')")):
        load_scenario(path, ["steps=a\nb"])


# --- run.py validate on hostile files: exit 2, one line, bounded time and memory ------------------------------

def _junk() -> bytes:
    return random.Random(0).randbytes(4096)


HOSTILE = [
    ("billion laughs", laughs().encode(),
     "{f}:5: more than 25,000 values (each use of an alias counts them again); shorten the file"),
    ("2 MB", b"name: t\ndescription: " + b"x" * 2_000_000 + b"\n",
     "{f}: the scenario is 2,000,022 bytes, more than the 1,000,000 bytes allowed; give a smaller file"),
    ("binary junk", _junk(), "{f}:1: not UTF-8 text (byte 0xcd at offset 0); save the scenario as UTF-8"),
    ("non-UTF-8", "name: caf\xe9\nsteps: 2\n".encode("latin-1"),
     "{f}:1: not UTF-8 text (byte 0xe9 at offset 9); save the scenario as UTF-8"),
    ("10,000 deep [", b"[" * 10_000 + b"]" * 10_000, "{f}:1: nested more than 50 levels deep; flatten the structure"),
    ("10,000 deep {a:", b"{a: " * 10_000 + b"1" + b"}" * 10_000,
     "{f}:1: nested more than 50 levels deep; flatten the structure"),
]


# Runs a command and prints its exit status, stderr, CPU seconds and max RSS (MB) as JSON. A small process of its
# own, because a child forked from pytest starts with pytest's resident memory in its max RSS.
MEASURE = """
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = proc.stderr.read()
_, status, usage = os.wait4(proc.pid, 0)
print(json.dumps([os.waitstatus_to_exitcode(status), err.decode(), usage.ru_utime + usage.ru_stime,
                  usage.ru_maxrss / 1024]))
"""


def _validate(path: Path) -> tuple[int, str, float, float]:
    """Runs ``run.py validate``; the exit status, stderr, CPU seconds and max RSS (MB) of that process alone."""
    out = subprocess.run([sys.executable, "-c", MEASURE, sys.executable, "run.py", "validate", str(path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=True)  # a hang fails, not stalls
    status, stderr, cpu_s, rss_mb = json.loads(out.stdout)
    return status, stderr, cpu_s, rss_mb


@pytest.mark.parametrize(("case", "content", "message"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_validate_a_hostile_file_exits_2_with_one_line(tmp_path: Path, case: str, content: bytes,
                                                       message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(content)
    status, stderr, _, rss_mb = _validate(path)  # a hang fails (the 60 s timeout), never stalls the suite
    assert (status, stderr) == (2, f"error: {message.format(f=path)}\n")
    assert rss_mb < 300, f"{rss_mb:.0f} MB"  # the CPU time it takes is measured by bench/hostile_bench.py


@pytest.mark.parametrize(("name", "text", "most_events", "line"), [
    ("values.yaml", "- a\n" * 249_000, MAX_VALUES + 3, 25_000),  # stream, document, the values passing
    ("flow.yaml", "[" + "a, " * 330_000 + "]", MAX_VALUES + 3, 1),
    ("deep.yaml", "[" * 999_000, MAX_DEPTH + 3, 1),
])
def test_load_scenario_stops_reading_where_a_limit_is_passed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              name: str, text: str, most_events: int,
                                                              line: int) -> None:
    """The work grows with the limits, not with the file: parsing stops at the event that passes a limit."""
    fed = _count_events(monkeypatch)
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ScenarioError, match=f"^{re.escape(str(path))}:{line}: "):
        load_scenario(path)
    assert 0 < fed[0] <= most_events, fed[0]


def test_a_large_file_that_does_not_parse_is_parsed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a small text is parsed again by the pure-Python parser (for its better message); a large one is not."""
    fed = _count_events(monkeypatch)
    small, large = tmp_path / "small.yaml", tmp_path / "large.yaml"
    small.write_text("- a\n" * 100 + "[\n")
    large.write_text("- a\n" * (_PYTHON_MESSAGE_BYTES // 4 + 1) + "[\n")
    with pytest.raises(ScenarioError, match=r"small.yaml:102: not valid YAML \(could not find expected ':'\)"):
        load_scenario(small)
    assert fed[0] == 2 * 103  # stream and document start, the sequence, 100 values, twice
    fed[0] = 0
    with pytest.raises(ScenarioError, match=r"large.yaml:5003: not valid YAML \(could not find expected ':'\)"):
        load_scenario(large)
    assert fed[0] == 3 + _PYTHON_MESSAGE_BYTES // 4 + 1  # once


def _count_events(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the parser events the bounded composer is fed from now on (a one-item list, read after loading)."""
    fed = [0]
    feed = bounded._Composer.feed

    def counting(self: bounded._Composer, event: yaml.Event) -> None:
        fed[0] += 1
        feed(self, event)

    monkeypatch.setattr(bounded._Composer, "feed", counting)
    return fed


# --- question files, skill files, skill libraries, run folders -----------------------------------------------

ONE_OBJECT = 'one object per line, e.g. {"question": "..."}'
QUESTIONS = [
    ("non-UTF-8", "q.jsonl", '{"question": "caf\xe9?"}\n'.encode("latin-1"),
     "{f}:1: not UTF-8 text (byte 0xe9 at offset 17); save the question file as UTF-8"),
    ("junk line", "q.jsonl", b'{"question": "ok?"}\nnot json\n',
     "{f}:2: not a JSON object (Expecting value); " + ONE_OBJECT),
    ("deep JSON", "q.jsonl", b"[" * 100_000 + b"\n",
     "{f}:1: not a JSON object (nested more than 50 levels deep); " + ONE_OBJECT),
    ("a list", "q.jsonl", b'{"question": "ok?"}\n\n[1, 2]\n', "{f}:3: not a JSON object (a list); " + ONE_OBJECT),
    ("a dict as the question", "q.jsonl", b'{"question": {"a": 1}}\n',
     "{f}:1: the question is a dict, not text; give it as a string"),
    ("binary CSV", "q.csv", b"question\nok?\n\x00\x01\x02",
     "{f}:3: not text (a NUL byte at offset 13); give the question file as a UTF-8 text file"),
    ("CSV field past csv's limit", "q.csv", b'question\nok?\n"' + b"x" * 200_000 + b'"\n',
     "{f}:3: not a CSV record (field larger than field limit (131072)); give a header line naming a 'question' "
     "column"),
]


@pytest.mark.parametrize(("case", "name", "content", "message"), QUESTIONS, ids=[c[0] for c in QUESTIONS])
def test_question_files_give_one_line_with_file_and_line(tmp_path: Path, case: str, name: str, content: bytes,
                                                         message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ScenarioError, match=f"^{re.escape(message.replace('{f}', str(path)))}$"):
        load_questions(path)


def test_question_file_size_is_checked_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    with path.open("wb") as out:
        out.truncate(17_000_000)  # sparse: nothing is written, but the file reports its size
    with pytest.raises(ScenarioError, match=re.escape(
            f"{path}: the question file is 17,000,000 bytes, more than the 16,000,000 bytes allowed")):
        load_questions(path)


def test_a_quoted_csv_field_may_span_lines(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('question,category\n"Is it fine\nto be late?",honesty\n,x\n')
    with pytest.raises(ScenarioError, match=re.escape(f"{path}:4: no question")):
        load_questions(path)


@pytest.mark.parametrize(("content", "message"), [
    (b"\xff\xfe", "{f}:1: not UTF-8 text (byte 0xff at offset 0); save the skill file as UTF-8"),
    (b"def f(bot):\n    pass\n\x00", "{f}:3: not text (a NUL byte at offset 21); give the skill file as a UTF-8 text "
     "file"),
    (None, "{f}: cannot read the skill file (No such file or directory); check the path"),
])
def test_sandbox_skill_file_gives_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           content: bytes | None, message: str) -> None:
    path = tmp_path / "skill.py"
    if content is not None:
        path.write_bytes(content)
    assert run.main(["sandbox", str(path)]) == 2
    assert capsys.readouterr().err == f"error: {message.format(f=path)}\n"


SKILL = {"name": "mine_log", "version": 1, "description": "chop a tree", "code": "def mine_log(bot): ...",
         "task": "Mine 1 log", "agent": "Steve", "iteration": 1}
FIX = "give a skills.jsonl written by a run"
LIBRARIES = [
    ("binary", b"\x89PNG\r\n\x1a\n\x00", "{f}:1: not UTF-8 text (byte 0x89 at offset 0); save the skill library as "
     "UTF-8"),
    ("deep", b"[" * 100_000, "{f}:1: not a skill record (nested more than 50 levels deep); " + FIX),
    ("a list", json.dumps(SKILL).encode() + b"\n[1]\n",
     "{f}:2: not a skill record (simulacra.memory.skill_library.Skill() argument after ** must be a mapping, "
     "not list); " + FIX),
    ("wrong types", json.dumps({**SKILL, "version": "1", "code": None}).encode(),
     "{f}:1: not a skill record (wrong type of version, code); " + FIX),
    ("a record split by U+2028 stays whole", json.dumps({**SKILL, "version": True, "description": "a\u2028b"},
                                                          ensure_ascii=False).encode(),
     "{f}:1: not a skill record (wrong type of version); " + FIX),
]


@pytest.mark.parametrize(("case", "content", "message"), LIBRARIES, ids=[c[0] for c in LIBRARIES])
def test_skill_library_file_gives_one_line(request: pytest.FixtureRequest, tmp_path: Path, case: str, content: bytes,
                                           message: str) -> None:
    path = tmp_path / LIBRARY_FILE
    path.write_bytes(content)
    library = SkillLibrary(chromadb.EphemeralClient(), embed=bag_of_words,
                           collection=f"hostile{zlib.crc32(request.node.nodeid.encode())}")
    with pytest.raises(ScenarioError, match=f"^{re.escape(message.format(f=path))}$"):
        library.load(path)


FINISHED = json.dumps({"step": 1, "sim_time": None, "agent": None, "kind": "run_finished", "data": {}}) + "\n"
CUT_OFF = "the run was cut off while writing; harvest a complete run"
RUN_FOLDERS = [
    ("binary events", {"events.jsonl": _junk()},
     "{f}/events.jsonl:1: not UTF-8 text (byte 0xcd at offset 0); save the events file as UTF-8"),
    ("deep event", {"events.jsonl": b"[" * 100_000 + b"\n" + FINISHED.encode()},
     "{f}/events.jsonl:1: truncated or corrupt event (nested more than 50 levels deep); " + CUT_OFF),
    ("an event that is a list", {"events.jsonl": b"[1]\n" + FINISHED.encode()},
     "{f}/events.jsonl:1: truncated or corrupt event (a list, not an object); " + CUT_OFF),
    ("junk summary", {"events.jsonl": FINISHED.encode(), "summary.json": b"\x00junk"},
     "{f}/summary.json:1: not text (a NUL byte at offset 0); give the run summary as a UTF-8 text file"),
    ("summary that is a list", {"events.jsonl": FINISHED.encode(), "summary.json": b"[]"},
     "{f}/summary.json:1: corrupt summary (a list, not an object); " + CUT_OFF),
    ("deep summary", {"events.jsonl": FINISHED.encode(), "summary.json": b'{"a": ' * 60 + b"1" + b"}" * 60},
     "{f}/summary.json:1: corrupt summary (nested more than 50 levels deep); " + CUT_OFF),
    ("events without the fields harvest reads", {"events.jsonl": b'{"kind": "interaction"}\n' + FINISHED.encode(),
                                                 "summary.json": b"{}"},
     "{f}/events.jsonl:1: no step (an event has step, sim_time, agent, kind, data); harvest run folders that run.py "
     "wrote"),
]


@pytest.mark.parametrize(("case", "files", "message"), RUN_FOLDERS, ids=[c[0] for c in RUN_FOLDERS])
def test_hostile_run_folder_gives_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str,
                                           files: dict[str, bytes], message: str) -> None:
    folder = tmp_path / "run-1"
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_bytes(content)
    assert run.main(["harvest", str(folder), "--out", str(tmp_path / "data")]) == 2
    assert capsys.readouterr().err == f"error: {message.format(f=folder)}\n"
    assert not (tmp_path / "data").exists()


def test_huge_events_file_is_refused_before_reading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "run-1"
    folder.mkdir()
    with (folder / "events.jsonl").open("wb") as out:
        out.truncate(300_000_000)  # sparse
    assert run.main(["harvest", str(folder), "--out", str(tmp_path / "data")]) == 2
    assert capsys.readouterr().err == (f"error: {folder}/events.jsonl: the events file is 300,000,000 bytes, more "
                                       "than the 256,000,000 bytes allowed; give a smaller file\n")


# --- property tests: every shipped scenario, mutated --------------------------------------------------------

SETTINGS = settings(max_examples=30, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
LEAVES = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
          | st.datetimes(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=-5))])))
VALUES = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)


SNIPPETS = ["", "[", "{a: 1}", "&a [*a]", "*x", "!!int x", "- a", "[[[[[[", "2026-13-45", "null", "~", "1e999",
            "'quoted", "a: b: c", "\x00", "\u2028", "town", "crafting", "sandbox", "-1", "99999999999999999999",
            "<<: *a", "? [a]\n: b", "\t", "---", "%YAML 1.1", "!!binary x"]


def _paths(data: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in the data: dict keys and list indices, outermost first."""
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else []
    out = []
    for key, value in items:
        out += [(*at, key), *_paths(value, (*at, key))]
    return out


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


@st.composite
def mutants(draw: st.DrawFn, scenario: Path) -> bytes:
    """The scenario's bytes after one random mutation."""
    raw = scenario.read_bytes()
    kind = draw(st.sampled_from(["delete", "replace", "unknown key", "truncate", "insert bytes", "insert text",
                                 "duplicate key"]))
    if kind == "truncate":
        return raw[:draw(st.integers(0, len(raw)))]
    if kind == "insert bytes":
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + draw(st.binary(min_size=1, max_size=12)) + raw[at:]
    if kind == "insert text":  # YAML syntax: aliases, tags, flow starts, documents
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + draw(st.sampled_from(SNIPPETS)).encode() + raw[at:]
    if kind == "duplicate key":
        lines = raw.decode().splitlines(keepends=True)
        keys = [i for i, line in enumerate(lines) if re.match(r"\s*(- )?[A-Za-z_]+:", line)]
        i = draw(st.sampled_from(keys))
        return "".join([*lines[:i + 1], lines[i].replace("- ", "  ", 1), *lines[i + 1:]]).encode()
    data = yaml.safe_load(raw)
    paths = _paths(data)
    path = draw(st.sampled_from(paths))
    parent = _at(data, path[:-1])
    if kind == "delete":
        del parent[path[-1]]
    elif kind == "replace":
        value = draw(VALUES)
        assume(type(value) is not type(parent[path[-1]]))
        parent[path[-1]] = value
    else:
        where = draw(st.sampled_from([data, *(_at(data, p) for p in paths if isinstance(_at(data, p), dict))]))
        where[draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in where))] = draw(VALUES)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()


def _one_line_or_scenario(path: Path, overrides: list[str]) -> None:
    try:
        result = load_scenario(path, overrides)
    except ScenarioError as err:
        msg = str(err)
        assert len(msg.splitlines()) == 1 and "\n" not in msg, msg
        assert msg.startswith((str(path), "--set")), msg
    else:
        assert isinstance(result, Scenario)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.name for p in SCENARIOS])
@SETTINGS
@given(data=st.data())
def test_a_mutated_scenario_loads_or_gives_one_line(tmp_path_factory: pytest.TempPathFactory, scenario: Path,
                                                    data: st.DataObject) -> None:
    path = tmp_path_factory.mktemp("mutant") / scenario.name
    path.write_bytes(data.draw(mutants(scenario)))
    _one_line_or_scenario(path, [])


FIELDS = sorted({*Scenario.model_fields, *CraftingConfig.model_fields, *SocietyConfig.model_fields, "places",
                 "llm", "backend", "temperature", "retrieval", "0", "1", "7", "\u00b2", "type"})


@SETTINGS
@given(scenario=st.sampled_from(SCENARIOS),
       key=st.lists(st.sampled_from(FIELDS) | st.text(max_size=5), min_size=1, max_size=4).map(".".join),
       value=st.sampled_from(SNIPPETS) | st.text(max_size=20)
       | VALUES.map(lambda v: yaml.safe_dump(v, default_flow_style=True, width=10**6).strip()))
def test_random_set_overrides_load_or_give_one_line(scenario: Path, key: str, value: str) -> None:
    _one_line_or_scenario(scenario, [f"{key}={value}"])
