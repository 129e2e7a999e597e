import numpy as np
import pytest

from simulacra.memory.scoring import RetrievalWeights, min_max, retrieval_scores, top_k


def test_min_max() -> None:
    assert min_max(np.array([2.0, 4.0, 3.0])).tolist() == [0.0, 1.0, 0.5]
    assert min_max(np.array([5.0, 5.0])).tolist() == [0.0, 0.0]


def test_scores_by_hand() -> None:
    # Three memories: last accessed 0, 10 and 100 sim hours ago; importance 2, 8, 5; cosine 0.1, 0.3, 0.9.
    hours = np.array([0.0, 10.0, 100.0])
    importance = np.array([2.0, 8.0, 5.0])
    relevance = np.array([0.1, 0.3, 0.9])
    # recency = 0.995 ** hours = 1, 0.951110, 0.605770 -> normalised 1, 0.875986, 0
    r10, r100 = 0.995 ** 10, 0.995 ** 100
    rec = [1.0, (r10 - r100) / (1 - r100), 0.0]
    imp = [0.0, 1.0, 0.5]
    rel = [0.0, 0.25, 1.0]
    expected = [rec[i] + imp[i] + rel[i] for i in range(3)]
    scores = retrieval_scores(hours, importance, relevance, RetrievalWeights())
    assert scores == pytest.approx(expected)
    assert scores == pytest.approx([1.0, 2.125986, 1.5], abs=1e-6)
    assert top_k(scores, 2) == [1, 2]


def test_weights_change_the_ranking() -> None:
    hours = np.array([0.0, 10.0, 100.0])
    importance = np.array([2.0, 8.0, 5.0])
    relevance = np.array([0.1, 0.3, 0.9])
    only_relevance = RetrievalWeights(recency=0, importance=0, relevance=1)
    assert top_k(retrieval_scores(hours, importance, relevance, only_relevance), 3) == [2, 1, 0]
    only_recency = RetrievalWeights(recency=1, importance=0, relevance=0)
    assert top_k(retrieval_scores(hours, importance, relevance, only_recency), 3) == [0, 1, 2]
    slow_decay = RetrievalWeights(decay=0.5)  # 10 hours at 0.5 is as old as 100
    assert retrieval_scores(hours, importance, relevance, slow_decay)[1] == pytest.approx(0.000977 + 1 + 0.25,
                                                                                         abs=1e-5)


def test_top_k_ties_go_to_the_older_memory() -> None:
    assert top_k(np.array([1.0, 2.0, 2.0, 2.0, 0.5]), 2) == [1, 2]
    assert top_k(np.array([0.0] * 6), 3) == [0, 1, 2]
    assert top_k(np.array([1.0]), 5) == [0]
    assert top_k(np.array([]), 3) == []
