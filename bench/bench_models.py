"""Benchmark streamrec's models against FluRS 0.0.5 and River on MovieLens-100k.

Runs in one process, side by side on the same events (5-star ratings in
timestamp order, 30% warm-up by default):

- streamrec's registered models through `models.evaluate.evaluate`;
- FluRS 0.0.5's Popular, MFRecommender, FMRecommender and SketchRecommender
  through FluRS's own `Evaluator` (fit on the warm-up, then evaluate);
- River's FunkMF and BiasedMF, driven by a loop in this script over their
  `learn_one` and `predict_one`, on streamrec's candidates.

Needs the benchmark extra, which the project's test environment does not have:

    python3.11 -m venv /tmp/benchvenv
    /tmp/benchvenv/bin/pip install -e '.[bench]'
    /tmp/benchvenv/bin/python bench/bench_models.py

Prints recall@N and events per second per model, then the ratios that
bench/README.md records. A library that fails to import or a model that fails
to run gets a row with the error as its note, and the other rows still run.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import platform
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from models.base import Event
from models.datasets import Interactions, load_movielens_100k
from models.evaluate import SeenItems, evaluate, rank_among_candidates
from models.registry import MODELS
from worker.cmd_evaluate import build_model, to_events

logger = logging.getLogger(__name__)

FLURS_MODELS = ("Popular", "MFRecommender", "FMRecommender", "SketchRecommender")
RIVER_MODELS = ("FunkMF", "BiasedMF")


@dataclass
class Row:
    """One model's figures; a figure is None when the model did not run or it was not measured.

    `events_per_second` counts the time the model spends testing and learning
    the tested events. `loop_events_per_second` counts the wall time of the
    whole test-then-learn loop with this model alone, from the first tested
    event to the last, so it includes the evaluator's own work per event. A
    streamrec model named "NAME (alone)" ran without the other models beside it.
    """

    library: str
    model: str
    n_tested: int
    recall: float | None
    events_per_second: float | None
    loop_events_per_second: float | None = None
    note: str = ""


class LoopClock:
    """Wall time from the first to the last call of `tick`, one call per tested event."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.last: float | None = None
        self.ticks = 0

    def tick(self) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.last = now
        self.ticks += 1

    def rate(self) -> float | None:
        """Return tested events per second between the first and the last tick."""
        if self.ticks < 2 or self.last == self.first:
            return None
        return (self.ticks - 1) / (self.last - self.first)


# -- streamrec ----------------------------------------------------------------


def run_streamrec(
    events: list[Event], interactions: Interactions, names: list[str], warmup: float, top_n: int, seed: int
) -> tuple[list[Row], dict[str, np.ndarray]]:
    """Evaluate streamrec's models; return their rows and each model's rank per stream position (-1 untested)."""
    models = {name: build_model(name, interactions, seed) for name in names}
    ranks = {name: np.full(len(events), -1, dtype=np.int64) for name in names}

    def record(label: str, position: int, rank: int, n_candidates: int) -> None:
        ranks[label][position] = rank

    result = evaluate(events, models, warmup=warmup, top_n=top_n, on_rank=record)
    rows = [
        Row("streamrec", m.model, m.overall.n_events, m.overall.recall, m.events_per_second) for m in result.models
    ]
    return rows, ranks


def run_streamrec_alone(
    name: str, events: list[Event], interactions: Interactions, warmup: float, top_n: int, seed: int
) -> Row:
    """Evaluate model `name` alone, for rates free of the other models' cache traffic, and time the loop."""
    clock = LoopClock()
    model = build_model(name, interactions, seed)
    result = evaluate(events, {name: model}, warmup=warmup, top_n=top_n, on_rank=lambda *_: clock.tick())
    m = result.models[0]
    return Row("streamrec", f"{name} (alone)", m.overall.n_events, m.overall.recall, m.events_per_second, clock.rate())


# -- FluRS ----------------------------------------------------------------------


