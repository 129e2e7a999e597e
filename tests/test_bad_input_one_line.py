"""Bad input that used to pass a check and die later, or hang: each is now one ``error: ...`` line and exit 2.

A seed out of range, a clock that runs past the year 9999, ``sweep --cpus-per-run 0``, a grid over the seed,
``fork``/``harvest --out`` at a file, a killed harvest's staging folder, ``interview --questions`` at a FIFO,
a key given twice in a rubric or a scenario, and a skill that reads its globals through a format string.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from pathlib import Path

import pytest

import run
from simulacra.agents.sandbox import Sandbox
from simulacra.data.harvest import STAGING
from simulacra.errors import ScenarioError
from simulacra.instruments.rating import RUBRICS
from simulacra.scenarios.instruments import Rubric
from simulacra.scenarios.loading import load_file, load_scenario
from simulacra.sweeps.plan import SweepPlan, replica_seed
from tests.conftest import ROOT

TOWN = str(ROOT / "scenarios" / "town.yaml")
DRY = ["--set", "llm.backend=dry", "--set", "llm.model=estimate"]
DRY_SETS = ["llm.backend=dry", "llm.model=estimate"]


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The one ``error: ...`` line the command wrote to stderr (anything else fails the test)."""
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def town_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-step town run on the dry backend."""
    folder = tmp_path_factory.mktemp("town") / "run"
    assert run.main(["run", TOWN, "--steps", "2", "--plain", "--out", str(folder), *DRY]) == 0
    return folder


# --- 1. the seed -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("seed", "problem"), [
    ("-1", "Input should be greater than or equal to 0 (got -1)"),
    ("4294967296", "Input should be less than or equal to 4294967295 (got 4294967296)"),
])
def test_a_seed_out_of_range_is_refused_by_validate_and_by_run(
        seed: str, problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = f"error: --set seed={seed}: seed: {problem}"
    assert run.main(["validate", TOWN, "--set", f"seed={seed}", *DRY]) == 2
    assert one_line(capsys) == line
    out = tmp_path / "run"
    assert run.main(["run", TOWN, "--steps", "2", "--plain", "--out", str(out), "--set", f"seed={seed}", *DRY]) == 2
    assert one_line(capsys) == line
    assert not out.exists()


def test_the_seeds_at_the_ends_of_the_range_are_valid() -> None:
    assert [load_scenario(TOWN, [f"seed={s}", *DRY_SETS]).seed for s in (0, 2**32 - 1)] == [0, 2**32 - 1]


# --- 2. the clock ------------------------------------------------------------------------------------------------

def test_a_clock_that_runs_past_the_year_9999_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    late = "clock.start=9999-12-31 22:00"  # + 12 steps of 10 minutes = year 10000
    line = (f"error: --set {late}: clock.start: 9999-12-31 22:00 + 12 steps of 10 minutes passes the year 9999; "
            "give an earlier start or fewer steps")
    assert run.main(["validate", TOWN, "--set", late, *DRY]) == 2
    assert one_line(capsys) == line
    out = tmp_path / "run"
    assert run.main(["run", TOWN, "--plain", "--out", str(out), "--set", late, *DRY]) == 2
    assert one_line(capsys) == line
    assert not out.exists()
    assert load_scenario(TOWN, ["clock.start=9999-12-31 21:59", *DRY_SETS]).steps == 12  # ends 23:59: fits


# --- 3. sweep --cpus-per-run ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("cpus", ["0", "-1", "nan", "inf"])
def test_sweep_refuses_cpus_per_run_that_is_not_above_0_before_ray(
        cpus: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # any `import ray` fails: the refusal must come first
    out = tmp_path / "sweep"
    assert run.main(["sweep", TOWN, "--cpus-per-run", cpus, "--out", str(out), *DRY]) == 2
    assert one_line(capsys) == f"error: --cpus-per-run {float(cpus):g}: give a number of CPUs above 0, e.g. 1 or 0.5"
    assert not out.exists()


# --- 4. a grid over the seed -----------------------------------------------------------------------------------

def test_a_grid_over_the_seed_gives_each_cell_its_seed(tmp_path: Path) -> None:
    plan = SweepPlan.from_args(Path(TOWN), sets=DRY_SETS, grid=["seed=1,007"], replicas=2, out=tmp_path / "s")
    runs = plan.runs()
    assert [(r.id, r.cell, r.seed) for r in runs] == [
        ("c0-base-r0", ("seed=1",), 1), ("c0-base-r1", ("seed=1",), replica_seed(1, 1)),
        ("c1-base-r0", ("seed=7",), 7), ("c1-base-r1", ("seed=7",), replica_seed(7, 1))]
    assert [plan.scenario_of(r).seed for r in runs] == [r.seed for r in runs]  # the run's seed is the one reported
    assert len({r.seed for r in runs}) == 4


def test_an_arm_that_sets_the_seed_runs_with_it(tmp_path: Path) -> None:
    plan = SweepPlan.from_args(Path(TOWN), sets=DRY_SETS, arms=["a:seed=5", "b"], replicas=2, out=tmp_path / "s")
    runs = plan.runs()
    assert [(r.id, r.seed) for r in runs] == [("c0-a-r0", 5), ("c0-a-r1", replica_seed(5, 1)),
                                              ("c0-b-r0", plan.seed), ("c0-b-r1", replica_seed(plan.seed, 1))]
    assert [plan.scenario_of(r).seed for r in runs] == [r.seed for r in runs]  # the run's seed is the one reported


@pytest.mark.parametrize(("grid", "message"), [
    ("seed=1,01", "--grid seed=1,01: a seed is listed twice; list each seed once"),
    ("seed=1,-1", "--set seed=-1: seed: Input should be greater than or equal to 0 (got -1)"),
])
def test_a_bad_seed_grid_is_one_line(grid: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=f"^{re.escape(message)}$"):
        SweepPlan.from_args(Path(TOWN), sets=DRY_SETS, grid=[grid], out=tmp_path / "s")


# --- 5. --out at a file ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["fork", "harvest"])
def test_out_at_a_file_or_inside_one_is_one_line(
        command: str, town_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "file"
    file.write_text("x")
    args = ["fork", str(town_run), "--at", "1", "--plain"] if command == "fork" else ["harvest", str(town_run)]
    assert run.main([*args, "--out", str(file)]) == 2
    assert one_line(capsys) == f"error: --out {str(file)!r} is a file; give a new folder"
    inside = file / "sub"
    assert run.main([*args, "--out", str(inside)]) == 2
    assert one_line(capsys) == f"error: --out {str(inside)!r}: {str(file)!r} is a file, not a folder; give a new " \
                               "folder elsewhere"
    assert file.read_text() == "x"


def test_harvest_into_a_place_it_cannot_write_is_one_line(town_run: Path, tmp_path: Path) -> None:
    from simulacra.data.harvest import Harvest, read_run

    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(ScenarioError, match=re.escape(f"--out {str(file / 'sub')!r}: cannot write the datasets there")):
        Harvest([read_run(town_run)]).write(file / "sub")


# --- 6. a killed harvest's staging folder ----------------------------------------------------------------------

def _dead_pid() -> int:
    for pid in range(2**22 - 1, 1, -1):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            continue
    pytest.fail("no free process id")


def test_harvest_removes_the_staging_folder_a_killed_harvest_left(
        town_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data"
    stale = tmp_path / f".data{STAGING}{_dead_pid()}"
    live = tmp_path / f".data{STAGING}{os.getppid()}"  # a harvest still writing: kept
    other = tmp_path / f".other{STAGING}{_dead_pid()}"  # another --out's: not this harvest's business
    for folder in (stale, live, other):
        folder.mkdir()
        (folder / "sft.jsonl").write_text("{}\n")
    assert run.main(["harvest", str(town_run), "--out", str(out)]) == 0
    assert "harvested 1 run(s)" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["data", live.name, other.name])
    assert (out / "README.md").is_file()


# --- 7. interview --questions at a FIFO --------------------------------------------------------------------------

def test_interview_questions_from_a_fifo_is_one_line(
        town_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "questions"
    os.mkfifo(fifo)

    def unblock() -> None:  # were the FIFO opened for reading, this ends the wait (the test then fails, not hangs)
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass

    timer = threading.Timer(10, unblock)
    timer.daemon = True
    timer.start()
    try:
        assert run.main(["interview", str(town_run), "--all", "--questions", str(fifo)]) == 2
    finally:
        timer.cancel()
    assert one_line(capsys) == (f"error: {fifo}: cannot read the question list (it is a FIFO (named pipe), not a "
                                "regular file); give a text file")


# --- 8. a key given twice ----------------------------------------------------------------------------------------

def test_a_rubric_with_a_key_given_twice_is_refused(
        town_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rubric = tmp_path / "twice.yaml"
    rubric.write_text("name: twice\ndimensions:\n  - {name: warmth, min: 1, max: 5, description: warm?}\n"
                      "name: again\n")
    with pytest.raises(ScenarioError, match=f"^{re.escape(f'{rubric}:4: name: key given twice; keep one')}$"):
        load_file(rubric, Rubric, what="rubric")
    assert run.main(["rate", str(town_run), "--rubric", str(rubric)]) == 2
    assert one_line(capsys) == f"error: {rubric}:4: name: key given twice; keep one"
    assert not (town_run / "ratings").exists()
    assert load_file(RUBRICS / "believability.yaml", Rubric, what="rubric").name == "believability"


def test_a_scenario_with_a_key_given_twice_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = Path(TOWN).read_text(encoding="utf-8")
    scenario = tmp_path / "town.yaml"
    scenario.write_text(text.replace("  minutes_per_step: 10\n", "  minutes_per_step: 10\n  minutes_per_step: 5\n"))
    line = text.splitlines().index("  minutes_per_step: 10") + 2
    assert run.main(["validate", str(scenario)]) == 2
    assert one_line(capsys) == f"error: {scenario}:{line}: clock.minutes_per_step: key given twice; keep one"


# --- 9. format strings in the skill sandbox --------------------------------------------------------------------

FORMAT_REFUSAL = "attribute {!r} is not allowed (a format string can read any attribute); use an f-string (line {})"


@pytest.mark.parametrize(("code", "message"), [
    ('def skill(bot):\n    return "{0.__globals__}".format(skill)\n', FORMAT_REFUSAL.format("format", 2)),
    ('def skill(bot):\n    return "{f.__globals__}".format_map({"f": skill})\n',
     FORMAT_REFUSAL.format("format_map", 2)),
    ('def skill(bot):\n    s = "{0.__glo" + "bals__}"\n    return str.format(s, skill)\n',
     FORMAT_REFUSAL.format("format", 3)),
    ('def skill(bot):\n    match "{0.__globals__}":\n        case str(format=f):\n            return f(skill)\n',
     FORMAT_REFUSAL.format("format", 3)),
])
def test_a_skill_cannot_read_its_globals_through_a_format_string(code: str, message: str) -> None:
    result = Sandbox(cpu_s=1, wall_s=5).run(code, {"mine": lambda name: pytest.fail("the API must not be reached")})
    assert (result.status, result.message, result.value) == ("forbidden", message, None)


def test_a_skill_still_formats_with_an_f_string() -> None:
    result = Sandbox(cpu_s=1, wall_s=5).run('def skill(bot):\n    n = 3\n    return f"{n} logs {n:>3}"\n', {})
    assert (result.status, result.value) == ("ok", "3 logs   3")
