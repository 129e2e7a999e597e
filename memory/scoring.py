"""The retrieval score of Park et al. (2023), section 4.1, vectorised over one agent's memories.

score = w_recency * recency + w_importance * importance + w_relevance * relevance, where each term is
min-max normalised to [0, 1] over the candidates; recency = decay ** (sim hours since last access) and
relevance is the cosine similarity of the memory's embedding to the query's.

The paper gives equal weights (1, 1, 1) and a decay of 0.995 per sandbox hour; those are the defaults. The
reference code (joonspk-research/generative_agents) instead weights 0.5/3/2 (recency/relevance/importance
with extra factors) and ranks recency by position in the list, which looks inverted; we follow the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["PAPER_DECAY", "RetrievalWeights", "min_max", "retrieval_scores", "top_k"]

PAPER_DECAY = 0.995

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RetrievalWeights:
    """The three weights and the recency decay."""

    recency: float = 1.0
    importance: float = 1.0
    relevance: float = 1.0
    decay: float = PAPER_DECAY


def min_max(values: FloatArray) -> FloatArray:
    """Scales to [0, 1]; a constant vector becomes all zeros (it cannot change a ranking)."""
    span = float(values.max() - values.min()) if values.size else 0.0
    if span == 0.0:
        return np.zeros_like(values, dtype=np.float64)
    return (values - float(values.min())) / span


def retrieval_scores(
    hours_since_access: FloatArray, importance: FloatArray, relevance: FloatArray, weights: RetrievalWeights,
) -> FloatArray:
    """Scores every candidate.

    Args:
        hours_since_access: Sim hours since each memory was last accessed (>= 0).
        importance: Each memory's importance, 1-10.
        relevance: Cosine similarity of each memory to the query.
        weights: The weights and the decay.

    Returns:
        One score per candidate.
    """
    recency = np.power(weights.decay, hours_since_access.astype(np.float64))
    return (weights.recency * min_max(recency) + weights.importance * min_max(importance.astype(np.float64))
            + weights.relevance * min_max(relevance.astype(np.float64)))


def top_k(scores: FloatArray, k: int) -> list[int]:
    """Indices of the ``k`` best scores, best first; ties go to the older memory (lower index)."""
    if k <= 0 or scores.size == 0:
        return []
    k = min(k, scores.size)
    candidates = np.argpartition(-scores, k - 1)[:k] if k < scores.size else np.arange(scores.size)
    # Include every candidate tied with the k-th score so the tie-break does not depend on argpartition.
    threshold = scores[candidates].min()
    tied = np.flatnonzero(scores >= threshold)
    order = sorted(tied.tolist(), key=lambda i: (-scores[i], i))
    return order[:k]
