"""Shared fixtures: a minimal valid scenario, the scenario recordings (each made once a session), each test's tier."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent

# --- Tiers -----------------------------------------------------------------------------------------------------------
# Every collected test gets exactly one tier marker (a test marked `integration`, GPU or vLLM, gets none):
#   unit    in this process, fast: scripted or dry engines, in-memory Chroma; `make test-fast` runs these (-m unit)
#   system  starts a process or server of its own (run.py, pip, `chroma run`, llama.cpp's server, Ray, a browser; the
#           skill sandbox's child is the code under test and does not count), or runs real Chroma + embedder end to end
#   e2e     runs a scenario on the real embedded model (llama.cpp), or reads such a run (a fixture of RECORDINGS)
# First match wins: a tier marker of the test's own (`e2e`: a test already marked so stays e2e); a test_e2e_*.py file;
# a recording fixture among the test's fixtures; in TIERS the test's "file::function[params]", "file::function", then
# its file; else unit.
TIER_NAMES = ("unit", "system", "e2e")
TIERS = {
    "test_backends.py": "system",  # llama.cpp's OpenAI-compatible server, started twice
    "test_chroma_server.py": "system",  # `chroma run`
    "test_snapshots.py": "system",  # run.py in child processes: a full disk, Ctrl-C, an engine that stays down
    "test_user_world.py": "system",  # pip-installs examples/market and a mind of a user's own
    "test_web_browser.py": "system",  # Chromium through chromedriver
    "test_writer_lock.py": "system",  # run, resume, fork and sweep drivers as real processes at once
    "test_web_browser.py::test_a_live_run_page_follows_the_steps": "e2e",  # the town, live, on the embedded model
    "test_hostile_files.py::test_validate_a_hostile_file_exits_2_with_one_line": "system",  # run.py validate
    "test_import_graph.py::test_package_faces_import_nothing_heavy": "system",  # a fresh interpreter
    "test_import_graph.py::test_an_install_next_to_another_agents_package_works": "system",  # pip install
    "test_schema.py::test_cli_validate_exit_status_and_no_traceback": "system",  # run.py validate and run
    "test_sweep.py::test_server_slots_cap_every_process_on_the_machine": "system",  # runs in child processes
    "test_sweep.py::test_plain_runs_never_import_ray": "system",  # a fresh interpreter
    "test_user_backend.py::test_a_backend_by_entry_point": "system",  # pip-installs a backend of a user's own
    # 100 generative agents for a step: the real embedder and Chroma (80 s on 2 cores)
    "test_population.py::test_scale_scenarios_run_one_step_on_dry[valentine-100]": "system",
    "test_web_view.py::test_ctrl_c_stops_the_view_even_where_sigint_was_ignored_at_start": "system",  # run.py view
    # `simulacra sweep --from` in a child process, on a local Ray (15-30 s a world)
    "test_world_contract.py": "system",  # every command on every world, in-process, dry backend; a sweep on Ray
}


def tier_of(item: pytest.Item) -> str:
    """The tier of one collected test (see the table above)."""
    own = [mark.name for mark in item.iter_markers() if mark.name in TIER_NAMES]
    if len(set(own)) > 1:
        msg = f"{item.nodeid}: marked {' and '.join(sorted(set(own)))}; a test has exactly one tier"
        raise pytest.UsageError(msg)
    if own:
        return own[0]
    name = item.path.name
    if name.startswith("test_e2e_") or RECORDED & set(getattr(item, "fixturenames", ())):
        return "e2e"
    function = getattr(item, "originalname", item.name)
    return TIERS.get(f"{name}::{item.name}", TIERS.get(f"{name}::{function}", TIERS.get(name, "unit")))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks every collected test with its tier (`pytest -m unit`, `-m system`, `-m e2e` select by it)."""
    for item in items:
        if item.get_closest_marker("integration") is None:
            item.add_marker(tier_of(item))


# --- Two workers (make test: pytest -n 2 --dist loadfile) ------------------------------------------------------------
# A file's tests stay together on one worker (its module fixtures are made once); the files of one GROUPS entry share
# a machine-wide resource and go to one worker together, so they never run at the same time.
GROUPS = {
    # Ray: `ray stop --force` ends every Ray process of the user, the other worker's local cluster too
    "test_e2e_sweep.py": "ray", "test_world_contract.py": "ray", "test_writer_lock.py": "ray",
    # pip installs into the test venv, whose entry points every process sees
    "test_user_backend.py": "venv", "test_user_world.py": "venv",
}
# Handed out first, longest first (about 12, 9 and 5 min of one worker); then the other files, most tests first.
FIRST = ("ray", "tests/test_e2e_resume.py", "tests/test_vllm.py")


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook; without xdist (-p no:xdist) nothing calls it
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile``, with the files of a GROUPS entry as one unit (xdist's own ``loadgroup`` cannot do it
    under pytest 9: it renames test ids, which pytest 9 no longer lets a plugin do)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FilesAndGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::", 1)[0]
            return GROUPS.get(file.rsplit("/", 1)[-1], file)

        def _assign_work_unit(self, node: Any) -> None:
            for scope in reversed(FIRST):
                if scope in self.workqueue:
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return FilesAndGroups(config, log)


