import re
from datetime import datetime, timedelta

import pytest

from simulacra.memory.scoring import RetrievalWeights
from simulacra.memory.stream import MemoryStream
from tests.fakes import bag_of_words

T0 = datetime(2026, 2, 14, 9, 0)


def stream(store, agent="Ann", **kw) -> MemoryStream:
    return MemoryStream(agent, store=store, embed=bag_of_words, weights=RetrievalWeights(**kw), top_k=2)


def test_commit_stores_in_chroma_with_ratings(chroma_store) -> None:
    s = stream(chroma_store)
    s.add("observation", "Bob is baking bread at the cafe", T0)
    s.add("utterance", 'Isabella said to Ann: "party at the cafe tonight"', T0, evidence=())
    assert s.pending() == ["Bob is baking bread at the cafe", 'Isabella said to Ann: "party at the cafe tonight"']
    nodes = s.commit([2, 8])
    assert [(n.id, n.importance, n.kind) for n in nodes] == [("Ann:0", 2, "observation"), ("Ann:1", 8, "utterance")]
    assert s.importance_since_reflection == 10
    stored = chroma_store.load("Ann")
    assert stored.ids == ["Ann:0", "Ann:1"]
    assert stored.embeddings.shape == (2, 256)
    assert stored.metadatas[1]["importance"] == 8
    assert s.pending() == []


def test_ratings_must_match_pending(chroma_store) -> None:
    s = stream(chroma_store)
    s.add("observation", "x", T0)
    with pytest.raises(ValueError, match=re.escape("got 2 ratings for 1 pending memories")):
        s.commit([1, 2])
    with pytest.raises(ValueError, match=re.escape("unknown memory kind 'dream'")):
        s.add("dream", "x", T0)


def test_retrieval_ranks_and_updates_last_access(chroma_store) -> None:
    s = stream(chroma_store)
    for text, hour in [("walked the dog in the park", 0), ("the party is at the cafe", 1), ("ate lunch", 2)]:
        s.add("observation", text, T0 + timedelta(hours=hour))
    s.commit([3, 3, 3])
    now = T0 + timedelta(hours=5)
    best = s.retrieve("party cafe", now, k=1)
    assert [n.text for n in best] == ["the party is at the cafe"]
    assert best[0].last_access == now
    assert s.retrievals == 1
    # Persisted at the next commit (once per step, not per query).
    s.commit([])
    assert chroma_store.load("Ann").metadatas[1]["last_access"] == now.isoformat()


def test_retrieval_kinds_filter_and_default_k(chroma_store) -> None:
    s = stream(chroma_store)
    s.add("observation", "a", T0)
    s.add("reflection", "b", T0)
    s.add("plan", "c", T0)
    s.commit([1, 2, 3])
    assert [n.kind for n in s.retrieve("x", T0, kinds=["reflection"])] == ["reflection"]
    assert len(s.retrieve("x", T0)) == 2
    assert s.retrieve("x", T0, kinds=["utterance"]) == []


def test_streams_are_separate_per_agent(chroma_store) -> None:
    ann, bob = stream(chroma_store, "Ann"), stream(chroma_store, "Bob")
    ann.add("observation", "secret of Ann", T0)
    ann.commit([5])
    bob.add("observation", "Bob's note", T0)
    bob.commit([1])
    assert chroma_store.load("Bob").texts == ["Bob's note"]
    assert bob.mentions(["secret"]) is False
    assert ann.mentions(["SECRET"]) is True


def test_state_round_trip_reloads_from_the_store(chroma_store) -> None:
    s = stream(chroma_store)
    s.add("observation", "one", T0)
    s.commit([7])
    s.retrieve("one", T0 + timedelta(hours=1))
    s.add("plan", "pending plan", T0)
    state = s.get_state()
    again = stream(chroma_store)
    again.set_state(state)
    assert [(n.text, n.importance, n.last_access) for n in again.nodes] == [("one", 7, T0 + timedelta(hours=1))]
    assert again.pending() == ["pending plan"]
    assert again.importance_since_reflection == 7
    assert again.retrieve("one", T0, k=1)[0].id == "Ann:0"


def test_many_memories_grow_the_index(chroma_store) -> None:
    s = stream(chroma_store)
    for i in range(150):
        s.add("observation", f"event number {i}", T0 + timedelta(minutes=i))
    s.commit([1 + i % 10 for i in range(150)])
    assert len(s) == 150
    best = s.retrieve("event number 149", T0 + timedelta(hours=3), k=3)
    assert len(best) == 3
    assert len(chroma_store.load("Ann").ids) == 150
