"""Test-then-learn evaluation of several streaming recommenders in one pass.

The protocol is the one of FluRS 0.0.5's `Evaluator` (Kitazawa), after Vinagre,
Jorge and Gama, "Fast incremental matrix factorization for recommendation with
positive-only feedback", UMAP 2014:

1. Events are taken in the order given, which should be timestamp order.
2. The first `int(warmup * len(events))` events are learned only.
3. For every later event, the candidates are the items seen in all earlier
   events, less the items the event's user interacted with in earlier events,
   plus the event's item (FluRS's `repeat=False`, its setting for
   MovieLens). Each model scores all its known items once. The rank
   of the event's item among the candidates is recorded with the order of
   `models.topn.rank_of`: a higher score first, and on equal scores the lower
   item index in order of first sight.
4. Then every model learns the event.

An item that no earlier event contains has no score from any model, because a
model meets it only in `learn`, which must come after the test. Such an item
gets the worst rank, `n_candidates - 1`, for every model. FluRS registers the
item before it scores, so its popularity baseline gives the item a count of 0,
which is the worst rank as well. Its factor models give the item random
factors instead.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sized
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.base import Event, NonFiniteParameterError, Recommender
from models.ids import Id, IdIndex
from models.metrics import MetricValues, RankingMetrics

logger = logging.getLogger(__name__)

# Called after each tested event and model with the model's label, the event's
# position in the stream, the 0-based rank of its item and the candidate count.
RankCallback = Callable[[str, int, int, int], None]


class EvaluationError(Exception):
    """A model broke the contract the evaluation relies on."""


@dataclass(frozen=True, slots=True)
class ModelResult:
    """The metrics and timing of one model.

    `warmup_seconds` is the time spent learning the warm-up events;
    `test_seconds` the time spent scoring, ranking and learning the tested
    events, measured with `time.perf_counter`. `events_per_second` is the
    number of tested events over `test_seconds`, None when nothing was tested.
    `skipped_updates` counts events the model rejected with
    NonFiniteParameterError, leaving its state unchanged.
    """

    model: str
    params: dict[str, Any]
    overall: MetricValues
    window: MetricValues
    warmup_seconds: float
    test_seconds: float
    events_per_second: float | None
    skipped_updates: int


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """The protocol settings, stream counts and per-model results of one run.

    `mean_candidates` is the mean number of candidates per tested event;
    `n_unseen_item_events` counts tested events whose item no earlier event
    contains, which every model ranks last.
    """

    n_events: int
    n_warmup_events: int
    n_test_events: int
    warmup: float
    top_n: int
    window: int
    mean_candidates: float
    n_unseen_item_events: int
    models: list[ModelResult]

    def to_dict(self) -> dict[str, Any]:
        """Return the result as nested dicts, lists and scalars."""
        return dataclasses.asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        """Return the result as a JSON document."""
        return json.dumps(self.to_dict(), indent=indent)


@dataclass(frozen=True, slots=True)
class Candidates:
    """The candidates of one tested event.

    `mask` has one entry per item seen so far, in order of first sight, and is
    True for a candidate. `target` is the index of the event's item in that
    order, or None when the item was never seen. `count` is the number of
    candidates, the event's item included.
    """

    mask: np.ndarray
    target: int | None
    count: int


class SeenItems:
    """The items of all events observed so far, and each user's items among them.

    `items` indexes items in order of first sight, the order in which a model
    that learned the same events stores them.
    """

    def __init__(self) -> None:
        self.items = IdIndex()
        self._known: dict[Id, set[int]] = {}
        # The same sets as index arrays, extended as items are observed.
        self._known_arrays: dict[Id, np.ndarray] = {}

    def candidates(self, event: Event) -> Candidates:
        """Return the candidates for testing `event` before it is observed."""
        n_items = len(self.items)
        mask = np.ones(n_items, dtype=bool)
        known = self._known.get(event.user, ())
        if known:
            mask[self._known_arrays[event.user]] = False
        target = self.items.get(event.item)
        if target is None:
            return Candidates(mask, None, n_items - len(known) + 1)
        mask[target] = True
        return Candidates(mask, target, n_items - len(known) + (target in known))

    def observe(self, event: Event) -> None:
        """Record `event`'s item as seen and as known to its user."""
        i = self.items.add(event.item)
        known = self._known.setdefault(event.user, set())
        if i not in known:
            known.add(i)
            previous = self._known_arrays.get(event.user)
            extended = np.empty(len(known), dtype=np.int64)
            if previous is not None:
                extended[:-1] = previous
            extended[-1] = i
            self._known_arrays[event.user] = extended


def rank_among_candidates(scores: np.ndarray, candidates: Candidates) -> int:
    """Return the 0-based rank of the event's item among `candidates`, given scores of all seen items.

    Ties go to the lower item index, as in `models.topn.rank_of`. A candidate
    scored NaN is never ahead. An item never seen before ranks last.
    """
    target = candidates.target
    if target is None:
        return candidates.count - 1
    # The candidates ahead: a higher score, or an equal score and a lower index.
    target_score = scores[target]
    ahead = scores > target_score
    ahead[:target] |= scores[:target] == target_score
    ahead &= candidates.mask
    return int(np.count_nonzero(ahead))


