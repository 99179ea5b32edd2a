"""Creating the worker's topics and waiting for the broker."""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

logger = logging.getLogger(__name__)


class TopicError(Exception):
    """A topic could not be described or created."""


def partition_count(admin: AdminClient, topic: str, timeout: float = 10.0) -> int | None:
    """Return the number of partitions of `topic`, or None if it does not exist."""
    try:
        metadata = admin.list_topics(topic=topic, timeout=timeout)
    except KafkaException as exc:
        raise TopicError(f"cannot read metadata of topic {topic!r}: {exc}") from exc
    described = metadata.topics.get(topic)
    if described is None or described.error is not None:
        if described is not None and described.error.code() not in (
            KafkaError.UNKNOWN_TOPIC_OR_PART,
            KafkaError._UNKNOWN_TOPIC,
        ):
            raise TopicError(f"cannot describe topic {topic!r}: {described.error}")
        return None
    return len(described.partitions)


def ensure_topic(
    admin: AdminClient,
    topic: str,
    partitions: int,
    replication_factor: int = 1,
    config: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> int:
    """Create `topic` if it is missing and return its partition count.

    An existing topic is left as it is, whatever its partition count.
    """
    existing = partition_count(admin, topic)
    if existing is not None:
        return existing
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor, config=config or {})],
        operation_timeout=timeout,
    )
    try:
        futures[topic].result(timeout)
        logger.info("created topic %s with %d partitions", topic, partitions)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise TopicError(f"cannot create topic {topic!r}: {exc.args[0].str()}") from exc
    # Metadata can lag behind creation by a moment.
    deadline = time.monotonic() + timeout
    while (count := partition_count(admin, topic)) is None:
        if time.monotonic() > deadline:
            raise TopicError(f"topic {topic!r} was created but its metadata did not appear within {timeout} s")
        time.sleep(0.1)
    return count


def wait_for_broker(bootstrap_servers: str, timeout: float) -> AdminClient:
    """Return an admin client once the cluster responds to a metadata request."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin.list_topics(timeout=min(5.0, max(0.5, deadline - time.monotonic())))
            return admin
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise TopicError(
                    f"no Kafka broker responded at {bootstrap_servers} within {timeout:.0f} s: {exc}; "
                    "check --bootstrap-servers"
                ) from exc
            logger.warning("waiting for the Kafka broker at %s: %s", bootstrap_servers, exc)
            time.sleep(1.0)
