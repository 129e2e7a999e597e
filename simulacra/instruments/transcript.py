"""An agent's transcript, rebuilt from a run's ``events.jsonl``: one short line per thing it said or did.

What a transcript judge (`worlds.rating`) reads, and all it reads of the run.

Parts:
    read_events, read_event_log: the events of an ``events.jsonl``, read within bounds, each line and field checked.
    agent_lines: the agents of a run and each one's transcript lines.
    describe: one transcript line for an event, or None for an event the judge does not see.
    fit: transcript lines cut to a number of characters, keeping the latest.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from simulacra.errors import ScenarioError
from simulacra.events import EventKind
from simulacra.scenarios.bounded import load_json, read_text

__all__ = ["LINE_CHARS", "MAX_EVENTS_BYTES", "MAX_LINE_CHARS", "agent_lines", "describe", "fit", "read_event_log",
           "read_events"]

MAX_EVENTS_BYTES = 200_000_000  # events.jsonl of a long run
LINE_CHARS = 240  # the most characters of one transcript line
_DAMAGED = "the run folder's event log is damaged; rate another run"
_NOT_EVENT = "not an event (an object with step, sim_time, agent, kind, data)"
MAX_LINE_CHARS = 4_000_000  # one event: a skill's code or a long answer is a few kB


def read_events(path: Path) -> list[dict[str, Any]]:
    """The complete events of ``events.jsonl`` (`read_event_log`), each checked; a line being written is left out.

    Raises:
        ScenarioError: One line, ``<path>:<line>: <what is wrong>; <fix>``: a line that is not JSON, too long,
            nested too deep, not an event, or an event whose fields have the wrong type.
    """
    return read_event_log(path)[0]


def read_event_log(path: Path, *, fix: str = _DAMAGED, not_object: str = _NOT_EVENT, field_fix: str | None = None,
                   limit: int = MAX_EVENTS_BYTES) -> tuple[list[dict[str, Any]], int | None]:
    """The complete events of ``events.jsonl``, read within `MAX_EVENTS_BYTES`, each line checked.

    Every event has ``step`` (a whole number, 0 or more), ``sim_time`` (text or null), ``agent`` (text or null),
    ``kind`` (text) and ``data`` (an object); the ``data`` fields that the instruments read of our kinds
    (`_FIELDS`) have their types. A last line without its newline is a write in progress: it is not read.

    Args:
        path: The ``events.jsonl``.
        fix: What to do about a corrupt line, for messages.
        not_object: What a line that is JSON but not an object is, for messages (``{type}``: its JSON type).
        field_fix: What to do about a field of the wrong type (default ``fix``).
        limit: The most bytes read.

    Returns:
        The events, and the line number of the unfinished last line (None when the file ends with a newline).

    Raises:
        ScenarioError: One line naming the file, the line and the field, and ``fix``.
    """
    events = []
    # split("\n"), not splitlines(): a JSON string may hold U+2028 and the other breaks splitlines() cuts at
    lines = read_text(path, what="events file", limit=limit).split("\n")
    unfinished = len(lines) if lines[-1].strip() else None
    for n, line in enumerate(lines[:-1], 1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE_CHARS:
            msg = f"{path}:{n}: an event of {len(line):,} characters (at most {MAX_LINE_CHARS:,}); {fix}"
            raise ScenarioError(msg)
        event = load_json(line, path, line=n, problem="truncated or corrupt event", fix=fix)
        if not isinstance(event, dict):
            msg = f"{path}:{n}: {not_object.format(type=_json_type(event))}; {fix}"
            raise ScenarioError(msg)
        problem = _event_problem(event)
        if problem:
            msg = f"{path}:{n}: {problem}; {field_fix or fix}"
            raise ScenarioError(msg)
        events.append(event)
    return events, unfinished


def agent_lines(events: Sequence[Mapping[str, Any]], cast: Sequence[str]) -> tuple[list[str], dict[str, list[str]]]:
    """The agents and each one's lines.

    The agents are the scenario's ``cast`` in its order (``run_started`` lists them with its keys sorted), then
    any other that ``run_started`` lists or that acts, first seen first.
    """
    started = next((e for e in events if e["kind"] == "run_started"), {})
    listed = started.get("data", {}).get("agents") if started else None
    agents = [*cast, *(str(a) for a in listed)] if isinstance(listed, dict | list) else list(cast)
    lines: dict[str, list[str]] = {agent: [] for agent in agents}
    for event in events:
        agent = event.get("agent")
        if agent is None:
            continue
        line = describe(event)
        lines.setdefault(agent, [])
        if line:
            lines[agent].append(line)
    return list(lines), lines


def describe(event: Mapping[str, Any]) -> str | None:
    """One short transcript line for an agent's event, e.g. ``[step 3 14:20] said to Maria: "Hi!"``.

    Returns:
        The line (whitespace collapsed, at most `LINE_CHARS` characters), or None for a kind the judge does not
        see: what the agent perceived or was about to do (``observed``, ``decided``), bookkeeping
        (``step_ended``, ``llm_failure``, ``conversation``, which repeats the ``said`` lines) and the rest of
        our kinds `_LINES` does not name. A kind of your world's own is told as ``kind: key=value, ...``.
    """
    kind = str(event.get("kind"))
    say = _LINES.get(kind) or (None if kind in _OURS else _yours(kind))
    if say is None:
        return None
    what = " ".join(say(event.get("data") or {}).split())
    sim_time = str(event.get("sim_time") or "")
    clock = sim_time[11:16] if len(sim_time) >= 16 and sim_time[10] in "T " else sim_time
    line = f"[step {event.get('step')}{' ' + clock if clock else ''}] {what}"
    return line if len(line) <= LINE_CHARS else line[:LINE_CHARS - 3] + "..."


def fit(lines: Sequence[str], max_chars: int) -> str:
    """A transcript of at most ``max_chars`` characters from ``lines``, oldest first.

    Returns:
        ``lines`` joined; when that is too long, a line saying how many were left out (``(12 earlier lines left
        out)``) followed by the latest lines that fit.
    """
    text = "\n".join(lines)
    if len(text) <= max_chars:
        return text
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        if len(_left_out(len(lines) - len(kept) - 1)) + size + 1 + len(line) > max_chars:
            break
        kept.append(line)
        size += 1 + len(line)
    return "\n".join([_left_out(len(lines) - len(kept)), *reversed(kept)])


def _left_out(n: int) -> str:
    return f"({n} earlier line{'' if n == 1 else 's'} left out)"


def _items(value: Any) -> str:
    return "; ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _moved(d: Mapping[str, Any]) -> str:
    toward = "" if d.get("arrived", True) or d.get("destination") in (None, d.get("to")) else \
        f" (on the way to the {d.get('destination')})"
    return f"moved to the {d.get('to')}{toward}"


def _reacted(d: Mapping[str, Any]) -> str:
    if d.get("choice") == "talk":
        return f"reacted: chose to talk to {d.get('person')}"
    if d.get("choice") == "react":
        return f"reacted: {d.get('reaction')}"
    return "reacted: carried on as planned"


def _survey(d: Mapping[str, Any]) -> str:
    answer = d.get("answer") if d.get("ok", True) and d.get("answer") is not None else "(no answer)"
    return f'was asked "{d.get("question")}" → {answer}'


def _skill_ran(d: Mapping[str, Any]) -> str:
    outcome = f"{d.get('status')}" + (f" ({d.get('message')})" if d.get("message") else "")
    return f"ran a skill for {d.get('task')!r} (round {d.get('round')}): {outcome}"


def _tool_called(d: Mapping[str, Any]) -> str:
    args = d.get("args")
    shown = ", ".join(f"{k}={v!r}" for k, v in args.items()) if isinstance(args, dict) else ""
    result = f"ok -> {json.dumps(d.get('result'))[:80]}" if d.get("status") == "ok" else f"failed: {d.get('message')}"
    return f"called {d.get('tool')}({shown}) for task {d.get('task_id')}: {result}"


def _insights(d: Mapping[str, Any]) -> str:
    insights = d.get("insights")
    texts = [i.get("text") if isinstance(i, dict) else i for i in insights] if isinstance(insights, list) else []
    return f"reflected: {_items(texts)}"


_LINES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "said": lambda d: f'said to {d.get("to")}: "{d.get("text")}"',
    "talk_failed": lambda d: f"wanted to talk to {d.get('to')}, but {d.get('reason')}",
    "activity": lambda d: f"did: {d.get('activity')} (at the {d.get('place')})",
    "waited": lambda d: f"waited: {d.get('doing')}",
    "moved": _moved,
    "move_blocked": lambda d: f"could not go to the {d.get('to')}: {d.get('reason')}",
    "planned": lambda d: f"planned ({d.get('level')}): {_items(d.get('items'))}",
    "reflected": _insights,
    "reacted": _reacted,
    "injected": lambda d: f"heard the news: {d.get('text')}",
    "interaction": lambda d: f'was asked "{d.get("question")}"; answered: "{d.get("draft")}"; revised: '
                             f'"{d.get("revised")}"',
    "survey_answer": _survey,
    "task_proposed": lambda d: f"took on: {d.get('text')}",
    "skill_written": lambda d: f"wrote a skill for {d.get('task')!r}: {d.get('explanation')}",
    "skill_ran": _skill_ran,
    "criticised": lambda d: f"judged its attempt at {d.get('task')!r}: {'done' if d.get('success') else 'not done'}; "
                            f"{d.get('critique')}",
    "skill_added": lambda d: f"stored skill {d.get('name')}: {d.get('description')}",
    "task_completed": lambda d: f"completed {d.get('task')!r} in {d.get('rounds')} round(s)",
    "task_failed": lambda d: f"failed {d.get('task') or d.get('text')!r}: {d.get('reason')}",
    "milestone": lambda d: f"reached the {d.get('milestone')} milestone",
    "task_created": lambda d: f"proposed task {d.get('id')}: {d.get('text')}",
    "task_claimed": lambda d: f"took task {d.get('id')}: {d.get('text')}",
    "task_done": lambda d: f"finished task {d.get('id')} ({d.get('text')}): {d.get('result')}",
    "task_dropped": lambda d: f"dropped task {d.get('text')!r}: {d.get('reason')}",
    "tool_called": _tool_called,
    "objective_done": lambda d: f"declared the objective done: {d.get('reason')}",
}


_OURS = frozenset(k.value for k in EventKind)


def _yours(kind: str) -> Callable[[Mapping[str, Any]], str]:
    """The line of an event of a world's own kind: its name and its data, e.g. ``trade: good=apples, price=3``."""
    return lambda d: f"{kind}: " + ", ".join(f"{k}={str(v)[:60]}" for k, v in d.items())



