"""Sweeps: many runs of one scenario (grid cells × arms × replicas) as Ray tasks, summarised with 95 % CIs.

Parts:
    plan: `SweepPlan` and `RunSpec` (what runs, with which seed and overrides; ``sweep.json``).
    task: `execute`, one run as a Ray task (resumes from its snapshot when retried), and its `StatusBoard`.
    cluster: `Cluster`, a local Ray instance or an existing cluster, kept on loopback; `listening`.
    report: `SweepReport` (``sweep.parquet``, ``sweep.md``, ``plots/``).
    view: `SweepView`, the live table.
    sweep: `Sweep`, which ties them together.

Nothing here imports Ray at import time.
"""

from simulacra.sweeps.plan import RunSpec, SweepPlan
from simulacra.sweeps.sweep import Sweep

__all__ = ["RunSpec", "Sweep", "SweepPlan"]
