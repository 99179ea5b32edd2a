"""The worker loop: consume, process per shard, checkpoint, and follow rebalances."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from worker.checkpoint import (
    AtLeastOnceCommitter,
    CheckpointError,
    FatalCheckpointError,
    TransactionalCommitter,
    is_fatal,
)
from worker.events import DecodeLimits
from worker.metrics import WorkerMetrics
from worker.processor import Processor, ShardMetrics
from worker.shard import Shard, ShardSettings
from worker.state_store import StateStore

logger = logging.getLogger(__name__)

EXACTLY_ONCE = "exactly-once"
AT_LEAST_ONCE = "at-least-once"


@dataclass
class WorkerConfig:
    """Settings of one worker process; the command line fills it."""

    bootstrap_servers: str
    input_topic: str
    output_topic: str
    dead_letter_topic: str
    state_topic: str
    group_id: str
    transactional_id: str
    shard: ShardSettings
    guarantee: str = EXACTLY_ONCE
    checkpoint_interval_ms: int = 1000
    checkpoint_events: int = 20000
    batch_size: int = 1000
    poll_timeout: float = 0.2
    max_event_bytes: int = 65536
    exit_at_end: bool = False
    kafka_timeout: float = 30.0
    session_timeout_ms: int = 10000
    transaction_timeout_ms: int = 10000
    extra_kafka_config: dict[str, str] = field(default_factory=dict)


class Worker:
    """Consumes the input topic with one shard per assigned partition.

    For each record: test, learn, publish (or dead-letter). Every
    `checkpoint_interval_ms` or `checkpoint_events`, whichever comes first, the
    committer makes outputs, shard state and offsets durable together. On
    assignment a shard restores its state from the state topic before its
    first event. On revocation it checkpoints and is dropped. On loss it is
    dropped without committing.
    """

    def __init__(self, config: WorkerConfig, metrics: WorkerMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self.shards: dict[int, Shard] = {}
        self._shard_metrics: dict[int, ShardMetrics] = {}
        self._at_end: set[int] = set()
        self._stop = threading.Event()
        self._events_since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        self._rewind_needed = False
        self._failed = False
        # Monotonic times of the first processed event and of the last
        # checkpoint in `run`, for processing rates that leave out start-up
        # (joining the group, restoring shards).
        self.first_event_at: float | None = None
        self.last_commit_at: float | None = None
        self.consumer = Consumer(self._consumer_config())
        self.producer = Producer(self._producer_config())
        self.store = StateStore(config.bootstrap_servers, config.state_topic, timeout=config.kafka_timeout)
        committer_args = (self.producer, self.consumer, self.store, config.input_topic, config.kafka_timeout)
        if config.guarantee == EXACTLY_ONCE:
            self.committer = TransactionalCommitter(
                lambda: Producer(self._producer_config()), self._use_producer, *committer_args
            )
        else:
            self.committer = AtLeastOnceCommitter(*committer_args)
        self.processor = Processor(
            self.producer, metrics, config.output_topic, config.dead_letter_topic,
            DecodeLimits(config.max_event_bytes),
        )

    # -- configuration ---------------------------------------------------------

    def _consumer_config(self) -> dict:
        c = self.config
        config = {
            "bootstrap.servers": c.bootstrap_servers,
            "group.id": c.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "session.timeout.ms": c.session_timeout_ms,
            "heartbeat.interval.ms": max(1000, c.session_timeout_ms // 4),
            "max.poll.interval.ms": max(300000, int(c.kafka_timeout * 4000)),
            "fetch.min.bytes": 1,
        }
        config.update({k[len("consumer."):]: v for k, v in c.extra_kafka_config.items() if k.startswith("consumer.")})
        return config

    def _producer_config(self) -> dict:
        c = self.config
        config = {
            "bootstrap.servers": c.bootstrap_servers,
            "enable.idempotence": True,
            "linger.ms": 5,
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": 500000,
            "message.max.bytes": 1000000,
        }
        if c.guarantee == EXACTLY_ONCE:
            config["transactional.id"] = c.transactional_id
            config["transaction.timeout.ms"] = c.transaction_timeout_ms
        else:
            config["on_delivery"] = lambda error, message: self.committer.on_delivery(error, message)
            # Only failed deliveries need the callback; skipping the others
            # saves a Python call per record.
            config["delivery.report.only.error"] = True
        config.update({k[len("producer."):]: v for k, v in c.extra_kafka_config.items() if k.startswith("producer.")})
        return config

    def _use_producer(self, producer: Producer) -> None:
        self.producer = producer
        self.processor.producer = producer

    # -- lifecycle -------------------------------------------------------------

    def request_stop(self, signum: int | None = None, frame=None) -> None:
        """Ask the loop to stop after the batch in flight; safe in a signal handler."""
        if signum is not None:
            logger.info("received signal %d; stopping after the batch in flight", signum)
        self._stop.set()


    def run(self) -> int:
        """Run until stopped, or until the input is drained with `exit_at_end`; return the exit code."""
        c = self.config
        logger.info(
            "starting worker: group %s, input %s, output %s, model %s, guarantee %s",
            c.group_id, c.input_topic, c.output_topic, c.shard.model, c.guarantee,
        )
        exit_code = 0
        try:
            self.committer.start()
            self.consumer.subscribe(
                [c.input_topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
            )
            while not self._stop.is_set():
                self._poll_once()
                if self._drained():
                    logger.info("input drained on partitions %s; stopping", sorted(self.shards))
                    break
            self._checkpoint()
            self.last_commit_at = time.monotonic()
        except FatalCheckpointError as exc:
            logger.error("stopping without committing: %s", exc)
            exit_code = 3
        except KafkaException as exc:
            if not is_fatal(exc.args[0]):
                raise
            logger.error("stopping without committing: the producer failed fatally: %s", exc.args[0])
            exit_code = 3
        finally:
            self._close(clean=exit_code == 0)
        return exit_code

    def _close(self, clean: bool) -> None:
        self.metrics.ready.set(0)
        if clean:
            try:
                # Leaving the group triggers the revoke callback, which checkpoints.
                self.consumer.close()
            except KafkaException as exc:
                logger.error("closing the consumer failed: %s", exc.args[0])
            try:
                remaining = self.producer.flush(self.config.kafka_timeout)
            except KafkaException as exc:
                logger.error("flushing the producer failed: %s", exc.args[0])
            else:
                if remaining:
                    logger.error("%d records were not delivered before the timeout", remaining)
        else:
            # A fenced or failed producer must write nothing more: leave the
            # group without the checkpoint in the revoke callback.
            self._failed = True
            self.committer.close(self.config.kafka_timeout)
            try:
                self.consumer.close()
            except KafkaException as exc:
                logger.error("closing the consumer failed: %s", exc.args[0])
        logger.info("worker stopped")

    # -- the loop --------------------------------------------------------------

    def _poll_once(self) -> None:
        messages = self.consumer.consume(num_messages=self.config.batch_size, timeout=self.config.poll_timeout)
        for message in messages:
            if self._rewind_needed:
                # The rest of the batch precedes the rewound offsets; it is consumed again.
                break
            error = message.error()
            if error is not None:
                self._handle_consume_error(message, error)
                continue
            partition = message.partition()
            shard = self.shards.get(partition)
            if shard is None or (shard.next_offset is not None and message.offset() < shard.next_offset):
                continue
            self._at_end.discard(partition)
            if self.first_event_at is None:
                self.first_event_at = time.monotonic()
            self.processor.process(message, shard, self._shard_metrics[partition])
            self._events_since_checkpoint += 1
        self.producer.poll(0)
        self._update_gauges()
        if self._rewind_needed or (self._checkpoint_due() and not self._checkpoint()):
            self._rewind()

    def _handle_consume_error(self, message: Message, error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            self._at_end.add(message.partition())
            return
        if is_fatal(error):
            raise FatalCheckpointError(f"the consumer failed fatally: {error}")
        logger.warning("consumer error on %s[%s]: %s; retrying", message.topic(), message.partition(), error)

    def _drained(self) -> bool:
        return self.config.exit_at_end and bool(self.shards) and self._at_end >= self.shards.keys()

    def _checkpoint_due(self) -> bool:
        elapsed_ms = (time.monotonic() - self._last_checkpoint) * 1000
        return self._events_since_checkpoint >= self.config.checkpoint_events or (
            self._events_since_checkpoint > 0 and elapsed_ms >= self.config.checkpoint_interval_ms
        )

    def _checkpoint(self) -> bool:
        """Commit a checkpoint; return False if it failed and was aborted."""
        started = time.monotonic()
        try:
            self.committer.commit(self.shards.values())
        except CheckpointError as exc:
            logger.error("checkpoint failed; the shards go back to the last committed one: %s", exc)
            return False
        self.metrics.checkpoints.inc()
        self.metrics.checkpoint_seconds.observe(time.monotonic() - started)
        logger.debug("checkpoint of %d events", self._events_since_checkpoint)
        self._events_since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        return True

    def _rewind(self) -> None:
        """Reload every shard from the state topic and seek back to its last checkpoint."""
        self._rewind_needed = False
        self._events_since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        partitions = [TopicPartition(self.config.input_topic, p) for p in self.shards]
        for p in list(self.shards):
            self._drop_shard(p)
        self._restore(partitions)
        committed = {tp.partition: tp.offset for tp in self.consumer.committed(partitions, self.config.kafka_timeout)}
        for tp in partitions:
            if tp.offset < 0:
                tp.offset = committed.get(tp.partition, OFFSET_BEGINNING)
                if tp.offset < 0:
                    tp.offset = OFFSET_BEGINNING
            self.consumer.seek(tp)

    def _update_gauges(self) -> None:
        for partition, shard in self.shards.items():
            shard_metrics = self._shard_metrics[partition]
            self.processor.update_gauges(shard, shard_metrics)
            _, high = self.consumer.get_watermark_offsets(
                TopicPartition(self.config.input_topic, partition), cached=True
            ) or (None, None)
            if high is not None and high >= 0 and shard.next_offset is not None:
                shard_metrics.lag.set(max(0, high - shard.next_offset))

    # -- rebalance callbacks -----------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.metrics.ready.set(0)
        logger.info("assigned partitions %s", [p.partition for p in partitions])
        self._restore(partitions)
        consumer.assign(partitions)
        self.metrics.assigned_partitions.set(len(self.shards))
        self.metrics.ready.set(1)

    def _restore(self, partitions: list[TopicPartition]) -> None:
        """Build each partition's shard from the state topic and set where to resume."""
        for tp in partitions:
            started = time.monotonic()
            shard = Shard(tp.partition, self.config.shard)
            restored = self.store.restore(tp.partition)
            if restored is not None:
                state, next_offset = restored
                shard.model.load_state_dict(state["model"])
                shard.load_window_state(state["shard"])
                shard.next_offset = next_offset
                tp.offset = next_offset
            self.shards[tp.partition] = shard
            self._shard_metrics[tp.partition] = ShardMetrics(self.metrics, tp.partition, self.config.shard.model)
            self._at_end.discard(tp.partition)
            self.metrics.restore_seconds.observe(time.monotonic() - started)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.metrics.ready.set(0)
        try:
            if self._failed:
                logger.info("revoked partitions %s; not checkpointing after a failure",
                            [p.partition for p in partitions])
            else:
                logger.info("revoked partitions %s; checkpointing", [p.partition for p in partitions])
                self._checkpoint()
        finally:
            for tp in partitions:
                self._drop_shard(tp.partition)
            self.metrics.assigned_partitions.set(len(self.shards))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        logger.warning("lost partitions %s; dropping them without committing", [p.partition for p in partitions])
        self.metrics.ready.set(0)
        self.committer.abort()
        for tp in partitions:
            self._drop_shard(tp.partition)
        self.metrics.assigned_partitions.set(len(self.shards))
        # Shards still owned had uncommitted work in the aborted transaction.
        self._rewind_needed = bool(self.shards)

    def _drop_shard(self, partition: int) -> None:
        self.shards.pop(partition, None)
        self._shard_metrics.pop(partition, None)
        self._at_end.discard(partition)
        self.store.forget(partition)
        self.metrics.remove_partition(partition, self.config.shard.model)
