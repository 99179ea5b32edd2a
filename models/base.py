"""The contract every streaming recommender follows."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from models.ids import Id, IdIndex
from models.topn import rank_of, top_n


class ModelError(Exception):
    """Root of the errors raised by models."""


class NonFiniteParameterError(ModelError):
    """An update would have made a parameter NaN or infinite.

    The model raises it before it changes any state, so the model stays as it
    was before the event.
    """


@dataclass(frozen=True, slots=True)
class Event:
    """One user-item interaction.

    `ts` is the event time in seconds since the Unix epoch. `value` is the
    strength of the interaction: 1.0 for an implicit event, the rating for an
    explicit one. `context` contains optional named numeric features of the event.
    """

    user: Id
    item: Id
    ts: float = 0.0
    value: float = 1.0
    context: Mapping[str, float] | None = field(default=None)


class Recommender(ABC):
    """A model that learns from one event at a time and ranks items for a user.

    Users and items are registered on first sight from their external ids
    (integers or strings, in any order). Scores cover every item the model has
    seen, in the order of `self.items`. A user the model has never seen gets
    the model's cold-start scores, described by each subclass.

    Subclasses implement `_register_user`, `_register_item`, `_update`,
    `_scores`, `_state` and `_load_state`; the public methods are shared.
    """

    name: ClassVar[str]
    # True when `scores` returns a new array on every call, which the caller
    # may modify; otherwise it may be a view of the model's state.
    returns_new_scores: ClassVar[bool] = False

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed
        self.users = IdIndex()
        self.items = IdIndex()
        self._seen: list[set[int]] = []
        # The same sets as arrays, built on demand and then extended rather
        # than rebuilt, because scoring reads them at least twice per event.
        self._seen_arrays: dict[int, np.ndarray] = {}
        # Latest event time per user, for evicting users not seen for a while
        # (a list: it is read and written once per event).
        self._last_seen: list[float] = []

    # -- public API -----------------------------------------------------------

    def learn(self, event: Event) -> None:
        """Update the model with one event.

        Raises NonFiniteParameterError, with the state unchanged, if the update
        would produce a NaN or infinite parameter.
        """
        u = self.users.get(event.user)
        if u is None:
            u = self.users.add(event.user)
            self._seen.append(set())
            self._last_seen.append(event.ts)
            self._register_user(u, event)
        i = self.items.get(event.item)
        if i is None:
            i = self.items.add(event.item)
            self._register_item(i, event)
        self._update(u, i, event)
        if event.ts > self._last_seen[u]:
            self._last_seen[u] = event.ts
        seen = self._seen[u]
        if i not in seen:
            seen.add(i)
            cached = self._seen_arrays.get(u)
            if cached is not None:
                extended = np.empty(cached.size + 1, dtype=np.int64)
                extended[:-1] = cached
                extended[-1] = i
                extended.flags.writeable = False
                self._seen_arrays[u] = extended

    def scores(self, user: Id, context: Mapping[str, float] | None = None) -> np.ndarray:
        """Return a score for every known item, in the order of `self.items`."""
        return self._scores(self.users.get(user), context)

    def seen_items(self, user: Id) -> np.ndarray:
        """Return the indices of the items `user` has interacted with, as a read-only array."""
        u = self.users.get(user)
        if u is None:
            return np.empty(0, dtype=np.int64)
        cached = self._seen_arrays.get(u)
        if cached is None:
            seen = self._seen[u]
            cached = self._seen_arrays[u] = np.fromiter(seen, dtype=np.int64, count=len(seen))
            cached.flags.writeable = False
        return cached

    def recommend(
        self,
        user: Id,
        n: int = 10,
        *,
        exclude_seen: bool = True,
        context: Mapping[str, float] | None = None,
    ) -> tuple[list[Id], np.ndarray]:
        """Return the top-`n` item ids for `user` and their scores, best first.

        With `exclude_seen`, items the user already interacted with are left
        out, so fewer than n items come back when the user has seen nearly all.
        """
        scores = np.array(self.scores(user, context), dtype=np.float64)
        if exclude_seen:
            scores[self.seen_items(user)] = -np.inf
        best = top_n(scores, n)
        return self.items.ids_of(best), scores[best]

    def rank(
        self,
        user: Id,
        item: Id,
        *,
        exclude_seen: bool = True,
        context: Mapping[str, float] | None = None,
    ) -> int | None:
        """Return the 0-based rank of `item` among the candidates for `user`.

        Candidates are the known items, less the user's seen items when
        `exclude_seen`, plus `item` itself. Returns None for an item the model
        has never seen, which no top-N list can contain.
        """
        i = self.items.get(item)
        if i is None:
            return None
        scores = np.array(self.scores(user, context), dtype=np.float64)
        if exclude_seen:
            target = scores[i]
            scores[self.seen_items(user)] = -np.inf
            scores[i] = target
        return rank_of(scores, i)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def params(self) -> dict[str, Any]:
        """Return the constructor arguments, so that `type(self)(**params)` rebuilds an empty model."""
        return {"seed": self.seed}

    def state_dict(self) -> dict[str, Any]:
        """Return the whole state as numpy arrays and plain values, with no pickle."""
        indptr = np.zeros(len(self._seen) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(s) for s in self._seen])
        indices = np.fromiter(
            (i for s in self._seen for i in sorted(s)), dtype=np.int64, count=int(indptr[-1])
        )
        return {
            "model": self.name,
            "params": self.params(),
            "users": self.users.state_dict(),
            "items": self.items.state_dict(),
            "seen_indptr": indptr,
            "seen_indices": indices,
            "user_last_seen": np.asarray(self._last_seen, dtype=np.float64),
            "model_state": self._state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace the whole state with one returned by `state_dict`."""
        if state["model"] != self.name:
            raise ModelError(f"state is for model {state['model']!r}, not {self.name!r}")
        self.users.load_state_dict(state["users"])
        self.items.load_state_dict(state["items"])
        indptr = np.asarray(state["seen_indptr"])
        indices = np.asarray(state["seen_indices"]).tolist()
        self._seen = [set(indices[indptr[u] : indptr[u + 1]]) for u in range(len(indptr) - 1)]
        self._seen_arrays = {}
        self._last_seen = np.asarray(state["user_last_seen"], dtype=np.float64).tolist()
        self._load_state(state["model_state"])

    def evict_users(self, seen_before: float) -> int:
        """Forget every user whose latest event is older than `seen_before` (event time, seconds).

        The user's parameters and history go; items stay. A user who comes
        back afterwards starts as a new user. Returns the number evicted.
        Raises NotImplementedError for a model without `_compact_users`.
        """
        last_seen = np.asarray(self._last_seen, dtype=np.float64)
        keep = last_seen >= seen_before
        n_evicted = int(keep.size - np.count_nonzero(keep))
        if n_evicted == 0:
            return 0
        self._compact_users(keep)
        kept = np.flatnonzero(keep)
        self.users.load_state_dict({"ids": [self.users.id_of(u) for u in kept.tolist()]})
        self._seen = [self._seen[u] for u in kept.tolist()]
        self._seen_arrays = {}
        self._last_seen = last_seen[keep].tolist()
        return n_evicted

    # -- subclass hooks -------------------------------------------------------

    def _compact_users(self, keep: np.ndarray) -> None:
        """Keep only the user rows where the boolean mask `keep` is true, in order."""
        raise NotImplementedError(f"model {self.name!r} does not support evicting users")

    def _register_user(self, u: int, event: Event) -> None:
        """Allocate parameters for the new user index `u`."""

    def _register_item(self, i: int, event: Event) -> None:
        """Allocate parameters for the new item index `i`."""

    @abstractmethod
    def _update(self, u: int, i: int, event: Event) -> None:
        """Learn the event for user index `u` and item index `i`."""

    @abstractmethod
    def _scores(self, u: int | None, context: Mapping[str, float] | None) -> np.ndarray:
        """Return scores for all known items; `u` is None for an unknown user."""

    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """Return the subclass's learned state as arrays and plain values."""

    @abstractmethod
    def _load_state(self, state: Mapping[str, Any]) -> None:
        """Restore the subclass's learned state from `_state`'s output."""


def check_finite(model: Recommender, event: Event, **arrays: np.ndarray) -> None:
    """Raise NonFiniteParameterError if any of `arrays` contains NaN or infinity."""
    # A sum is finite only if every term is (it also flags sums that overflow,
    # whose terms are near float64's limit), so one reduction per array
    # decides the common case.
    if all(math.isfinite(float(np.add.reduce(array, axis=None))) for array in arrays.values()):
        return
    for name, array in arrays.items():
        if not np.all(np.isfinite(array)):
            raise NonFiniteParameterError(
                f"model {model.name!r}: updating {name} for user {event.user!r}, "
                f"item {event.item!r} would make it non-finite; the event was not learned. "
                "Lower the learning rate or check the event's value."
            )
