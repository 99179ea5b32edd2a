"""`streamrec demo`: MovieLens-100k through the broker, end to end."""

from __future__ import annotations

import argparse
import logging
import time

import msgpack
from confluent_kafka import Consumer, KafkaError, TopicPartition

from models.datasets import DatasetError, load_movielens_100k
from worker.cmd_produce import produce_interactions
from worker.cmd_run import DEFAULT_BOOTSTRAP, prepare_topics
from worker.metrics import WorkerMetrics
from worker.runner import Worker, WorkerConfig
from worker.shard import ShardSettings
from worker.topics import TopicError, ensure_topic, wait_for_broker

logger = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run MovieLens-100k through the broker and the worker",
        description="Produce ML-100k to fresh topics, run the worker until drained, and print the figures.",
    )
    parser.add_argument("--bootstrap-servers", default=DEFAULT_BOOTSTRAP,
                        help="Kafka bootstrap servers (default: %(default)s)")
    parser.add_argument("--partitions", type=int, default=4, help="input partitions (default: %(default)s)")
    parser.add_argument("--model", default="imf", help="recommender (default: %(default)s)")
    parser.add_argument("--data-dir", help="GroupLens ml-100k folder; without it the data is fetched into the cache")
    parser.add_argument("--user", type=int, default=1, help="user whose last top-10 is shown (default: %(default)s)")
    parser.set_defaults(handler=demo)


def demo(args: argparse.Namespace) -> int:
    run_id = time.strftime("%Y%m%d-%H%M%S")
    prefix = f"demo-{run_id}"
    try:
        data = load_movielens_100k(args.data_dir)
        admin = wait_for_broker(args.bootstrap_servers, 60.0)
        source = f"{prefix}-interactions"
        ensure_topic(admin, source, args.partitions)
    except (DatasetError, TopicError) as exc:
        logger.error("%s", exc)
        return 1
    delivered, _ = produce_interactions(args.bootstrap_servers, source, data)
    if delivered != len(data):
        logger.error("only %d of %d events were delivered to %s", delivered, len(data), source)
        return 1

    config = WorkerConfig(
        bootstrap_servers=args.bootstrap_servers,
        input_topic=source,
        output_topic=f"{prefix}-recommendations",
        dead_letter_topic=f"{prefix}-dead-letter",
        state_topic=f"{prefix}-state",
        group_id=f"{prefix}-group",
        transactional_id=f"{prefix}-worker",
        shard=ShardSettings(model=args.model, model_params={}, top_n=10),
        exit_at_end=True,
    )
    prepare_topics(config)
    metrics = WorkerMetrics()
    worker = Worker(config, metrics)
    started = time.perf_counter()
    code = worker.run()
    elapsed = time.perf_counter() - started
    if code != 0:
        return code

    processed = worker.processor.processed_total
    hits = worker.processor.hits_total
    processing = worker.last_commit_at - worker.first_event_at
    outputs = _read_outputs(args.bootstrap_servers, config.output_topic, args.user)
    print()
    print(f"events:                 {len(data)} produced to {source} ({args.partitions} partitions)")
    print(f"events processed:       {processed:.0f} in {processing:.1f} s = {processed / processing:,.0f} events/s "
          "(first event to last commit)")
    print(f"whole worker run:       {elapsed:.1f} s = {processed / elapsed:,.0f} events/s "
          "(with joining the group and the final close)")
    print(f"recall@10 over stream:  {hits / max(processed, 1):.4f} (test-then-learn, model {args.model})")
    print(f"output records:         {outputs['count']} in {config.output_topic} "
          f"({outputs['origins']} distinct input events)")
    if outputs["last"] is not None:
        print(f"user {args.user}'s top-10 after their last event:")
        for rank, (item, score) in enumerate(zip(outputs["last"]["items"], outputs["last"]["scores"]), 1):
            print(f"  {rank:2d}. {data.item_titles.get(item, item)}  (score {score:.3f})")
    exact = outputs["count"] == len(data) == outputs["origins"]
    print("one output per input event: " + ("yes" if exact else "NO"))
    return 0 if exact else 1


def _read_outputs(bootstrap_servers: str, topic: str, user: int) -> dict:
    consumer = Consumer({
        "bootstrap.servers": bootstrap_servers,
        "group.id": f"{topic}-reader",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    })
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    count, origins, last = 0, set(), None
    at_end: set[int] = set()
    key = str(user).encode()
    deadline = time.monotonic() + 120
    while at_end < set(partitions) and time.monotonic() < deadline:
        for message in consumer.consume(5000, timeout=1.0):
            if message.error() is not None:
                if message.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                continue
            value = msgpack.unpackb(message.value(), raw=False)
            count += 1
            origins.add((value["partition"], value["offset"]))
            if message.key() == key and (last is None or value["ts"] >= last["ts"]):
                last = value
    consumer.close()
    return {"count": count, "origins": len(origins), "last": last}
