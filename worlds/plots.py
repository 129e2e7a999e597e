"""PNG plots of a run's metrics, written into the run folder."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: plots are files
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

__all__ = ["plot_diffusion", "plot_metrics"]

ACTIONS = ("said", "moved", "activity", "talk_failed", "move_blocked", "llm_failure", "planned", "reacted",
           "conversation", "reflected", "retrievals")


def plot_metrics(metrics: pd.DataFrame, path: Path, *, title: str) -> Path:
    """Draws actions per step and people per place over the run.

    Args:
        metrics: The model-level metrics, one row per step.
        path: Where to write the PNG.
        title: The figure's title.

    Returns:
        ``path``.
    """
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    steps = range(1, len(metrics) + 1)
    for column in ACTIONS:
        if column in metrics and metrics[column].any():
            top.plot(steps, metrics[column], marker="o", label=column)
    top.set_ylabel("events per step")
    top.legend(loc="upper left", fontsize="small")
    places = [c for c in metrics.columns if c.startswith("at_")]
    if places:
        bottom.stackplot(steps, *(metrics[c] for c in places), labels=[c[3:] for c in places])
        bottom.legend(loc="upper left", fontsize="small")
    bottom.set_ylabel("agents at place")
    bottom.set_xlabel("step")
    return _save(fig, path, title)


def plot_diffusion(metrics: pd.DataFrame, path: Path, *, title: str, agents: int) -> Path:
    """Draws who knows the news, who attended, and the talk network's density over the run.

    Args:
        metrics: The model-level metrics with ``knows``, ``attended`` and ``density`` columns.
        path: Where to write the PNG.
        title: The figure's title.
        agents: How many agents there are (the y axis limit).

    Returns:
        ``path``.
    """
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    steps = range(1, len(metrics) + 1)
    top.plot(steps, metrics["knows"], marker="o", label="know about it")
    top.plot(steps, metrics["attended"], marker="s", label="attended")
    top.set_ylim(0, agents + 0.5)
    top.set_ylabel("agents")
    top.legend(loc="upper left", fontsize="small")
    bottom.plot(steps, metrics["density"], marker="o", color="tab:green")
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("network density")
    bottom.set_xlabel("step")
    return _save(fig, path, title)


def _save(fig: plt.Figure, path: Path, title: str) -> Path:
    """Titles, lays out, writes and closes a figure."""
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