# -- checks ------------------------------------------------------------------------------------------------
_TOP: dict[str, tuple[Callable[[Any], bool], str]] = {
    "step": (lambda v: _whole(v) and v >= 0, "a whole number, 0 or more"),
    "sim_time": (lambda v: v is None or isinstance(v, str), "text or null"),
    "agent": (lambda v: v is None or isinstance(v, str), "text or null"),
    "kind": (lambda v: isinstance(v, str) and v != "", "the name of a kind"),
    "data": (lambda v: isinstance(v, dict), "an object"),
}


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _text(v: Any) -> bool:
    return isinstance(v, str)


def _maybe(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


def _ratings(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(r, dict) and _text(r.get("rater")) and _number(r.get("rating"))
                                       and _maybe(_text)(r.get("reason")) for r in v)


def _observer(v: Any) -> bool:
    return v is None or (isinstance(v, dict) and all(_maybe(_number)(v.get(k)) for k in ("alignment", "engagement")))


def _answer(v: Any) -> bool:
    return v is None or _text(v) or _number(v)


_TEXT, _COUNT, _SCORE = (_text, "text"), (_whole, "a whole number"), (_maybe(_number), "a finite number or null")
_RATINGS = (_ratings, "a list of {rater: text, rating: a finite number, reason: text}")
_OBSERVER = (_observer, "null or {alignment, engagement: finite numbers or null}")
# The data fields the instruments read of each of our kinds (harvest: datasets; rate: transcripts), with their type.
_FIELDS: dict[str, dict[str, tuple[Callable[[Any], bool], str]]] = {
    "said": {"to": _TEXT, "text": _TEXT},
    "conversation": {"with": _TEXT},
    "interaction": {"agent": _TEXT, "iteration": _COUNT, "question_id": _TEXT, "category": _TEXT,
                    "question": _TEXT, "draft": _TEXT, "revised": _TEXT, "ratings": _RATINGS,
                    "revision_ratings": _RATINGS, "mean_draft": _SCORE, "mean_revision": _SCORE,
                    "observer_before": _OBSERVER, "observer_after": _OBSERVER},
    "survey_answer": {"survey": _TEXT, "item": _TEXT, "type": _TEXT, "question": _TEXT,
                      "answer": (_answer, "text, a finite number or null"), "ok": (lambda v: isinstance(v, bool),
                                                                                  "true or false")},
}
_OPTIONAL = frozenset({"observer_before", "observer_after"})
_NUMBERED = frozenset({"likert", "number"})  # survey types whose answer harvest reads as a number


def _event_problem(event: Mapping[str, Any]) -> str | None:
    """What is wrong with an event's fields (``step is 'x' (text), not a whole number, 0 or more``), or None."""
    for key, (ok, want) in _TOP.items():
        if key not in event:
            return f"no {key} (an event has step, sim_time, agent, kind, data)"
        if not ok(event[key]):
            return f"{key} is {_shown(event[key])}, not {want}"
    data = event["data"]
    for key, (ok, want) in _FIELDS.get(event["kind"], {}).items():
        if key not in data:
            if key in _OPTIONAL:
                continue
            return f"no data.{key} in a {event['kind']} event"
        if not ok(data[key]):
            return f"data.{key} is {_shown(data[key])}, not {want}"
    if event["kind"] == "survey_answer" and data["type"] in _NUMBERED and not _maybe(_number)(data["answer"]):
        return f"data.answer is {_shown(data['answer'])}, not a finite number or null (a {data['type']} answer)"
    return None


def _shown(value: Any) -> str:
    """A value as a message shows it: its JSON, cut to 40 characters, and its JSON type."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (ValueError, RecursionError):
        text = "..."
    return f"{text if len(text) <= 40 else text[:37] + '...'} ({_json_type(value)})"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    names = {str: "text", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return next((name for kind, name in names.items() if isinstance(value, kind)), type(value).__name__)
