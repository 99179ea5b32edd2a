"""Incremental cosine neighbourhood models over a recency window."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from models.base import Event, Recommender


# Ties between items, including every item for a user without neighbours,
# are broken by popularity: each score gets this times the item's share of
# profiles, far below any difference a similarity can make in practice.
_POPULARITY_TIE_BREAK = 1e-9


def _popularity_tie_break(counts: np.ndarray) -> np.ndarray:
    """Return 1e-9 times counts / (max count + 1): in [0, 1e-9), increasing with the count."""
    if counts.size == 0:
        return counts
    return _POPULARITY_TIE_BREAK * counts / (counts.max() + 1.0)


def _keys_values(counts: Mapping[int, int]) -> tuple[np.ndarray, np.ndarray]:
    n = len(counts)
    return (
        np.fromiter(counts.keys(), dtype=np.int64, count=n),
        np.fromiter(counts.values(), dtype=np.float64, count=n),
    )


def _top_k(values: np.ndarray, keys: np.ndarray, k: int) -> np.ndarray:
    """Return a mask of the k largest values, ties at the boundary going to the lower keys."""
    kth = np.partition(values, values.size - k)[values.size - k]
    mask = values > kth
    tied = np.flatnonzero(values == kth)
    needed = k - int(np.count_nonzero(mask))
    mask[tied[np.argsort(keys[tied], kind="stable")[:needed]]] = True
    return mask


class _WindowedKNN(Recommender):
    """Shared bookkeeping: each user's last `window` interactions.

    A user's profile is the set of distinct items among their last `window`
    interactions (all of them when `window` is None), as a binary vector.
    Subclasses keep co-occurrence counts up to date through `_enter` and
    `_leave`, called when an item enters or leaves a user's profile.
    """

    def __init__(self, *, k: int, window: int | None, seed: int) -> None:
        super().__init__(seed=seed)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k!r}")
        if window is not None and window < 1:
            raise ValueError(f"window must be at least 1 or None, got {window!r}")
        self.k = k
        self.window = window
        # Per user: the window of item indices (oldest first) and the count of
        # each item inside it; the profile is the keys of the counts, in the
        # order the items last entered it.
        self._history: list[deque[int]] = []
        self._profile: list[dict[int, int]] = []

    def params(self) -> dict[str, Any]:
        return {"k": self.k, "window": self.window, "seed": self.seed}

    def _register_user(self, u: int, event: Event) -> None:
        self._history.append(deque())
        self._profile.append({})

    def _update(self, u: int, i: int, event: Event) -> None:
        self._push(u, i)

    def _push(self, u: int, i: int) -> None:
        history, profile = self._history[u], self._profile[u]
        history.append(i)
        if i in profile:
            profile[i] += 1
        else:
            self._enter(u, i)
            profile[i] = 1
        if self.window is not None and len(history) > self.window:
            old = history.popleft()
            if profile[old] == 1:
                del profile[old]
                self._leave(u, old)
            else:
                profile[old] -= 1

    def _enter(self, u: int, i: int) -> None:
        """Item i is about to join user u's profile (not yet in it)."""
        raise NotImplementedError

    def _leave(self, u: int, i: int) -> None:
        """Item i has just left user u's profile."""
        raise NotImplementedError

    def _reset_counts(self) -> None:
        raise NotImplementedError

    def _compact_users(self, keep: np.ndarray) -> None:
        # Rebuild the counts from the windows of the users kept.
        histories = [self._history[u] for u in np.flatnonzero(keep).tolist()]
        self._replay(histories)

    def _replay(self, histories: list) -> None:
        self._history = []
        self._profile = []
        self._reset_counts()
        for u in range(len(histories)):
            self._register_user(u, None)  # type: ignore[arg-type]
        for u, items in enumerate(histories):
            for i in items:
                self._push(u, i)

    def _state(self) -> dict[str, Any]:
        lengths = [len(h) for h in self._history]
        indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum(lengths)
        indices = np.fromiter((i for h in self._history for i in h), dtype=np.int64, count=int(indptr[-1]))
        return {"history_indptr": indptr, "history_indices": indices}

    def _load_state(self, state: Mapping[str, Any]) -> None:
        # The co-occurrence counts follow from the windows: replay each
        # window (it never exceeds `window`, so nothing drops out).
        indptr = np.asarray(state["history_indptr"], dtype=np.int64).tolist()
        indices = np.asarray(state["history_indices"], dtype=np.int64).tolist()
        self._replay([indices[indptr[u] : indptr[u + 1]] for u in range(len(indptr) - 1)])


