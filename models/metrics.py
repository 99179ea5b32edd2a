"""Top-N ranking metrics for one relevant item per event.

Each tested event has exactly one relevant item, the event's item, at a
0-based `rank` among `n_candidates` candidates. With N the list length:

    recall@N     = 1 if rank < N else 0           (hit rate)
    precision@N  = recall@N / N
    MRR          = 1 / (rank + 1)
    nDCG@N       = 1 / log2(rank + 2) if rank < N else 0
    percentile   = rank / (n_candidates - 1), or 0 with a single candidate

The ideal DCG of a single relevant item is 1, so nDCG@N equals DCG@N. The
percentile rank is 0 for the top candidate and 1 for the last, the definition
of Hu, Koren and Volinsky, "Collaborative filtering for implicit feedback
datasets", ICDM 2008; lower is better. Each reported metric is the mean of
these per-event values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Column order of the per-event value rows.
_RECALL, _PRECISION, _MRR, _NDCG, _PERCENTILE = range(5)


@dataclass(frozen=True, slots=True)
class MetricValues:
    """Means of the per-event metrics over `n_events` tested events.

    Every mean is 0.0 when `n_events` is 0.
    """

    n_events: int
    recall: float
    precision: float
    mrr: float
    ndcg: float
    mean_percentile_rank: float


def event_metrics(rank: int, n_candidates: int, top_n: int) -> np.ndarray:
    """Return the per-event recall, precision, MRR, nDCG and percentile rank.

    Raises ValueError if `rank` is not in [0, n_candidates).
    """
    if not 0 <= rank < n_candidates:
        raise ValueError(f"rank {rank} is outside [0, {n_candidates}) for {n_candidates} candidates")
    values = np.zeros(5)
    if rank < top_n:
        values[_RECALL] = 1.0
        values[_PRECISION] = 1.0 / top_n
        values[_NDCG] = 1.0 / math.log2(rank + 2)
    values[_MRR] = 1.0 / (rank + 1)
    values[_PERCENTILE] = rank / (n_candidates - 1) if n_candidates > 1 else 0.0
    return values


def _metric_values(n_events: int, sums: np.ndarray) -> MetricValues:
    means = sums / n_events if n_events else np.zeros(5)
    return MetricValues(
        n_events=n_events,
        recall=float(means[_RECALL]),
        precision=float(means[_PRECISION]),
        mrr=float(means[_MRR]),
        ndcg=float(means[_NDCG]),
        mean_percentile_rank=float(means[_PERCENTILE]),
    )


class RankingMetrics:
    """Accumulates the metrics of one model, over all events and over the last `window`.

    Memory is O(window): the overall means come from running sums, and the
    window means from a ring buffer of the last `window` per-event rows.
    """

    def __init__(self, top_n: int, window: int) -> None:
        if top_n < 1:
            raise ValueError(f"top_n must be at least 1, got {top_n}")
        if window < 1:
            raise ValueError(f"window must be at least 1 event, got {window}")
        self.top_n = top_n
        self.window = window
        self._n_events = 0
        self._sums = np.zeros(5)
        self._recent = np.zeros((window, 5))

    def add(self, rank: int, n_candidates: int) -> None:
        """Record one tested event whose item ranked `rank` among `n_candidates`."""
        values = event_metrics(rank, n_candidates, self.top_n)
        self._sums += values
        self._recent[self._n_events % self.window] = values
        self._n_events += 1

    def overall(self) -> MetricValues:
        """Return the means over every recorded event."""
        return _metric_values(self._n_events, self._sums)

    def windowed(self) -> MetricValues:
        """Return the means over the last `window` recorded events, or all of them if fewer."""
        filled = min(self._n_events, self.window)
        # Summing the buffer, not keeping a running window sum, avoids the
        # rounding drift of adding and subtracting over a long stream.
        return _metric_values(filled, self._recent[:filled].sum(axis=0))
