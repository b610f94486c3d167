"""Cluster tier: the cluster profile's engines (``ADCLICK_STACK_PROFILE=cluster``), started once for
the whole tier in a data directory of their own (``var/test-cluster``), on ports the local stack
does not use (so a running test or demo stack is never in the way), and stopped when the tier ends.

The engines: three KRaft brokers (topics with replication factor 3, ``min.insync.replicas=2``), a
Spark standalone master with two workers, the S3 store holding the profile's lake bucket
(``s3a://adclick-lake``) and Trino reading it. Each test's lake, checkpoints and topic are its own.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from adclick.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ENGINES = ("kafka", "kafka-2", "kafka-3", "spark-master", "spark-worker-1", "spark-worker-2", "s3", "trino")


@pytest.fixture(scope="package")
def cluster() -> Iterator[Settings]:
    from infra.services import SECOND_STACK_PORTS
    from infra.stack import down, up

    settings = Settings(
        home=ROOT / "var" / "test-cluster", stack_profile="cluster", stack_apps=False, **SECOND_STACK_PORTS
    )
    down(settings, log=lambda _line: None)  # a run killed mid-way left it up
    shutil.rmtree(settings.home, ignore_errors=True)  # a fresh tier: no topic or Trino table of a run before
    up(settings, only=ENGINES)
    try:
        yield settings
    finally:
        down(settings)


@pytest.fixture(scope="package")
def cluster_spark(cluster: Settings) -> Iterator:
    """One driver for the tier, in this process, with its executors on the standalone workers."""
    from adclick.spark import get_spark

    session = get_spark("adclick-cluster-tests", settings=cluster)
    yield session
    session.stop()


@pytest.fixture
def private(cluster: Settings, tmp_path: Path) -> Iterator[Settings]:
    """The cluster's wiring with a lake, state and events topic of one test's own (the topic made
    as `up` makes the stack's: replication factor 3, ``min.insync.replicas`` 2)."""
    from kafka.admin import KafkaAdminClient

    from infra.stack import ensure_topics

    suffix = uuid.uuid4().hex[:8]
    settings = cluster.model_copy(
        update={
            "home": tmp_path,
            "lake_root": (tmp_path / "lake").as_uri(),
            "topic_events": f"test.events.{suffix}",
            "topic_dlq": f"test.dlq.{suffix}",
        }
    )
    ensure_topics(settings)
    yield settings
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        admin.delete_topics([settings.topic_events, settings.topic_dlq])
    finally:
        admin.close()