class UserKNN(_WindowedKNN):
    """Incremental user-based k-nearest-neighbour recommender.

    The similarity of users u and v is the cosine of their binary profiles
    (the distinct items among each one's last `window` interactions):

        sim(u, v) = |S_u & S_v| / sqrt(|S_u| * |S_v|)

    The score of item i for user u sums the similarities of the `k` most
    similar users (ties broken by the lower user index) whose profile contains i:

        score(u, i) = sum over v in N_k(u) with i in S_v of sim(u, v)

    The overlaps |S_u & S_v| are kept as sparse dict-of-counts and updated
    incrementally: an item entering or leaving u's profile changes the overlap
    of u with the users whose profile contains that item, nothing else. Users
    without a common item are never neighbours, so every score is a finite
    non-negative number (FluRS's user-kNN divides by zero norms and returns
    NaN).

    Every score also gets 1e-9 times the item's popularity share (the number
    of profiles holding it over one more than the largest such number), which
    only breaks ties: a user never seen before, or one that shares no item
    with anyone, gets the items ordered by popularity within the windows. A
    new item scores (almost) 0 until a neighbour interacts with it.

    Parameters
    ----------
    k
        Number of neighbours used for scoring.
    window
        Number of most recent interactions per user that form the profile;
        None keeps all of them.
    seed
        Unused; kept for the common constructor.
    """

    name = "userknn"

    def __init__(self, *, k: int = 40, window: int | None = 75, seed: int = 0) -> None:
        super().__init__(k=k, window=window, seed=seed)
        self._reset_counts()

    def _reset_counts(self) -> None:
        self._holders: dict[int, set[int]] = {}  # item -> users whose profile contains it
        self._overlap: list[dict[int, int]] = []  # user -> {other user: common items}

    def _register_user(self, u: int, event: Event) -> None:
        super()._register_user(u, event)
        self._overlap.append({})

    def _enter(self, u: int, i: int) -> None:
        holders = self._holders.setdefault(i, set())
        overlap_u = self._overlap[u]
        for v in holders:
            overlap_u[v] = overlap_u.get(v, 0) + 1
            overlap_v = self._overlap[v]
            overlap_v[u] = overlap_v.get(u, 0) + 1
        holders.add(u)

    def _leave(self, u: int, i: int) -> None:
        holders = self._holders[i]
        holders.discard(u)
        overlap_u = self._overlap[u]
        for v in holders:
            for a, b in ((overlap_u, v), (self._overlap[v], u)):
                if a[b] == 1:
                    del a[b]
                else:
                    a[b] -= 1

    def similarities(self, u: int) -> tuple[np.ndarray, np.ndarray]:
        """Return the user indices of u's `k` nearest neighbours and their cosine similarities, best first."""
        overlap = self._overlap[u]
        if not overlap:
            return np.empty(0, dtype=np.int64), np.empty(0)
        others, common = _keys_values(overlap)
        sizes = np.fromiter((len(self._profile[v]) for v in others.tolist()), dtype=np.float64, count=len(others))
        sims = common / np.sqrt(len(self._profile[u]) * sizes)
        order = np.lexsort((others, -sims))[: self.k]
        return others[order], sims[order]

    def _scores(self, u: int | None, context: Mapping[str, float] | None) -> np.ndarray:
        n_items = len(self.items)
        base = self._tie_breaker()
        if u is None:
            return base
        neighbours, sims = self.similarities(u)
        if neighbours.size == 0:
            return base
        item_lists = [_keys_values(self._profile[v])[0] for v in neighbours.tolist()]
        lengths = [len(items) for items in item_lists]
        return base + np.bincount(np.concatenate(item_lists), weights=np.repeat(sims, lengths), minlength=n_items)

    def _tie_breaker(self) -> np.ndarray:
        counts = np.zeros(len(self.items))
        if self._holders:
            keys = np.fromiter(self._holders.keys(), dtype=np.int64, count=len(self._holders))
            counts[keys] = np.fromiter((len(h) for h in self._holders.values()), dtype=np.float64, count=len(keys))
        return _popularity_tie_break(counts)


