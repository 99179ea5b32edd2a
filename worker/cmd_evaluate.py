"""`streamrec evaluate`: offline test-then-learn evaluation of models on a data set.

Runs without Kafka. Every event counts as a positive interaction with value
1.0; `--min-rating` chooses which ratings are positive. The protocol and the
metrics are described in models/evaluate.py and models/metrics.py.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from models.base import Event, Recommender
from models.datasets import DatasetError, Interactions, load_interactions, load_movielens_100k
from models.evaluate import EvaluationError, EvaluationResult, evaluate
from models.metrics import MetricValues
from models.registry import MODELS, make_model

logger = logging.getLogger(__name__)

MOVIELENS_100K = "movielens-100k"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate models offline with test-then-learn on a data set",
        description=(
            "Run test-then-learn over a data set in timestamp order for several models side by side: "
            "learn the warm-up share, then for every later event rank its item among the candidates "
            "before learning it. Prints a table and optionally writes the results as JSON."
        ),
    )
    parser.add_argument(
        "--dataset",
        default=MOVIELENS_100K,
        help=(
            f"'{MOVIELENS_100K}', or the path of an interactions file: GroupLens u.data, RecBole .inter, "
            "or CSV/TSV with a header naming the user, item and timestamp columns (default: %(default)s)"
        ),
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help=(
            f"GroupLens ml-100k folder for --dataset {MOVIELENS_100K}; without it the data set is "
            "fetched once into the cache"
        ),
    )

    parser.add_argument(
        "--models",
        type=model_list,
        default="popular,imf",
        help=f"comma-separated model names, from: {', '.join(MODELS)} (default: %(default)s)",
    )

    parser.add_argument(
        "--top-n", type=positive_int, default=10, help="length N of the top-N list (default: %(default)s)"
    )
    parser.add_argument(
        "--window",
        type=positive_int,
        default=1000,
        help="number of last tested events the window metrics cover (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed passed to every model (default: %(default)s)")
    parser.add_argument(
        "--min-rating",
        type=float,
        help="keep only events rated at least this much (default: keep every event)",
    )
    parser.add_argument(
        "--warmup",
        type=warmup_fraction,
        default=0.3,
        help="fraction of events, from the start, learned without a test, in [0, 1) (default: %(default)s)",
    )

    parser.add_argument(
        "--output",
        type=Path,
        default=Path("evaluation.json"),
        help="write the results as JSON to this file (default: %(default)s)",
    )
    parser.add_argument(
        "--no-output",
        dest="output",
        action="store_const",
        const=None,
        help="write no JSON file",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr (default: only when stderr is a terminal)",
    )

    parser.set_defaults(handler=run)


def model_list(text: str) -> list[str]:
    """Parse a comma-separated list of registered model names."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("no model names given; pass for example popular,imf")
    for name in names:
        if name not in MODELS:
            raise argparse.ArgumentTypeError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise argparse.ArgumentTypeError(f"model {duplicates[0]!r} is listed more than once")
    return names


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def warmup_fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(
            f"must be a fraction in [0, 1), got {value}; for example 0.3 learns the first 30% without a test"
        )
    return value


def run(args: argparse.Namespace) -> int:
    if args.output is not None and not args.output.parent.is_dir():
        print(f"streamrec evaluate: error: --output {args.output}: the folder {args.output.parent} does not exist",
              file=sys.stderr)
        return 1
    try:
        interactions = load_dataset(args.dataset, args.data_dir).filter_min_rating(args.min_rating)
        if len(interactions) == 0:
            raise DatasetError(f"no events in {args.dataset} are rated at least {args.min_rating:g}; lower --min-rating")
        events = to_events(interactions)
        models = {name: build_model(name, interactions, args.seed) for name in args.models}
        progress = tqdm(events, desc="evaluate", unit="event", disable=_progress_disabled(args.progress))
        with progress:
            result = evaluate(progress, models, warmup=args.warmup, top_n=args.top_n, window=args.window)
    except (DatasetError, EvaluationError) as exc:
        print(f"streamrec evaluate: error: {exc}", file=sys.stderr)
        return 1

    print(format_report(result, args.dataset, args.min_rating))
    if args.output is not None:
        document = {"dataset": args.dataset, "min_rating": args.min_rating, "seed": args.seed, **result.to_dict()}
        try:
            args.output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            print(f"streamrec evaluate: error: failed to write {args.output}: {exc}", file=sys.stderr)
            return 1
        logger.info("wrote the results to %s", args.output)
    return 0