MINIMAL = """\
name: t
steps: 2
world: {type: town}
agents:
  - {name: A, persona: a baker, home: cafe}
  - {name: B, persona: a poet, home: park}
"""


@pytest.fixture
def write(tmp_path: Path):  # noqa: ANN201 - a factory
    """Writes text to a YAML file in tmp_path and returns its path."""

    def _write(text: str, name: str = "s.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture(autouse=True)
def _no_default_chroma_embedder(monkeypatch):
    """Chroma's default embedding function downloads a model: any use of it fails the test."""
    try:
        from chromadb.utils import embedding_functions
    except ImportError:
        return

    def refuse(self, input):  # noqa: A002 - Chroma checks that __call__ takes (self, input)
        msg = "Chroma's default embedding function was used; pass ours explicitly"
        raise AssertionError(msg)

    monkeypatch.setattr(embedding_functions.DefaultEmbeddingFunction, "__call__", refuse)


@pytest.fixture
def chroma_store(request):
    """A real Chroma (in memory) with the fake embedder and a collection prefix unique to the test."""
    import zlib

    import chromadb

    from simulacra.memory.chroma_store import ChromaStore
    from tests.fakes import bag_of_words

    return ChromaStore(chromadb.EphemeralClient(), embed=bag_of_words,
                       prefix=f"t{zlib.crc32(request.node.nodeid.encode())}")


# --- Scenario recordings ---------------------------------------------------------------------------------------------
# Each scenario is run on the embedded model (llama.cpp + SmolLM2, real embeddings, the run's own Chroma) at most once
# a session, by the first test that asks for its fixture, with these steps and overrides: scenario -> (steps,
# overrides). Every e2e test that needs a scenario's run reads that one (test_e2e_resume.py kills and resumes a replay
# of each); a test that writes into a run copies it first. Each is as short as its readers allow (a kill between two
# steps needs 2; as shipped, a run keeps every snapshot within outputs.snapshots_mb).
VALENTINE_STEPS = 2
ALIGNMENT_ASKERS = 2
# Every typed response type but yes/no and text (valentine's survey and the interviews use those), at steps 1 and 3.
CHECKIN = """surveys=[{name: checkin, at: [1, 3], items: [
  {name: mood, type: likert, scale: 5, labels: [very bad, bad, okay, good, very good], question: How is your morning?},
  {name: place, type: choice, options: [plaza, cafe, park, store, library, homes], question: Where are you now?},
  {name: people, type: number, min: 0, max: 10, integer: true, question: How many people did you talk to today?}]}]"""
RECORDINGS: dict[str, tuple[int, list[str]]] = {
    "town": (4, [CHECKIN]),
    # a low reflection threshold (so a reflection fires), every snapshot kept; the party survey at the start and end
    "valentine": (VALENTINE_STEPS, ["cognition.reflection_threshold=10", "outputs.snapshots_keep=0"]),
    "voyager": (2, []),
    "babyagi": (4, ["cognition.task_steps=2", "cognition.claim_ttl=2"]),
    "babyagi-crafting": (3, ["cognition.task_steps=1", "cognition.claim_ttl=1"]),
    "alignment": (2, [f"world.askers={ALIGNMENT_ASKERS}", "world.raters=2", "world.dropout=0"]),
}


def recording_fixture(scenario: str) -> str:
    """The name of the session fixture that holds ``scenario``'s recording: ``town_run``, ``babyagi_crafting_run``."""
    return f"{scenario.replace('-', '_')}_run"


RECORDED = frozenset(recording_fixture(name) for name in RECORDINGS)


def recording_args(scenario: str, steps: int | None = None) -> list[str]:
    """``run.py`` arguments that make (or, with ``--replay``, replay) ``scenario``'s recording, all but ``--out``;
    ``steps``: another number of steps."""
    recorded, overrides = RECORDINGS[scenario]
    # One llama.cpp thread: `make test` runs two workers on 2 cores, and llama.cpp's two threads with another process
    # beside them took 3x as long (Voyager's calls: 380 s against 118 s alone, 140 s on one thread alone).
    sets = [arg for item in ["llm.cache=false", "llm.n_threads=1", *overrides] for arg in ("--set", item)]
    return [str(ROOT / "scenarios" / f"{scenario}.yaml"), "--steps", str(steps or recorded), "--plain", *sets]


def made_once(factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]) -> Path:
    """``make(out)`` once a session for every worker (the first to ask makes it under a file lock, the others wait
    for that lock and read it); returns ``out``, a folder named ``recorded``."""
    from filelock import FileLock

    base = factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "made-once"  # the workers' common root
    root.mkdir(exist_ok=True)
    folder = root / name
    out = folder / "recorded"  # a built-in world's Chroma prefix is then <scenario>-recorded
    with FileLock(root / f"{name}.lock"):
        if not (folder / "done").exists():  # a failed attempt is made again, never read
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(out)
            (folder / "done").touch()
    return out


