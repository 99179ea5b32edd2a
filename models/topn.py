"""Top-N selection and rank computation over score vectors."""

from __future__ import annotations

import numpy as np


# Sample size, in multiples of n, used to find a score threshold that at
# least n entries reach before selecting among the entries above it.
_SAMPLE_FACTOR = 16
# Above this many candidates, a partition narrows them before the sort.
_SORT_AT_MOST = 512


def top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """Return the indices of the `n` highest finite scores, best first.

    Partial selection in O(len(scores)). The n-th highest score of an evenly
    spaced sample is a lower bound for the n-th highest overall, because at
    least n entries reach it. So only the entries at or above it are sorted. Ties are broken by the lower index, so the result is
    deterministic. Entries of -inf (excluded items) are never returned, so the
    result may be shorter than n.
    """
    size = scores.size
    if size == 0 or n <= 0:
        return np.empty(0, dtype=np.int64)
    candidates = None
    if size > 4 * _SAMPLE_FACTOR * n:
        sample = scores[:: size // (_SAMPLE_FACTOR * n)]
        bound = np.partition(sample, sample.size - n)[sample.size - n]
        if bound > -np.inf:
            candidates = (scores >= bound).nonzero()[0]
    if candidates is None:
        candidates = (scores > -np.inf).nonzero()[0]
    values = scores[candidates]
    if values.size > _SORT_AT_MOST:
        # Keep every entry that ties with the n-th best, so the tie-break by
        # index below considers all of them.
        kth = np.partition(values, values.size - n)[values.size - n]
        keep = values >= kth
        candidates, values = candidates[keep], values[keep]
    # A stable sort of the negated scores keeps ascending indices among ties.
    order = np.argsort(-values, kind="stable")[:n]
    return candidates[order]


def rank_of(scores: np.ndarray, target: int) -> int:
    """Return the 0-based rank of index `target` under the `top_n` ordering.

    The rank counts the entries scored higher, plus those scored equal that have
    a lower index. Entries of -inf are never ahead of the target.
    """
    target_score = scores[target]
    higher = int(np.count_nonzero(scores > target_score))
    equal_before = int(np.count_nonzero(scores[:target] == target_score))
    return higher + equal_before
