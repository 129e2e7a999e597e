import json
from datetime import datetime, timedelta

import pytest

from simulacra.agents.plan import (
    HourBlock,
    Plan,
    PlannedAction,
    hourly_schema,
    parse_day_plan,
    parse_decomposition,
    parse_hourly,
)
from simulacra.errors import ParseError

T0 = datetime(2026, 2, 14, 14, 0)


def acts(*pairs):
    return {"actions": [{"minutes": m, "activity": a} for m, a in pairs]}


def test_decomposition_is_laid_end_to_end() -> None:
    actions = parse_decomposition(acts((15, "brew coffee"), (10, "serve"), (5, "wipe tables")), start=T0,
                                  total_minutes=30)
    assert actions == [PlannedAction(T0, 15, "brew coffee"), PlannedAction(T0 + timedelta(minutes=15), 10, "serve"),
                       PlannedAction(T0 + timedelta(minutes=25), 5, "wipe tables")]


def test_decomposition_is_cut_at_the_end_of_the_block() -> None:
    actions = parse_decomposition(acts((15, "a"), (15, "b"), (15, "c")), start=T0, total_minutes=20)
    assert [(a.minutes, a.activity) for a in actions] == [(15, "a"), (5, "b")]


def test_decomposition_stretches_the_last_action_to_fill_the_block() -> None:
    actions = parse_decomposition(acts((10, "a"), (5, "b")), start=T0, total_minutes=60)
    assert [(a.minutes, a.activity) for a in actions] == [(10, "a"), (50, "b")]
    assert actions[-1].end == T0 + timedelta(hours=1)


def test_decomposition_drops_unusable_items() -> None:
    data = {"actions": [{"minutes": 7, "activity": "odd"}, {"minutes": 10, "activity": " "}, {"minutes": 5,
                                                                                             "activity": "ok"}]}
    assert [(a.minutes, a.activity) for a in parse_decomposition(data, start=T0, total_minutes=10)] == [(10, "ok")]
    with pytest.raises(ParseError) as err:
        parse_decomposition({"actions": []}, start=T0, total_minutes=10)
    assert err.value.feedback == 'List actions of 5, 10 or 15 minutes in "actions", each with an activity.'


def test_hourly_schedule() -> None:
    data = {"hours": [{"place": "cafe", "activity": "open the cafe"}, {"place": "park", "activity": "walk"}]}
    blocks = parse_hourly(data, start=T0, places=["cafe", "park"], hours=2)
    assert blocks == [HourBlock(T0, "cafe", "open the cafe"), HourBlock(T0 + timedelta(hours=1), "park", "walk")]
    with pytest.raises(ParseError, match="expected 3 hourly entries"):
        parse_hourly(data, start=T0, places=["cafe", "park"], hours=3)
    with pytest.raises(ParseError) as err:
        parse_hourly({"hours": [{"place": "moon", "activity": "x"}]}, start=T0, places=["cafe"], hours=1)
    assert err.value.feedback == "Entry 1 needs a place among cafe and an activity."
    schema = hourly_schema(["cafe"], 4)
    assert schema["properties"]["hours"]["minItems"] == schema["properties"]["hours"]["maxItems"] == 4


def test_day_plan() -> None:
    assert parse_day_plan({"plan": [" open the cafe ", "", "host the party"]}) == ["open the cafe", "host the party"]
    with pytest.raises(ParseError):
        parse_day_plan({"plan": [" "]})


def test_plan_lookup_replan_and_state() -> None:
    plan = Plan()
    assert plan.needs_day(T0)
    plan.hours = [HourBlock(T0, "cafe", "work"), HourBlock(T0 + timedelta(hours=1), "park", "walk")]
    plan.actions = parse_decomposition(acts((15, "a"), (15, "b"), (15, "c"), (15, "d")), start=T0,
                                       total_minutes=60)
    now = T0 + timedelta(minutes=20)
    assert plan.block_at(now).place == "cafe"
    assert plan.action_at(now).activity == "b"
    assert not plan.needs_day(T0 + timedelta(minutes=90))
    assert plan.needs_day(T0 + timedelta(hours=2))
    plan.replace_from(now, [PlannedAction(now, 40, "chat with Maria")])
    assert [a.activity for a in plan.actions] == ["a", "chat with Maria"]
    assert plan.action_at(T0 + timedelta(minutes=50)).activity == "chat with Maria"
    again = Plan()
    again.set_state(json.loads(json.dumps(plan.get_state())))
    assert again.get_state() == plan.get_state()
    assert again.action_at(now) == plan.action_at(now)