def _record(scenario: str, factory: pytest.TempPathFactory) -> Path:
    import run

    def make(out: Path) -> None:
        assert run.main([*recording_args(scenario), "--out", str(out)]) == 0

    return made_once(factory, scenario, make)


@pytest.fixture(scope="session")
def town_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """town.yaml, 4 steps with the check-in survey at steps 1 and 3 (tests/test_e2e_town.py, test_e2e_resume.py)."""
    return _record("town", tmp_path_factory)


@pytest.fixture(scope="session")
def valentine_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """valentine.yaml, 2 steps (the valentine, instruments, rating, resume and web view tests)."""
    return _record("valentine", tmp_path_factory)


@pytest.fixture(scope="session")
def voyager_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """voyager.yaml, 2 steps of its two players (tests/test_e2e_voyager.py, test_e2e_resume.py)."""
    return _record("voyager", tmp_path_factory)


@pytest.fixture(scope="session")
def babyagi_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """babyagi.yaml, 4 steps, tasks of 2 steps (tests/test_e2e_babyagi.py)."""
    return _record("babyagi", tmp_path_factory)


@pytest.fixture(scope="session")
def babyagi_crafting_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """babyagi-crafting.yaml, 3 steps, tasks of 1 step (tests/test_e2e_babyagi_crafting.py, test_e2e_resume.py)."""
    return _record("babyagi-crafting", tmp_path_factory)


@pytest.fixture(scope="session")
def alignment_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alignment.yaml, 2 rounds of 2 askers, 2 raters each, no dropout (test_e2e_alignment.py, test_e2e_resume.py)."""
    return _record("alignment", tmp_path_factory)


@pytest.fixture(scope="session")
def town_recording(tmp_path_factory) -> Path:
    """town.yaml, 4 steps on the dry backend (made-up answers, so people walk), every snapshot kept."""
    import run

    def make(out: Path) -> None:
        assert run.main([str(ROOT / "scenarios" / "town.yaml"), "--steps", "4", "--out", str(out), "--plain", "--set",
                         "llm.backend=dry", "--set", "llm.model=estimate", "--set", "outputs.snapshots_keep=0"]) == 0

    return made_once(tmp_path_factory, "town-dry", make)


CRAFTING_SKILL = ("def get_log(bot):\n    t = bot.find('log')\n    bot.move_to(max(t['x'] - 1, 0), t['y'])\n"
                  "    bot.mine('log', 1)\n")


def _crafting_script(request) -> str:  # noqa: ANN001 - an LLMRequest
    import json

    props = (request.schema or {}).get("properties", {})
    if "code" in props:
        return json.dumps({"explanation": "walk to the nearest tree and mine it", "code": CRAFTING_SKILL})
    if "success" in props:
        return json.dumps({"reasoning": "checked", "success": True, "critique": ""})
    if "description" in props:
        return json.dumps({"description": "mine a log from the nearest tree"})
    return json.dumps({"reasoning": "wood first", "verb": "mine", "item": "log", "count": 1})


@pytest.fixture(scope="session")
def crafting_recording(tmp_path_factory) -> Path:
    """voyager.yaml, 3 steps with a scripted model whose skill walks to a tree and mines it; snapshots kept."""
    from simulacra.runs.runner import Runner
    from simulacra.scenarios.loading import load_scenario
    from tests.fakes import engine_sets

    sets = ["steps=3", "outputs.snapshots_keep=0", "llm.cache=false", *engine_sets("tests.conftest:_crafting_script")]

    def make(out: Path) -> None:
        Runner(load_scenario(ROOT / "scenarios" / "voyager.yaml", sets), out=out, plain=True).run()

    return made_once(tmp_path_factory, "crafting", make)
