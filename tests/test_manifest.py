"""manifest.json (a run's provenance) and `python run.py verify`: what differs on this machine, then a replay."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import shutil
from pathlib import Path
from typing import Any

import pytest

import run
from simulacra.agents.llm.llamacpp import shipped_model_path
from simulacra.data.harvest import Harvest, read_run
from simulacra.runs.manifest import (
    DEPENDENCIES,
    MANIFEST,
    Manifest,
    engine_settings,
    file_sha256,
    folder_sha256,
    git_commit,
    machine,
)
from simulacra.sweeps.report import SweepReport
from tests.conftest import ROOT

DRY = ["--set", "llm.backend=dry", "--set", "llm.model=estimate"]
FIELDS = {"format", "simulacra_version", "git_commit", "python", "platform", "dependencies", "model",
          "embedder_sha256", "scenario_sha256", "seed", "llm"}


def _run(out: Path, *more: str) -> int:
    return run.main([str(ROOT / "scenarios" / "town.yaml"), "--steps", "2", "--out", str(out), "--plain", *DRY,
                     "--set", f"outputs.dir={out.parent}", *more])


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-step town run on the dry backend (copy it before changing anything in it)."""
    out = tmp_path_factory.mktemp("manifest") / "run"
    assert _run(out) == 0
    return out


@pytest.fixture
def copy(made: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(made, tmp_path / "run"))


def _manifest(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / MANIFEST).read_text(encoding="utf-8"))


def _edit(run_dir: Path, **fields: Any) -> None:
    (run_dir / MANIFEST).write_text(json.dumps(_manifest(run_dir) | fields), encoding="utf-8")


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def test_a_run_writes_its_manifest_with_sorted_keys(made: Path) -> None:
    text = (made / MANIFEST).read_text(encoding="utf-8")
    manifest = json.loads(text)

    assert set(manifest) == FIELDS
    assert text == json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    assert manifest["scenario_sha256"] == hashlib.sha256((made / "scenario.yaml").read_bytes()).hexdigest()
    assert manifest["seed"] == 42
    assert manifest["simulacra_version"] == importlib.metadata.version("simulacra")
    assert (manifest["python"], manifest["platform"]) == (platform.python_version(), platform.platform())
    assert manifest["dependencies"] == {name: _version(name) for name in DEPENDENCIES}
    assert manifest["dependencies"]["numpy"] is not None
    assert manifest["model"] == {"backend": "dry", "id": "dry:estimate", "file": None, "sha256": None}
    assert manifest["embedder_sha256"] is None  # simple town agents embed nothing
    assert manifest["llm"]["backend"] == "dry" and manifest["llm"]["temperature"] == 0.7
    assert manifest["git_commit"] == git_commit(ROOT)
    assert not list(made.glob(f".{MANIFEST}-*")), "no temporary file is left"


