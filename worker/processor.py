"""Per-record processing: decode, test-then-learn, publish, or dead-letter."""

from __future__ import annotations

import logging
import time

from confluent_kafka import Message, Producer

from models import ModelError
from worker.events import REJECT_REASONS, DecodeLimits, InvalidEvent, decode_event, encode_key, encode_recommendation
from worker.metrics import WorkerMetrics
from worker.shard import Shard

logger = logging.getLogger(__name__)

# Dead-letter header names.
HEADER_TOPIC = "streamrec.source.topic"
HEADER_PARTITION = "streamrec.source.partition"
HEADER_OFFSET = "streamrec.source.offset"
HEADER_REASON = "streamrec.error.reason"
HEADER_ERROR = "streamrec.error"

# Log at most this many rejected records per partition in full; count the rest.
_LOGGED_REJECTIONS = 20


class ShardMetrics:
    """The metric children of one shard, looked up once rather than per event."""

    def __init__(self, metrics: WorkerMetrics, partition: int, model: str) -> None:
        labels = (str(partition), model)
        self.processed = metrics.events_processed.labels(*labels)
        self.hits = metrics.hits.labels(*labels)
        self.recall = metrics.recall.labels(*labels)
        self.seconds = metrics.event_seconds.labels(*labels)
        self.users = metrics.shard_users.labels(*labels)
        # Counts since the last flush; incrementing a Prometheus counter takes
        # a lock, so per-event counts are added once per consumed batch.
        self.pending_processed = 0
        self.pending_hits = 0
        self.items = metrics.shard_items.labels(*labels)
        self.lag = metrics.consumer_lag.labels(str(partition))
        # Rejection series start at 0, so rate() counts the first rejection too.
        for reason in REJECT_REASONS:
            metrics.events_rejected.labels(str(partition), reason)


class Processor:
    """Turns input records into output or dead-letter records through the producer."""

    def __init__(
        self,
        producer: Producer,
        metrics: WorkerMetrics,
        output_topic: str,
        dead_letter_topic: str,
        limits: DecodeLimits,
    ) -> None:
        self.producer = producer
        self.metrics = metrics
        self.output_topic = output_topic
        self.dead_letter_topic = dead_letter_topic
        self.limits = limits
        self._rejections_logged: dict[int, int] = {}
        # Totals over the process's life, kept apart from the metrics, whose
        # series go away with a revoked partition.
        self.processed_total = 0
        self.hits_total = 0
        self.rejected_total = 0

    def process(self, message: Message, shard: Shard, shard_metrics: ShardMetrics) -> None:
        """Process one record of `shard`'s partition and advance its next offset."""
        started = time.perf_counter()
        offset = message.offset()
        try:
            event = decode_event(message.value(), self.limits)
            outcome = shard.process(event)
        except InvalidEvent as exc:
            self._dead_letter(message, exc.reason, str(exc))
        except ModelError as exc:
            self._dead_letter(message, "model_error", str(exc))
        else:
            value = encode_recommendation(
                event, outcome.items, outcome.scores, shard.settings.model,
                message.topic(), message.partition(), offset,
            )
            self._produce(self.output_topic, encode_key(event.user), value)
            shard_metrics.pending_processed += 1
            self.processed_total += 1
            if outcome.hit:
                shard_metrics.pending_hits += 1
                self.hits_total += 1
            shard_metrics.seconds.observe(time.perf_counter() - started)
        shard.next_offset = offset + 1

    def update_gauges(self, shard: Shard, shard_metrics: ShardMetrics) -> None:
        """Flush the shard's pending counts and set its gauges; called once per consumed batch."""
        if shard_metrics.pending_processed:
            shard_metrics.processed.inc(shard_metrics.pending_processed)
            shard_metrics.pending_processed = 0
        if shard_metrics.pending_hits:
            shard_metrics.hits.inc(shard_metrics.pending_hits)
            shard_metrics.pending_hits = 0
        shard_metrics.recall.set(shard.recall)
        shard_metrics.users.set(shard.model.n_users)
        shard_metrics.items.set(shard.model.n_items)

    def _dead_letter(self, message: Message, reason: str, error: str) -> None:
        partition = message.partition()
        self.rejected_total += 1
        self.metrics.events_rejected.labels(str(partition), reason).inc()
        logged = self._rejections_logged.get(partition, 0)
        if logged < _LOGGED_REJECTIONS:
            logger.error(
                "rejected %s[%d] offset %d (%s): %s; sent to %s",
                message.topic(), partition, message.offset(), reason, error, self.dead_letter_topic,
            )
            if logged + 1 == _LOGGED_REJECTIONS:
                logger.error("further rejections of partition %d are counted, not logged", partition)
            self._rejections_logged[partition] = logged + 1
        headers = [
            (HEADER_TOPIC, message.topic().encode()),
            (HEADER_PARTITION, str(partition).encode()),
            (HEADER_OFFSET, str(message.offset()).encode()),
            (HEADER_REASON, reason.encode()),
            (HEADER_ERROR, error.encode("utf-8", "replace")[:4096]),
        ]
        self._produce(self.dead_letter_topic, message.key(), message.value(), headers)

    def _produce(self, topic: str, key: bytes | None, value: bytes | None, headers=None) -> None:
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, headers=headers)
                return
            except BufferError:
                # The local queue is full: serve delivery reports to drain it.
                self.producer.poll(0.05)
