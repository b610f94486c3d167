"""Integration tier: the real local stack, started once per test session.

If a stack is already running for this ADCLICK_HOME it is reused and left running; otherwise the
session starts it and stops it at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from adclick.settings import Settings, get_settings


def _healthy(settings: Settings) -> bool:
    from infra.stack import status

    return status(settings, log=lambda _line: None)


@pytest.fixture(scope="session")
def stack() -> Iterator[Settings]:
    from infra.stack import down, up

    settings = get_settings()
    started = False
    if not _healthy(settings):
        up(settings)
        started = True
    yield settings
    if started:
        down(settings)


@pytest.fixture(scope="session")
def spark(stack: Settings):
    from adclick.spark import get_spark

    session = get_spark("adclick-tests", settings=stack, extra_conf={"spark.sql.shuffle.partitions": "2"})
    yield session
    session.stop()


@pytest.fixture
def topic(stack: Settings) -> Iterator[str]:
    """A fresh Kafka topic for one test, deleted afterwards."""
    from kafka.admin import KafkaAdminClient, NewTopic

    name = f"test.{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap_servers)
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
    yield name
    admin.delete_topics([name])
    admin.close()


@pytest.fixture
def isolated(stack: Settings, topic: str, tmp_path) -> Settings:
    """The stack's wiring with a private lake, checkpoints and events topic (one test's own stream)."""
    return stack.model_copy(
        update={"home": tmp_path, "lake_root": (tmp_path / "lake").as_uri(), "topic_events": topic}
    )
