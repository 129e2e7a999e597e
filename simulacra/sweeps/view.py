"""What a person sees while a sweep goes: one line per run (step/total, status, attempts) and the totals."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from simulacra.sweeps.plan import RunSpec

__all__ = ["SweepView"]

MAX_ROWS = 40  # a big sweep shows the runs under way and the latest finished, not thousands of lines


class SweepView:
    """A Rich live table on a terminal; on a pipe, a line each time a run's status changes."""

    def __init__(self, console: Console, runs: Sequence[RunSpec], *, plain: bool) -> None:
        """Draws on ``console`` (plain lines if ``plain`` or not a terminal)."""
        self._console = console
        self._runs = list(runs)
        self._plain = plain or not console.is_terminal
        self._live: Live | None = None
        self._shown: dict[str, str] = {}
        self._started = time.perf_counter()

    def __enter__(self) -> SweepView:
        if not self._plain:
            self._live = Live(console=self._console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def update(self, states: Mapping[str, Mapping[str, Any]]) -> None:
        """Shows every run's latest state (``status``, ``step``, ``total``, ``attempts``)."""
        if self._live is not None:
            self._live.update(self._render(states))
            return
        for spec in self._runs:
            state = states.get(spec.id, {})
            status = state.get("status", "queued")
            line = f"{spec.id}: {status}"
            if status in ("running", "completed") and state.get("total"):
                line += f" step {state.get('step', 0)}/{state['total']}"
            if int(state.get("attempts", 1)) > 1:
                line += f" (attempt {state['attempts']})"
            if state.get("error"):
                line += f": {state['error']}"
            if self._shown.get(spec.id) != status:
                self._shown[spec.id] = status
                self._console.print(line, highlight=False, markup=False)

    def totals(self, states: Mapping[str, Mapping[str, Any]]) -> str:
        """``N runs: a completed, b running, ... in S s``."""
        counts = Counter(states.get(spec.id, {}).get("status", "queued") for spec in self._runs)
        listed = ", ".join(f"{n} {status}" for status, n in counts.most_common())
        return f"{len(self._runs)} runs: {listed}; {time.perf_counter() - self._started:.0f} s"

    def _render(self, states: Mapping[str, Mapping[str, Any]]) -> Group:
        table = Table(title="sweep", expand=False)
        for column in ("run", "cell", "arm", "rep", "status", "step", "attempts"):
            table.add_column(column)
        order = {"running": 0, "starting": 1, "queued": 3}
        runs = sorted(self._runs, key=lambda s: order.get(states.get(s.id, {}).get("status", "queued"), 2))
        for spec in runs[:MAX_ROWS]:
            state = states.get(spec.id, {})
            step = f"{state.get('step', 0)}/{state['total']}" if state.get("total") else "-"
            table.add_row(spec.id, " ".join(spec.cell) or "-", spec.arm, str(spec.replica),
                          state.get("status", "queued"), step, str(state.get("attempts", 0)))
        return Group(table, self.totals(states))
