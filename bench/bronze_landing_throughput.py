"""bronze_landing_throughput: records/s from Kafka into ``bronze.events`` (parse, validate, Delta).

The headline is the steady rate of the micro-batches after the first (rows / trigger time, from
the query's progress reports); the whole drain including the first batch is reported beside it.

A private topic is filled with valid contract records, then the bronze landing query drains it
(trigger available-now) into a private lake. The peer, in the same run and on the same topic:
a plain Spark read of the topic written to Delta as raw bytes (no parsing, no validation), the
floor the landing query can approach.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from adclick.settings import Settings
from bench.load import events, private_stream, steady_rate
from bench.result import write_result

RECORDS = int(os.environ.get("BENCH_BRONZE_RECORDS", "600000"))
PER_BATCH = int(os.environ.get("BENCH_BRONZE_PER_BATCH", "150000"))


def _fill(settings: Settings) -> int:
    from adclick.contract import now_utc
    from traffic.sinks import send_to_kafka, with_clock

    result = send_to_kafka(with_clock(events(RECORDS, seed=9001), now_utc()), settings=settings)
    assert result.invalid == 0 and result.failed == 0, result.errors
    return result.produced


def _timed_bronze(spark, settings: Settings) -> tuple[float, float, list[dict]]:
    """Wall time of the whole drain, and the steady rate of the micro-batches after the first
    (the first one pays for JIT warm-up and the query's start)."""
    from speed_layer.app import start_bronze

    start = time.perf_counter()
    query = start_bronze(spark, settings, available_now=True)
    query.awaitTermination()
    elapsed = time.perf_counter() - start
    steady, batches = steady_rate(query.recentProgress)
    return elapsed, steady, batches


def _timed_raw_copy(spark, settings: Settings, out: Path) -> float:
    from speed_layer.source import kafka_events

    start = time.perf_counter()
    (
        kafka_events(spark, settings)
        .select("key", "value", "topic", "partition", "offset", "timestamp")
        .writeStream.format("delta")
        .option("checkpointLocation", str(out / "checkpoint"))
        .trigger(availableNow=True)
        .start(str(out / "table"))
        .awaitTermination()
    )
    return time.perf_counter() - start


def run(settings: Settings, context: dict | None = None) -> dict:
    from adclick.catalog import table
    from adclick.spark import get_spark

    with private_stream(settings, "bronze", PER_BATCH) as private:
        produced = _fill(private)
        spark = get_spark("bench-bronze", settings=private)
        bronze_s, steady, batches = _timed_bronze(spark, private)
        landed = spark.read.format("delta").load(table("bronze.events").path(private)).count()
        raw_s = _timed_raw_copy(spark, private, private.home / "raw")
        spark.stop()
    overall, raw_rate = landed / bronze_s, produced / raw_s
    params = {
        "records": produced,
        "partitions": settings.topic_partitions,
        "spark_master": settings.spark_master,
        "max_offsets_per_trigger": PER_BATCH,
    }
    return write_result(
        "bronze_landing_throughput",
        metric="records/s from Kafka into bronze.events (parse + validate + Delta append)",
        value=steady,
        unit="records/s",
        peer={
            "name": "Spark raw Kafka -> Delta copy of the same topic (no parsing)",
            "value": round(raw_rate, 1),
        },
        params=params,
        summary=(
            f"{steady:,.0f} records/s steady ({overall:,.0f} overall: {landed:,} in {bronze_s:.1f}s "
            f"incl. first batch); raw copy {raw_rate:,.0f} records/s"
        ),
        overall_records_per_s=round(overall, 1),
        batches_ms=batches,
        landed=landed,
        seconds=round(bronze_s, 2),
        raw_seconds=round(raw_s, 2),
    )
