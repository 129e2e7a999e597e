"""A run folder is untrusted input: copies follow no link, and a snapshot is checked against the log first.

Every command runs in this process as the command line runs it (`run.main`), on the ``dry`` backend.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import run
from simulacra.errors import SimError
from simulacra.runs.run_files import check_cut, copy_run_part
from simulacra.testing import memories
from simulacra.web.memories import StoredMemories
from tests.conftest import ROOT

DRY = ["--set", "llm.backend=dry", "--set", "llm.model=estimate", "--set", "outputs.plots=false"]
SECRET = "not-for-copies-7f3a"  # the name and the text of the file a link points at
LINK = "a symbolic link in a run folder (-> {target}); a run folder holds no links: remove it"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A town run of 3 steps on the dry backend, every snapshot kept (made once; each test copies it)."""
    out = tmp_path_factory.mktemp("made") / "run"
    assert run.main([str(ROOT / "scenarios" / "town.yaml"), "--steps", "3", "--out", str(out), "--plain", *DRY,
                     "--set", "outputs.snapshots_keep=0"]) == 0
    return out


@pytest.fixture
def folder(made: Path, tmp_path: Path) -> Path:
    """A copy of the run, with ``skills/`` and ``chroma/`` folders of its own (the dry town has neither)."""
    copy = tmp_path / "run"
    shutil.copytree(made, copy)
    for part in ("skills", "chroma"):
        (copy / part).mkdir()
        (copy / part / "index.json").write_text("{}")
    return copy


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """What a hostile link points at: a folder holding a secret file."""
    where = tmp_path / "elsewhere"
    where.mkdir()
    (where / SECRET).write_text(SECRET)
    return where


def _plant(folder: Path, target: Path, shape: str) -> Path:
    """Puts a link into the run folder: inside skills/, inside chroma/ (to a file), or chroma/ itself."""
    if shape == "skills/leak":
        link, points = folder / "skills" / "leak", target
    elif shape == "chroma/file":
        link, points = folder / "chroma" / "chroma.sqlite3", target / SECRET
    else:
        shutil.rmtree(folder / "chroma")
        link, points = folder / "chroma", target
    link.symlink_to(points)
    return link


def _copies_of_secret(root: Path, target: Path) -> list[Path]:
    """Files under ``root`` (links not followed, ``target`` skipped) named like the secret or holding its text."""
    found = []
    for here, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if Path(here, d) != target]
        for name in files:
            path = Path(here, name)
            if path.is_symlink():
                continue
            if name == SECRET or SECRET.encode() in path.read_bytes()[:1_000_000]:
                found.append(path)
    return found


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Temporary folders (an interview's, the web view's) go under the test's folder, to be searched."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


def _refuse(place: str, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Runs ``place``'s copy of the run folder; returns the one line it refused with."""
    if place in ("fork", "interview"):
        argv = (["fork", str(folder), "--at", "2", "--out", str(tmp_path / "child"), "--plain", *DRY]
                if place == "fork" else ["interview", str(folder), "--agent", "Isabella", "How are you?"])
        assert run.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: "), err
        return err.removeprefix("error: ").rstrip("\n")
    with pytest.raises(SimError) as refused:
        if place == "web view":
            StoredMemories(folder).upto("Isabella", "")
        else:
            memories(folder, tmp_path / "scratch")
    assert "\n" not in str(refused.value)
    return str(refused.value)


# fork and interviews copy skills/ and chroma/; the web view and simulacra.testing.memories copy chroma/ only
CASES = [(place, shape) for place in ("fork", "interview", "web view", "simulacra.testing.memories")
         for shape in ("skills/leak", "chroma/file", "chroma")
         if place in ("fork", "interview") or shape != "skills/leak"]


@pytest.mark.parametrize(("place", "shape"), CASES, ids=[f"{p}-{s}" for p, s in CASES])
def test_a_link_in_a_run_folder_is_refused_and_nothing_it_points_at_is_copied(
        folder: Path, target: Path, scratch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], place: str,
        shape: str) -> None:
    link = _plant(folder, target, shape)

    line = _refuse(place, folder, tmp_path, capsys)

    assert line == f"{link}: " + LINK.format(target=os.readlink(link))
    assert _copies_of_secret(tmp_path, target) == []
    assert not (tmp_path / "child").exists()  # a refused fork leaves no folder


