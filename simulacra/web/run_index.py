"""A run folder indexed for the web view.

Where each step's events lie in ``events.jsonl``, the world drawn at every step, the metrics so far, and what
the page shows of one agent.

The log is read once, front to back, and then only what was appended since (a live run grows it): `refresh`.
A request for a step range reads that range's bytes, never the whole log, so a big run opens quickly.

The log is untrusted input (a run folder may come from anyone): what is kept grows with its lines, never with the
step numbers written in them (a step 10**12 is one more entry), and an event whose data has the wrong shape
changes nothing drawn or counted; the feed still shows it as text.
"""

from __future__ import annotations

import json
import math
import threading
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulacra.errors import SimError
from simulacra.events import EventKind
from simulacra.web.describe import describe
from simulacra.web.frames import Frame, make_frame

__all__ = ["RunIndex", "ViewError"]

# What an agent is doing: the newest of these events at or before the step is its "now".
DOING = ("decided", "activity", "waited", "moved", "said", "conversation", "task_proposed", "skill_ran",
         "task_claimed", "task_done", "tool_called", "interaction", "talk_failed", "move_blocked")
# Events that are an agent's own experience: the view's memories where the run kept no store of them.
EXPERIENCE = ("observed", "said", "activity", "moved", "waited", "conversation", "reflected", "injected",
              "talk_failed", "move_blocked", "interaction", "criticised", "task_done", "skill_added")
TASKS = ("task_proposed", "task_completed", "task_failed", "task_claimed", "task_done", "skill_added")
MEMORIES_SHOWN = 10
MAX_LINE = 16 * 2**20  # an event line (a crafting map, a skill's code, 1,000 starting places) is far shorter


class ViewError(SimError):
    """A run folder the view cannot open (one line, exit 2)."""


@dataclass
class AgentTrail:
    """Where one agent's events lie: (step, kind, byte offset) in log order."""

    marks: list[tuple[int, str, int]] = field(default_factory=list)

    def upto(self, step: int, kinds: tuple[str, ...] | None = None) -> list[tuple[int, str, int]]:
        """Marks at or before ``step``, optionally of some kinds only."""
        return [m for m in self.marks if m[0] <= step and (kinds is None or m[1] in kinds)]


