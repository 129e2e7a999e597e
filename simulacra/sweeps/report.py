"""A sweep's summary files: ``sweep.parquet`` (a row per run), ``sweep.md`` and ``plots/*.png`` (means, 95 % CIs).

The interval of a mean over n replicates is Student's t: mean ± t(0.975, n-1) · sd / √n. With one replicate
there is no interval (the table says so instead of printing a zero-width one). With arms, every arm is also
compared with the first, replica by replica (the same seeds): the mean paired difference and its t interval.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from simulacra.errors import ScenarioError
from simulacra.runs.manifest import Manifest, machine
from simulacra.scenarios.overrides import split_override

__all__ = ["BOOKKEEPING", "SweepReport", "flatten_summary"]

# Columns that describe a run rather than measure it: never averaged.
BOOKKEEPING = ("run", "cell", "cell_index", "arm", "replica", "seed", "status", "attempts", "resumed_from", "error")
MAX_PLOTS = 40
_RANK = {"survey": 0, "events": 2, "llm": 3, "tokens": 3, "wall_s": 4, "agent_steps_per_s": 4}  # others: 1


def _t_interval(values: pd.Series) -> dict[str, float]:
    """n, mean, sd and the Student t 95 % interval's bounds of ``values`` (NaN spread and bounds for one value)."""
    from scipy import stats

    n = len(values)
    mean = float(values.mean())
    sd = float(values.std(ddof=1)) if n > 1 else math.nan
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n) if n > 1 else math.nan
    return {"n": n, "mean": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half}


def flatten_summary(summary: Mapping[str, Any]) -> dict[str, float]:
    """Every number in a run's ``summary.json`` as ``dotted.name → value``.

    A list counts as its length (``diffusion.knows.n``); a survey item's figures are taken at the last step it
    was asked (``survey.<survey>.<item>.<figure>``); names and paths are left out.
    """
    out: dict[str, float] = {}
    for key, value in summary.items():
        if key == "surveys":
            for survey, items in value.items():
                for item, info in items.items():
                    steps = info.get("steps") or {}
                    if steps:
                        last = steps[max(steps, key=int)]
                        for figure, number in last.items():
                            if number is not None:
                                out[f"survey.{survey}.{item}.{figure}"] = float(number)
        elif key not in ("seed", "run_dir", "final_places", "parent", "resumes", "resumed_from", "replay"):
            _numbers(key, value, out)
    return out


def _numbers(prefix: str, value: Any, out: dict[str, float]) -> None:
    if isinstance(value, bool):
        out[prefix] = float(value)
    elif isinstance(value, int | float):
        out[prefix] = float(value)
    elif isinstance(value, list):
        out[f"{prefix}.n"] = float(len(value))
    elif isinstance(value, Mapping):
        for key, inner in value.items():
            _numbers(f"{prefix}.{key}", inner, out)


