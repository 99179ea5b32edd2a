"""Top-N selection and rank computation over score vectors."""

from __future__ import annotations

import numpy as np


def top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """Return the indices of the `n` highest finite scores, best first.

    Uses partial selection (`argpartition`, O(len(scores))) and sorts only the
    selected n. Ties are broken by the lower index, so the result is
    deterministic. Entries of -inf (excluded items) are never returned, so the
    result may be shorter than n.
    """
    finite = np.flatnonzero(scores > -np.inf)
    if finite.size == 0 or n <= 0:
        return np.empty(0, dtype=np.int64)
    if finite.size < scores.size:
        candidates = finite
        values = scores[finite]
    else:
        candidates = None
        values = scores
    if n < values.size:
        # Take every value that ties with the n-th best, so the tie-break by
        # index below sees all of them.
        kth = np.partition(values, values.size - n)[values.size - n]
        picked = np.flatnonzero(values >= kth)
    else:
        picked = np.arange(values.size)
    # lexsort sorts by the last key first: score descending, then index.
    order = np.lexsort((picked, -values[picked]))[:n]
    picked = picked[order]
    return picked if candidates is None else candidates[picked]


def rank_of(scores: np.ndarray, target: int) -> int:
    """Return the 0-based rank of index `target` under the `top_n` ordering.

    The rank counts the entries scored higher, plus those scored equal that have
    a lower index. Entries of -inf are never ahead of the target.
    """
    target_score = scores[target]
    higher = int(np.count_nonzero(scores > target_score))
    equal_before = int(np.count_nonzero(scores[:target] == target_score))
    return higher + equal_before
