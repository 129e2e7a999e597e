"""What a person sees while a run goes: a Rich live view on a terminal, plain lines anywhere else."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from simulacra.events import Event, EventKind

if TYPE_CHECKING:
    from simulacra.agents.llm import LLMStats
    from simulacra.agents.llm.client import Price

__all__ = ["LiveView", "PlainView", "describe_event", "literal", "show_cost"]

FEED_LINES = 12
AGENT_ROWS = 20  # a population's table shows the most recently active; a terminal holds no more


def describe_event(event: Event) -> str | None:
    """One line for people, or None for events not worth showing."""
    d = event.data
    match event.kind:
        case EventKind.SAID.value:
            return f'{event.agent} → {d["to"]}: "{d["text"]}"'
        case EventKind.MOVED.value:
            toward = "" if d["arrived"] else f" (to {d['destination']})"
            return f"{event.agent} walks {d['from']} → {d['to']}{toward}"
        case EventKind.ACTIVITY.value:
            return f"{event.agent} is {d['activity']} at the {d['place']}"
        case EventKind.TALK_FAILED.value:
            return f"{event.agent} wanted to talk to {d['to']}, but {d['reason']}"
        case EventKind.MOVE_BLOCKED.value:
            return f"{event.agent} could not go to the {d['to']}: {d['reason']}"
        case EventKind.LLM_FAILURE.value:
            return f"{event.agent}: LLM failed {d['attempts']}× ({d['error']}); {d['fallback']}"
        case EventKind.TASK_PROPOSED.value:
            return f"{event.agent} takes on: {d['text']}"
        case EventKind.SKILL_RAN.value:
            outcome = d["status"] + (f" ({d['message']})" if d["message"] else "")
            return f"{event.agent} ran a skill for {d['task']!r}, round {d['round']}: {outcome}"
        case EventKind.TASK_COMPLETED.value:
            return f"{event.agent} completed {d['task']!r} in {d['rounds']} round(s)"
        case EventKind.TASK_FAILED.value if "rounds" in d:
            return f"{event.agent} gave up {d['task']!r} after {d['rounds']} rounds"
        case EventKind.TASK_FAILED.value:  # a board's task, out of attempts
            return f"task {d['id']} failed for good: {d['text']} ({d['reason']})"
        case EventKind.TOOL_CALLED.value:
            args = ", ".join(f"{k}={v!r}" for k, v in d["args"].items())
            outcome = "ok" if d["status"] == "ok" else f"failed: {d['message']}"
            return f"{event.agent} {d['tool']}({args}): {outcome}"
        case EventKind.SKILL_ADDED.value:
            return f"{event.agent} stored skill {d['name']} v{d['version']}: {d['description']}"
        case EventKind.MILESTONE.value:
            return f"{event.agent} reached the {d['milestone']} milestone"
        case EventKind.TASK_CREATED.value:
            return f"{event.agent or 'objective'} added task {d['id']}: {d['text']}"
        case EventKind.TASK_DONE.value:
            return f"{event.agent} finished task {d['id']}: {d['result']}"
        case EventKind.OBJECTIVE_DONE.value:
            return f"{event.agent} declared the objective done: {d['reason']}"
        case EventKind.HAZARD.value:
            return f"night: {len(d['changes'])} change(s) from zombies"
        case EventKind.SURVEY_ANSWER.value:
            answer = d["answer"] if d["ok"] else "(no answer)"
            return f"{event.agent} answers {d['survey']}.{d['item']} ({d['question'][:50]}): {answer}"
        case kind if kind not in KNOWN_KINDS:  # a kind of a world of yours: what it says, as it says it
            said = ", ".join(f"{k}={v}" for k, v in list(d.items())[:6] if isinstance(v, str | int | float | bool))
            return f"{event.agent or 'world'} {kind.replace('_', ' ')}: {said}"[:200]
        case _:
            return None


KNOWN_KINDS = frozenset(k.value for k in EventKind)


def show_cost(stats: LLMStats, price: Price | None) -> str:
    """The engine calls' cost so far (`LLMStats.cost`), e.g. ``$0.0123``; empty without a price."""
    if price is None:
        return ""
    cost = stats.cost(price)
    decimals = 2 if cost >= 100 else 4 if cost >= 0.01 else 6  # noqa: PLR2004 - about four significant digits
    return f"${cost:,.{decimals}f}"


class PlainView:
    """Prints one line per visible event and one per step; for pipes, CI and ``--plain``."""

    def __init__(self, console: Console, *, total_steps: int) -> None:
        """Writes to ``console``."""
        self._console = console
        self._total = total_steps
        self._started = time.perf_counter()
        self.stats: LLMStats | None = None
        self.price: Price | None = None

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __call__(self, event: Event) -> None:
        """Prints the event if it is worth a line."""
        if event.kind == EventKind.STEP_ENDED.value:
            llm = self.stats
            rate = f", LLM {llm.calls} calls, {llm.cache_hits} cached, {llm.failures} failed, " \
                   f"{llm.tokens_per_s:.0f} tok/s" if llm else ""
            cost = show_cost(llm, self.price) if llm else ""
            rate += f", {cost}" if cost else ""
            self._console.print(Text(literal(f"step {event.step}/{self._total} done at {event.sim_time} "
                                             f"({time.perf_counter() - self._started:.1f} s{rate})")),
                                highlight=False)
            return
        line = describe_event(event)
        if line:
            # Console.out applies no markup and does not wrap: one line per event
            self._console.out(literal(f"[{event.sim_time[11:]}] {line}"), highlight=False)