def test_verify_reproduces_a_run_byte_for_byte(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = run.main(["verify", str(copy)])

    out = capsys.readouterr().out
    assert status == 0
    assert out.splitlines() == ["reproduced byte for byte"]  # nothing differs on the machine that made it


def test_verify_names_another_model_file_in_one_line_and_still_replays(copy: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _edit(copy, model=_manifest(copy)["model"] | {"sha256": "ab" * 32})

    status = run.main(["verify", str(copy)])

    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert lines == ["differs: model: the run was made with another model file (sha256 abababababab recorded, "
                     "none here)", "reproduced byte for byte"]


def test_verify_lists_each_field_that_differs(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recorded = _manifest(copy)
    _edit(copy, python="3.10.0", dependencies=recorded["dependencies"] | {"torch": "1.0"})
    (copy / "scenario.yaml").write_text((copy / "scenario.yaml").read_text() + "# edited\n")

    status = run.main(["verify", str(copy)])

    lines = capsys.readouterr().out.splitlines()
    scenario = hashlib.sha256((copy / "scenario.yaml").read_bytes()).hexdigest()
    assert lines[:3] == [f"differs: python: recorded 3.10.0, here {platform.python_version()}",
                         f"differs: dependencies.torch: recorded 1.0, here {_version('torch')}",
                         f"differs: scenario_sha256: recorded {recorded['scenario_sha256'][:12]}, here {scenario[:12]}"]
    assert lines[3:] == ["reproduced byte for byte"] and status == 0


def test_verify_an_edited_log_exits_1_with_the_first_difference(copy: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    lines = (copy / "events.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2].replace('"step"', '"step" ', 1)
    (copy / "events.jsonl").write_text("".join(lines), encoding="utf-8")

    status = run.main(["verify", str(copy)])

    out = capsys.readouterr().out
    assert status == 1
    assert out.startswith("not reproduced: line 3 differs:\n  recorded: ")
    assert "reproduced byte for byte" not in out


@pytest.mark.parametrize(("content", "expected"), [
    (None, "no run manifest (the run was made before Simulacra wrote manifest.json, or it was removed)"),
    ("{not json", "not a run manifest (Expecting property name enclosed in double quotes)"),
    ("[1, 2]", "not a run manifest (a JSON list, not an object)"),
    ('{"format": 1}', "not a run manifest (no field 'simulacra_version')"),
    ("x" * 1_000_001, "the run manifest is 1,000,001 bytes, more than the 1,000,000 bytes allowed"),
    ("[" * 10_000 + "]" * 10_000, "not a run manifest (nested more than 50 levels deep)"),
])
def test_verify_a_missing_or_malformed_manifest_exits_2_with_one_line(
        copy: Path, capsys: pytest.CaptureFixture[str], content: str | None, expected: str) -> None:
    if content is None:
        (copy / MANIFEST).unlink()
    else:
        (copy / MANIFEST).write_text(content, encoding="utf-8")

    status = run.main(["verify", str(copy)])

    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    assert len(captured.err.splitlines()) == 1
    assert captured.err.startswith(f"error: {copy / MANIFEST}") and expected in captured.err
    if content is None or content.startswith(("{", "[1")):
        assert captured.err.rstrip().endswith(f"check the run without it: python run.py replay {copy}")


def test_a_field_of_the_wrong_type_is_refused(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(copy, dependencies={"torch": 2})

    assert run.main(["verify", str(copy)]) == 2
    assert "not a run manifest (field dependencies.torch is 2, not text or null)" in capsys.readouterr().err


def test_a_resume_keeps_the_manifest_and_rewrites_a_missing_one(copy: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    before = (copy / MANIFEST).read_bytes()

    assert run.main(["resume", str(copy), "--steps", "3", "--plain"]) == 0
    grown = _manifest(copy)  # scenario.yaml now says 3 steps: its hash follows it, nothing else changes
    assert grown["scenario_sha256"] == hashlib.sha256((copy / "scenario.yaml").read_bytes()).hexdigest()
    assert grown["scenario_sha256"] != json.loads(before)["scenario_sha256"]
    assert {k: v for k, v in grown.items() if k != "scenario_sha256"} == \
        {k: v for k, v in json.loads(before).items() if k != "scenario_sha256"}
    capsys.readouterr()
    assert run.main(["verify", str(copy)]) == 0
    assert capsys.readouterr().out.splitlines() == ["reproduced byte for byte"]

    (copy / MANIFEST).unlink()
    assert run.main(["resume", str(copy), "--steps", "4", "--plain"]) == 0
    rewritten = _manifest(copy)
    assert rewritten["scenario_sha256"] == hashlib.sha256((copy / "scenario.yaml").read_bytes()).hexdigest()
    assert {k: v for k, v in rewritten.items() if k != "scenario_sha256"} == \
        {k: v for k, v in json.loads(before).items() if k != "scenario_sha256"}


def test_a_fork_writes_its_own_manifest_with_its_seed(made: Path, tmp_path: Path) -> None:
    out = tmp_path / "fork"

    assert run.main(["fork", str(made), "--at", "1", "--set", "seed=7", "--out", str(out), "--plain"]) == 0
    manifest = _manifest(out)
    assert manifest["seed"] == 7
    assert manifest["scenario_sha256"] == hashlib.sha256((out / "scenario.yaml").read_bytes()).hexdigest()
    assert manifest["scenario_sha256"] != _manifest(made)["scenario_sha256"]  # the fork's header line


@pytest.mark.parametrize(("settings", "kept"), [
    ({"api_key_env": "OPENAI_API_KEY", "max_tokens": 80}, {"api_key_env": "OPENAI_API_KEY", "max_tokens": 80}),
    ({"langchain_kwargs": {"api_key": "sk-1", "openai_api_key": "sk-2", "model": "m"}},
     {"langchain_kwargs": {"model": "m"}}),
    ({"engine_kwargs": {"hf_token": "hf_x", "default_headers": {"Authorization": "Bearer x"}, "seed": 1}},
     {"engine_kwargs": {"seed": 1}}),
    ({"base_url": "https://user:secret@host:8000/v1", "base_urls": ["http://a:b@h/v1", "http://h2/v1"]},
     {"base_url": "https://host:8000/v1", "base_urls": ["http://h/v1", "http://h2/v1"]}),
])
def test_engine_settings_drop_secrets(settings: dict[str, Any], kept: dict[str, Any]) -> None:
    assert engine_settings(settings) == kept


def test_git_commit_is_read_without_git(tmp_path: Path) -> None:
    sha, other = "a" * 40, "b" * 40
    git = tmp_path / "repo" / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    assert git_commit(tmp_path / "repo") is None  # a branch without a commit
    (git / "packed-refs").write_text(f"# pack-refs with: peeled\n{other} refs/heads/main\n")
    assert git_commit(tmp_path / "repo") == other
    (git / "refs" / "heads" / "main").write_text(sha + "\n")
    assert git_commit(tmp_path / "repo") == sha  # a loose ref wins over the packed one
    (git / "HEAD").write_text(other + "\n")
    assert git_commit(tmp_path / "repo") == other  # detached
    (tmp_path / "worktree").mkdir()
    (tmp_path / "worktree" / ".git").write_text(f"gitdir: {git}\n")
    assert git_commit(tmp_path / "worktree") == other
    (git / "HEAD").write_text("ref: ../../../etc/passwd\n")
    assert git_commit(tmp_path / "repo") is None
    assert git_commit(tmp_path / "nothing") is None


def test_hashes_follow_the_files(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"weights")
    assert file_sha256(model) == hashlib.sha256(b"weights").hexdigest()
    model.write_bytes(b"other weights!")
    assert file_sha256(model) == hashlib.sha256(b"other weights!").hexdigest()
    assert file_sha256(tmp_path / "gone.gguf") is None
    folder = tmp_path / "embedder"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "1_Pooling" / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"abc")
    first = folder_sha256(folder)
    (folder / "model.safetensors").rename(folder / "renamed.safetensors")
    assert folder_sha256(folder) not in (first, None)
    assert folder_sha256(tmp_path / "none") is None


def test_the_harvest_card_carries_each_runs_manifest(made: Path, copy: Path) -> None:
    _edit(copy, model=_manifest(copy)["model"] | {"sha256": "cd" * 32})
    (made.parent / "old").mkdir(exist_ok=True)
    old = Path(shutil.copytree(made, made.parent / "old" / "run", dirs_exist_ok=True))
    (old / MANIFEST).unlink()

    card = Harvest([read_run(copy), read_run(old)]).card({})

    recorded = _manifest(copy)
    assert f"| {recorded['simulacra_version']} | {recorded['git_commit'] or '-'} | {'cd' * 32} |" in card
    assert "| completed | - | - | - |" in card  # a run made before manifests


def test_the_sweep_report_carries_the_first_runs_manifest(made: Path, tmp_path: Path) -> None:
    row = {"run": "r0", "cell": (), "arm": "a", "replica": 0, "seed": 1, "status": "completed", "attempts": 1,
           "resumed_from": [], "error": None, "summary": {"status": "completed", "wall_s": 1.0}}
    (tmp_path / "bare").mkdir()
    SweepReport([row]).write(tmp_path / "bare", title="t")
    shutil.copytree(made, tmp_path / "swept" / "runs" / "r0")

    SweepReport([row]).write(tmp_path / "swept", title="t")

    here = machine()
    bare = (tmp_path / "bare" / "sweep.md").read_text(encoding="utf-8")
    assert "No run wrote a manifest; this machine:" in bare and f"- Python {here['python']}" in bare
    page = (tmp_path / "swept" / "sweep.md").read_text(encoding="utf-8")
    assert "From `runs/r0/manifest.json`:" in page
    assert "\n".join(Manifest.read(made).provenance()) in page
    assert "- model: dry:estimate (dry), sha256 none (no file)" in page


def test_a_llamacpp_run_is_checked_against_the_model_file_here(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The file llama.cpp would load here (``llm.model``, or the shipped SmolLM2); a hostile model name is none."""
    recorded = _manifest(copy)
    _edit(copy, model=recorded["model"] | {"backend": "llamacpp"}, llm=recorded["llm"] | {"model": 5})

    assert run.main(["verify", str(copy)]) == 0

    here = file_sha256(shipped_model_path())
    assert here is not None
    assert capsys.readouterr().out.splitlines()[0] == (
        f"differs: model: the run was made with another model file (sha256 none recorded, {here[:12]} here in "
        f"{shipped_model_path()})")