def test_copy_run_part_copies_plain_trees_and_refuses_pipes(tmp_path: Path) -> None:
    src = tmp_path / "skills"
    (src / "deep" / "er").mkdir(parents=True)
    (src / "deep" / "er" / "a.py").write_text("def a(bot): ...\n")
    (src / "top.bin").write_bytes(bytes(range(256)) * 5000)
    (src / "top.bin").chmod(0o640)
    copy_run_part(src, tmp_path / "copy" / "skills")
    assert (tmp_path / "copy" / "skills" / "deep" / "er" / "a.py").read_text() == "def a(bot): ...\n"
    assert (tmp_path / "copy" / "skills" / "top.bin").read_bytes() == (src / "top.bin").read_bytes()
    assert (tmp_path / "copy" / "skills" / "top.bin").stat().st_mode & 0o777 == 0o640

    os.mkfifo(src / "deep" / "pipe")
    with pytest.raises(SimError, match=re.escape(f"{src / 'deep' / 'pipe'}: not a plain file or folder; a run folder "
                                                 "holds no pipes, sockets or devices: remove it")):
        copy_run_part(src, tmp_path / "again")
    assert not (tmp_path / "again").exists()  # checked first: nothing copied


# --- snapshots checked against the log -------------------------------------------------------------------------------

def _snapshot_file(folder: Path, step: int = 3) -> Path:
    return folder / "snapshots" / f"step-{step:06d}.json"


def _edit(folder: Path, *, of: int = 3, world: dict[str, Any] | None = None, **fields: Any) -> Path:
    """Changes fields of the snapshot of step ``of`` (and of its world)."""
    path = _snapshot_file(folder, of)
    data = json.loads(path.read_text())
    data.update(fields)
    data["world"].update(world or {})
    path.write_text(json.dumps(data))
    return path