class SweepReport:
    """The runs' results, as a table and as means with confidence intervals per cell and arm."""

    def __init__(self, rows: Iterable[Mapping[str, Any]], *, grid_keys: Iterable[str] = ()) -> None:
        """Builds the table.

        Args:
            rows: One per run: the `BOOKKEEPING` fields plus ``summary`` (the run's summary.json, or empty).
            grid_keys: The grid's keys; each becomes a column ``grid.<key>`` with the cell's value.
        """
        records = []
        for row in rows:
            record = {k: row.get(k) for k in BOOKKEEPING}
            record["resumed_from"] = ",".join(str(s) for s in row.get("resumed_from") or [])
            record["cell"] = " ".join(row.get("cell") or ()) or "-"
            cell = dict(split_override(item) for item in row.get("cell") or ())
            for key in grid_keys:
                record[f"grid.{key}"] = cell.get(key)
            summary = row.get("summary") or {}
            record["wall_s"] = summary.get("wall_s")
            record["tokens"] = sum(summary.get("llm", {}).get(k, 0) for k in ("prompt_tokens", "completion_tokens"))
            record.update(flatten_summary(summary))
            records.append(record)
        self.frame = pd.DataFrame.from_records(records)

    def outcomes(self) -> list[str]:
        """The numeric columns that measure runs and vary between them.

        What the world measured comes first (surveys, diffusion, memory, ...), then event counts, then cost
        (LLM, tokens, time).
        """
        frame = self.frame
        varying = [c for c in frame.columns if c not in BOOKKEEPING and not c.startswith("grid.")
                   and pd.api.types.is_numeric_dtype(frame[c]) and frame[c].nunique(dropna=True) > 1]
        return sorted(varying, key=lambda c: (_RANK.get(c.split(".")[0], 1), varying.index(c)))

    def constant(self) -> dict[str, float]:
        """Numeric outcomes every run has the same value of (listed once, not tabled)."""
        frame = self.frame
        return {c: float(frame[c].dropna().iloc[0]) for c in frame.columns
                if c not in BOOKKEEPING and not c.startswith("grid.") and pd.api.types.is_numeric_dtype(frame[c])
                and frame[c].nunique(dropna=True) == 1}

    def intervals(self) -> pd.DataFrame:
        """Per outcome, cell and arm, over the completed runs: n, mean, sd, and the 95 % interval's bounds."""
        done = self.frame[self.frame["status"] == "completed"]
        rows = []
        for metric in self.outcomes():
            for (cell, arm), group in done.groupby(["cell", "arm"], sort=False):
                values = group[metric].dropna().astype(float)
                if len(values):
                    rows.append({"metric": metric, "cell": cell, "arm": arm, **_t_interval(values)})
        return pd.DataFrame(rows, columns=["metric", "cell", "arm", "n", "mean", "sd", "ci_low", "ci_high"])

    def differences(self) -> pd.DataFrame:
        """Per outcome and cell, every arm against the first: the mean paired difference and its 95 % interval.

        The differences are arm minus first arm, replica by replica, over the replicas both arms completed.
        Replicas of two arms share their seeds (and a fork's past), so the pairs differ only in what the arms
        change; the interval is Student's t over the n differences, none with one pair.
        """
        columns = ["metric", "cell", "arm", "versus", "n", "mean", "sd", "ci_low", "ci_high"]
        arms = list(dict.fromkeys(self.frame["arm"])) if len(self.frame) else []
        if len(arms) < 2:  # noqa: PLR2004 - nothing to compare
            return pd.DataFrame(columns=columns)
        done = self.frame[self.frame["status"] == "completed"]
        first, rows = arms[0], []
        for metric in self.outcomes():
            for cell, group in done.groupby("cell", sort=False):
                base = group[group["arm"] == first].set_index("replica")[metric].dropna()
                for arm in arms[1:]:
                    other = group[group["arm"] == arm].set_index("replica")[metric].dropna()
                    pairs = (other - base).dropna().astype(float)
                    if len(pairs):
                        rows.append({"metric": metric, "cell": cell, "arm": arm, "versus": first,
                                     **_t_interval(pairs)})
        return pd.DataFrame(rows, columns=columns)

    def write(self, folder: Path, *, title: str, notes: Iterable[str] = ()) -> list[Path]:
        """Writes ``sweep.parquet``, ``sweep.md`` and one PNG per outcome under ``plots/``.

        Args:
            folder: The sweep folder.
            title: The Markdown page's title.
            notes: Lines for the page's "What happened" part (retries, resumes, failures).

        Returns:
            The files written.
        """
        self.frame.to_parquet(folder / "sweep.parquet", index=False)
        intervals = self.intervals()
        plots = self._plots(intervals, folder / "plots", title=title)
        lines = [f"# {title}", "", *self._counts(), ""]
        if notes:
            lines += ["## What happened", "", *(f"- {note}" for note in notes), ""]
        same = self.constant()
        if same:
            lines += ["Equal in every run: " + ", ".join(f"{k} = {v:g}" for k, v in same.items()) + ".", ""]
        lines += ["## Outcomes (mean and 95 % confidence interval over replicates)", ""]
        for key, group in intervals.groupby("metric", sort=False):
            metric = str(key)
            plot = f" ([plot](plots/{_slug(metric)}.png))" if _slug(metric) in plots else ""
            lines += [f"### {metric}{plot}", "", "| cell | arm | n | mean | 95 % CI |", "|---|---|---|---|---|"]
            columns = group[["cell", "arm", "n", "mean", "ci_low", "ci_high"]]
            for cell, arm, n, mean, ci_low, ci_high in columns.itertuples(index=False, name=None):
                ci = f"[{ci_low:.4g}, {ci_high:.4g}]" if n > 1 else "one run: no interval"
                lines.append(f"| {cell} | {arm} | {n} | {mean:.4g} | {ci} |")
            lines.append("")
        lines += self._differences()
        lines += self._provenance(folder / "runs")
        (folder / "sweep.md").write_text("\n".join(lines), encoding="utf-8")
        return [folder / "sweep.parquet", folder / "sweep.md", *(folder / "plots" / f"{p}.png" for p in plots)]

    def _differences(self) -> list[str]:
        """The arms against the first, paired by replica (nothing with one arm)."""
        table = self.differences()
        if table.empty:
            return []
        lines = ["## Arm differences (arm minus the first arm, paired by replica; mean and 95 % CI)", "",
                 "| metric | cell | arm | versus | pairs | difference | 95 % CI |", "|---|---|---|---|---|---|---|"]
        for metric, cell, arm, versus, n, mean, ci_low, ci_high in table[
                ["metric", "cell", "arm", "versus", "n", "mean", "ci_low", "ci_high"]].itertuples(index=False,
                                                                                                 name=None):
            ci = f"[{ci_low:+.4g}, {ci_high:+.4g}]" if n > 1 else "one pair: no interval"
            lines.append(f"| {metric} | {cell} | {arm} | {versus} | {n} | {mean:+.4g} | {ci} |")
        return [*lines, ""]

    def _provenance(self, runs: Path) -> list[str]:
        """What the runs were made with: the manifest of the first run that has a readable one, else this machine."""
        for run in self.frame["run"] if len(self.frame) else []:
            try:
                manifest = Manifest.find(runs / str(run))
            except ScenarioError:  # a damaged manifest; the next run's will do
                continue
            if manifest is not None:
                return ["## Provenance", "", f"From `runs/{run}/manifest.json`:", "", *manifest.provenance(), ""]
        here = machine()
        return ["## Provenance", "", "No run wrote a manifest; this machine:", "",
                f"- Simulacra {here['simulacra_version'] or 'unknown'}, commit {here['git_commit'] or 'unknown'}",
                "- model: unknown (no run manifest)", f"- Python {here['python']} on {here['platform']}", ""]

    def _counts(self) -> list[str]:
        statuses = self.frame["status"].value_counts().to_dict() if len(self.frame) else {}
        listed = ", ".join(f"{n} {status}" for status, n in statuses.items())
        return [f"{len(self.frame)} runs: {listed or 'none'}."]

    def _plots(self, intervals: pd.DataFrame, folder: Path, *, title: str) -> list[str]:
        """One error-bar chart per outcome (at most `MAX_PLOTS`): x the cells, a colour per arm."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        folder.mkdir(exist_ok=True)
        for old in folder.glob("*.png"):  # a resumed sweep's figures replace the last ones whole
            old.unlink()
        written = []
        for key, group in list(intervals.groupby("metric", sort=False))[:MAX_PLOTS]:
            metric = str(key)
            cells = list(dict.fromkeys(group["cell"]))
            arms = list(dict.fromkeys(group["arm"]))
            fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(cells) * len(arms)), 3.2))
            width = 0.8 / len(arms)
            for i, arm in enumerate(arms):
                part = group[group["arm"] == arm].set_index("cell").reindex(cells)
                x = [j + (i - (len(arms) - 1) / 2) * width for j in range(len(cells))]
                err = (part["mean"] - part["ci_low"]).fillna(0).to_numpy()
                ax.errorbar(x, part["mean"], yerr=err, fmt="o", capsize=4, label=arm)
            ax.set_xticks(range(len(cells)), cells, rotation=15, fontsize=7)
            ax.set_title(f"{title}: {metric}", fontsize=8)
            ax.set_ylabel("mean, 95 % CI", fontsize=8)
            if len(arms) > 1:
                ax.legend(fontsize=7)
            fig.tight_layout()
            fig.savefig(folder / f"{_slug(metric)}.png", dpi=80)
            plt.close(fig)
            written.append(_slug(metric))
        return written


def _slug(metric: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", metric)[:100]
