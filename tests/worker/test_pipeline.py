"""End-to-end tests of `streamrec run` against a real broker."""

from __future__ import annotations

import signal
import urllib.request
from collections import defaultdict

import msgpack
import pytest

from tests.kafka_helpers import KafkaTestKit, wait_for
from worker.processor import HEADER_ERROR, HEADER_OFFSET, HEADER_PARTITION, HEADER_REASON, HEADER_TOPIC

pytestmark = pytest.mark.kafka


def make_events(n_events: int, n_users: int = 12, n_items: int = 30) -> list[dict]:
    """A deterministic stream where users revisit items, with string and integer ids mixed."""
    events = []
    for k in range(n_events):
        user = k % n_users if k % 3 else f"user-{k % n_users}"
        item = (k * 7 + k // n_users) % n_items
        events.append({"user": user, "item": item if k % 2 else f"item-{item}", "ts": 1_000_000 + k})
    return events


def test_every_event_yields_one_output(kafka: KafkaTestKit):
    source, sink = kafka.topic("in"), kafka.topic("out")
    kafka.create_topic(source, 3)
    events = make_events(300)
    kafka.produce_events(source, events)

    result = kafka.run_worker(kafka.worker_args(source, sink, "--exit-at-end", "--top-n", "5"))
    assert result.returncode == 0, result.stderr

    inputs = kafka.consume_all(source, expected=len(events))
    outputs = kafka.consume_all(sink, expected=len(events))
    assert len(outputs) == len(events)
    by_origin = {(o.decoded()["partition"], o.decoded()["offset"]): o for o in outputs}
    assert len(by_origin) == len(events), "an input event has more than one output"

    # Replay each partition in order to know every user's items so far.
    seen: dict[tuple[int, object], set] = defaultdict(set)
    known_items: dict[int, set] = defaultdict(set)
    for record in sorted(inputs, key=lambda r: (r.partition, r.offset)):
        event = record.decoded()
        output = by_origin[(record.partition, record.offset)]
        value = output.decoded()
        seen[(record.partition, event["user"])].add(event["item"])
        known_items[record.partition].add(event["item"])
        unseen = known_items[record.partition] - seen[(record.partition, event["user"])]

        assert output.key == str(event["user"]).encode()
        assert value["user"] == event["user"]
        assert value["topic"] == source
        assert value["model"] == "imf"
        assert value["ts"] == event["ts"]
        assert len(value["items"]) == min(5, len(unseen))
        assert not set(value["items"]) & seen[(record.partition, event["user"])]
        assert len(value["scores"]) == len(value["items"])
        assert value["scores"] == sorted(value["scores"], reverse=True)


def test_malformed_record_goes_to_dead_letter(kafka: KafkaTestKit):
    source, sink = kafka.topic("in"), kafka.topic("out")
    kafka.create_topic(source, 1)
    good = msgpack.packb({"user": 1, "item": 2, "ts": 10})
    kafka.produce(source, [
        (b"1", good),
        (b"1", b"\xc1 not msgpack"),
        (b"2", msgpack.packb({"user": 2, "item": 3, "ts": 11})),
    ])

    result = kafka.run_worker(kafka.worker_args(source, sink, "--exit-at-end"))
    assert result.returncode == 0, result.stderr

    outputs = kafka.consume_all(sink, expected=2)
    assert sorted(o.decoded()["offset"] for o in outputs) == [0, 2]
    dead = kafka.consume_all(f"{source}.dead-letter", expected=1)
    assert len(dead) == 1
    assert dead[0].value == b"\xc1 not msgpack"
    assert dead[0].key == b"1"
    assert dead[0].headers[HEADER_TOPIC] == source.encode()
    assert dead[0].headers[HEADER_PARTITION] == b"0"
    assert dead[0].headers[HEADER_OFFSET] == b"1"
    assert dead[0].headers[HEADER_REASON] == b"undecodable"
    assert b"msgpack" in dead[0].headers[HEADER_ERROR]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DOCUMENTED_METRICS = [
    "streamrec_events_processed_total",
    "streamrec_events_rejected_total",
    "streamrec_hits_total",
    "streamrec_recall",
    "streamrec_event_processing_seconds_bucket",
    "streamrec_shard_users",
    "streamrec_shard_items",
    "streamrec_consumer_lag",
    "streamrec_assigned_partitions",
    "streamrec_ready",
    "streamrec_checkpoints_total",
    "streamrec_checkpoint_duration_seconds_bucket",
    "streamrec_restore_duration_seconds_bucket",
]


def test_metrics_endpoint_serves_documented_names(kafka: KafkaTestKit):
    source, sink = kafka.topic("in"), kafka.topic("out")
    kafka.create_topic(source, 2)
    events = make_events(100)
    kafka.produce_events(source, events)
    kafka.produce(source, [(b"x", b"\xc1")], partition=0)
    port = _free_port()
    args = kafka.worker_args(source, sink, "--checkpoint-interval-ms", "200")
    args[args.index("--metrics-port") + 1] = str(port)
    process, log = kafka.start_worker(args + ["--metrics-address", "127.0.0.1"])
    try:
        def scrape() -> str:
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            except OSError:
                return ""

        def processed() -> float:
            return sum(float(line.rsplit(" ", 1)[1]) for line in scrape().splitlines()
                       if line.startswith("streamrec_events_processed_total{"))

        wait_for(lambda: processed() == len(events), 60, message="all events processed",
                 workers=((process, log),))
        wait_for(lambda: "streamrec_checkpoints_total 0.0" not in scrape(), 30, message="a checkpoint")
        text = scrape()
        for name in DOCUMENTED_METRICS:
            assert f"\n{name}" in text, f"{name} missing from /metrics"
        assert 'streamrec_events_rejected_total{partition="0",reason="undecodable"} 1.0' in text
        assert 'streamrec_ready 1.0' in text
        assert 'streamrec_assigned_partitions 2.0' in text
        assert "user=" not in text
        assert "item=" not in text
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
    assert code == 0, log.read_text()


def test_at_least_once_outputs_and_commits(kafka: KafkaTestKit):
    source, sink = kafka.topic("in"), kafka.topic("out")
    kafka.create_topic(source, 2)
    events = make_events(200)
    kafka.produce_events(source, events)

    result = kafka.run_worker(kafka.worker_args(source, sink, "--exit-at-end", "--guarantee", "at-least-once"))
    assert result.returncode == 0, result.stderr

    outputs = kafka.consume_all(sink, expected=len(events))
    origins = {(o.decoded()["partition"], o.decoded()["offset"]) for o in outputs}
    assert len(outputs) == len(events)
    assert len(origins) == len(events)
    committed = kafka.committed_offsets(source)
    assert sum(committed.values()) == len(events)