class LiveView:
    """A Rich live view: header, agents table, feed, LLM stats and a progress bar."""

    def __init__(self, console: Console, *, scenario: str, total_steps: int, stats: LLMStats,
                 price: Price | None = None) -> None:
        """Draws on ``console`` (a terminal); with a ``price`` the LLM panel shows the cost so far."""
        self._console = console
        self._scenario = scenario
        self._total = total_steps
        self.stats = stats
        self.price = price
        self._lock = threading.Lock()
        self._feed: deque[Text] = deque(maxlen=FEED_LINES)
        self._agents: dict[str, dict[str, str]] = {}
        self._clock = ""
        self._step = 0
        self._board: int | None = None
        self._started = time.perf_counter()
        self._progress = Progress(TextColumn("steps"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        self._task = self._progress.add_task("steps", total=total_steps)
        self._live = Live(console=console, get_renderable=self._render, refresh_per_second=4, transient=False)

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.refresh()
        self._live.__exit__(None, None, None)

    def __call__(self, event: Event) -> None:
        """Updates the view's state from one event."""
        with self._lock:
            self._clock = event.sim_time.replace("T", " ")
            if event.kind == EventKind.RUN_STARTED.value:
                for name, place in event.data["agents"].items():  # a place, or a crafting position [x, y]
                    self._agents[name] = {"place": _where(place), "doing": "-"}
            elif event.kind == EventKind.STEP_ENDED.value:
                self._step = event.step
                self._board = event.data.get("board_length", self._board)
                self._progress.update(self._task, completed=event.step)
            elif event.agent in self._agents:
                self._track(event)
                if len(self._agents) > AGENT_ROWS:
                    self._agents[str(event.agent)] = self._agents.pop(str(event.agent))  # the newest last
            line = describe_event(event)
            if line:
                self._feed.append(Text.assemble((literal(event.sim_time[11:]), "dim"), " ", literal(line)))

    def _track(self, event: Event) -> None:
        row, d = self._agents[str(event.agent)], event.data
        if event.kind == EventKind.MOVED.value:
            row["place"], row["doing"] = d["to"], f"walking to {d['destination']}"
        elif event.kind == EventKind.SAID.value:
            row["doing"] = f"talking to {d['to']}"
        elif event.kind == EventKind.ACTIVITY.value:
            row["doing"] = d["activity"]
        elif event.kind == EventKind.DECIDED.value:
            row["doing"] = f"deciding: {d['kind']}"
        elif event.kind == EventKind.TASK_PROPOSED.value:
            row["doing"] = d["text"]
        elif event.kind == EventKind.TASK_CLAIMED.value:
            row["doing"] = f"task {d['id']}: {d['text']}"
        elif event.kind == EventKind.TOOL_CALLED.value:
            row["place"] = _last_cell(d["changes"]) or row["place"]
            row["doing"] = f"task {d['task_id']}: {d['tool']} ({d['status']})"
        elif event.kind == EventKind.SKILL_RAN.value:
            row["place"] = _last_cell(d["changes"]) or row["place"]
            row["doing"] = f"{d['task']} (round {d['round']}: {d['status']})"

    def _render(self) -> Any:
        with self._lock:
            elapsed = time.perf_counter() - self._started
            eta = elapsed / self._step * (self._total - self._step) if self._step else 0.0
            header = Text.assemble((literal(self._scenario), "bold"), literal(
                f"  step {self._step}/{self._total}  sim {self._clock}  elapsed {elapsed:.0f} s  ETA {eta:.0f} s"
                + (f"  task board {self._board}" if self._board is not None else "")))
            shown = list(self._agents.items())[-AGENT_ROWS:]
            caption = (f"the {len(shown)} most recently active of {len(self._agents):,} agents"
                       if len(shown) < len(self._agents) else None)
            agents = Table(expand=True, caption=caption)
            for column in ("agent", "place", "doing"):
                agents.add_column(column)
            for name, row in shown:
                agents.add_row(*(Text(literal(value)) for value in (name, row["place"], row["doing"])))
            s = self.stats
            llm = (f"calls {s.calls}  cached {s.cache_hits}  retries {s.retries}  failures {s.failures}  "
                   f"tokens {s.prompt_tokens}+{s.completion_tokens}  {s.tokens_per_s:.0f} tok/s")
            cost = show_cost(s, self.price)
            llm += f"  cost {cost}" if cost else ""
            llm += "".join(f"\n{model}: calls {c['calls']}  tokens {c['prompt_tokens']}+{c['completion_tokens']}"
                           for model, c in s.by_model.items())  # agents on their own engines (agents[i].llm)
            feed = Text("\n").join(self._feed) if self._feed else Text("waiting for the first step...", "dim")
            llm_panel = Panel(Text(literal(llm, keep="\n")), title="LLM")
            return Group(Panel(header), agents, Panel(feed, title="feed"), llm_panel, self._progress)


def _last_cell(changes: list[dict[str, Any]]) -> str | None:
    """Where the last position change of a skill run or tool call left the player, or None if it did not move."""
    moves = [c for c in changes if c["kind"] == "position"]
    return _where([moves[-1]["x"], moves[-1]["y"]]) if moves else None


def _where(place: Any) -> str:
    return f"x={place[0]}, y={place[1]}" if isinstance(place, list) else str(place)


def literal(text: object, *, keep: str = "") -> str:
    """``text`` to print as it is, for the views.

    A run's names and an LLM's words are never Rich markup (the views print them as `Text`, or with
    ``Console.out``) and never terminal control sequences: each control character but those in ``keep`` becomes
    U+FFFD.

    Args:
        text: What to print.
        keep: Control characters to keep (a feed keeps the newline).

    Returns:
        The text with control characters replaced.
    """
    return "".join(ch if ch.isprintable() or ch in keep else "\ufffd" for ch in str(text))
