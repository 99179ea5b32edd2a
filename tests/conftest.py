"""Shared fixtures: the real Kafka broker and helpers to drive the worker."""

from __future__ import annotations

import uuid

import pytest

from tests.kafka_broker import kafka_bootstrap_servers
from tests.kafka_helpers import KafkaTestKit


@pytest.fixture(scope="session")
def bootstrap_servers():
    with kafka_bootstrap_servers() as servers:
        yield servers


@pytest.fixture
def kafka(bootstrap_servers, tmp_path) -> KafkaTestKit:
    """Helpers bound to the broker, with topic and group names unique to the test."""
    return KafkaTestKit(bootstrap_servers, f"t{uuid.uuid4().hex[:10]}", tmp_path)
