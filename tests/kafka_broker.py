"""The Kafka broker for tests: an external one, a testcontainers one, or deploy/kafka-local."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KAFKA_LOCAL = ROOT / "deploy" / "kafka-local" / "kafka.sh"
# A port apart from the demo's 9092, so tests never write into a demo broker.
TEST_PORT = os.environ.get("STREAMREC_TEST_KAFKA_PORT", "19092")


def _docker_responds() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def stop_local_broker() -> None:
    env = {**os.environ, "KAFKA_PORT": TEST_PORT}
    subprocess.run([str(KAFKA_LOCAL), "stop"], env=env, check=True)


def start_local_broker() -> None:
    env = {**os.environ, "KAFKA_PORT": TEST_PORT}
    subprocess.run([str(KAFKA_LOCAL), "start"], env=env, check=True)


def restart_local_broker(pause: float) -> None:
    """Stop the local test broker, wait `pause` seconds, and start it again."""
    import time

    env = {**os.environ, "KAFKA_PORT": TEST_PORT}
    subprocess.run([str(KAFKA_LOCAL), "stop"], env=env, check=True)
    time.sleep(pause)
    subprocess.run([str(KAFKA_LOCAL), "start"], env=env, check=True)


def is_local_broker(bootstrap_servers: str) -> bool:
    return bootstrap_servers == f"127.0.0.1:{TEST_PORT}"


@contextmanager
def kafka_bootstrap_servers() -> Iterator[str]:
    """Yield bootstrap servers of a real broker, starting one if needed.

    Order: KAFKA_BOOTSTRAP_SERVERS if set; else a testcontainers Kafka when a
    Docker engine responds; else the local KRaft broker of deploy/kafka-local
    on 127.0.0.1:STREAMREC_TEST_KAFKA_PORT (19092), stopped afterwards if
    this session started it.
    """
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    if _docker_responds():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:4.1.1").with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    env = {**os.environ, "KAFKA_PORT": TEST_PORT}
    already_running = subprocess.run([str(KAFKA_LOCAL), "status"], env=env, capture_output=True).returncode == 0
    subprocess.run([str(KAFKA_LOCAL), "start"], env=env, check=True)
    try:
        yield f"127.0.0.1:{TEST_PORT}"
    finally:
        if not already_running:
            subprocess.run([str(KAFKA_LOCAL), "stop"], env=env, check=False)
