"""Helpers the tests share: reading a run folder, hashing a tree, a free port, telling scripted requests apart,
a package of a user's own installed into the test venv, a child started as a shell's background job.

Fake engines live in `tests.fakes`; fixtures that record runs in `tests.conftest`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from simulacra.agents.llm import LLMRequest

__all__ = ["babyagi_kind_of", "free_port", "ignore_sigint", "installed_plugin", "pip_installed", "read_events",
           "snapshot_world", "tree_hashes", "user_package"]

PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]


def ignore_sigint() -> None:
    """A ``preexec_fn``: the child starts with SIGINT ignored, as a shell starts a background job (CI's, a script's).

    Python then installs no handler of its own, so Ctrl-C does nothing unless the code asks for it again.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def kill_when(command: list[str], ready: Callable[[], bool], *, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Starts ``command`` and SIGKILLs it as soon as ``ready()`` holds (or it has ended); returns its exit status and
    the end of its stderr (kept in a file: a pipe nobody reads could fill and block the child before it is ready)."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=cwd)
        try:
            while proc.poll() is None and not ready():
                time.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        err.seek(0)
        return proc.returncode, err.read()[-2000:].decode(errors="replace")


def read_events(run_dir: Path) -> list[dict[str, Any]]:
    """Every event of a run folder's ``events.jsonl``, as dicts."""
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()]


def snapshot_world(run_dir: Path, step: int) -> dict[str, Any]:
    """The world's part of the run's snapshot of ``step``."""
    return json.loads((run_dir / "snapshots" / f"step-{step:06d}.json").read_text(encoding="utf-8"))["world"]


def tree_hashes(folder: Path, *, skip: str | None = None) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` by relative path (files under a folder named ``skip`` left out)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and (skip is None or skip not in p.parts)}


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def babyagi_kind_of(request: LLMRequest) -> str:
    """Which BabyAGI call a request is, by its schema: execute, create, prioritise or judge."""
    props = (request.schema or {}).get("properties", {})
    return "execute" if "tool" in props else "create" if "tasks" in props else "prioritise" if "order" in props \
        else "judge"


def user_package(folder: Path, name: str, modules: dict[str, str], entry_points: dict[str, dict[str, str]]) -> Path:
    """Writes a package of one-file modules with a pyproject that registers ``entry_points`` (group -> name -> path)."""
    folder.mkdir(parents=True)
    for module, code in modules.items():
        (folder / f"{module}.py").write_text(code)
    points = "".join(f'\n[project.entry-points."{group}"]\n' + "".join(f'{k} = "{v}"\n' for k, v in names.items())
                     for group, names in entry_points.items())
    (folder / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{name}"\nversion = "0.0.1"\n\n[tool.setuptools]\npy-modules = {sorted(modules)!r}\n'
        .replace("'", '"') + points)
    return folder


@contextlib.contextmanager
def pip_installed(package: Path, name: str) -> Iterator[None]:
    """``package`` pip-installed into the test venv (not editable, so not read from our tree) until the block ends."""
    subprocess.run([*PIP, "install", "--no-deps", "--no-build-isolation", str(package)], check=True,
                   capture_output=True)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        subprocess.run([*PIP, "uninstall", "-y", name], check=True, capture_output=True)


@contextlib.contextmanager
def installed_plugin(folder: Path, group: str, name: str, module: str, code: str, cls: str) -> Iterator[str]:
    """A one-module package that registers ``module:cls`` as ``name`` in the entry-point group ``group``,
    pip-installed into the test venv until the block ends; yields ``name``."""
    dist = module.replace("_", "-")
    with pip_installed(user_package(folder, dist, {module: code}, {group: {name: f"{module}:{cls}"}}), dist):
        yield name
