"""`streamrec run`: the worker."""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import os
import signal
import socket
import threading

from models import MODELS, Recommender
from worker.metrics import WorkerMetrics
from worker.runner import AT_LEAST_ONCE, EXACTLY_ONCE, Worker, WorkerConfig
from worker.shard import ShardSettings
from worker.state_store import STATE_TOPIC_CONFIG
from worker.topics import TopicError, ensure_topic, partition_count, wait_for_broker

logger = logging.getLogger(__name__)

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def key_value(text: str) -> tuple[str, object]:
    """Parse KEY=VALUE; VALUE is read as JSON when it parses (numbers, true, null), else kept as a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


def add_kafka_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap-servers", default=DEFAULT_BOOTSTRAP,
                        help="Kafka bootstrap servers, host:port[,host:port] (default: %(default)s)")
    parser.add_argument("--input-topic", default="interactions",
                        help="topic of interaction events (default: %(default)s)")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="run the worker",
        description="Consume interaction events; per event test, learn and publish the user's top-N.",
    )
    add_kafka_arguments(parser)
    parser.add_argument("--output-topic", default="recommendations",
                        help="topic for the users' fresh top-N lists (default: %(default)s)")
    parser.add_argument("--dead-letter-topic", help="topic for rejected records (default: INPUT_TOPIC.dead-letter)")
    parser.add_argument("--state-topic", help="compacted topic of the shards' state (default: GROUP_ID.state)")
    parser.add_argument("--group-id", default="streamrec", help="consumer group (default: %(default)s)")
    parser.add_argument("--instance-id", default=socket.gethostname(),
                        help="this process's name in the group, unique per running process; the transactional "
                             "id is GROUP_ID.INSTANCE_ID (default: the host name)")
    parser.add_argument("--model", default="imf", choices=sorted(MODELS), help="recommender (default: %(default)s)")
    parser.add_argument("--model-param", action="append", type=key_value, default=[], metavar="KEY=VALUE",
                        help="model constructor argument, repeatable, e.g. n_factors=64")
    parser.add_argument("--top-n", type=int, default=10, help="length of the published lists (default: %(default)s)")
    parser.add_argument("--include-seen", action="store_true",
                        help="rank items the user already interacted with too (default: exclude them)")
    parser.add_argument("--recall-window", type=int, default=1000,
                        help="events over which the rolling recall@N metric is computed (default: %(default)s)")
    parser.add_argument("--evict-after", type=float,
                        help="forget users with no event for this many seconds of event time, checked every "
                             "1000 events per shard (default: keep every user)")
    parser.add_argument("--guarantee", default=EXACTLY_ONCE, choices=[EXACTLY_ONCE, AT_LEAST_ONCE],
                        help="processing guarantee (default: %(default)s)")
    parser.add_argument("--checkpoint-interval-ms", type=int, default=1000,
                        help="most milliseconds between checkpoints (default: %(default)s)")
    parser.add_argument("--checkpoint-events", type=int, default=20000,
                        help="most events between checkpoints (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=1000,
                        help="most records consumed per poll (default: %(default)s)")
    parser.add_argument("--max-event-bytes", type=int, default=65536,
                        help="larger records are dead-lettered undecoded (default: %(default)s)")
    parser.add_argument("--metrics-port", type=int, default=9400,
                        help="port of the Prometheus /metrics endpoint; 0 disables it (default: %(default)s)")
    parser.add_argument("--metrics-address", default="0.0.0.0",
                        help="address the metrics endpoint listens on (default: %(default)s)")
    parser.add_argument("--exit-at-end", action="store_true",
                        help="stop once every assigned partition is drained (for demos and replays)")
    parser.add_argument("--kafka-timeout", type=float, default=60.0,
                        help="seconds to wait for the broker in each Kafka call (default: %(default)s)")
    parser.add_argument("--shutdown-timeout", type=float, default=30.0,
                        help="seconds after SIGTERM or SIGINT before the process exits anyway (default: %(default)s)")
    parser.add_argument("--session-timeout-ms", type=int, default=10000,
                        help="consumer group session timeout (default: %(default)s)")
    parser.add_argument("--transaction-timeout-ms", type=int, default=10000,
                        help="transactions of a worker that died are aborted by the broker after this; "
                             "a restore waits for them (default: %(default)s)")
    parser.add_argument("--kafka-config", action="append", type=key_value, default=[], metavar="KEY=VALUE",
                        help="extra librdkafka setting, prefixed consumer. or producer., repeatable")
    parser.set_defaults(handler=run)


def build_config(args: argparse.Namespace) -> WorkerConfig:
    return WorkerConfig(
        bootstrap_servers=args.bootstrap_servers,
        input_topic=args.input_topic,
        output_topic=args.output_topic,
        dead_letter_topic=args.dead_letter_topic or f"{args.input_topic}.dead-letter",
        state_topic=args.state_topic or f"{args.group_id}.state",
        group_id=args.group_id,
        transactional_id=f"{args.group_id}.{args.instance_id}",
        shard=ShardSettings(
            model=args.model,
            model_params=dict(args.model_param),
            top_n=args.top_n,
            exclude_seen=not args.include_seen,
            recall_window=args.recall_window,
            evict_after=args.evict_after,
        ),
        guarantee=args.guarantee,
        checkpoint_interval_ms=args.checkpoint_interval_ms,
        checkpoint_events=args.checkpoint_events,
        batch_size=args.batch_size,
        max_event_bytes=args.max_event_bytes,
        exit_at_end=args.exit_at_end,
        kafka_timeout=args.kafka_timeout,
        session_timeout_ms=args.session_timeout_ms,
        transaction_timeout_ms=args.transaction_timeout_ms,
        extra_kafka_config={k: str(v) for k, v in args.kafka_config},
    )


def _check(args: argparse.Namespace) -> None:
    for name in ("top_n", "recall_window", "transaction_timeout_ms", "session_timeout_ms", "checkpoint_interval_ms", "checkpoint_events", "batch_size",
                 "max_event_bytes"):
        if getattr(args, name) <= 0:
            raise SystemExit(f"streamrec run: --{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.evict_after is not None and not args.evict_after > 0:
        raise SystemExit(f"streamrec run: --evict-after must be a positive number of seconds, got {args.evict_after}")
    for key, _ in args.kafka_config:
        if not key.startswith(("consumer.", "producer.")):
            raise SystemExit(f"streamrec run: --kafka-config {key}: prefix the key with consumer. or producer.")
    try:
        model = MODELS[args.model](**dict(args.model_param))
    except (TypeError, ValueError) as exc:
        raise SystemExit(f"streamrec run: invalid --model-param for model {args.model}: {exc}") from None
    if args.evict_after is not None and type(model)._compact_users is Recommender._compact_users:
        raise SystemExit(f"streamrec run: model {args.model} does not support --evict-after")


def prepare_topics(config: WorkerConfig) -> None:
    """Wait for the broker and the input topic, then create the topics the worker writes."""
    admin = wait_for_broker(config.bootstrap_servers, config.kafka_timeout)
    partitions = partition_count(admin, config.input_topic)
    if partitions is None:
        logger.warning("input topic %s does not exist yet; the worker waits for it", config.input_topic)
        partitions = 1
    ensure_topic(admin, config.output_topic, partitions)
    ensure_topic(admin, config.dead_letter_topic, partitions)
    state_partitions = ensure_topic(admin, config.state_topic, partitions, config=STATE_TOPIC_CONFIG)
    if state_partitions < partitions:
        raise TopicError(
            f"state topic {config.state_topic} has {state_partitions} partitions but input topic "
            f"{config.input_topic} has {partitions}; add partitions to the state topic to match"
        )


def run(args: argparse.Namespace) -> int:
    _check(args)
    config = build_config(args)
    try:
        prepare_topics(config)
    except TopicError as exc:
        logger.error("%s", exc)
        return 1
    metrics = WorkerMetrics()
    if args.metrics_port:
        metrics.serve(args.metrics_port, args.metrics_address)
        logger.info("serving metrics on %s:%d/metrics", args.metrics_address, args.metrics_port)
    worker = Worker(config, metrics)

    def stop(signum, frame):
        worker.request_stop(signum)
        # The loop stops within one poll. This bound covers a broker that
        # does not respond during the final checkpoint, flush or close.
        timer = threading.Timer(args.shutdown_timeout, _force_exit, args=(args.shutdown_timeout,))
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # `kill -USR1 PID` prints every thread's stack to stderr, also while the
    # main thread is inside a Kafka client call.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    return worker.run()


def _force_exit(timeout: float) -> None:
    logger.error("shutdown did not finish within %.0f s; exiting without a final checkpoint", timeout)
    logging.shutdown()
    os._exit(4)
