"""Checkpoints: committing outputs, shard state and input offsets together.

Two committers share one interface. `TransactionalCommitter` (exactly-once)
writes the state records and the input offsets inside the producer's open
transaction and commits it, so outputs, state and offsets become visible to
read_committed consumers atomically. `AtLeastOnceCommitter` flushes outputs
and state, then commits offsets: a crash in between replays those events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from worker.shard import Shard
from worker.state_store import StateStore

logger = logging.getLogger(__name__)


class CheckpointError(Exception):
    """A checkpoint failed; the caller rewinds to the last committed one."""


class FatalCheckpointError(Exception):
    """A checkpoint failed in a way the worker cannot recover from, such as being fenced."""


def _state_of(shard: Shard) -> dict:
    return {"model": shard.model.state_dict(), "shard": shard.window_state()}


class _Committer:
    def __init__(self, producer: Producer, consumer: Consumer, store: StateStore, input_topic: str,
                 timeout: float) -> None:
        self.producer = producer
        self.consumer = consumer
        self.store = store
        self.input_topic = input_topic
        self.timeout = timeout

    def _write_state(self, shards: Iterable[Shard]) -> list[TopicPartition]:
        offsets = []
        for shard in shards:
            if shard.next_offset is None:
                continue
            for key, value in self.store.changed_records(shard.partition, _state_of(shard), shard.next_offset):
                self._produce(key, value, shard.partition)
            offsets.append(TopicPartition(self.input_topic, shard.partition, shard.next_offset))
        return offsets

    def _produce(self, key: str, value: bytes | None, partition: int) -> None:
        while True:
            try:
                self.producer.produce(self.store.topic, value=value, key=key.encode(), partition=partition)
                return
            except BufferError:
                self.producer.poll(0.05)


class TransactionalCommitter(_Committer):
    """Exactly-once checkpoints through Kafka transactions."""

    def start(self) -> None:
        """Fence older producers with the same transactional id and open the first transaction."""
        self._call(self.producer.init_transactions, self.timeout)
        self.producer.begin_transaction()

    def commit(self, shards: Iterable[Shard]) -> None:
        """Commit the open transaction with the shards' state and offsets, then open the next one."""
        try:
            offsets = self._write_state(shards)
            if offsets:
                self._call(
                    self.producer.send_offsets_to_transaction,
                    offsets, self.consumer.consumer_group_metadata(), self.timeout,
                )
            self._call(self.producer.commit_transaction, self.timeout)
        except CheckpointError:
            self.store.discard_pending()
            self.abort()
            raise
        self.store.confirm()
        self.producer.begin_transaction()

    def abort(self) -> None:
        """Abort the open transaction and open a new one; the caller rewinds its shards."""
        self.store.discard_pending()
        try:
            self._call(self.producer.abort_transaction, self.timeout)
        except CheckpointError as exc:
            raise FatalCheckpointError(f"aborting the transaction failed: {exc}") from exc
        self.producer.begin_transaction()

    def close(self, timeout: float) -> None:
        """Abort whatever the open transaction holds; used when no checkpoint is possible."""
        try:
            self.producer.abort_transaction(timeout)
        except KafkaException as exc:
            logger.warning("aborting the open transaction on close failed: %s", exc.args[0])

    def _call(self, function, *args) -> None:
        """Call a transactional API, retrying retriable errors until the timeout.

        Raises CheckpointError for an abortable error (the transaction must be
        aborted) and FatalCheckpointError for a fatal one, such as a producer
        fenced by a newer instance with the same transactional id.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                function(*args)
                return
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.fatal():
                    raise FatalCheckpointError(f"{function.__name__} failed fatally: {error}") from exc
                if error.txn_requires_abort():
                    raise CheckpointError(f"{function.__name__} failed, the transaction must abort: {error}") from exc
                if error.retriable() and time.monotonic() < deadline:
                    logger.warning("%s failed and will be retried: %s", function.__name__, error)
                    time.sleep(0.5)
                    continue
                raise CheckpointError(f"{function.__name__} failed: {error}") from exc


class AtLeastOnceCommitter(_Committer):
    """Checkpoints that flush outputs and state before committing offsets."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.delivery_failed: KafkaError | None = None

    def on_delivery(self, error: KafkaError | None, message) -> None:
        if error is not None and self.delivery_failed is None:
            self.delivery_failed = error
            logger.error("delivery to %s failed: %s", message.topic(), error)

    def start(self) -> None:
        pass

    def commit(self, shards: Iterable[Shard]) -> None:
        """Flush outputs and state, then commit the offsets; raise CheckpointError if a delivery failed."""
        offsets = self._write_state(shards)
        remaining = self.producer.flush(self.timeout)
        failed, self.delivery_failed = self.delivery_failed, None
        if remaining or failed is not None:
            self.store.discard_pending()
            reason = f"{remaining} records not delivered within {self.timeout:.0f} s" if remaining else str(failed)
            raise CheckpointError(f"flushing before the offset commit failed: {reason}")
        self.store.confirm()
        if offsets:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                raise CheckpointError(f"committing offsets failed: {exc.args[0]}") from exc

    def abort(self) -> None:
        self.store.discard_pending()

    def close(self, timeout: float) -> None:
        self.producer.flush(timeout)