class ItemKNN(_WindowedKNN):
    """Incremental item-based k-nearest-neighbour recommender.

    The similarity of items i and j is the cosine of their binary user
    columns, where a user's column contains an item while it is among their last `window`
    interactions:

        sim(i, j) = c_ij / sqrt(c_i * c_j)

    with c_ij the number of users whose profile contains both and c_i the number
    holding i. The score of item j for user u sums, over the items i in u's
    profile, sim(i, j) when j is among the `k` items most similar to i (ties
    broken by the lower item index):

        score(u, j) = sum over i in S_u with j in N_k(i) of sim(i, j)

    The counts c_ij are a sparse dict-of-counts, updated incrementally: an item
    entering or leaving a user's profile changes its counts with the other
    items of that profile only. Every score is a finite non-negative number.

    Every score also gets 1e-9 times the item's popularity share c_i / (max c
    + 1), which only breaks ties: a user never seen before, or one whose items
    co-occur with nothing, gets the items ordered by popularity within the
    windows. A new item scores (almost) 0 until it shares a user with an item
    in the profile.

    Parameters
    ----------
    k
        Number of neighbours kept per profile item when scoring.
    window
        Number of most recent interactions per user that form the profile;
        None keeps all of them.
    seed
        Unused; kept for the common constructor.
    """

    name = "itemknn"

    def __init__(self, *, k: int = 400, window: int | None = 50, seed: int = 0) -> None:
        super().__init__(k=k, window=window, seed=seed)
        self._reset_counts()

    def _reset_counts(self) -> None:
        self._holders_count: dict[int, int] = {}  # item -> users whose profile contains it
        self._cooc: dict[int, dict[int, int]] = {}  # item -> {other item: users holding both}

    def _enter(self, u: int, i: int) -> None:
        row_i = self._cooc.setdefault(i, {})
        for j in self._profile[u]:
            row_i[j] = row_i.get(j, 0) + 1
            row_j = self._cooc[j]
            row_j[i] = row_j.get(i, 0) + 1
        self._holders_count[i] = self._holders_count.get(i, 0) + 1

    def _leave(self, u: int, i: int) -> None:
        row_i = self._cooc[i]
        for j in self._profile[u]:
            for row, other in ((row_i, j), (self._cooc[j], i)):
                if row[other] == 1:
                    del row[other]
                else:
                    row[other] -= 1
        self._holders_count[i] -= 1

    def _holder_counts(self) -> np.ndarray:
        counts = np.zeros(len(self.items))
        if self._holders_count:
            keys, values = _keys_values(self._holders_count)
            counts[keys] = values
        return counts

    def similar_items(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Return the indices of the `k` items most similar to item index i and their similarities, best first."""
        row = self._cooc.get(i)
        if not row:
            return np.empty(0, dtype=np.int64), np.empty(0)
        others, common = _keys_values(row)
        counts = self._holder_counts()
        sims = common / np.sqrt(counts[i] * counts[others])
        order = np.lexsort((others, -sims))[: self.k]
        return others[order], sims[order]

    def _scores(self, u: int | None, context: Mapping[str, float] | None) -> np.ndarray:
        n_items = len(self.items)
        counts = self._holder_counts()
        base = _popularity_tie_break(counts)
        if u is None:
            return base
        others, similarities = [], []
        for i in self._profile[u]:
            row = self._cooc.get(i)
            if not row:
                continue
            keys, common = _keys_values(row)
            sims = common / np.sqrt(counts[i] * counts[keys])
            if keys.size > self.k:
                keep = _top_k(sims, keys, self.k)
                keys, sims = keys[keep], sims[keep]
            others.append(keys)
            similarities.append(sims)
        if not others:
            return base
        return base + np.bincount(np.concatenate(others), weights=np.concatenate(similarities), minlength=n_items)
