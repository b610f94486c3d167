"""kafka_producer_baseline: the ceiling for every ingestion figure.

Kafka's own ``ProducerPerformance`` tool (Java), a kafka-python producer and a confluent-kafka
(librdkafka) producer, side by side in one run against the same broker and a fresh topic with the
partition count of ``adclick.events``: 150-byte records, acks=all, the same linger and batch size
(librdkafka with idempotence on, as the ingestion API runs it). Reports kafka-python's records/s
with the Java tool as the peer; ``confluent`` holds librdkafka's figures.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid

from adclick.settings import Settings
from bench.result import write_result
from infra import artifacts
from infra.java import java17_home

RECORDS = int(os.environ.get("BENCH_PRODUCER_RECORDS", "500000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
RECORD_SIZE = 150
LINGER_MS = 5
BATCH_SIZE = 262144


def producer_performance(
    settings: Settings, topic: str, *, records: int, record_size: int, throughput: int, props: list[str]
) -> dict[str, float]:
    """Run Kafka's ``ProducerPerformance`` tool (acks=all) and parse its final summary line."""
    cmd = [
        str(java17_home(settings) / "bin" / "java"), "-Xmx512m", "-cp", artifacts.kafka_classpath(settings),
        "org.apache.kafka.tools.ProducerPerformance", "--topic", topic, "--num-records", str(records),
        "--record-size", str(record_size), "--throughput", str(throughput), "--producer-props",
        f"bootstrap.servers={settings.kafka_bootstrap_servers}", "acks=all", *props,
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600).stdout
    final = [line for line in out.splitlines() if "records sent" in line][-1]
    rate = float(re.search(r"([\d.]+) records/sec", final).group(1))
    lat = [float(x) for x in re.findall(r"([\d.]+) ms", final)]
    keys = ("avg_ms", "max_ms", "p50_ms", "p95_ms", "p99_ms")
    return {"records_per_s": rate, **dict(zip(keys, lat, strict=False))}


def _java_producer_perf(settings: Settings, topic: str) -> dict[str, float]:
    props = [f"linger.ms={LINGER_MS}", f"batch.size={BATCH_SIZE}", "compression.type=none"]
    return producer_performance(
        settings, topic, records=RECORDS, record_size=RECORD_SIZE, throughput=-1, props=props
    )


def _python_producer(settings: Settings, topic: str) -> dict[str, float]:
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=LINGER_MS,
        batch_size=BATCH_SIZE, compression_type=None, max_in_flight_requests_per_connection=5,
    )  # fmt: skip
    payload = os.urandom(RECORD_SIZE // 2).hex().encode()
    producer.send(topic, payload).get(timeout=30)  # connect and fetch metadata before timing
    start = time.perf_counter()
    for _ in range(RECORDS):
        producer.send(topic, payload)
    producer.flush()
    elapsed = time.perf_counter() - start
    producer.close()
    return {"records_per_s": RECORDS / elapsed, "seconds": elapsed}


def _confluent_producer(settings: Settings, topic: str) -> dict[str, float]:
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap_servers, "acks": "all", "enable.idempotence": True,
         "linger.ms": LINGER_MS, "batch.size": BATCH_SIZE, "compression.type": "none",
         "queue.buffering.max.messages": 1_000_000}
    )  # fmt: skip
    payload = os.urandom(RECORD_SIZE // 2).hex().encode()
    producer.produce(topic, payload)
    producer.flush(30)  # connect and fetch metadata before timing
    failed = 0

    def report(err: object, _msg: object) -> None:
        nonlocal failed
        failed += err is not None

    start = time.perf_counter()
    for _ in range(RECORDS):
        try:
            producer.produce(topic, payload, on_delivery=report)
        except BufferError:
            producer.poll(0.01)
            producer.produce(topic, payload, on_delivery=report)
        producer.poll(0)
    producer.flush(60)
    elapsed = time.perf_counter() - start
    if failed:
        raise RuntimeError(f"librdkafka failed to deliver {failed} records")
    return {"records_per_s": RECORDS / elapsed, "seconds": elapsed}


def _median(results: list[dict[str, float]]) -> dict[str, float]:
    ordered = sorted(results, key=lambda r: r["records_per_s"])
    return {**ordered[len(ordered) // 2], "rounds": [round(r["records_per_s"]) for r in results]}


def run(settings: Settings, context: dict | None = None) -> dict:
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"bench.producer.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    admin.create_topics([NewTopic(topic, num_partitions=settings.topic_partitions, replication_factor=1)])
    try:
        # Alternate the two producers and keep each one's median round, so a burst of background
        # load does not decide the ratio.
        rounds = [
            (_java_producer_perf(settings, topic), _python_producer(settings, topic),
             _confluent_producer(settings, topic))
            for _ in range(ROUNDS)
        ]  # fmt: skip
        java = _median([j for j, _, _ in rounds])
        python = _median([p for _, p, _ in rounds])
        confluent = _median([c for _, _, c in rounds])
    finally:
        admin.delete_topics([topic])
        admin.close()
    mb = RECORD_SIZE / 1e6
    py_rate, java_rate, rd_rate = python["records_per_s"], java["records_per_s"], confluent["records_per_s"]
    return write_result(
        "kafka_producer_baseline",
        metric="kafka-python producer throughput",
        value=python["records_per_s"],
        unit="records/s",
        peer={"name": "kafka ProducerPerformance (Java)", "value": round(java["records_per_s"], 1)},
        params={"records": RECORDS, "record_bytes": RECORD_SIZE, "acks": "all", "linger_ms": LINGER_MS,
                "batch_size": BATCH_SIZE, "partitions": settings.topic_partitions, "compression": "none",
                "rounds": ROUNDS},
        summary=(f"kafka-python {py_rate:,.0f} rec/s ({py_rate * mb:.1f} MB/s), "
                 f"confluent-kafka {rd_rate:,.0f} rec/s ({rd_rate * mb:.1f} MB/s), "
                 f"Java ProducerPerformance {java_rate:,.0f} rec/s ({java_rate * mb:.1f} MB/s, "
                 f"p99 {java['p99_ms']:.0f} ms)"),
        java=java,
        python=python,
        confluent=confluent,
    )  # fmt: skip