def feature_vectors(attributes: Mapping, ids: list) -> dict:
    """Return a dense vector per id over the sorted feature names.

    Binary features stay as they are; any other feature is min-max scaled to
    [0, 1] over all ids, as streamrec's ifm model scales its attributes. An id
    without attributes gets zeros.
    """
    names = sorted({name for features in attributes.values() for name in features})
    columns = {name: [f[name] for f in attributes.values() if name in f] for name in names}
    low, span = np.zeros(len(names)), np.ones(len(names))
    for n, name in enumerate(names):
        column = np.asarray(columns[name])
        if np.all((column == 0.0) | (column == 1.0)):
            continue
        if column.max() > column.min():
            low[n], span[n] = column.min(), column.max() - column.min()
        else:
            low[n] = column.min() - 1.0  # a constant feature becomes 1
    vectors = {}
    for entity in ids:
        vector = np.zeros(len(names))
        for name, value in attributes.get(entity, {}).items():
            n = names.index(name)
            vector[n] = (value - low[n]) / span[n]
        vectors[entity] = vector
    return vectors


def run_flurs(
    events: list[Event], interactions: Interactions, n_warmup: int, top_n: int, seed: int, time_limit: float
) -> list[Row]:
    """Evaluate FluRS 0.0.5's models with FluRS's Evaluator on the same events and warm-up."""
    try:
        from flurs.baseline import Popular
        from flurs.data.entity import Event as FlursEvent
        from flurs.data.entity import Item, User
        from flurs.evaluator import Evaluator
        from flurs.recommender import FMRecommender, MFRecommender, SketchRecommender
    except Exception as exc:  # any import failure is the finding to report
        note = f"flurs failed to import: {type(exc).__name__}: {exc}"
        return [Row("FluRS", name, 0, None, None, note) for name in FLURS_MODELS]

    # FluRS wants dense indices in order of first sight and feature vectors.
    user_ids = list(dict.fromkeys(e.user for e in events))
    item_ids = list(dict.fromkeys(e.item for e in events))
    user_index = {user: n for n, user in enumerate(user_ids)}
    item_index = {item: n for n, item in enumerate(item_ids)}
    user_vectors = feature_vectors(interactions.user_attributes, user_ids)
    item_vectors = feature_vectors(interactions.item_attributes, item_ids)
    flurs_events = [
        FlursEvent(
            User(user_index[e.user], user_vectors[e.user]), Item(item_index[e.item], item_vectors[e.item]), 1.0
        )
        for e in events
    ]
    n_features = len(next(iter(user_vectors.values()))) + len(next(iter(item_vectors.values())))
    builders: dict[str, Callable] = {
        "Popular": Popular,
        "MFRecommender": lambda: MFRecommender(k=40),
        "FMRecommender": lambda: FMRecommender(p=n_features, k=40),
        "SketchRecommender": lambda: SketchRecommender(p=n_features),
    }
    rows = []
    for name, build in builders.items():
        logger.info("running FluRS %s (%d user and item features for the feature models)", name, n_features)
        rows.append(_run_flurs_model(name, build, Evaluator, flurs_events, n_warmup, top_n, seed, time_limit))
    return rows


def _run_flurs_model(name, build, evaluator_class, flurs_events, n_warmup, top_n, seed, time_limit) -> Row:
    np.random.seed(seed)  # FluRS draws its initial factors from numpy's global generator
    try:
        recommender = build()
        recommender.initialize()
        evaluator = evaluator_class(recommender, repeat=False)

        # FluRS's MovieLens example: batch-train on the first two thirds of the
        # warm-up (20% of the events), learn the last third (10%) after its
        # batch check, then test-then-learn the rest.
        n_pretrain = n_warmup * 2 // 3
        evaluator.fit(flurs_events[:n_pretrain], flurs_events[n_pretrain:n_warmup], n_epoch=1)

        ranks, seconds, note = [], 0.0, ""
        clock = LoopClock()
        for _top_score, rank, recommend_seconds, update_seconds in evaluator.evaluate(flurs_events[n_warmup:]):
            clock.tick()
            ranks.append(rank)
            seconds += recommend_seconds + update_seconds
            if seconds > time_limit:
                note = f"stopped at the {time_limit:g} s limit: first {len(ranks)} tested events only"
                break
    except Exception as exc:  # a FluRS failure is reported in its row, the others still run
        logger.exception("FluRS %s failed", name)
        return Row("FluRS", name, 0, None, None, f"failed: {type(exc).__name__}: {exc}")
    recall = float(np.mean(np.asarray(ranks) < top_n)) if ranks else None
    rate = len(ranks) / seconds if seconds > 0 else None
    return Row("FluRS", name, len(ranks), recall, rate, clock.rate(), note)


# -- River ----------------------------------------------------------------------


