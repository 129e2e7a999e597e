"""Runs: what drives a world from an empty run folder to ``summary.json``, and back again.

Parts (each imported on first use):
    Runner, Origin, RUN_FILES: runs a scenario into a run folder (from nothing, or from a snapshot).
    Snapshots: the snapshot files of a run folder.
    Lineage: resume, replay and fork of a run folder.
    Manifest, MANIFEST: a run's provenance (``manifest.json``: versions, hashes, seed, engine settings).
    LiveView, PlainView: what people see while a run goes.
    WriterLock, LOCK_FILE: one writer per run folder or sweep folder (a second gets one line naming the holder).
    run_files: Ctrl-C, fresh folders, cutting a log back to a snapshot.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulacra.runs.lineage import Lineage
    from simulacra.runs.live_view import LiveView, PlainView
    from simulacra.runs.manifest import MANIFEST, Manifest
    from simulacra.runs.runner import RUN_FILES, Origin, Runner
    from simulacra.runs.snapshots import Snapshots
    from simulacra.runs.writer_lock import LOCK_FILE, WriterLock

__all__ = ["LOCK_FILE", "MANIFEST", "RUN_FILES", "Lineage", "LiveView", "Manifest", "Origin", "PlainView", "Runner",
           "Snapshots", "WriterLock"]

_HOME = {"RUN_FILES": "runner", "Origin": "runner", "Runner": "runner", "Lineage": "lineage",
         "LiveView": "live_view", "PlainView": "live_view", "Snapshots": "snapshots",
         "WriterLock": "writer_lock", "LOCK_FILE": "writer_lock", "Manifest": "manifest", "MANIFEST": "manifest"}


def __getattr__(name: str) -> Any:
    """Imports a part when it is first asked for (PEP 562)."""
    if name not in _HOME:
        msg = f"module 'simulacra.runs' has no attribute {name!r}; it holds {', '.join(__all__)}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
