"""The ingestion path on the cluster profile's three brokers (replication factor 3,
``min.insync.replicas=2``), with one broker SIGKILLed under load.

An ingestion API of its own (``adclick ingest-api``, librdkafka, ``acks=all``, idempotence) takes
batches from four clients; one broker is SIGKILLed mid-load, and supervisord starts it again.
Every event answered 202 must land in bronze (the stream's bronze query, run to the end of the
topic on the standalone Spark cluster), most of them through the API's spool, each Kafka record
once, a second copy of an event only where the API spooled it, and once the broker is back no
partition may stay under-replicated.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import pytest
from flow_checks import post_until_accepted

from adclick.catalog import table
from adclick.settings import Settings
from bench.load import ingest_api_process

pytestmark = pytest.mark.cluster

KILLED = "kafka-2"
SENDERS = 4
BATCHES = 12  # per sender
BATCH = 250


def _batches(seed: int) -> list[list[dict]]:
    from datetime import timedelta

    from adclick.contract import now_utc
    from traffic.generator import GeneratorConfig, generate

    config = GeneratorConfig(
        start=now_utc() - timedelta(hours=2), duration=timedelta(minutes=20), clicks=200, seed=seed
    )
    events = list(generate(config))[: BATCHES * BATCH]
    assert len(events) == BATCHES * BATCH
    return [events[i : i + BATCH] for i in range(0, len(events), BATCH)]


def _drained(base: str, timeout_s: float = 180) -> dict:
    """The API's health once its spool is empty and Kafka reachable (what it spooled is in Kafka)."""
    deadline = time.monotonic() + timeout_s
    while True:
        health = httpx.get(f"{base}/v1/health", timeout=10).json()
        if health["status"] == "ok":
            return health
        assert time.monotonic() < deadline, f"spool not drained after {timeout_s}s: {health}"
        time.sleep(1)


def _under_replicated(settings: Settings) -> list[tuple[str, int]]:
    """(topic, partition) of the test's topics whose in-sync replicas are fewer than its replicas."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=10000)
    try:
        topics = admin.describe_topics([settings.topic_events, settings.topic_dlq])
    finally:
        admin.close()
    return [
        (t["name"], p["partition_index"])
        for t in topics
        for p in t["partitions"]
        if len(p["isr_nodes"]) < len(p["replica_nodes"])
    ]


def _replication(settings: Settings) -> set[tuple[int, str]]:
    """(replica count, min.insync.replicas) over the events topic's partitions."""
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        (topic,) = admin.describe_topics([settings.topic_events])
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, settings.topic_events)])
    finally:
        admin.close()
    isr = configs["topic"][settings.topic_events]["min.insync.replicas"]["value"]
    return {(len(p["replica_nodes"]), isr) for p in topic["partitions"]}


def test_a_broker_killed_under_load_loses_and_repeats_nothing(
    cluster: Settings, private: Settings, cluster_spark
):
    import pyspark.sql.functions as F

    from infra import supervisor
    from speed_layer import app

    assert len(private.kafka_bootstrap_servers.split(",")) == 3
    assert _replication(private) == {(3, "2")}

    accepted: set[str] = set()
    statuses: list[int] = []
    loads = [_batches(9100 + s) for s in range(SENDERS)]
    sent = {e["event_id"] for batches in loads for batch in batches for e in batch}  # retries share ids
    with ingest_api_process(private, 1) as (base, _pids):
        threads = [
            threading.Thread(target=post_until_accepted, args=(base, b, accepted, statuses)) for b in loads
        ]
        for t in threads:
            t.start()
        while len(statuses) < SENDERS * 2:  # the load is under way
            time.sleep(0.1)
        killed = supervisor.process_info(cluster)[KILLED]["pid"]
        os.kill(killed, signal.SIGKILL)
        for t in threads:
            t.join(timeout=600)
        health = _drained(base)
    assert accepted == sent  # every event was answered 202 (the generator's events are all valid)
    print(f"202'd {len(accepted)} events, {health['stats']['spooled']} of them through the spool")

    app.run(private, queries=("bronze",), available_now=True, log=lambda _: None)
    bronze = cluster_spark.read.format("delta").load(table("bronze.events").path(private))
    per_event = bronze.groupBy("event_id").agg(F.count("*").alias("n"))
    assert {r.event_id for r in per_event.select("event_id").collect()} == accepted  # none lost
    records = bronze.count()
    assert bronze.select("kafka_partition", "kafka_offset").distinct().count() == records  # each record once
    # The batches whose acks the API stopped waiting for were spooled while librdkafka still sent
    # them; the drainer skips the spooled copy of each that librdkafka reports delivered
    # (ingestion.spool.InFlight) and sends the others. A second copy comes only from a record
    # librdkafka gave up on (timed out) after it may have been written: never more extra records
    # than events spooled. Measured 0 and 51 of about 9,200 spooled (docs/ingestion.md).
    extra = records - len(accepted)
    print(f"bronze: {records} records for {len(accepted)} events ({extra} second copies)")
    assert 0 <= extra <= health["stats"]["spooled"]

    deadline = time.monotonic() + 180
    while True:  # supervisord restarted the broker; it catches up and rejoins every ISR
        info = supervisor.process_info(cluster).get(KILLED, {})
        lagging = _under_replicated(private) if info.get("pid") not in (None, killed) else ["not restarted"]
        if not lagging:
            break
        assert time.monotonic() < deadline, f"still under-replicated after 180 s: {lagging}"
        time.sleep(2)