def run_river(
    events: list[Event], n_warmup: int, top_n: int, every: int, seed: int, time_limit: float
) -> tuple[list[Row], np.ndarray]:
    """Run River's FunkMF and BiasedMF on streamrec's protocol; return rows and the most tested positions."""
    try:
        from river import reco
    except Exception as exc:  # any import failure is the finding to report
        note = f"river failed to import: {type(exc).__name__}: {exc}"
        return [Row("River", name, 0, None, None, note) for name in RIVER_MODELS], np.empty(0, dtype=np.int64)

    builders = {
        "FunkMF": lambda: reco.FunkMF(n_factors=10, seed=seed),
        "BiasedMF": lambda: reco.BiasedMF(n_factors=10, seed=seed),
    }
    rows, tested = [], np.empty(0, dtype=np.int64)
    for name, build in builders.items():
        row, positions = _run_river_model(name, build(), events, n_warmup, top_n, every, time_limit)
        rows.append(row)
        # Keep the larger set of tested positions when a time limit cut one model short.
        if positions.size > tested.size:
            tested = positions
    return rows, tested


def _run_river_model(name, model, events, n_warmup, top_n, every, time_limit) -> tuple[Row, np.ndarray]:
    """Test every `every`-th event after the warm-up by predicting each candidate; learn every event."""
    seen = SeenItems()
    ranks, positions = [], []
    test_seconds = learn_seconds = 0.0
    n_learned_after_warmup = 0
    capped_at = None
    clock = LoopClock()
    for position, event in enumerate(events):
        testing = position >= n_warmup and (position - n_warmup) % every == 0 and capped_at is None
        if testing:
            clock.tick()
            candidates = seen.candidates(event)
            start = time.perf_counter()
            # Only candidates need a score; rank_among_candidates ignores the rest.
            scores = np.zeros(candidates.mask.size)
            indices = np.flatnonzero(candidates.mask)
            for index, item in zip(indices.tolist(), seen.items.ids_of(indices)):
                scores[index] = model.predict_one(event.user, item)
            ranks.append(rank_among_candidates(scores, candidates))
            test_seconds += time.perf_counter() - start
            positions.append(position)
            if test_seconds > time_limit:
                capped_at = position

        start = time.perf_counter()
        model.learn_one(event.user, event.item, 1.0)
        elapsed = time.perf_counter() - start
        if position >= n_warmup:
            learn_seconds += elapsed
            n_learned_after_warmup += 1
        seen.observe(event)

    note = f"every {every}th event after the warm-up tested" if every > 1 else ""
    if capped_at is not None:
        note = f"testing stopped at the {time_limit:g} s limit, at position {capped_at}; " + note
    recall = float(np.mean(np.asarray(ranks) < top_n)) if ranks else None
    # Estimate: the mean test time of a tested event plus the mean learn time of an event.
    per_event = test_seconds / len(ranks) + learn_seconds / n_learned_after_warmup if ranks else 0.0
    rate = 1.0 / per_event if per_event > 0 else None
    # The loop rate is only the real one when every event after the warm-up is tested.
    loop_rate = clock.rate() if every == 1 and capped_at is None else None
    row = Row("River", name, len(ranks), recall, rate, loop_rate, note.strip("; "))
    return row, np.asarray(positions, dtype=np.int64)


# -- report ---------------------------------------------------------------------


def _find(rows: list[Row], library: str, model: str) -> Row | None:
    return next((r for r in rows if r.library == library and r.model == model), None)


def ratio_lines(rows: list[Row]) -> list[str]:
    """Return the ratio lines, with n/a where a figure is missing."""
    pairs = [
        ("events/s", ("streamrec", "imf (alone)"), ("FluRS", "MFRecommender"), "the models' own time"),
        ("loop events/s", ("streamrec", "imf (alone)"), ("FluRS", "MFRecommender"),
         "target at least 10x: the whole test-then-learn loop"),
        ("events/s", ("streamrec", "imf"), ("FluRS", "MFRecommender"), "imf beside the other models"),
        ("recall", ("streamrec", "imf"), ("streamrec", "popular"), ""),
        ("recall", ("streamrec", "bprmf"), ("streamrec", "popular"), ""),
        ("recall", ("streamrec", "ifm"), ("FluRS", "FMRecommender"), ""),
        ("recall", ("streamrec", "sketch"), ("FluRS", "SketchRecommender"), ""),
        ("recall", ("streamrec", "popular"), ("FluRS", "Popular"), "protocol check, about 1"),
    ]
    lines = []
    for figure, top, bottom, comment in pairs:
        a, b = _find(rows, *top), _find(rows, *bottom)
        attribute = {"events/s": "events_per_second", "loop events/s": "loop_events_per_second"}.get(figure, "recall")
        x = getattr(a, attribute) if a else None
        y = getattr(b, attribute) if b else None
        value = f"{x / y:.2f}x" if x is not None and y else "n/a"
        label = f"{figure}: {top[0]} {top[1]} / {bottom[0]} {bottom[1]}"
        lines.append(f"  {label:<70} {value:>8}  {comment}".rstrip())
    return lines