def _resume(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = run.main(["resume", str(folder), "--steps", "4", "--plain"])
    return status, capsys.readouterr().err


def _line_ends(log: bytes) -> list[int]:
    return [i + 1 for i, byte in enumerate(log) if byte == ord("\n")]


def _refused(folder: Path, capsys: pytest.CaptureFixture[str], message: str) -> None:
    """Resume exits 2 with exactly ``message`` (its one line) and leaves the log and the scenario as they were."""
    log, scenario = (folder / "events.jsonl").read_bytes(), (folder / "scenario.yaml").read_bytes()
    status, err = _resume(folder, capsys)
    assert (status, err) == (2, f"error: {message}\n")
    assert (folder / "events.jsonl").read_bytes() == log
    assert (folder / "scenario.yaml").read_bytes() == scenario


FIX = "remove the snapshot to resume from the one before it, or start the run again"


def test_events_bytes_that_do_not_fit_the_log_are_refused_before_it_is_cut(
        folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = folder / "events.jsonl"
    log = events.read_bytes()
    ends = _line_ends(log)
    where = _edit(folder, events_bytes=0)
    _refused(folder, capsys, f"{where}: events_bytes is 0, not a length of {events} (1 to {len(log)} bytes); {FIX}")
    _edit(folder, events_bytes=ends[0] - 7)
    _refused(folder, capsys, f"{where}: events_bytes {ends[0] - 7} falls inside line 1 of {events}, not at a line's "
                             f"end; {FIX}")
    _edit(folder, events_bytes=ends[3] + 1)
    _refused(folder, capsys, f"{where}: events_bytes {ends[3] + 1} falls inside line 5 of {events}, not at a line's "
                             f"end; {FIX}")
    _edit(folder, events_bytes=len(log) + 1)
    _refused(folder, capsys, f"{events}: {len(log)} bytes, but the snapshot was taken at {len(log) + 1}; the event "
                             "log was lost or replaced, so the run cannot go on from it")
    _edit(folder, events_bytes=ends[0])  # a line's end, but of the run's start, not of step 3
    _refused(folder, capsys, f"{where}: the snapshot is of step 3, but {events} up to byte {ends[0]} ends at step 0; "
                             f"the snapshot or the log was edited; {FIX}")


@pytest.mark.parametrize(("fields", "message"), [
    ({"step": 10**12}, "{f}: a snapshot of step 1000000000000 under the name of step 3; it was edited or renamed: "
                       "remove it to go on from an earlier snapshot"),
    ({"step": -1}, "{f}: not a snapshot (step is -1, expected a count)"),
    ({"step": "3"}, "{f}: not a snapshot (step is '3', expected a count)"),
    ({"step": 3.0}, "{f}: not a snapshot (step is 3.0, expected a count)"),
    ({"world": {"steps": 10**12}}, "{f}: the snapshot is of step 3, but its world is at step 1000000000000; it was "
                                   "edited: resume from another step or start the run again"),
    ({"world": {"steps": -1}}, "{f}: the snapshot is of step 3, but its world is at step -1; it was edited: resume "
                               "from another step or start the run again"),
], ids=["step 10**12", "step -1", "step a string", "step a float", "world at 10**12", "world at -1"])
def test_an_absurd_step_is_one_line_and_changes_nothing(folder: Path, capsys: pytest.CaptureFixture[str],
                                                        fields: dict[str, Any], message: str) -> None:
    where = _edit(folder, **fields)
    _refused(folder, capsys, message.format(f=where))


def test_a_snapshot_named_past_the_runs_steps_is_refused(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    named = _snapshot_file(folder, 10**12)
    _snapshot_file(folder).rename(named)
    _edit(folder, of=10**12, step=10**12)
    _refused(folder, capsys, f"{named}: a snapshot of step 1000000000000, past the run's 3 steps (scenario.yaml); it "
                             "was edited: remove it to go on from an earlier one")


def _tear(log: bytes, line: int, how: str) -> bytes:
    """The log with one line (0-based) damaged in place: its length, and every line end, stay where they were."""
    ends = [0, *_line_ends(log)]
    start, end = ends[line], ends[line + 1]
    junk = b"#" * (end - start - 1) if how == "junk" else log[start:start + 9] + b"\x00" * (end - start - 10)
    return log[:start] + junk + b"\n" + log[end:]


@pytest.mark.parametrize("how", ["junk", "zeros"])
def test_a_log_torn_in_the_middle_is_refused_and_one_torn_after_the_cut_is_not(
        folder: Path, capsys: pytest.CaptureFixture[str], how: str) -> None:
    events = folder / "events.jsonl"
    log = events.read_bytes()
    events.write_bytes(_tear(log, 3, how))
    why = ("is not JSON (JSONDecodeError: Expecting value: line 1 column 1 (char 0))" if how == "junk" else
           "is not JSON (JSONDecodeError: Expecting value: line 1 column 10 (char 9))")
    at = json.loads(_snapshot_file(folder).read_text())["events_bytes"]
    _refused(folder, capsys, f"{_snapshot_file(folder)}: line 4 of {events}, before the snapshot's cut at byte {at}, "
                             f"{why}; {FIX}")

    events.write_bytes(_tear(log, len(_line_ends(log)) - 1, how) + b'{"step": 3, "ki')  # after the cut: it goes
    status, err = _resume(folder, capsys)
    assert (status, err) == (0, "")
    assert events.read_bytes().startswith(log[:at])
    assert [json.loads(x)["kind"] for x in events.read_bytes()[at:].splitlines()][-1] == "run_finished"


def test_fork_checks_the_parents_snapshot_before_it_makes_the_child(folder: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    events = folder / "events.jsonl"
    log = events.read_bytes()
    where = _edit(folder, of=2, events_bytes=_line_ends(log)[2] - 1)
    assert run.main(["fork", str(folder), "--at", "2", "--out", str(tmp_path / "child"), *DRY]) == 2
    assert capsys.readouterr().err == (f"error: {where}: events_bytes {_line_ends(log)[2] - 1} falls inside line 3 "
                                       f"of {events}, not at a line's end; fork from another --at step\n")
    assert events.read_bytes() == log
    assert not (tmp_path / "child").exists()


def _log(*events: tuple[int, str]) -> bytes:
    return b"".join(json.dumps({"step": step, "kind": kind, "data": {}}).encode() + b"\n" for step, kind in events)


BOARD = [(0, "task_created"), (0, "run_started"), (1, "said"), (1, "step_ended"), (1, "survey_answer")]


@pytest.mark.parametrize(("log", "step", "problem"), [
    (_log(*BOARD), 1, None),  # a task board's first tasks come before run_started
    (_log((0, "run_started"), (0, "survey_answer")), 0, None),  # a fork's first snapshot
    (_log((0, "run_started"), (1, "trade"), (2, "trade")), 2, None),  # a world that records no step_ended
    (_log((0, "said"), (1, "step_ended")), 1, "{f} holds no run_started before the snapshot's cut at byte {n}"),
    (_log(*BOARD, (1, "run_started")), 1, "line 6 of {f} is a second run_started, before the snapshot's cut"),
    (_log((0, "run_started"), (2, "said"), (1, "step_ended")), 1,
     "line 3 of {f}, before the snapshot's cut at byte {n}, has step 1, not a step from 2 on"),
    (_log((0, "run_started"), (True, "said")), 0,
     "line 2 of {f}, before the snapshot's cut at byte {n}, has step True, not a step from 0 on"),
    (_log((0, "run_started")) + b"[1]\n", 0,
     "line 2 of {f}, before the snapshot's cut at byte {n}, is not an event (a list, not an object)"),
    (_log((0, "run_started")) + b"[" * 100_000 + b"\n", 0,
     "line 2 of {f}, before the snapshot's cut at byte {n}, is not JSON (RecursionError: maximum recursion depth "
     "exceeded while decoding a JSON array from a unicode stri)"),  # cut at 80 characters
    (_log(*BOARD), 2, "the snapshot is of step 2, but {f} up to byte {n} ends at step 1; the snapshot or the log was "
                      "edited"),
], ids=["tasks before run_started", "a fork's first", "no step_ended", "no run_started", "two run_started",
        "step goes down", "boolean step", "a list", "deep", "ends a step early"])
def test_check_cut_reads_the_log_up_to_the_cut(tmp_path: Path, log: bytes, step: int, problem: str | None) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(log + b'{"step": 9, "ki')  # a torn line after the cut is never read
    snapshot = {"step": step, "events_bytes": len(log)}
    if problem is None:
        check_cut(path, snapshot, where=tmp_path / "snap.json", fix="fix it")
        return
    with pytest.raises(SimError) as refused:
        check_cut(path, snapshot, where=tmp_path / "snap.json", fix="fix it")
    assert str(refused.value) == f"{tmp_path / 'snap.json'}: {problem.format(f=path, n=len(log))}; fix it"
    assert path.read_bytes() == log + b'{"step": 9, "ki'


VALUES = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2, max_value=10**13), st.floats(allow_nan=False),
                   st.text(max_size=5), st.integers(min_value=-(2**70), max_value=2**70))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events_bytes=st.one_of(st.just("genuine"), st.just("a line end"), VALUES),
       step=st.one_of(st.just("genuine"), VALUES), line=st.integers(min_value=0, max_value=10**6))
@example(events_bytes="genuine", step="genuine", line=0)  # the snapshot as written: it goes on
@example(events_bytes="a line end", step="genuine", line=3)
@example(events_bytes=-1, step="genuine", line=0)
@example(events_bytes=2**64, step="genuine", line=0)
@example(events_bytes="genuine", step=None, line=0)
@example(events_bytes="genuine", step=2.5, line=0)
def test_resume_of_any_snapshot_fields_cuts_at_a_line_end_or_is_one_line(
        made: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], events_bytes: Any, step: Any,
        line: int) -> None:
    folder = Path(tempfile.mkdtemp(dir=tmp_path)) / "run"
    shutil.copytree(made, folder)
    log = (folder / "events.jsonl").read_bytes()
    genuine = json.loads(_snapshot_file(folder).read_text())
    untouched = events_bytes == "genuine" and step == "genuine"
    if events_bytes == "a line end":
        ends = _line_ends(log)
        events_bytes = ends[line % len(ends)]
    fields = {"events_bytes": genuine["events_bytes"] if events_bytes == "genuine" else events_bytes,
              "step": genuine["step"] if step == "genuine" else step}
    _edit(folder, **fields)

    status, err = _resume(folder, capsys)  # anything else than a SimError would fail the test here

    after = (folder / "events.jsonl").read_bytes()
    event(f"exit {status}")
    assert status == 0 or not untouched, err  # the snapshot as the run wrote it always goes on
    if status == 2:
        assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
        assert after == log
        return
    assert (status, err) == (0, "")
    at = fields["events_bytes"]
    assert (at, fields["step"]) == (genuine["events_bytes"], genuine["step"])  # only the genuine snapshot goes on
    assert log[at - 1:at] == b"\n" and after.startswith(log[:at])
    assert "run_started" in [json.loads(x)["kind"] for x in log[:at].splitlines()]
    check_cut(folder / "events.jsonl", json.loads(_snapshot_file(folder, 4).read_text()),
              where=_snapshot_file(folder, 4), fix="")  # the resumed log fits its own new snapshot
