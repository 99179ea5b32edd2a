"""Checkpoints: committing outputs, shard state and input offsets together.

Two committers share one interface. `TransactionalCommitter` (exactly-once)
writes the state records and the input offsets inside the producer's open
transaction and commits it, so outputs, state and offsets become visible to
read_committed consumers atomically. `AtLeastOnceCommitter` flushes outputs
and state, then commits offsets: a crash in between replays those events.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from worker.shard import Shard
from worker.state_store import StateStore

logger = logging.getLogger(__name__)


# Maximum seconds of one blocking call into librdkafka, because Python runs
# signal handlers only between calls.
_ATTEMPT_SECONDS = 2.0
# How long past its own timeout a transactional call may run before the
# producer counts as stuck.
_GRACE_SECONDS = 10.0


class CheckpointError(Exception):
    """A checkpoint failed; the caller rewinds to the last committed one."""


class FatalCheckpointError(Exception):
    """A checkpoint failed in a way the worker cannot recover from, such as being fenced."""


def is_fatal(error: KafkaError) -> bool:
    """Return whether `error` leaves the client unusable (fenced producer, or produce after a fatal error)."""
    return error.fatal() or error.code() in (KafkaError._FATAL, KafkaError._FENCED)


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


class ProducerStuckError(CheckpointError):
    """A transactional call did not return within its timeout; the producer was replaced."""


def _call_bounded(function, args: tuple, timeout: float):
    """Call `function(*args)` in a daemon thread and wait at most `timeout` seconds.

    librdkafka's send_offsets_to_transaction can block past its own timeout
    while the group coordinator is down (librdkafka issue 5456, open in
    2.16), so the worker never waits on a transactional call without a
    bound of its own. Raises TimeoutError if the call is still running.
    """
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["result"] = function(*args)
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"kafka-{function.__name__}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"{function.__name__} did not return within {timeout:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


class TransactionalCommitter(_Committer):
    """Exactly-once checkpoints through Kafka transactions.

    `make_producer` builds a producer with the worker's transactional id. A
    producer stuck in a transactional call is replaced by a new one; its
    init_transactions fences the stuck instance and aborts its transaction.
    `on_new_producer` passes the new producer to the worker, whose processor
    produces outputs too.
    """

    def __init__(self, make_producer: Callable[[], Producer], on_new_producer: Callable[[Producer], None],
                 *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._make_producer = make_producer
        self._on_new_producer = on_new_producer

    def start(self) -> None:
        """Fence older producers with the same transactional id and open the first transaction."""
        self._call("init_transactions")
        self.producer.begin_transaction()

    def commit(self, shards: Iterable[Shard]) -> None:
        """Commit the open transaction with the shards' state and offsets, then open the next one."""
        try:
            offsets = self._write_state(shards)
            if offsets:
                self._call("send_offsets_to_transaction", offsets, self.consumer.consumer_group_metadata())
            self._call("commit_transaction")
        except ProducerStuckError:
            self.store.discard_pending()
            raise
        except CheckpointError:
            self.store.discard_pending()
            self.abort()
            raise
        self.store.confirm()
        self.producer.begin_transaction()

    def abort(self) -> None:
        """Abort the open transaction and open a new one; the caller rewinds its shards.

        A timed-out abort is retried, as librdkafka allows, so a restarting
        broker is waited out. Only a fatal error, such as being fenced, raises
        FatalCheckpointError.
        """
        self.store.discard_pending()
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                _call_bounded(self.producer.abort_transaction, (_ATTEMPT_SECONDS,), _ATTEMPT_SECONDS + _GRACE_SECONDS)
                break
            except TimeoutError:
                self._replace_producer("abort_transaction")
                return
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if is_fatal(error):
                    raise FatalCheckpointError(f"abort_transaction failed fatally: {error}") from exc
                if time.monotonic() > deadline:
                    self._replace_producer("abort_transaction")
                    return
                logger.warning("abort_transaction failed and will be retried: %s", error)
                time.sleep(1.0)
        self.producer.begin_transaction()

    def close(self, timeout: float) -> None:
        """Abort whatever the open transaction holds; used when no checkpoint is possible."""
        try:
            _call_bounded(self.producer.abort_transaction, (timeout,), timeout + _GRACE_SECONDS)
        except (KafkaException, TimeoutError) as exc:
            # A fenced producer cannot abort; the broker aborts its
            # transaction when the newer instance initialises.
            logger.warning("aborting the open transaction on close failed: %s", exc)

    def _replace_producer(self, stuck_in: str) -> None:
        logger.error("the producer did not return from %s; replacing it with a new instance", stuck_in)
        self.producer = self._make_producer()
        self._on_new_producer(self.producer)
        self._call("init_transactions")
        self.producer.begin_transaction()

    def _call(self, method: str, *args) -> None:
        """Call the producer's transactional `method`, retrying retriable errors until the timeout.

        Each attempt gets at most `_ATTEMPT_SECONDS` as its timeout. Raises
        CheckpointError for an abortable error or on timeout,
        ProducerStuckError after replacing a producer that did not return,
        and FatalCheckpointError for a fatal error, such as a producer fenced
        by a newer instance with the same transactional id.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            attempt = max(0.1, min(_ATTEMPT_SECONDS, deadline - time.monotonic()))
            try:
                _call_bounded(getattr(self.producer, method), (*args, attempt), attempt + _GRACE_SECONDS)
                return
            except TimeoutError as exc:
                self._replace_producer(method)
                raise ProducerStuckError(f"{method} did not return; the transaction was abandoned") from exc
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if is_fatal(error):
                    raise FatalCheckpointError(f"{method} failed fatally: {error}") from exc
                if error.txn_requires_abort():
                    raise CheckpointError(f"{method} failed, the transaction must abort: {error}") from exc
                if error.retriable() and time.monotonic() < deadline:
                    logger.warning("%s failed and will be retried: %s", method, error)
                    time.sleep(0.2)
                    continue
                raise CheckpointError(f"{method} failed: {error}") from exc


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
