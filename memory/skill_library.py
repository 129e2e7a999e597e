"""Voyager's skill library: verified code skills in Chroma, embedded by what they do, retrieved by task."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from simulacra.errors import ScenarioError
from simulacra.memory.embedder import ChromaEmbedding

__all__ = ["LIBRARY_FILE", "Skill", "SkillLibrary"]

LIBRARY_FILE = "skills.jsonl"
DEFAULT_TOP_K = 5  # the paper retrieves the top-5 skills for a task


@dataclass(frozen=True)
class Skill:
    """One version of one skill.

    Attributes:
        name: The Python function's name; later tasks call it by this name.
        version: 1 for the first verified code, +1 for each rewrite (older versions are kept).
        description: What the skill does, written by the LLM; the text that is embedded.
        code: The function's source.
        task: The curriculum task it was verified on.
        agent: Who wrote it.
        iteration: The simulation step at which it was verified.
    """

    name: str
    version: int
    description: str
    code: str
    task: str = ""
    agent: str = ""
    iteration: int = 0

    @property
    def id(self) -> str:
        """The Chroma id, ``name.vN``."""
        return f"{self.name}.v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields."""
        return asdict(self)


class SkillLibrary:
    """Skills in a Chroma collection, mirrored to a portable folder (``skills.jsonl`` + ``code/*.py``).

    Chroma is the index that retrieval uses; the folder is what another run loads (``skills: path``) and what
    ``harvest`` reads. Only a skill's latest version is retrieved and run; every version stays in both.
    """

    def __init__(self, client: Any, *, embed: Callable[[Sequence[str]], npt.NDArray[np.float32]],
                 folder: Path | None = None, collection: str = "skills") -> None:
        """Opens (or creates) the collection.

        Args:
            client: A ``chromadb`` client (persistent, server or ephemeral).
            embed: Texts to unit vectors (the project's MiniLM embedder; a fake one in unit tests).
            folder: Where the portable copy is written; None keeps none.
            collection: The collection's name (unique per run when a Chroma server is shared).
        """
        self._embed = embed
        self._collection = client.get_or_create_collection(
            collection, embedding_function=ChromaEmbedding(embed), metadata={"hnsw:space": "cosine"})
        self.folder = folder
        if folder is not None:  # an empty library is still a library another run can start from
            folder.mkdir(parents=True, exist_ok=True)
            (folder / LIBRARY_FILE).touch()
        self._skills: dict[str, list[Skill]] = {}
        self._stored: list[Skill] = []  # every version, in the order stored (the mirror's order)
        self.retrievals = 0

    def __len__(self) -> int:
        """How many distinct skills (not versions) the library holds."""
        return len(self._skills)

    def __contains__(self, name: object) -> bool:
        """Whether a skill of that name exists."""
        return name in self._skills

    def add(self, name: str, code: str, description: str, *, task: str = "", agent: str = "",
            iteration: int = 0) -> Skill:
        """Stores a verified skill; a name already present gets the next version.

        Returns:
            The stored skill (with its version).
        """
        previous = self._skills.get(name, [])
        skill = Skill(name, len(previous) + 1, description.strip() or name, code, task, agent, iteration)
        self._store([skill])
        if previous:
            old = previous[-1]
            self._collection.update(ids=[old.id], metadatas=[{**_metadata(old), "latest": False}])
        return skill

    def _store(self, skills: Sequence[Skill]) -> None:
        if not skills:  # an empty library loads as nothing (Chroma refuses an empty add)
            return
        vectors = self._embed([s.description for s in skills])
        self._collection.add(ids=[s.id for s in skills], documents=[s.description for s in skills],
                             embeddings=vectors, metadatas=[{**_metadata(s), "latest": True} for s in skills])
        for skill in skills:
            self._skills.setdefault(skill.name, []).append(skill)
        self._stored += skills
        if self.folder is not None:
            (self.folder / "code").mkdir(parents=True, exist_ok=True)
            with (self.folder / LIBRARY_FILE).open("a", encoding="utf-8") as out:
                for skill in skills:
                    out.write(json.dumps(skill.to_dict(), ensure_ascii=False) + "\n")
                    (self.folder / "code" / f"{skill.id}.py").write_text(skill.code, encoding="utf-8")

    def latest(self) -> dict[str, Skill]:
        """Every skill's latest version, by name."""
        return {name: versions[-1] for name, versions in self._skills.items()}

    def versions(self, name: str) -> list[Skill]:
        """Every version of a skill, oldest first."""
        return list(self._skills.get(name, []))

    def retrieve(self, query: str, k: int = DEFAULT_TOP_K) -> list[Skill]:
        """The ``k`` latest-version skills whose descriptions are nearest to ``query`` (a task), best first."""
        if not self._skills or k <= 0:
            return []
        self.retrievals += 1
        got = self._collection.query(query_embeddings=self._embed([query]), n_results=min(k, len(self._skills)),
                                     where={"latest": True}, include=["metadatas"])
        latest = self.latest()
        return [latest[m["name"]] for m in got["metadatas"][0] if m["name"] in latest]

    def get_state(self) -> dict[str, Any]:
        """Every skill version in the order stored, and the retrieval count, JSON-safe."""
        return {"skills": [s.to_dict() for s in self._stored], "retrievals": self.retrievals}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Makes the library, its Chroma collection and its folder hold exactly the snapshot's skills.

        Versions stored after the snapshot are deleted from Chroma, ``skills.jsonl`` is rewritten (atomically)
        with the snapshot's records and newer ``code/`` files are removed; what the collection lacks is added
        and the ``latest`` flags are set back. A library loaded at construction (``skills: path``) is thus not
        doubled when a resumed run loads it again.
        """
        skills = [Skill(**d) for d in state["skills"]]
        self._skills, self._stored = {}, list(skills)
        for skill in skills:
            self._skills.setdefault(skill.name, []).append(skill)
        self.retrievals = int(state["retrievals"])
        self._rewind_collection()
        if self.folder is not None:
            self._rewind_folder(self.folder)

    def _rewind_collection(self) -> None:
        latest = {s.id for s in self.latest().values()}
        wanted = {s.id: s for s in self._stored}
        held = set(self._collection.get(include=[])["ids"])
        if newer := sorted(held - wanted.keys()):
            self._collection.delete(ids=newer)
        if missing := [s for s in self._stored if s.id not in held]:
            self._collection.add(ids=[s.id for s in missing], documents=[s.description for s in missing],
                                 embeddings=self._embed([s.description for s in missing]),
                                 metadatas=[{**_metadata(s), "latest": s.id in latest} for s in missing])
        if kept := [s for s in self._stored if s.id in held]:
            self._collection.update(ids=[s.id for s in kept],
                                    metadatas=[{**_metadata(s), "latest": s.id in latest} for s in kept])

    def _rewind_folder(self, folder: Path) -> None:
        code = folder / "code"
        folder.mkdir(parents=True, exist_ok=True)
        if self._stored:  # `_store` makes code/ with the first skill; an empty library has none
            code.mkdir(exist_ok=True)
        part = folder / f"{LIBRARY_FILE}.part"
        part.write_text("".join(json.dumps(s.to_dict(), ensure_ascii=False) + "\n" for s in self._stored),
                        encoding="utf-8")
        os.replace(part, folder / LIBRARY_FILE)  # a kill mid-write leaves the old file whole
        wanted = {f"{s.id}.py": s for s in self._stored}
        for file in code.glob("*.py"):
            if file.name not in wanted:
                file.unlink()
        for name, skill in wanted.items():
            path = code / name
            if not path.is_file() or path.read_text(encoding="utf-8") != skill.code:
                path.write_text(skill.code, encoding="utf-8")

    def load(self, path: str | Path) -> int:
        """Adds the skills of another library (a run folder, its ``skills`` folder or a ``skills.jsonl``).

        Returns:
            How many skill versions were added.

        Raises:
            ScenarioError: ``path`` holds no skill library, or a line of it is not a skill.
        """
        from dataclasses import fields

        from simulacra.scenarios.bounded import load_json, read_text

        file = _library_file(Path(path))
        fix = "give a skills.jsonl written by a run"
        loaded: list[Skill] = []
        # split("\n"), not splitlines(): a record's strings may hold U+2028 and the other breaks JSON allows
        for n, line in enumerate(read_text(file, what="skill library", limit=16_000_000).split("\n"), 1):
            if not line.strip():
                continue
            record = load_json(line, file, line=n, problem="not a skill record", fix=fix)
            try:
                skill = Skill(**record)
            except TypeError as err:
                msg = f"{file}:{n}: not a skill record ({err}); {fix}"
                raise ScenarioError(msg) from err
            wrong = [f.name for f in fields(Skill) if type(getattr(skill, f.name)).__name__ != f.type]
            if wrong:
                msg = f"{file}:{n}: not a skill record (wrong type of {', '.join(wrong)}); {fix}"
                raise ScenarioError(msg)
            loaded.append(skill)
        clash = sorted({s.name for s in loaded} & self._skills.keys())
        if clash:
            msg = f"{file}: skills {clash} already exist in this library; load a library only once"
            raise ScenarioError(msg)
        loaded.sort(key=lambda s: (s.name, s.version))
        self._store(loaded)
        for name in {s.name for s in loaded}:
            older = self._skills[name][:-1]
            if older:
                self._collection.update(ids=[s.id for s in older],
                                        metadatas=[{**_metadata(s), "latest": False} for s in older])
        return len(loaded)


def _metadata(skill: Skill) -> dict[str, Any]:
    return {"name": skill.name, "version": skill.version, "code": skill.code, "task": skill.task,
            "agent": skill.agent, "iteration": skill.iteration}


def _library_file(path: Path) -> Path:
    for candidate in (path, path / LIBRARY_FILE, path / "skills" / LIBRARY_FILE):
        if candidate.is_file():
            return candidate
    msg = (f"skills: {str(path)!r} holds no skill library ({LIBRARY_FILE}); give a run folder of a crafting run "
           "or its skills/ folder")
    raise ScenarioError(msg)


def function_name(code: str) -> str | None:
    """The name of the first top-level function ``code`` defines, or None."""
    match = re.search(r"^def\s+([A-Za-z_]\w*)\s*\(", code, flags=re.MULTILINE)
    return match.group(1) if match else None