def format_table(rows: list[Row], top_n: int) -> list[str]:
    header = (
        f"{'library':<10} {'model':<18} {'tested':>7} {f'recall@{top_n}':>10} {'events/s':>10} "
        f"{'loop ev/s':>10}  note"
    )
    lines = [header]
    for r in rows:
        recall = f"{r.recall:.4f}" if r.recall is not None else "-"
        rate = f"{r.events_per_second:,.0f}" if r.events_per_second is not None else "-"
        loop = f"{r.loop_events_per_second:,.0f}" if r.loop_events_per_second is not None else "-"
        line = f"{r.library:<10} {r.model:<18} {r.n_tested:>7} {recall:>10} {rate:>10} {loop:>10}  {r.note}"
        lines.append(line.rstrip())
    return lines


def versions() -> str:
    found = []
    for package in ("numpy", "scipy", "scikit-learn", "flurs", "river"):
        try:
            found.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{package} not installed")
    return f"Python {platform.python_version()}; " + ", ".join(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="GroupLens ml-100k folder (default: fetch into the cache)")
    parser.add_argument("--models", default=",".join(MODELS), help="streamrec models (default: %(default)s)")
    parser.add_argument(
        "--min-rating", type=float, default=5.0,
        help="keep only events rated at least this much (default: %(default)s)",
    )
    parser.add_argument("--warmup", type=float, default=0.3, help="warm-up fraction (default: %(default)s)")
    parser.add_argument("--top-n", type=int, default=10, help="N of recall@N (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed for every model (default: %(default)s)")
    parser.add_argument(
        "--river-every", type=int, default=1, help="test every k-th event after the warm-up in River (default: %(default)s)",
    )
    parser.add_argument(
        "--time-limit", type=float, default=600.0,
        help=(
            "measured test-then-learn seconds after which a FluRS or River model stops testing "
            "(default: %(default)s)"
        ),
    )
    parser.add_argument(
        "--alone-models", type=lambda text: [n for n in text.split(",") if n], default=["popular", "imf"],
        help="streamrec models to run once more, each alone, for their rates (default: popular,imf)",
    )
    parser.add_argument("--skip-flurs", action="store_true", help="do not run FluRS")
    parser.add_argument("--skip-river", action="store_true", help="do not run River")
    parser.add_argument("--output", type=Path, help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    names = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = [name for name in names + args.alone_models if name not in MODELS]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; choose from {', '.join(MODELS)}")
    interactions = load_movielens_100k(args.data_dir).filter_min_rating(args.min_rating)
    events = to_events(interactions)
    n_warmup = int(args.warmup * len(events))

    rows, our_ranks = run_streamrec(events, interactions, names, args.warmup, args.top_n, args.seed)
    for name in args.alone_models:
        rows.append(run_streamrec_alone(name, events, interactions, args.warmup, args.top_n, args.seed))
    if not args.skip_flurs:
        rows += run_flurs(events, interactions, n_warmup, args.top_n, args.seed, args.time_limit)
    river_positions = np.empty(0, dtype=np.int64)
    if not args.skip_river:
        river_rows, river_positions = run_river(
            events, n_warmup, args.top_n, args.river_every, args.seed, args.time_limit
        )
        rows += river_rows

    print(versions())
    print(
        f"MovieLens-100k rated at least {args.min_rating:g}: {len(events)} events, {n_warmup} warm-up, "
        f"{len(events) - n_warmup} tested, recall@{args.top_n}"
    )
    print()
    print("\n".join(format_table(rows, args.top_n)))
    if 0 < river_positions.size < len(events) - n_warmup:
        print()
        print(f"streamrec recall@{args.top_n} on the {river_positions.size} events the busier River model tested:")
        for name, ranks in our_ranks.items():
            print(f"  {name:<10} {np.mean(ranks[river_positions] < args.top_n):.4f}")
    print()
    print("Ratios:")
    print("\n".join(ratio_lines(rows)))
    if args.output is not None:
        args.output.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
