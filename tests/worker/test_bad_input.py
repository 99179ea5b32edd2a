"""Malformed records interleaved with good ones, through the real broker."""

from __future__ import annotations

import msgpack
import pytest

from tests.kafka_helpers import KafkaTestKit
from tests.worker.bad_records import BAD_RECORDS
from worker.processor import HEADER_OFFSET, HEADER_REASON

pytestmark = pytest.mark.kafka


def test_each_bad_record_dead_lettered_once(kafka: KafkaTestKit):
    source, sink = kafka.topic("in"), kafka.topic("out")
    kafka.create_topic(source, 1)
    records, expected_reasons, good_offsets = [], {}, []
    for k, (name, value, reason) in enumerate(BAD_RECORDS):
        good_offsets.append(len(records))
        records.append((b"7", msgpack.packb({"user": 7, "item": k, "ts": 1000 + k})))
        expected_reasons[len(records)] = (name, reason)
        records.append((b"7", value))
    good_offsets.append(len(records))
    records.append((b"8", msgpack.packb({"user": 8, "item": 0, "ts": 5000})))
    kafka.produce(source, records)

    result = kafka.run_worker(kafka.worker_args(source, sink, "--exit-at-end"))
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("starting worker") == 1

    dead = kafka.consume_all(f"{source}.dead-letter", expected=len(BAD_RECORDS))
    offsets = [int(r.headers[HEADER_OFFSET]) for r in dead]
    assert sorted(offsets) == sorted(expected_reasons), "each bad record must be dead-lettered exactly once"
    for record in dead:
        name, reason = expected_reasons[int(record.headers[HEADER_OFFSET])]
        assert record.headers[HEADER_REASON].decode() == reason, name

    outputs = kafka.consume_all(sink, expected=len(good_offsets))
    assert sorted(o.decoded()["offset"] for o in outputs) == good_offsets
