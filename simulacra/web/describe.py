"""One line of text per event for the web view's feed and agent panel."""

from __future__ import annotations

import json
from typing import Any

from simulacra.events import Event
from simulacra.runs.live_view import describe_event

__all__ = ["describe"]

MOST = 300  # characters of one line


def describe(event: dict[str, Any]) -> str:
    """The terminal view's line for the event, or one made here for the kinds it leaves out.

    The event comes from an untrusted log: data of the wrong shape gets the fallback line (kind: data as JSON).
    """
    try:
        line = describe_event(Event(event["step"], event.get("sim_time", ""), event.get("agent"), event["kind"],
                                    event["data"]))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        line = None
    if not isinstance(line, str):
        line = None
    return _cut(line or _own(event))


def _own(event: dict[str, Any]) -> str:
    who, kind = event.get("agent") or "the world", event["kind"]
    d: Any = event.get("data")
    try:
        match kind:
            case "observed":
                here = ", ".join(d.get("here") or []) or "nobody"
                return f"{who} at the {d['place']} sees {here}" + (f" and {d['unseen']} others" if d.get("unseen")
                                                                  else "")
            case "decided":
                target = d.get("place") or d.get("person") or d.get("text") or ""
                return f"{who} decides: {d['kind']} {target}".rstrip()
            case "waited":
                return f"{who} waits at the {d['place']}" + (f", {d['doing']}" if d.get("doing") else "")
            case "planned":
                items = d.get("items") or []
                first = items[0] if items else ""
                return f"{who} plans ({d.get('level')}): {len(items)} item(s), first {_short(first)}"
            case "reflected":
                return f"{who} reflects: " + "; ".join(_short(i.get("text", i)) for i in d.get("insights") or [])
            case "conversation":
                return f"{who} talked with {d.get('with')} at the {d.get('place')} ({d.get('turns')} turns)"
            case "interaction":
                return (f"{who} answered {d.get('question_id')}: rated {d.get('mean_draft')} → "
                        f"{d.get('mean_revision')} after revising")
            case "criticised":
                verdict = "success" if d.get("success") else "not yet"
                critique = f": {d['critique']}" if d.get("critique") else ""
                return f"critic on {who}'s {d.get('task')!r}: {verdict}{critique}"
            case "skill_written":
                reused = f", reusing {', '.join(d['retrieved'])}" if d.get("retrieved") else ""
                return f"{who} wrote {d.get('entry')}() for {d.get('task')!r}, round {d.get('round')}{reused}"
            case "reacted":
                person = f" with {d['person']}" if d.get("person") else ""
                return f"{who} reacts: {d.get('choice')}{person}" + (f": {d['reaction']}" if d.get("reaction") else "")
            case "injected":
                return f"{d.get('to')} hears: {d.get('text')}"
            case "step_ended":
                return "step ended: " + ", ".join(f"{k} {v}" for k, v in d.items())
    except (KeyError, TypeError, AttributeError, ValueError, IndexError):
        pass
    return f"{kind}: {json.dumps(d, ensure_ascii=False, sort_keys=True)}"


def _short(item: Any) -> str:
    text = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
    return _cut(text, 80)


def _cut(text: str, most: int = MOST) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"
