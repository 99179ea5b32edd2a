"""Shard state in a compacted Kafka topic: writing checkpoints and restoring."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from worker.state_codec import block_digest, decode_state, encode_state, meta_key

logger = logging.getLogger(__name__)

# Compaction keeps the latest record per key. The small segments and dirty
# ratio let the cleaner run often, so the log a restore reads stays close to
# one copy of the state.
STATE_TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "segment.bytes": str(16 * 1024 * 1024),
    "segment.ms": str(10 * 60 * 1000),
    "min.cleanable.dirty.ratio": "0.2",
    "max.message.bytes": str(1024 * 1024),
}


class RestoreError(Exception):
    """A shard's state could not be read back from the state topic."""


class StateStore:
    """Writes and reads the state records of the shards this worker owns.

    The store remembers the digest of every block it wrote or restored, so a
    checkpoint sends only the blocks that changed. `pending` digests become
    the written ones only when the caller confirms the checkpoint committed.
    """

    def __init__(self, bootstrap_servers: str, topic: str, block_bytes: int = 262144, timeout: float = 60.0) -> None:
        self.topic = topic
        self.block_bytes = block_bytes
        self.timeout = timeout
        self._bootstrap_servers = bootstrap_servers
        self._written: dict[int, dict[str, bytes]] = {}
        self._pending: dict[int, dict[str, bytes]] = {}

    def changed_records(self, partition: int, state: Mapping[str, Any], next_offset: int) -> list[tuple[str, bytes | None]]:
        """Return the (key, value) records that bring the topic up to `state`.

        The meta record comes last. A block that no longer exists gets a
        tombstone (value None).
        """
        encoded = encode_state(partition, state, next_offset, self.block_bytes)
        written = self._written.get(partition, {})
        records: list[tuple[str, bytes | None]] = [
            (key, data) for key, data in encoded.blocks.items() if written.get(key) != encoded.digests[key]
        ]
        records.extend((key, None) for key in written.keys() - encoded.blocks.keys())
        records.append((meta_key(partition), encoded.meta))
        self._pending[partition] = encoded.digests
        return records

    def confirm(self) -> None:
        """Record that the pending checkpoints committed."""
        self._written.update(self._pending)
        self._pending.clear()

    def discard_pending(self) -> None:
        """Forget pending checkpoints that were aborted."""
        self._pending.clear()

    def forget(self, partition: int) -> None:
        """Drop what is known of a partition this worker no longer owns."""
        self._written.pop(partition, None)
        self._pending.pop(partition, None)

    def restore(self, partition: int) -> tuple[dict[str, Any], int] | None:
        """Read `partition` of the state topic; return (state, next_offset), or None if it is empty.

        Reads only committed records, from the beginning to the end as the
        broker reports it on arrival. Raises RestoreError on timeout or on
        records that do not form a valid state.
        """
        started = time.monotonic()
        records = self._read_partition(partition)
        self.forget(partition)
        if not records:
            return None
        try:
            state, next_offset, mismatched = decode_state(partition, records)
        except Exception as exc:
            raise RestoreError(f"state topic {self.topic}[{partition}] contains an invalid state: {exc}") from exc
        if mismatched:
            logger.warning(
                "state topic %s[%d]: %d blocks are newer than the meta record, as after a crash "
                "during an at-least-once checkpoint; restoring them as they are",
                self.topic, partition, len(mismatched),
            )
        self._written[partition] = {
            key: block_digest(value) for key, value in records.items() if key != meta_key(partition)
        }
        logger.info(
            "restored state of partition %d from %s: %d records, next offset %d, in %.2f s",
            partition, self.topic, len(records), next_offset, time.monotonic() - started,
        )
        return state, next_offset

    def _read_partition(self, partition: int) -> dict[str, bytes]:
        consumer = Consumer(
            {
                "bootstrap.servers": self._bootstrap_servers,
                "group.id": f"{self.topic}.restore",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "fetch.max.bytes": 64 * 1024 * 1024,
                "fetch.wait.max.ms": 10,
            }
        )
        tp = TopicPartition(self.topic, partition)
        records: dict[str, bytes] = {}
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=self.timeout)
            if high <= low:
                return records
            consumer.assign([TopicPartition(self.topic, partition, low)])
            deadline = time.monotonic() + self.timeout
            while True:
                self._consume_until_end(consumer, partition, records, deadline)
                # A read_committed consumer stops at the last stable offset. A
                # transaction still open on this partition (a worker that
                # died mid-checkpoint) keeps that offset below the high
                # watermark until the transaction aborts or times out. The
                # state is complete only once every record up to the high
                # watermark is decided.
                position = consumer.position([tp])[0].offset
                if position >= high:
                    return records
                if time.monotonic() > deadline:
                    raise RestoreError(
                        f"state topic {self.topic}[{partition}] has an open transaction below offset {high} "
                        f"(read up to {position}) after {self.timeout:.0f} s; raise --kafka-timeout above "
                        "the producers' transaction.timeout.ms"
                    )
                logger.info(
                    "state topic %s[%d]: waiting for an open transaction to end (at %d of %d)",
                    self.topic, partition, position, high,
                )
                time.sleep(1.0)
        finally:
            consumer.close()

    def _consume_until_end(self, consumer: Consumer, partition: int, records: dict[str, bytes],
                           deadline: float) -> None:
        while True:
            if time.monotonic() > deadline:
                raise RestoreError(f"reading state topic {self.topic}[{partition}] timed out")
            for message in consumer.consume(num_messages=10000, timeout=0.05):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        return
                    if error.fatal():
                        raise RestoreError(f"reading state topic {self.topic}[{partition}] failed: {error}")
                    logger.warning("reading state topic %s[%d]: %s", self.topic, partition, error)
                    continue
                key = message.key().decode("utf-8")
                value = message.value()
                if value is None:
                    records.pop(key, None)
                else:
                    records[key] = value