class RunIndex:
    """The index of one run folder; safe to read from the web server's threads while a run appends."""

    def __init__(self, run_dir: Path, *, live: bool = False) -> None:
        """Reads the run folder's event log (a live run's may not exist yet).

        Raises:
            ViewError: Not a run folder, or a log with events of a step before ``run_started``.
        """
        self.run_dir = run_dir
        self.events_path = run_dir / "events.jsonl"
        self.live = live
        if not run_dir.is_dir() or (not live and not self.events_path.is_file()):
            msg = (f"{run_dir}: not a run folder (no events.jsonl); give a folder that python run.py FILE wrote, "
                   f"e.g. python run.py view runs/town-<timestamp>")
            raise ViewError(msg)
        self._lock = threading.Lock()
        self._read_to = 0
        self.start: dict[str, Any] = {}
        self.world_type: str | None = None
        self.places: list[dict[str, Any]] = []
        self.people: dict[str, dict[str, str]] = {}
        self.frame: Frame | None = None
        # One entry per step that has events, in log order: never one per step number (a log may claim any).
        self.step_numbers: list[int] = []
        self.frames: list[dict[str, Any]] = []  # frames[i]: the world after step step_numbers[i]
        self.spans: list[list[int]] = []  # spans[i]: [first byte, end byte] of that step's events
        self.sim_times: list[str] = []
        self.trails: dict[str, AgentTrail] = defaultdict(AgentTrail)
        self.metrics: dict[str, dict[int, float]] = defaultdict(dict)
        self._survey: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0])  # [sum, count]
        self.kinds: set[str] = set()
        self.status = "running"
        self.refresh()

    # -- reading the log -------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Indexes what was appended to the log since the last call (whole lines only).

        Raises:
            ViewError: A line that is not an event, with its byte offset.
        """
        with self._lock:
            if not self.events_path.is_file() or self.events_path.stat().st_size == self._read_to:
                return
            with self.events_path.open("rb") as log:
                log.seek(self._read_to)
                while line := log.readline(MAX_LINE + 1):
                    if len(line) > MAX_LINE:
                        msg = (f"{self.events_path}: byte {self._read_to}: a line over {MAX_LINE // 2**20} MB; no "
                               f"event is that long, the log is damaged: view a run folder that python run.py wrote")
                        raise ViewError(msg)
                    if not line.endswith(b"\n"):
                        break  # a line being written: read it next time
                    self._index(line, self._read_to)
                    self._read_to += len(line)
            self._close_step()

    def _index(self, line: bytes, offset: int) -> None:
        try:
            event = load_event(line)
        except (ValueError, RecursionError) as err:
            msg = (f"{self.events_path}: byte {offset}: not an event line ({err}); the log is damaged: "
                   f"view a run folder that python run.py wrote")
            raise ViewError(msg) from err
        step, kind, data = event["step"], event["kind"], event.get("data")
        agent = event["agent"] if isinstance(event.get("agent"), str) else None
        if self.frame is None:
            # A world's construction may announce things before run_started (a BabyAGI board's first tasks),
            # at step 0; anything later before it means a damaged log.
            if kind == EventKind.RUN_STARTED:
                self.start = data if isinstance(data, dict) else {}
                self.world_type, self.places, self.people = _scenario_of(self.run_dir)
                self.frame = make_frame(self.world_type, self.start)
            elif step != 0:
                msg = (f"{self.events_path}: a step {step} event ({kind!r}) before run_started; "
                       f"the log is damaged")
                raise ViewError(msg)
        if not self.step_numbers or step > self.step_numbers[-1]:  # a new step: the world as the last one left it
            self._close_step()
            self.step_numbers.append(step)
            self.spans.append([offset, offset])
            self.sim_times.append(event["sim_time"] if isinstance(event.get("sim_time"), str) else "")
            if self.frame is not None:
                self.frame.begin_step()
        step = self.step_numbers[-1]  # an earlier step's event after a later one's is kept with the later one
        self.spans[-1][1] = offset + len(line)
        self.kinds.add(kind)
        if agent:
            self.trails[agent].marks.append((step, kind, offset))
        try:
            self._apply(step, agent, kind, data)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            pass  # data of the wrong shape changes nothing drawn or counted; the feed shows it as text

    def _apply(self, step: int, agent: str | None, kind: str, data: Any) -> None:
        if self.frame is not None:
            self.frame.apply(agent, kind, data)
        if kind == EventKind.STEP_ENDED:
            for key, value in data.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    self.metrics[key][step] = value
        elif kind == EventKind.SURVEY_ANSWER and data.get("ok"):
            self._survey_value(step, data)
        elif kind == EventKind.RUN_FINISHED:
            status = data.get("status", "completed")
            self.status = status if isinstance(status, str) else "completed"

    def _survey_value(self, step: int, data: dict[str, Any]) -> None:
        answer, yes_no = data.get("answer"), data.get("type") == "yes_no"  # yes_no answers are "yes" or "no"
        value = float(answer == "yes") if yes_no else answer
        if isinstance(value, int | float) and not isinstance(value, bool):
            survey, item = data["survey"], data["item"]
            if not isinstance(survey, str) or not isinstance(item, str):
                return
            key = f"survey.{survey}.{item}" + (".yes" if yes_no else ".mean")
            total = self._survey[(key, step)]
            total[0] += float(value)
            total[1] += 1
            self.metrics[key][step] = round(total[0] / total[1], 4)

    def _close_step(self) -> None:
        if self.frame is None or not self.spans:
            return
        picture = self.frame.picture()
        if len(self.frames) == len(self.spans):
            self.frames[-1] = picture  # the last step, grown since
        else:
            self.frames.append(picture)

    # -- what the page asks --------------------------------------------------------------------------------
    @property
    def steps_done(self) -> int:
        """The last step with events (0: only ``run_started``)."""
        return self.step_numbers[-1] if self.step_numbers else 0

    @property
    def agent_names(self) -> list[str]:
        """The agents ``run_started`` names."""
        agents = self.start.get("agents")
        return list(agents) if isinstance(agents, dict) else []

    def meta(self) -> dict[str, Any]:
        """The run: its folder's name, scenario, world, status, steps so far and in all, agents, places, kinds.

        The folder's name only: where it lies on this machine is none of the page's business.
        """
        self.refresh()
        total = self.start.get("steps")
        return {"run_name": self.run_dir.resolve().name, "scenario": self.start.get("scenario"),
                "world": self.world_type, "seed": self.start.get("seed"), "status": self.status, "live": self.live,
                "steps": self.steps_done, "total_steps": total if _whole(total) else None,
                "agents": self.agent_names, "places": self.places,
                "kinds": sorted(self.kinds), "metrics": sorted(self.metrics), "provenance": self._provenance()}

    def _provenance(self) -> dict[str, Any] | None:
        """What the run was made with, from its ``manifest.json`` (no paths); None without one."""
        from simulacra.runs.manifest import Manifest

        try:
            manifest = Manifest.find(self.run_dir)
        except SimError:
            return {"damaged": True}  # the page says so; `python run.py verify` names what is wrong
        if manifest is None:
            return None
        data, model = manifest.data, manifest.data.get("model") or {}
        return {"simulacra_version": data.get("simulacra_version"), "git_commit": data.get("git_commit"),
                "python": data.get("python"), "model_id": model.get("id"), "model_sha256": model.get("sha256"),
                "embedder_sha256": data.get("embedder_sha256"), "scenario_sha256": data.get("scenario_sha256")}

    def frame_at(self, step: int) -> dict[str, Any]:
        """The world after ``step`` (clamped to the steps there are), with the simulated clock then."""
        self.refresh()
        if not self.frames:
            return {"kind": "empty"}
        step = _clamp(step, self.steps_done)
        at = min(self._slot(step), len(self.frames) - 1)
        return {"step": step, "sim_time": self.sim_times[at], **self.frames[at]}

    def events(self, first: int, last: int, *, agent: str | None = None, kind: str | None = None,
               limit: int = 200) -> list[dict[str, Any]]:
        """The newest ``limit`` events of steps ``first``..``last``, of one agent and/or kind, each described.

        Only the bytes of those steps are read (or, for one agent, only its own lines).
        """
        self.refresh()
        first, last = _clamp(first, self.steps_done), _clamp(last, self.steps_done)
        if agent is not None:
            marks = [m for m in self.trails.get(agent, AgentTrail()).marks
                     if first <= m[0] <= last and (kind is None or m[1] == kind)]
            return [self._described(e) for e in self._read([m[2] for m in marks[-limit:]])]
        start, end = bisect_left(self.step_numbers, first), bisect_right(self.step_numbers, last) - 1
        if start > end:
            return []
        with self.events_path.open("rb") as log:
            log.seek(self.spans[start][0])
            chunk = log.read(self.spans[end][1] - self.spans[start][0])
        found = [load_event(line) for line in chunk.splitlines()]
        return [self._described(e) for e in found if kind is None or e["kind"] == kind][-limit:]

    def metric_series(self, upto: int) -> dict[str, list[list[float]]]:
        """Every metric as [step, value] pairs up to ``upto``."""
        self.refresh()
        return {key: [[s, v] for s, v in sorted(values.items()) if s <= upto]
                for key, values in sorted(self.metrics.items())}

    def agent(self, name: str, step: int, memories: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """What the page shows of one agent at ``step``: now, plan, tasks and skills, recent memories.

        Args:
            name: The agent.
            step: The slider's step.
            memories: The agent's stored memories up to the step, when the run kept a store of them (generative
                agents); otherwise its own recent experience from the log is shown.

        Raises:
            KeyError: No agent of that name in the run.
        """
        self.refresh()
        if name not in self.trails and name not in self.agent_names:
            raise KeyError(name)
        trail = self.trails.get(name, AgentTrail())
        now = trail.upto(step, DOING)[-1:]
        plans = trail.upto(step, ("planned",))
        tasks = trail.upto(step, TASKS)[-8:]
        lived = trail.upto(step, EXPERIENCE)[-MEMORIES_SHOWN:]
        read = self._read([m[2] for m in now + plans[-3:] + tasks])
        now_event, plan_events, task_events = read[:len(now)], read[len(now):len(read) - len(tasks)], read[-len(tasks):]
        return {"name": name, "step": step, **self.people.get(name, {}), "now": [self._described(e) for e in now_event],
                "plan": [_plan(e.get("data")) for e in plan_events],
                "tasks": [self._described(e) for e in task_events] if tasks else [],
                "memories": memories if memories is not None else
                [{"text": self._described(e)["text"], "kind": e["kind"], "step": e["step"]}
                 for e in reversed(self._read([m[2] for m in lived]))],
                "memory_source": "store" if memories is not None else "events"}

    def sim_time(self, step: int) -> str:
        """The simulated clock at ``step`` (empty before the log has it)."""
        return self.sim_times[self._slot(_clamp(step, self.steps_done))] if self.sim_times else ""

    def _slot(self, step: int) -> int:
        """Where the newest step at or before ``step`` is kept (a step without events is the one before it)."""
        return max(bisect_right(self.step_numbers, step) - 1, 0)

    def _read(self, offsets: list[int]) -> list[dict[str, Any]]:
        if not offsets:
            return []
        with self.events_path.open("rb") as log:
            found = []
            for offset in offsets:
                log.seek(offset)
                found.append(load_event(log.readline()))
        return found

    @staticmethod
    def _described(event: dict[str, Any]) -> dict[str, Any]:
        agent = event.get("agent")
        return {"step": event["step"], "sim_time": event.get("sim_time"),
                "agent": agent if isinstance(agent, str) else None, "kind": event["kind"], "text": describe(event)}


def load_event(line: bytes) -> dict[str, Any]:
    """One line of the log as an event: an object with a whole ``step`` (0 or more) and a string ``kind``.

    ``NaN``, ``Infinity`` and numbers too big for a float are read as null: the page's JSON has none of them.

    Raises:
        ValueError: Not JSON, or not an event (the message says which).
    """
    event = json.loads(line, parse_constant=lambda _: None, parse_float=_finite)
    if not isinstance(event, dict):
        msg = f"a JSON {type(event).__name__}, not an object"
        raise ValueError(msg)  # noqa: TRY004 - the callers catch ValueError: one kind of bad line
    if not _whole(event.get("step")) or event["step"] < 0 or not isinstance(event.get("kind"), str):
        msg = (f"step {_brief(event.get('step'))} and kind {_brief(event.get('kind'))}; want a whole step >= 0 and "
               f"a string kind")
        raise ValueError(msg)
    return event


def _finite(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _plan(data: Any) -> dict[str, Any]:
    data = data if isinstance(data, dict) else {}
    items = data.get("items")
    return {"level": data.get("level"), "items": items if isinstance(items, list) else []}


def _clamp(step: int, last: int) -> int:
    return min(max(step, 0), last)


def _scenario_of(run_dir: Path) -> tuple[str, list[dict[str, Any]], dict[str, dict[str, str]]]:
    """The world type, a town's places (name, kind, links) and every agent's persona, goal and home.

    Raises:
        ViewError: The run's ``scenario.yaml`` is missing or does not validate (its one-line message).
    """
    from simulacra.scenarios.loading import load_scenario

    try:
        scenario = load_scenario(run_dir / "scenario.yaml")
    except SimError as err:
        msg = f"{run_dir}: not a readable run folder: {err}"
        raise ViewError(msg) from err
    places = [{"name": p.name, "kind": p.kind, "links": list(p.links)} for p in getattr(scenario.world, "places", ())]
    people = {a.name: {"persona": a.persona, "goal": a.goal, "home": a.home or ""} for a in scenario.population}
    return scenario.world.type, places, people
