"""PNG plots of a run's metrics, written into the run folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # no display: plots are files
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_alignment", "plot_diffusion", "plot_metrics", "plot_ratings", "plot_survey", "plot_tasks",
           "plot_tech_tree"]

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


def plot_columns(metrics: pd.DataFrame, path: Path, *, title: str) -> Path:
    """Draws every numeric metrics column over the steps, one panel each (a world without plots of its own).

    Args:
        metrics: The model-level metrics, with a ``step`` column and one row per step.
        path: Where to write the PNG.
        title: The figure's title.

    Returns:
        ``path``.
    """
    columns = [c for c in metrics.columns if c != "step" and pd.api.types.is_numeric_dtype(metrics[c])][:12]
    fig, axes = plt.subplots(max(len(columns), 1), 1, figsize=(9, 2.2 * max(len(columns), 1) + 1), sharex=True,
                             squeeze=False)
    steps = metrics["step"] if "step" in metrics else range(1, len(metrics) + 1)
    for ax, column in zip(axes[:, 0], columns, strict=False):
        ax.plot(steps, metrics[column], marker="o")
        ax.set_ylabel(column)
    axes[-1, 0].set_xlabel("step")
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


def plot_tech_tree(metrics: pd.DataFrame, path: Path, *, title: str, milestones: dict[str, int]) -> Path:
    """Draws Voyager's outcome curves: unique items, milestones, skills and tasks over the iterations.

    Args:
        metrics: The crafting world's model-level metrics, one row per step.
        path: Where to write the PNG.
        title: The figure's title.
        milestones: Milestone → step first reached; each is marked on the upper panel.

    Returns:
        ``path``.
    """
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    steps = range(1, len(metrics) + 1)
    top.plot(steps, metrics["unique_items"], marker="o", label="unique items obtained")
    top.plot(steps, metrics["milestones"], marker="s", label="tech-tree milestones")
    for name, step in milestones.items():
        top.axvline(max(step, 1), color="grey", linestyle=":", linewidth=1)
        top.annotate(name, (max(step, 1), 0), rotation=90, fontsize="x-small", va="bottom")
    top.set_ylabel("count")
    top.legend(loc="upper left", fontsize="small")
    for column, label in (("skills", "skills in the library"), ("tasks_completed", "tasks completed"),
                          ("tasks_failed", "tasks failed")):
        if column in metrics:
            bottom.plot(steps, metrics[column], marker="o", label=label)
    bottom.set_ylabel("cumulative")
    bottom.set_xlabel("iteration (step)")
    bottom.legend(loc="upper left", fontsize="small")
    return _save(fig, path, title)


def plot_tasks(metrics: pd.DataFrame, path: Path, *, title: str) -> Path:
    """Draws a BabyAGI team's task board over the run: tasks created, done, failed, dropped; board length.

    Args:
        metrics: The town's metrics with the team's ``tasks_*`` and ``board_length`` columns.
        path: Where to write the PNG.
        title: The figure's title.

    Returns:
        ``path``.
    """
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    steps = range(1, len(metrics) + 1)
    for column in ("tasks_created", "tasks_done", "tasks_failed", "tasks_dropped"):
        top.plot(steps, metrics[column], marker="o", label=column.removeprefix("tasks_"))
    top.set_ylabel("tasks (running total)")
    top.legend(loc="upper left", fontsize="small")
    bottom.bar(steps, metrics["board_length"], color="tab:grey")
    bottom.set_ylabel("open + claimed tasks")
    bottom.set_xlabel("step")
    return _save(fig, path, title)


def plot_alignment(metrics: pd.DataFrame, path: Path, *, title: str, scale: int) -> Path:
    """Draws a society's rounds: raters' mean rating and the observer's scores, before and after revision.

    Args:
        metrics: The society world's metrics, one row per round.
        path: Where to write the PNG.
        title: The figure's title.
        scale: The top of the rating scale (the y axis).

    Returns:
        ``path``.
    """
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    rounds = range(1, len(metrics) + 1)
    top.plot(rounds, metrics["draft_rating"], marker="o", label="raters: drafts")
    top.plot(rounds, metrics["revision_rating"], marker="s", label="raters: revisions")
    top.plot(rounds, metrics["improved_share"] * scale, linestyle=":", label=f"share improved (x{scale})")
    top.set_ylim(0, scale + 0.5)
    top.set_ylabel("mean rating")
    top.legend(loc="lower right", fontsize="small")
    for column, style in (("alignment_before", "o-"), ("alignment_after", "s-"), ("engagement_before", "o--"),
                          ("engagement_after", "s--")):
        bottom.plot(rounds, metrics[column], style, label=column.replace("_", " "))
    bottom.set_ylim(0, scale + 0.5)
    bottom.set_ylabel("observer score")
    bottom.set_xlabel("round")
    bottom.legend(loc="lower right", fontsize="small")
    return _save(fig, path, title)


def plot_survey(frame: pd.DataFrame, survey: Any, path: Path, *, title: str) -> Path:
    """Draws one survey's answers over the steps it was asked: one panel per item.

    Options (yes/no, choice, likert points) are drawn as the share answering each; numbers (likert, number) as
    the mean with the spread (standard deviation) as error bars; text items as how many answered.

    Args:
        frame: `worlds.survey.Surveys.frame` (a ``step`` column and ``survey.<name>.<item>.<figure>`` columns).
        survey: The survey's `scenarios.instruments.SurveyConfig`.
        path: Where to write the PNG.
        title: The figure's title.

    Returns:
        ``path``.
    """
    items = survey.items
    fig, axes = plt.subplots(len(items), 1, figsize=(9, 2.8 * len(items) + 0.6), squeeze=False, sharex=True)
    for ax, item in zip(axes[:, 0], items, strict=True):
        prefix = f"survey.{survey.name}.{item.name}."
        rows = frame[frame[f"{prefix}n"].notna()] if f"{prefix}n" in frame else frame.iloc[0:0]
        steps = rows["step"].astype(int).tolist()
        options = [c.removeprefix(prefix) for c in rows.columns if c.startswith(prefix)
                   and c.removeprefix(prefix) not in ("n", "failed", "mean", "sd")]
        if item.type == "number":
            ax.errorbar(steps, rows[f"{prefix}mean"], yerr=rows[f"{prefix}sd"], marker="o", capsize=4, label="mean")
            ax.set_ylabel("answer")
        elif options:
            for option in options:
                ax.plot(steps, rows[f"{prefix}{option}"], marker="o", label=option)
            ax.set_ylim(-0.05, 1.05)
            ax.set_ylabel("share answering")
        else:
            ax.bar(steps, rows[f"{prefix}n"], label="answered")
            ax.set_ylabel("answers")
        ax.set_title(f"{item.name}: {item.question[:80]}", fontsize="small")
        ax.legend(loc="upper left", fontsize="small")
    axes[-1, 0].set_xlabel("step (0: before the first)")
    return _save(fig, path, f"{title}: survey {survey.name}")


def plot_ratings(records: list[dict[str, Any]], rubric: Any, path: Path, *, title: str) -> Path:
    """Draws a judge's scores of a run: a group of bars per rubric dimension, a bar per agent.

    Each dimension's label shows its scale; a score the judge did not give (None) leaves its bar out.

    Args:
        records: `worlds.rating.Rater.run` records (agent, dimension, score).
        rubric: The `scenarios.instruments.Rubric` scored.
        path: Where to write the PNG.
        title: The figure's title.

    Returns:
        ``path``.
    """
    dims = rubric.dimensions
    agents = list(dict.fromkeys(r["agent"] for r in records))
    scores = {(r["agent"], r["dimension"]): r["score"] for r in records}
    width = 0.8 / max(len(agents), 1)
    fig, ax = plt.subplots(figsize=(max(7.0, len(dims) * (0.6 + 0.25 * len(agents))), 4.8))
    for n, agent in enumerate(agents):
        shift = (n - (len(agents) - 1) / 2) * width
        given = [(i, scores[agent, d.name]) for i, d in enumerate(dims) if scores.get((agent, d.name)) is not None]
        ax.bar([i + shift for i, _ in given], [s for _, s in given], width, color=f"C{n % 10}",
               label=agent if given else f"{agent} (no scores)")
    ax.set_xticks(range(len(dims)), [f"{d.name}\n({d.min}..{d.max})" for d in dims], fontsize="small",
                  rotation=15 if len(dims) > 5 else 0)
    ax.set_ylim(min(0, *(d.min for d in dims)) - 0.5, max(0, *(d.max for d in dims)) + 0.5)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_ylabel("score")
    if agents:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    return _save(fig, path, title)


def _save(fig: Figure, path: Path, title: str) -> Path:
    """Titles, lays out, writes and closes a figure."""
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
