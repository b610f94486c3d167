"""speed_throughput: events/s the speed layer sustains (dedup, enrich, fraud, MERGE into the
minute table; the 5-minute windows refreshed from it in the background meanwhile).

Method: a private topic is filled with valid contract events whose event times are recent and
spread over a few minutes (so the watermark drops none), then the speed query drains it (trigger
available-now, ``BENCH_SPEED_PER_BATCH`` records a micro-batch) into a private lake. The
sustainable input rate is the processing rate of the micro-batches after the first (rows /
trigger time from the query's progress): offered below it, Kafka lag does not grow; above it, it
does. The peer, in the same run and on the same topic: a plain Spark read of the topic with no
parsing and no aggregation (a ``noop`` sink), the ceiling of any query on this machine.
The stack's own stream application is paused meanwhile (it would share the two cores).
``windows_flush_s``: the refresh of the 5-minute windows still pending when the query stopped.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

from adclick.settings import Settings
from bench.load import events, paused, private_stream, steady_rate
from bench.result import write_result

RECORDS = int(os.environ.get("BENCH_SPEED_RECORDS", "600000"))
PER_BATCH = int(os.environ.get("BENCH_SPEED_PER_BATCH", "150000"))


def _fill(settings: Settings) -> int:
    from adclick.contract import now_utc
    from traffic.sinks import send_to_kafka

    base = now_utc() - timedelta(minutes=5)
    batch = events(RECORDS, seed=9101)
    step = timedelta(minutes=4) / len(batch)
    timed = []
    for i, event in enumerate(batch):  # recent, in order: nothing is behind the watermark
        at = base + i * step
        timed.append((at, {**event, "ts": at.isoformat().replace("+00:00", "Z")}))
    result = send_to_kafka(timed, settings=settings)
    assert result.invalid == 0 and result.failed == 0, result.errors
    return result.produced


def _timed_plain_read(spark, settings: Settings, out: Path) -> tuple[float, float]:
    from speed_layer.source import kafka_events

    start = time.perf_counter()
    query = (
        kafka_events(spark, settings)
        .writeStream.format("noop")
        .option("checkpointLocation", str(out / "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    steady, _ = steady_rate(query.recentProgress)
    return time.perf_counter() - start, steady


def run(settings: Settings, context: dict | None = None) -> dict:
    from adclick.catalog import table
    from adclick.spark import get_spark
    from speed_layer.app import finish_speed, start_speed

    with private_stream(settings, "speed", PER_BATCH) as private, paused(settings, "stream"):
        produced = _fill(private)
        spark = get_spark("bench-speed", settings=private)
        start = time.perf_counter()
        query = start_speed(spark, private, available_now=True)
        query.awaitTermination()
        speed_s = time.perf_counter() - start
        finish_speed(spark, query)  # the 5-minute windows still pending, refreshed now
        flush_s = time.perf_counter() - start - speed_s
        steady, batches = steady_rate(query.recentProgress)
        minutes = spark.read.format("delta").load(table("speed.ad_clicks_minute").path(private))
        counted = minutes.selectExpr("sum(impressions + clicks + fraud_clicks + conversions)").first()[0]
        plain_s, plain_steady = _timed_plain_read(spark, private, private.home / "plain")
        spark.stop()
    params = {
        "records": produced,
        "partitions": settings.topic_partitions,
        "spark_master": settings.spark_master,
        "max_offsets_per_trigger": PER_BATCH,
        "watermark": settings.speed_watermark,
    }
    ratio = steady / plain_steady if plain_steady else float("nan")
    return write_result(
        "speed_throughput",
        metric="events/s the speed layer sustains (processing rate of steady micro-batches)",
        value=steady,
        unit="events/s",
        peer={
            "name": "plain Spark read of the same topic (noop sink, no parsing)",
            "value": round(plain_steady, 1),
        },
        params=params,
        summary=(
            f"{steady:,.0f} events/s steady ({produced / speed_s:,.0f} overall incl. first batch); "
            f"plain read {plain_steady:,.0f} events/s (ratio {ratio:.3f})"
        ),
        ratio=round(ratio, 4),
        overall_events_per_s=round(produced / speed_s, 1),
        plain_overall_events_per_s=round(produced / plain_s, 1),
        counted_events=int(counted or 0),
        batches_ms=batches,
        seconds=round(speed_s, 2),
        windows_flush_s=round(flush_s, 2),
    )