class _Tracker:
    """One model under evaluation, with its metrics and clocks."""

    def __init__(self, label: str, model: Recommender, top_n: int, window: int) -> None:
        self.label = label
        self.model = model
        self.metrics = RankingMetrics(top_n, window)
        self.warmup_seconds = 0.0
        self.test_seconds = 0.0
        self.skipped_updates = 0

    def learn_only(self, event: Event) -> None:
        start = time.perf_counter()
        self._learn(event)
        self.warmup_seconds += time.perf_counter() - start

    def test_then_learn(self, event: Event, candidates: Candidates) -> int:
        start = time.perf_counter()
        scores = np.asarray(self.model.scores(event.user, event.context))
        self._check_scores(scores, candidates)
        rank = rank_among_candidates(scores, candidates)
        self._learn(event)
        self.test_seconds += time.perf_counter() - start

        self.metrics.add(rank, candidates.count)
        return rank

    def _learn(self, event: Event) -> None:
        try:
            self.model.learn(event)
        except NonFiniteParameterError as exc:
            if self.skipped_updates == 0:
                logger.warning("%s; later events that %r rejects are only counted", exc, self.label)
            self.skipped_updates += 1

    def _check_scores(self, scores: np.ndarray, candidates: Candidates) -> None:
        n_seen = candidates.mask.size
        if scores.shape != (n_seen,):
            raise EvaluationError(
                f"model {self.label!r} returned scores of shape {scores.shape} for {n_seen} seen items; "
                "a model under evaluation must start empty and learn every event of the stream"
            )
        if candidates.target is not None and np.isnan(scores[candidates.target]):
            raise EvaluationError(
                f"model {self.label!r} scored the event's item "
                f"{self.model.items.id_of(candidates.target)!r} as NaN"
            )

    def result(self) -> ModelResult:
        overall = self.metrics.overall()
        rate = overall.n_events / self.test_seconds if self.test_seconds > 0 else None
        return ModelResult(
            model=self.label,
            params=_plain_params(self.model.params()),
            overall=overall,
            window=self.metrics.windowed(),
            warmup_seconds=self.warmup_seconds,
            test_seconds=self.test_seconds,
            events_per_second=rate,
            skipped_updates=self.skipped_updates,
        )


def evaluate(
    events: Collection[Event],
    models: Mapping[str, Recommender],
    *,
    warmup: float = 0.3,
    top_n: int = 10,
    window: int = 1000,
    on_rank: RankCallback | None = None,
) -> EvaluationResult:
    """Run test-then-learn over `events` for every model in `models`, in one pass.

    `models` maps a label to an empty model. Every model is tested on and
    learns the same events in the same order. `warmup` is the fraction of
    events, from the start, that are learned without a test. `window` is the
    number of last tested events the window metrics cover. `events` only needs
    `len` and iteration, so a progress-bar wrapper works.

    Raises ValueError on an argument out of range or a model that has already
    learned, and EvaluationError when a model returns scores that do not cover
    exactly the items seen so far, or a NaN score for the event's item.
    """
    _check_arguments(models, warmup, top_n, window)
    n_events = len(events)
    n_warmup = int(warmup * n_events)
    logger.info(
        "evaluating %s on %d events: %d warm-up, %d tested, top-%d, window of %d",
        ", ".join(models), n_events, n_warmup, n_events - n_warmup, top_n, window,
    )

    stream = SeenItems()
    trackers = [_Tracker(label, model, top_n, window) for label, model in models.items()]
    n_tested = 0
    total_candidates = 0
    n_unseen = 0
    for position, event in enumerate(events):
        if position < n_warmup:
            for tracker in trackers:
                tracker.learn_only(event)
            stream.observe(event)
            continue

        # Test, then learn, for every model on the same candidates.
        candidates = stream.candidates(event)
        for tracker in trackers:
            rank = tracker.test_then_learn(event, candidates)
            if on_rank is not None:
                on_rank(tracker.label, position, rank, candidates.count)
        stream.observe(event)

        n_tested += 1
        total_candidates += candidates.count
        n_unseen += candidates.target is None

    return EvaluationResult(
        n_events=n_events,
        n_warmup_events=n_warmup,
        n_test_events=n_tested,
        warmup=warmup,
        top_n=top_n,
        window=window,
        mean_candidates=total_candidates / n_tested if n_tested else 0.0,
        n_unseen_item_events=n_unseen,
        models=[tracker.result() for tracker in trackers],
    )


def _check_arguments(models: Mapping[str, Recommender], warmup: float, top_n: int, window: int) -> None:
    if not models:
        raise ValueError("no models to evaluate; pass at least one")
    if not 0.0 <= warmup < 1.0:
        raise ValueError(f"warmup must be a fraction in [0, 1), got {warmup!r}")
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, got {top_n}")
    if window < 1:
        raise ValueError(f"window must be at least 1 event, got {window}")
    labels_by_model: dict[int, str] = {}
    for label, model in models.items():
        if id(model) in labels_by_model:
            raise ValueError(
                f"models {labels_by_model[id(model)]!r} and {label!r} are the same object, which would learn "
                "every event twice; pass a separate instance per label"
            )
        labels_by_model[id(model)] = label
        if model.n_users or model.n_items:
            raise ValueError(
                f"model {label!r} has already learned {model.n_users} users and {model.n_items} items; "
                "evaluate a new, empty model"
            )


def _plain_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Return `params` with every value that is not a JSON scalar replaced by a short description."""
    plain: dict[str, Any] = {}
    for name, value in params.items():
        if value is None or isinstance(value, (bool, int, float, str)):
            plain[name] = value
        elif isinstance(value, Sized):
            plain[name] = f"<{type(value).__name__} of {len(value)} entries>"
        else:
            plain[name] = f"<{type(value).__name__}>"
    return plain
