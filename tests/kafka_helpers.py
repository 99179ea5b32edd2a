"""Helpers for tests that drive the worker against a real broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import msgpack
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from worker.topics import ensure_topic

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]

    def decoded(self) -> dict:
        return msgpack.unpackb(self.value, raw=False, strict_map_key=False)


class KafkaTestKit:
    """Topic names unique to one test, and ways to produce, consume and run the worker."""

    def __init__(self, bootstrap_servers: str, prefix: str, tmp_path: Path) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.prefix = prefix
        self.tmp_path = tmp_path
        self.admin = AdminClient({"bootstrap.servers": bootstrap_servers})
        self._log_count = 0

    def topic(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    @property
    def group(self) -> str:
        return f"{self.prefix}-group"

    def create_topic(self, topic: str, partitions: int) -> None:
        ensure_topic(self.admin, topic, partitions)

    def produce(self, topic: str, records: list[tuple[bytes | None, bytes | None]], partition: int | None = None) -> None:
        """Produce (key, value) records in order and wait until all are delivered."""
        errors = []
        producer = Producer({"bootstrap.servers": self.bootstrap_servers, "enable.idempotence": True})
        for key, value in records:
            kwargs = {"key": key, "value": value, "on_delivery": lambda e, m: e and errors.append(e)}
            if partition is not None:
                kwargs["partition"] = partition
            producer.produce(topic, **kwargs)
        assert producer.flush(30) == 0, "records not delivered within 30 s"
        assert not errors, f"delivery failed: {errors[0]}"

    def produce_events(self, topic: str, events: list[dict], partition: int | None = None) -> None:
        """Produce msgpack events keyed by their user."""
        self.produce(topic, [(str(e["user"]).encode(), msgpack.packb(e)) for e in events], partition)

    def consume_all(self, topic: str, expected: int | None = None, timeout: float = 60.0,
                    settle: float = 2.0) -> list[Record]:
        """Read every committed record of `topic`.

        Stops once `expected` records arrived and no more came for `settle`
        seconds (so an extra record would be caught), or at the end of every
        partition when `expected` is None, or at `timeout`.
        """
        consumer = Consumer({
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": f"{self.prefix}-reader-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        })
        metadata = self.admin.list_topics(topic, timeout=10).topics[topic]
        partitions = sorted(metadata.partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        records: list[Record] = []
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout
        last_arrival = time.monotonic()
        try:
            while time.monotonic() < deadline:
                for message in consumer.consume(500, timeout=0.5):
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            at_end.add(message.partition())
                        continue
                    at_end.discard(message.partition())
                    last_arrival = time.monotonic()
                    records.append(Record(message.topic(), message.partition(), message.offset(), message.key(),
                                          message.value(), dict(message.headers() or [])))
                if expected is None:
                    if at_end >= set(partitions):
                        break
                elif len(records) >= expected and time.monotonic() - last_arrival >= settle \
                        and at_end >= set(partitions):
                    break
        finally:
            consumer.close()
        return records

    def committed_offsets(self, topic: str, group: str | None = None) -> dict[int, int]:
        """Return the group's committed offset per partition; -1001 where none is committed.

        Retries while the broker is unavailable, as during a restart.
        """
        deadline = time.monotonic() + 60
        while True:
            consumer = Consumer({"bootstrap.servers": self.bootstrap_servers, "group.id": group or self.group})
            try:
                partitions = sorted(self.admin.list_topics(topic, timeout=10).topics[topic].partitions)
                committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
                return {tp.partition: tp.offset for tp in committed}
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
            finally:
                consumer.close()

    def worker_args(self, input_topic: str, output_topic: str, *extra: str, instance: str = "a") -> list[str]:
        return [
            sys.executable, "-m", "worker.cli", "run",
            "--bootstrap-servers", self.bootstrap_servers,
            "--input-topic", input_topic,
            "--output-topic", output_topic,
            "--group-id", self.group,
            "--instance-id", instance,
            "--metrics-port", "0",
            "--session-timeout-ms", "6000",
            *extra,
        ]

    def run_worker(self, args: list[str], timeout: float = 120.0) -> subprocess.CompletedProcess:
        """Run the worker to completion; its output is kept for failure messages."""
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def start_worker(self, args: list[str]) -> tuple[subprocess.Popen, Path]:
        """Start the worker in the background; return the process and its log file."""
        self._log_count += 1
        log = self.tmp_path / f"worker-{self._log_count}.log"
        handle = open(log, "w")
        process = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
        handle.close()
        return process, log


def wait_for(condition, timeout: float, interval: float = 0.2, message: str = "condition",
             workers: tuple[tuple[subprocess.Popen, Path], ...] = ()) -> None:
    """Wait until `condition()` is true; fail at once if one of `workers` (process, log) has exited."""
    deadline = time.monotonic() + timeout
    while not condition():
        for process, log in workers:
            if process.poll() is not None:
                raise AssertionError(
                    f"the worker exited with {process.returncode} while waiting for {message}:\n{log.read_text()}"
                )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)
