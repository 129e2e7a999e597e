"""The BabyAGI task board (add, dedup, prioritise, claim, expire, finish, checkpoint) and its result store."""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

import chromadb
import pytest

from simulacra.memory.task_board import Task, TaskBoard, TaskStatus
from simulacra.memory.task_results import TaskResults
from tests.fakes import bag_of_words

OBJECTIVE = "open the vault"


class Recorder:
    """Collects ``on_event`` calls, checking each is JSON-safe."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        json.dumps(data)
        self.events.append((kind, data))

    @property
    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]


def board(**options: Any) -> TaskBoard:
    return TaskBoard(OBJECTIVE, **options)


def ids(tasks: list[Task]) -> list[int]:
    return [t.id for t in tasks]


def test_add_appends_open_tasks_with_increasing_ids() -> None:
    b = board()
    first = b.add(["find the key", "  read   the\nmap "], by="A", step=2)
    second = b.add("pick the lock", by="B", step=3)
    assert [(t.id, t.text, t.priority, t.status) for t in first + second] == [
        (1, "find the key", 0, "open"), (2, "read the map", 1, "open"), (3, "pick the lock", 2, "open")]
    assert (second[0].created_by, second[0].created_at, b.next_id, len(b)) == ("B", 3, 4, 3)
    assert b.counts() == {"created": 3, "open": 3, "claimed": 0, "done": 0, "failed": 0, "dropped": 0}


@pytest.mark.parametrize(("embed", "text", "reason"), [
    (None, "", "empty"),
    (None, "   \n ", "empty"),
    (None, "  Find   THE key ", "duplicate of task 1"),
    (bag_of_words, "FIND the KEY", "duplicate of task 1"),
    (bag_of_words, "the key find", "near-duplicate of task 1 (similarity 1.00)"),
    (bag_of_words, "the map read", "near-duplicate of task 2 (similarity 1.00)"),
    (None, "the key find", None),  # word order only differs: without an embedder it is a new task
    (bag_of_words, "bribe the guard", None),
    (bag_of_words, "find the guard", None),  # shares two of three words: similarity 0.67
])
def test_add_refuses_empty_and_repeated_texts(embed: Any, text: str, reason: str | None) -> None:
    recorder = Recorder()
    b = board(embed=embed, on_event=recorder)
    b.add(["find the key", "read the map"], by="A", step=0)
    added = b.add([text], by="B", step=1)
    if reason is None:
        assert [t.id for t in added] == [3]
        assert recorder.kinds[-1] == "task_created"
    else:
        assert added == []
        assert recorder.events[-1] == ("task_dropped", {"id": None, "text": " ".join(text.split()), "agent": "B",
                                                        "step": 1, "reason": reason})
        assert len(b) == 2


def test_repeats_within_one_batch_are_refused_too() -> None:
    b = board(embed=bag_of_words)
    assert [t.text for t in b.add(["find the key", "key the find", "find the key"], by="A", step=0)] == [
        "find the key"]


def test_done_tasks_block_repeats_but_failed_and_dropped_ones_do_not() -> None:
    b = board(embed=bag_of_words, max_attempts=1)
    b.add(["find the key", "read the map", "pick the lock"], by="A", step=0)
    b.complete(b.claim("A", step=0).id, agent="A", result="found under the mat", step=0)
    b.fail(b.claim("A", step=1).id, agent="A", reason="too dark", step=1)
    b.give_up(b.claim("A", step=2).id, agent="A", reason="no lock here", step=2)
    assert [t.status for t in b.tasks] == ["done", "failed", "dropped"]
    added = b.add(["key find the", "map the read", "the lock pick"], by="B", step=3)
    assert [t.text for t in added] == ["map the read", "the lock pick"]


def test_a_full_board_drops_new_tasks_until_one_is_closed() -> None:
    recorder = Recorder()
    b = board(max_length=2, on_event=recorder)
    assert ids(b.add(["a", "b", "c"], by="A", step=0)) == [1, 2]
    assert recorder.events[-1][1]["reason"] == "board full"
    b.claim("A", step=1)
    assert b.add(["d"], by="A", step=1) == []  # claimed tasks still count
    b.complete(1, agent="A", result="ok", step=2)
    assert [t.text for t in b.add(["d", "e"], by="A", step=2)] == ["d"]
    assert recorder.kinds.count("task_dropped") == 3
    assert len(b) == 2


@pytest.mark.parametrize(("order", "open_order", "ignored"), [
    ([5, 3, 4], [5, 3, 4], []),
    ([4, 5, 3], [4, 5, 3], []),
    ([5], [5, 3, 4], []),  # missing open tasks follow in their old relative order
    ([], [3, 4, 5], []),
    ([4, 99, 1, 2, 3], [4, 3, 5], [99, 1, 2]),  # 99 is unknown, 1 is done, 2 is claimed
    ([5, 5, 3, True], [5, 3, 4], [True]),  # a repeat is ignored; True is not the id 1
    (["4", 4], [4, 3, 5], ["4"]),
])
def test_prioritise_applies_the_returned_order_exactly(order: list[Any], open_order: list[int],
                                                         ignored: list[Any]) -> None:
    recorder = Recorder()
    b = board(on_event=recorder)
    b.add(["a", "b", "c", "d", "e"], by="A", step=0)
    b.complete(b.claim("A", step=0).id, agent="A", result="ok", step=0)
    assert b.claim("B", step=0).id == 2
    assert ids(b.prioritise(order, by="A", step=1)) == open_order
    assert ids(b.tasks) == [1, 2, *open_order]  # claimed and closed tasks keep their places
    assert [t.priority for t in b.tasks] == [0, 1, 2, 3, 4]
    assert recorder.events[-1] == ("task_prioritised", {"order": open_order, "ignored": ignored, "agent": "A",
                                                        "step": 1})
    assert b.claim("C", step=1).id == open_order[0]


def test_claims_expire_after_the_ttl_and_count_attempts_until_the_task_fails() -> None:
    recorder = Recorder()
    b = board(claim_ttl=3, max_attempts=2, on_event=recorder)
    b.add(["a", "b", "c"], by="A", step=0)
    assert b.claim("A", step=0).id == 1
    assert b.claim("A", step=1).id == 1  # one claim per agent: A gets its own task back
    assert b.claim("B", step=2).id == 2  # one claim per task: B gets the next one
    assert b.expire(3) == []  # A's claim is 3 steps old: still held
    expired = b.expire(4)
    assert [(t.id, t.status, t.attempts, t.claimed_by) for t in expired] == [(1, "open", 1, None)]
    assert recorder.events[-1] == ("claim_expired", expired[0].to_dict() | {"agent": "A", "step": 4})
    assert b.held_by("A") is None and b.held_by("B").id == 2
    b.complete(2, agent="B", result="done b", step=4)
    again = b.claim("B", step=4)  # the expired task is first again, and anyone may take it
    assert (again.id, again.claimed_by, again.attempts) == (1, "B", 1)
    assert b.expire(8) == [b.get(1)]
    assert (b.get(1).status, b.get(1).attempts, b.get(1).reason) == ("failed", 2, "too many attempts")
    assert recorder.kinds[-2:] == ["task_claimed", "task_failed"]
    assert recorder.events[-1][1]["agent"] == "B" and recorder.events[-1][1]["final"] is True
    assert b.claim("A", step=9).id == 3
    assert b.counts() == {"created": 3, "open": 0, "claimed": 1, "done": 1, "failed": 1, "dropped": 0}


def test_an_agent_whose_claim_expired_leaves_the_task_to_others_for_that_step() -> None:
    b = board(claim_ttl=1)
    b.add(["a", "b"], by="A", step=0)
    assert b.claim("A", step=0).id == 1
    assert [t.id for t in b.expire(2)] == [1]
    assert b.claim("A", step=2).id == 2  # not task 1 again at once: A stalled on it
    assert b.claim("B", step=2).id == 1  # another agent takes it over
    b.complete(2, agent="A", result="done", step=3)
    assert [t.id for t in b.expire(4)] == [1]
    assert b.claim("B", step=4) is None  # nothing else is open: B waits a step
    assert b.claim("B", step=5).id == 1  # then a lone agent takes it back


def test_a_failure_reopens_the_task_until_max_attempts() -> None:
    recorder = Recorder()
    b = board(max_attempts=2, on_event=recorder)
    b.add(["pick the lock"], by="A", step=0)
    first = b.fail(b.claim("A", step=0).id, agent="A", reason="no pick", step=1)
    assert (first.status, first.attempts, first.reason, first.claimed_by) == ("open", 1, "no pick", None)
    second = b.fail(b.claim("B", step=1).id, agent="B", reason="jammed", step=2)
    assert (second.status, second.attempts, second.reason, second.claimed_by) == ("failed", 2, "jammed", "B")
    assert [(d["status"], d["final"]) for k, d in recorder.events if k == "task_failed"] == [
        ("open", False), ("failed", True)]
    assert b.claim("A", step=3) is None


@pytest.mark.parametrize(("action", "agent", "task_id", "message"), [
    ("complete", "B", 1, "'B' cannot complete task 1: it is claimed by 'A'; only the agent holding the claim may "
                         "complete it"),
    ("fail", "B", 1, "'B' cannot fail task 1: it is claimed by 'A'"),
    ("give_up", "B", 1, "'B' cannot give up task 1: it is claimed by 'A'"),
    ("complete", "A", 2, "'A' cannot complete task 2: it is open, not claimed; only the agent holding the claim "
                         "may complete it"),
    ("give_up", "A", 3, "'A' cannot give up task 3: it is done, not claimed"),
    ("fail", "A", 9, "no task 9 on the board; ids run from 1 to 3"),
])
def test_only_the_claiming_agent_may_finish_a_task(action: str, agent: str, task_id: int, message: str) -> None:
    b = board()
    b.add(["a", "b", "c"], by="A", step=0)
    b.prioritise([3, 1, 2], by="A", step=0)
    b.complete(b.claim("C", step=0).id, agent="C", result="ok", step=0)
    assert b.claim("A", step=0).id == 1  # the done task 3 is skipped
    before = b.get_state()
    extra = {"result": "r"} if action == "complete" else {"reason": "r"}
    with pytest.raises(ValueError, match=re.escape(message)):
        getattr(b, action)(task_id, agent=agent, step=1, **extra)
    assert b.get_state() == before


def test_give_up_drops_the_task_with_its_reason() -> None:
    recorder = Recorder()
    b = board(on_event=recorder)
    b.add(["fly to the moon", "walk to the door"], by="A", step=0)
    dropped = b.give_up(b.claim("A", step=0).id, agent="A", reason="impossible", step=1)
    assert (dropped.status, dropped.reason, dropped.claimed_by) == (TaskStatus.DROPPED, "impossible", "A")
    assert recorder.events[-1] == ("task_dropped", dropped.to_dict() | {"agent": "A", "step": 1})
    assert b.claim("A", step=1).text == "walk to the door"
    assert b.counts()["dropped"] == 1 and len(b) == 1


def test_objective_done_stops_claims() -> None:
    recorder = Recorder()
    b = board(on_event=recorder)
    b.add(["a", "b"], by="A", step=0)
    b.claim("A", step=0)
    b.objective_done("A", "the vault is open", 1)
    b.objective_done("B", "again", 2)  # no second event
    assert (b.finished, b.finish_reason) == (True, "the vault is open")
    assert b.claim("A", step=2) is None and b.claim("B", step=2) is None
    assert recorder.events[-1] == ("objective_done", {
        "objective": OBJECTIVE, "agent": "A", "reason": "the vault is open", "step": 1,
        "counts": {"created": 2, "open": 1, "claimed": 1, "done": 0, "failed": 0, "dropped": 0}})
    assert recorder.kinds.count("objective_done") == 1


def test_a_small_scenario_emits_exactly_these_events() -> None:
    recorder = Recorder()
    b = board(embed=bag_of_words, claim_ttl=1, max_attempts=2, on_event=recorder)
    b.add(["find the key", "key the find", "read the map"], by="A", step=0)
    b.prioritise([2, 1], by="A", step=0)
    b.claim("A", step=0)
    b.claim("B", step=0)
    b.complete(2, agent="A", result="the map shows a door", step=1)
    b.expire(2)
    b.claim("A", step=2)
    b.fail(1, agent="A", reason="no light", step=3)
    b.objective_done("B", "the door was open", 3)
    assert recorder.kinds == ["task_created", "task_dropped", "task_created", "task_prioritised", "task_claimed",
                              "task_claimed", "task_done", "claim_expired", "task_claimed", "task_failed",
                              "objective_done"]
    assert [(d.get("id"), d["agent"]) for _, d in recorder.events[4:10]] == [
        (2, "A"), (1, "B"), (2, "A"), (1, "B"), (1, "A"), (1, "A")]


def test_state_round_trips_through_json_into_a_fresh_board() -> None:
    b = board(embed=bag_of_words, claim_ttl=2)
    b.add(["find the key", "read the map", "pick the lock", "bribe the guard"], by="A", step=0)
    b.prioritise([3], by="A", step=0)
    b.complete(b.claim("A", step=0).id, agent="A", result="picked", step=1)
    b.claim("B", step=1)
    b.give_up(b.claim("A", step=1).id, agent="A", reason="no guard", step=2)
    state = json.loads(json.dumps(b.get_state()))

    fresh = TaskBoard("something else", embed=bag_of_words, claim_ttl=2)
    fresh.set_state(state)
    assert fresh.get_state() == b.get_state()
    assert (fresh.objective, fresh.counts(), fresh.next_id, fresh.tasks) == (OBJECTIVE, b.counts(), 5, b.tasks)
    assert fresh.held_by("B") == b.held_by("B")
    assert [t.id for t in fresh.expire(4)] == [1]  # B's claim from step 1 expires as it would have
    assert fresh.add(["the lock pick", "key find the"], by="A", step=4) == []  # embeddings are recomputed
    assert [(t.id, t.text) for t in fresh.add(["open the vault"], by="A", step=4)] == [(5, "open the vault")]


def test_a_finished_board_stays_finished_after_a_restore() -> None:
    b = board()
    b.add(["a"], by="A", step=0)
    b.objective_done("A", "done", 1)
    fresh = board()
    fresh.set_state(json.loads(json.dumps(b.get_state())))
    assert (fresh.finished, fresh.finish_reason, fresh.claim("A", step=2)) == (True, "done", None)


@pytest.mark.parametrize(("state", "message"), [
    ({}, "not a task board state (KeyError: 'tasks'); give what TaskBoard.get_state returned"),
    ({"tasks": [{"id": 1, "status": "lost"}], "next_id": 2, "finished": False, "finish_reason": "",
      "objective": "o"}, "not a task board state (ValueError: 'lost' is not a valid TaskStatus)"),
])
def test_set_state_refuses_what_is_not_a_board_state(state: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        board().set_state(state)


@pytest.mark.parametrize(("options", "message"), [
    ({"max_length": 0}, "max_length must be at least 1, got 0"),
    ({"max_attempts": 0}, "max_attempts must be at least 1, got 0"),
    ({"claim_ttl": -1}, "claim_ttl must be at least 0, got -1"),
    ({"dedup_threshold": 0.0}, "dedup_threshold must be in (0, 1], got 0.0"),
    ({"dedup_threshold": 1.5}, "dedup_threshold must be in (0, 1], got 1.5"),
])
def test_limits_out_of_range_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        board(**options)


def results(request: pytest.FixtureRequest) -> TaskResults:
    name = f"results{zlib.crc32(request.node.nodeid.encode())}"
    return TaskResults(chromadb.EphemeralClient(), embed=bag_of_words, collection=name)


def test_results_are_retrieved_best_first(request: pytest.FixtureRequest) -> None:
    store = results(request)
    b = board()
    b.add(["find the key"], by="A", step=0)
    done = b.complete(b.claim("A", step=0).id, agent="A", result="the key was under the mat", step=1)
    assert store.add(done) == "r0.task1"
    store.add({**done.to_dict(), "id": 2, "text": "read the map", "result": "the map shows a vault door",
               "agent": "B", "step": 4})  # a task_done event's data
    store.add((3, "pick the lock", "the lock opened with a hairpin", "C", 7))
    assert len(store) == 3
    best = store.retrieve("where is the vault door on the map", k=1)
    assert best == [{"task_id": 2, "task": "read the map", "result": "the map shows a vault door", "agent": "B",
                     "step": 4}]
    assert [r["task_id"] for r in store.retrieve("open the lock with a hairpin", k=2)][0] == 3
    assert [r["agent"] for r in store.retrieve("key under the mat", k=1)] == ["A"]
    assert len(store.retrieve("anything", k=10)) == 3  # never more than stored
    assert store.retrieve("anything", k=0) == []


def test_results_get_unique_ids_and_bad_input_is_refused(request: pytest.FixtureRequest) -> None:
    store = results(request)
    assert store.retrieve("anything") == []
    row = (1, "find the key", "under the mat", "A", 1)
    assert [store.add(row), store.add(row)] == ["r0.task1", "r1.task1"]
    assert len(store.retrieve("find the key")) == 2
    with pytest.raises(TypeError, match=re.escape("cannot store a result from {'id': 1}; give a Task")):
        store.add({"id": 1})