def load_dataset(dataset: str, data_dir: Path | None) -> Interactions:
    """Load `movielens-100k` (from `data_dir` or the cache) or an interactions file."""
    if dataset == MOVIELENS_100K:
        return load_movielens_100k(data_dir)
    if data_dir is not None:
        raise DatasetError(f"--data-dir applies only to --dataset {MOVIELENS_100K}; pass the file as --dataset")
    path = Path(dataset)
    if not path.exists():
        raise DatasetError(f"dataset file {dataset} not found; pass an interactions file or {MOVIELENS_100K!r}")
    return load_interactions(path)


def to_events(interactions: Interactions) -> list[Event]:
    """Return one positive event, with value 1.0, per interaction, in the data set's order."""
    users = interactions.users.tolist()
    items = interactions.items.tolist()
    timestamps = interactions.timestamps.tolist()
    return [Event(user, item, ts, 1.0) for user, item, ts in zip(users, items, timestamps)]


def build_model(name: str, interactions: Interactions, seed: int) -> Recommender:
    """Build model `name` with `seed` and, where its constructor accepts them, the data set's attributes."""
    parameters = inspect.signature(MODELS[name]).parameters
    params: dict[str, Any] = {}
    if "seed" in parameters:
        params["seed"] = seed
    if "user_attributes" in parameters:
        params["user_attributes"] = interactions.user_attributes
    if "item_attributes" in parameters:
        params["item_attributes"] = interactions.item_attributes
    try:
        return make_model(name, **params)
    except ValueError as exc:
        raise EvaluationError(f"failed to build model {name!r}: {exc}") from exc


def format_report(result: EvaluationResult, dataset: str, min_rating: float | None) -> str:
    """Return the protocol summary and the tables of overall and window metrics."""
    rating = f", rated at least {min_rating:g}" if min_rating is not None else ""
    n_window = min(result.window, result.n_test_events)
    overall = [(m.model, m.overall) for m in result.models]
    window = [(m.model, m.window) for m in result.models]
    lines = [
        f"{dataset}: {result.n_events} events{rating}; {result.n_warmup_events} warm-up, "
        f"{result.n_test_events} tested; {result.mean_candidates:.1f} candidates per tested event on average; "
        f"tested events whose item was never seen before: {result.n_unseen_item_events}",
        "",
        f"All {result.n_test_events} tested events:",
        *_table(result.top_n, overall, [m.events_per_second for m in result.models]),
        "",
        f"Last {n_window} tested events:",
        *_table(result.top_n, window),
    ]
    return "\n".join(lines)


def _table(
    top_n: int, rows: list[tuple[str, MetricValues]], rates: list[float | None] | None = None
) -> list[str]:
    """Return a text table of metrics per model, with an events/s column when `rates` is given."""
    headers = ["model", f"recall@{top_n}", f"precision@{top_n}", "MRR", f"nDCG@{top_n}", "MPR"]
    body = [
        [
            label,
            f"{values.recall:.4f}",
            f"{values.precision:.4f}",
            f"{values.mrr:.4f}",
            f"{values.ndcg:.4f}",
            f"{values.mean_percentile_rank:.4f}",
        ]
        for label, values in rows
    ]
    if rates is not None:
        headers.append("events/s")
        for row, rate in zip(body, rates):
            row.append(f"{rate:,.0f}" if rate is not None else "-")

    widths = [max(len(row[c]) for row in [headers, *body]) for c in range(len(headers))]
    lines = []
    for row in [headers, *body]:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells))
    return lines


def _progress_disabled(progress: bool | None) -> bool | None:
    # tqdm turns itself off when disable is None and stderr is not a terminal.
    return None if progress is None else not progress
