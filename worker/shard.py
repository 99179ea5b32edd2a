"""A shard: one input partition's recommender and its test-then-learn counters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from models import Event, Recommender, make_model
from models.topn import top_n


@dataclass(frozen=True)
class ShardSettings:
    """Settings shared by every shard: the model, its parameters and the test."""

    model: str
    model_params: Mapping[str, Any]
    top_n: int = 10
    exclude_seen: bool = True
    recall_window: int = 1000
    # Users whose latest event is older than this many seconds of event time
    # behind the newest event are evicted; None keeps every user.
    evict_after: float | None = None
    evict_every: int = 1000


@dataclass(frozen=True)
class Outcome:
    """The result of processing one event: the test and the fresh top-N."""

    hit: bool
    items: list
    scores: np.ndarray


class Shard:
    """The recommender of one input partition, with its rolling recall.

    `process` runs the per-event protocol: test (is the event's item in the
    user's top-N before learning?), learn, then rank the user's fresh top-N.
    `next_offset` is the input offset of the next event the shard expects.
    """

    def __init__(self, partition: int, settings: ShardSettings, model: Recommender | None = None) -> None:
        self.partition = partition
        self.settings = settings
        self.model = model or make_model(settings.model, **settings.model_params)
        self.next_offset: int | None = None
        self._window = np.zeros(max(1, settings.recall_window), dtype=bool)
        self._window_filled = 0
        self._window_position = 0
        self._events = 0
        self._newest_ts = -np.inf
        # The user and masked scores published for the previous event. Users
        # come in sessions, so the next event is often the same user's, and
        # nothing has been learned since: those scores are its test scores.
        self._last_published: tuple[object, np.ndarray] | None = None

    def process(self, event: Event) -> Outcome:
        """Test, learn and recommend for one event.

        Raises models.NonFiniteParameterError, with the model unchanged, when
        learning the event would make a parameter non-finite.
        """
        hit = self._test(event)
        self.model.learn(event)
        scores = self._candidate_scores(event)
        best = top_n(scores, self.settings.top_n)
        items = self.model.items.ids_of(best)
        self._last_published = (event.user, scores) if event.context is None else None
        self._record(hit)
        self._events += 1
        self._newest_ts = max(self._newest_ts, event.ts)
        if self.settings.evict_after is not None and self._events % self.settings.evict_every == 0:
            # Counted in events, not wall-clock time, so a replay evicts at
            # the same points and restarts reproduce the same state.
            self.model.evict_users(self._newest_ts - self.settings.evict_after)
            self._last_published = None
        return Outcome(hit, items, scores[best])

    def _candidate_scores(self, event: Event) -> np.ndarray:
        """Return scores of every known item for the event's user, -inf for excluded ones."""
        scores = self.model.scores(event.user, event.context)
        if not self.model.returns_new_scores or scores.dtype != np.float64:
            scores = np.array(scores, dtype=np.float64)
        if self.settings.exclude_seen:
            scores[self.model.seen_items(event.user)] = -np.inf
        return scores

    def _test(self, event: Event) -> bool:
        model = self.model
        i = model.items.get(event.item)
        if i is None:
            # An item the shard has never seen cannot be in any top-N list.
            return False
        last = self._last_published
        if last is not None and event.context is None and last[0] == event.user:
            scores = last[1]
        else:
            scores = self._candidate_scores(event)
        target = scores[i]
        if target == -np.inf:
            return False
        # The same ordering as top_n: higher scores first, ties by lower index.
        ahead = int(np.count_nonzero(scores > target))
        if ahead >= self.settings.top_n:
            return False
        return ahead + int(np.count_nonzero(scores[:i] == target)) < self.settings.top_n

    def _record(self, hit: bool) -> None:
        self._window[self._window_position] = hit
        self._window_position = (self._window_position + 1) % self._window.size
        self._window_filled = min(self._window_filled + 1, self._window.size)

    @property
    def recall(self) -> float:
        """Share of hits over the last `recall_window` events (0 before any)."""
        if self._window_filled == 0:
            return 0.0
        if self._window_filled < self._window.size:
            return float(self._window[: self._window_filled].mean())
        return float(self._window.mean())

    def window_state(self) -> dict[str, Any]:
        """Return the shard's own counters, for checkpoints."""
        return {"window": self._window.copy(), "filled": self._window_filled, "position": self._window_position,
                "events": self._events, "newest_ts": float(self._newest_ts)}

    def load_window_state(self, state: Mapping[str, Any]) -> None:
        window = np.asarray(state["window"], dtype=bool)
        if window.size == self._window.size:
            self._window = window.copy()
            self._window_filled = int(state["filled"])
            self._window_position = int(state["position"])
        self._events = int(state.get("events", 0))
        self._newest_ts = float(state.get("newest_ts", -np.inf))

