"""`streamrec produce`: write a data set's interactions to the input topic."""

from __future__ import annotations

import argparse
import logging

from confluent_kafka import KafkaError, Producer
from tqdm import tqdm

from models import Event
from models.datasets import DatasetError, Interactions, load_interactions, load_movielens_100k
from worker.cmd_run import add_kafka_arguments
from worker.events import encode_event, encode_key
from worker.topics import TopicError, ensure_topic, wait_for_broker

logger = logging.getLogger(__name__)

MOVIELENS_100K = "movielens-100k"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "produce", help="produce a data set's interactions as events",
        description="Produce interactions in timestamp order (stable for ties), keyed by user.",
    )
    parser.add_argument("dataset", help=f"{MOVIELENS_100K}, or the path of an interactions file "
                                        "(GroupLens u.data, RecBole .inter, CSV or TSV with a header)")
    add_kafka_arguments(parser)
    parser.add_argument("--partitions", type=int, default=4,
                        help="partitions of the input topic when it is created (default: %(default)s)")
    parser.add_argument("--min-rating", type=float, help="keep only ratings at or above this value")
    parser.add_argument("--data-dir", help="GroupLens ml-100k folder; without it the data is fetched into the cache")
    parser.add_argument("--limit", type=int, help="produce only the first LIMIT events")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(handler=produce)


def load_dataset(name: str, data_dir: str | None) -> Interactions:
    if name == MOVIELENS_100K:
        return load_movielens_100k(data_dir)
    return load_interactions(name)


def produce_interactions(
    bootstrap_servers: str, topic: str, interactions: Interactions, total: int | None = None, progress: bool = False
) -> tuple[int, list[KafkaError]]:
    """Produce the first `total` interactions (all by default) as events keyed by user, in order.

    Returns the number delivered and the delivery errors, after a flush of at
    most 60 s.
    """
    total = len(interactions) if total is None else total
    failures: list[KafkaError] = []

    def on_delivery(error, message):
        if error is not None:
            failures.append(error)

    producer = Producer({
        "bootstrap.servers": bootstrap_servers,
        "enable.idempotence": True,
        "linger.ms": 20,
        "batch.num.messages": 10000,
        "on_delivery": on_delivery,
    })
    users = interactions.users.tolist()
    items = interactions.items.tolist()
    ratings = interactions.ratings.tolist()
    timestamps = interactions.timestamps.tolist()
    for k in tqdm(range(total), desc=f"producing to {topic}", unit="event", disable=not progress, mininterval=0.5):
        event = Event(users[k], items[k], timestamps[k], ratings[k])
        while True:
            try:
                producer.produce(topic, key=encode_key(event.user), value=encode_event(event))
                break
            except BufferError:
                producer.poll(0.1)
        if k % 1000 == 0:
            producer.poll(0)
    remaining = producer.flush(60)
    return total - remaining - len(failures), failures


def produce(args: argparse.Namespace) -> int:
    if args.partitions <= 0:
        raise SystemExit(f"streamrec produce: --partitions must be positive, got {args.partitions}")
    try:
        interactions = load_dataset(args.dataset, args.data_dir).filter_min_rating(args.min_rating)
        admin = wait_for_broker(args.bootstrap_servers, 60.0)
        partitions = ensure_topic(admin, args.input_topic, args.partitions)
    except (DatasetError, TopicError) as exc:
        logger.error("%s", exc)
        return 1
    total = len(interactions) if args.limit is None else min(args.limit, len(interactions))
    delivered, failures = produce_interactions(
        args.bootstrap_servers, args.input_topic, interactions, total, progress=not args.no_progress
    )
    print(f"produced {delivered} of {total} events to {args.input_topic} ({partitions} partitions); "
          f"{len(failures)} failed, {total - delivered - len(failures)} undelivered")
    if failures:
        logger.error("first delivery error: %s", failures[0])
    return 0 if delivered == total else 1
