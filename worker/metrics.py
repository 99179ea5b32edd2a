"""Prometheus metrics of the worker.

Labels carry the partition, the model and bounded reasons, never a user or an
item, so the number of series stays bounded by the partition count. A revoked
partition's series are removed.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

NAMESPACE = "streamrec"

# Per-event processing is tens of microseconds; the buckets span 10 us to 1 s.
_EVENT_SECONDS_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 0.1, 1.0)


class WorkerMetrics:
    """The worker's metrics, registered in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events_processed = Counter(
            "events_processed", "Events tested, learned and published.",
            ["partition", "model"], namespace=NAMESPACE, registry=r,
        )
        self.events_rejected = Counter(
            "events_rejected", "Events sent to the dead-letter topic, by reason.",
            ["partition", "reason"], namespace=NAMESPACE, registry=r,
        )
        self.hits = Counter(
            "hits", "Events whose item was in the user's top-N before learning it.",
            ["partition", "model"], namespace=NAMESPACE, registry=r,
        )
        self.recall = Gauge(
            "recall", "Share of hits over the last --recall-window events (recall@N, N = --top-n).",
            ["partition", "model"], namespace=NAMESPACE, registry=r,
        )
        self.event_seconds = Histogram(
            "event_processing_seconds", "Time to test, learn and publish one event.",
            ["partition", "model"], namespace=NAMESPACE, registry=r,
            buckets=_EVENT_SECONDS_BUCKETS,
        )
        self.shard_users = Gauge(
            "shard_users", "Users known to the shard's model.",
            ["partition", "model"], namespace=NAMESPACE, registry=r,
        )
        self.shard_items = Gauge(
            "shard_items", "Items known to the shard's model.",
            ["partition", "model"], namespace=NAMESPACE, registry=r,
        )
        self.consumer_lag = Gauge(
            "consumer_lag", "Records in the partition after the last consumed offset.",
            ["partition"], namespace=NAMESPACE, registry=r,
        )
        self.assigned_partitions = Gauge(
            "assigned_partitions", "Input partitions this worker owns.",
            namespace=NAMESPACE, registry=r,
        )
        self.ready = Gauge(
            "ready", "1 once every assigned shard is restored and processing, else 0.",
            namespace=NAMESPACE, registry=r,
        )
        self.checkpoints = Counter(
            "checkpoints", "Checkpoints committed.",
            namespace=NAMESPACE, registry=r,
        )
        self.checkpoint_seconds = Histogram(
            "checkpoint_duration_seconds", "Time to write and commit one checkpoint.",
            namespace=NAMESPACE, registry=r,
        )
        self.restore_seconds = Histogram(
            "restore_duration_seconds", "Time to restore one shard's state on assignment.",
            namespace=NAMESPACE, registry=r,
        )

    def serve(self, port: int, address: str = "0.0.0.0") -> None:
        """Serve /metrics over HTTP on `address`:`port` from a daemon thread."""
        start_http_server(port, addr=address, registry=self.registry)

    def remove_partition(self, partition: int, model: str) -> None:
        """Drop the series of a partition this worker no longer owns."""
        label = str(partition)
        for metric in (self.events_processed, self.hits, self.recall, self.event_seconds,
                       self.shard_users, self.shard_items):
            try:
                metric.remove(label, model)
            except KeyError:
                pass
        try:
            self.consumer_lag.remove(label)
        except KeyError:
            pass
        for labels in list(self.events_rejected._metrics):
            if labels[0] == label:
                self.events_rejected.remove(*labels)
