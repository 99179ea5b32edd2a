"""Writing checkpoints to and restoring them from a real state topic."""

from __future__ import annotations

import numpy as np
import pytest
from confluent_kafka import Producer

from tests.kafka_helpers import KafkaTestKit
from worker.state_store import STATE_TOPIC_CONFIG, StateStore
from worker.topics import ensure_topic

pytestmark = pytest.mark.kafka


def _write(kafka: KafkaTestKit, store: StateStore, partition: int, state: dict, next_offset: int) -> list:
    records = store.changed_records(partition, state, next_offset)
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    for key, value in records:
        producer.produce(store.topic, key=key.encode(), value=value, partition=partition)
    assert producer.flush(30) == 0
    store.confirm()
    return records


def test_checkpoints_write_only_changes_and_restore(kafka: KafkaTestKit):
    topic = kafka.topic("state")
    ensure_topic(kafka.admin, topic, 2, config=STATE_TOPIC_CONFIG)
    store = StateStore(kafka.bootstrap_servers, topic, block_bytes=4096, timeout=30)
    factors = np.arange(4000, dtype=np.float64).reshape(500, 8)

    first = _write(kafka, store, 1, {"factors": factors, "note": "a"}, next_offset=10)
    assert len(first) == 1 + 500 * 8 * 8 // 4096 + 1  # blocks plus the meta record

    factors[3, 0] = -1.0  # touches one block only
    second = _write(kafka, store, 1, {"factors": factors, "note": "b"}, next_offset=11)
    assert [key for key, _ in second] == ["1/a/factors/0", "1/meta"]

    # Fewer rows, as after evicting users: the blocks past the end get tombstones.
    _write(kafka, store, 1, {"factors": factors[:100], "note": "c"}, next_offset=12)

    restored, next_offset = StateStore(kafka.bootstrap_servers, topic, timeout=30).restore(1)
    assert next_offset == 12
    assert restored["note"] == "c"
    np.testing.assert_array_equal(restored["factors"], factors[:100])
    assert StateStore(kafka.bootstrap_servers, topic, timeout=30).restore(0) is None


def test_restore_after_restore_writes_only_changes(kafka: KafkaTestKit):
    topic = kafka.topic("state")
    ensure_topic(kafka.admin, topic, 1, config=STATE_TOPIC_CONFIG)
    writer = StateStore(kafka.bootstrap_servers, topic, block_bytes=1024, timeout=30)
    state = {"x": np.ones((300, 4))}
    _write(kafka, writer, 0, state, next_offset=5)

    reader = StateStore(kafka.bootstrap_servers, topic, block_bytes=1024, timeout=30)
    restored, _ = reader.restore(0)
    # Nothing changed since the restore, so only the meta record is written.
    assert [key for key, _ in reader.changed_records(0, restored, 6)] == ["0/meta"]
