import io

from rich.console import Console

from simulacra.agents.llm import LLMStats
from simulacra.events import Event, EventKind
from simulacra.runs.live_view import LiveView, PlainView
from tests.conftest import ROOT

EVENTS = [
    Event(0, "2026-02-13T08:00", None, "run_started", {"agents": {"Ann": "cafe", "Bo": "park"}, "places": []}),
    Event(1, "2026-02-13T08:00", "Ann", "moved", {"from": "cafe", "to": "plaza", "destination": "park",
                                                  "arrived": False}),
    Event(1, "2026-02-13T08:00", "Bo", "said", {"to": "Ann", "text": "hello [there]", "place": "park"}),
    Event(1, "2026-02-13T08:00", None, "step_ended", {"said": 1}),
]


def test_plain_view_prints_lines() -> None:
    out = io.StringIO()
    view = PlainView(Console(file=out, width=200), total_steps=3)
    view.stats = LLMStats(calls=4, cache_hits=1)
    for event in EVENTS:
        view(event)
    lines = out.getvalue().splitlines()
    assert lines[0] == "[08:00] Ann walks cafe → plaza (to park)"
    assert lines[1] == '[08:00] Bo → Ann: "hello [there]"'
    assert lines[2].startswith("step 1/3 done at 2026-02-13T08:00 (")
    assert "LLM 4 calls, 1 cached, 0 failed" in lines[2]


def test_live_view_draws_header_agents_feed_and_stats() -> None:
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True, color_system=None)
    with LiveView(console, scenario="demo", total_steps=3, stats=LLMStats(calls=7, failures=1)) as view:
        for event in EVENTS:
            view(event)
    text = out.getvalue()
    for expected in ("demo", "step 1/3", "sim 2026-02-13 08:00", "Ann", "plaza", "walking to park", "Bo",
                     "talking to Ann", 'Bo → Ann: "hello [there]"', "calls 7", "failures 1", "1/3"):
        assert expected in text, expected


def test_readme_documents_every_event_kind() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [k.value for k in EventKind if f"| `{k.value}` |" not in readme]
    assert missing == []


CRAFTING = [
    Event(0, "2026-02-13T08:00", None, "run_started", {"agents": {"Steve": [12, 0]}}),
    Event(1, "2026-02-13T08:00", "Steve", "task_claimed", {"id": 1, "text": "Mine 3 log"}),
    Event(1, "2026-02-13T08:00", "Steve", "tool_called", {
        "task_id": 1, "task": "Mine 3 log", "tool": "mine", "args": {"block": "log", "count": 3}, "status": "ok",
        "result": {"mined": 3}, "message": "", "changes": [{"kind": "position", "x": 13, "y": 1}]}),
    Event(2, "2026-02-13T08:10", "Steve", "tool_called", {
        "task_id": 1, "task": "Mine 3 log", "tool": "craft", "args": {"item": "stick"}, "status": "error",
        "result": None, "message": "needs 2 planks", "changes": []}),
    Event(3, "2026-02-13T08:20", "Steve", "task_failed", {"id": 1, "text": "Mine 3 log", "reason": "too many "
                                                          "attempts", "final": True}),
    Event(3, "2026-02-13T08:20", "Alex", "task_failed", {"task": "Mine 1 log", "rounds": 4, "reason": "no tree"}),
]


def test_views_show_tool_calls_and_failed_tasks_of_both_kinds() -> None:
    out = io.StringIO()
    view = PlainView(Console(file=out, width=200), total_steps=3)
    for event in CRAFTING:
        view(event)
    assert out.getvalue().splitlines() == [
        "[08:00] Steve mine(block='log', count=3): ok",
        "[08:10] Steve craft(item='stick'): failed: needs 2 planks",
        "[08:20] task 1 failed for good: Mine 3 log (too many attempts)",
        "[08:20] Alex gave up 'Mine 1 log' after 4 rounds"]
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True, color_system=None)
    with LiveView(console, scenario="demo", total_steps=3, stats=LLMStats()) as live:
        for event in CRAFTING[:3]:
            live(event)
    assert "x=13, y=1" in out.getvalue() and "task 1: mine (ok)" in out.getvalue()


HOSTILE = ["[/]", "\\[link=https://evil.example]click[/link]", "[bold red]Eve", "\x1b]8;;https://evil.example\x07x"]


def test_names_and_words_are_printed_literally_never_as_markup_or_control_sequences() -> None:
    name, place, text, escape = HOSTILE
    events = [
        Event(0, "2026-02-13T08:00", None, "run_started", {"agents": {name: place, "Bo": "park"}, "places": []}),
        Event(1, "2026-02-13T08:00", name, "said", {"to": "Bo", "text": text, "place": place}),
        Event(1, "2026-02-13T08:00", "Bo", "activity", {"activity": escape, "place": place}),
        Event(1, "2026-02-13T08:00", None, "step_ended", {"said": 1}),
    ]
    live, plain = io.StringIO(), io.StringIO()
    console = Console(file=live, width=200, force_terminal=True, color_system="truecolor")
    with LiveView(console, scenario="[/]", total_steps=3, stats=LLMStats()) as view:
        for event in events:
            view(event)
    view_plain = PlainView(Console(file=plain, width=200), total_steps=3)
    for event in events:
        view_plain(event)
    for out in (live.getvalue(), plain.getvalue()):
        assert "[/]" in out and "\\[link=https://evil.example]click[/link]" in out and "[bold red]Eve" in out
        assert "\x1b]8;" not in out  # no terminal hyperlink, from markup or from the text itself
        assert "\ufffd]8;;https://evil.example\ufffdx" in out
