"""Bronze landing sink: one micro-batch -> ``bronze.events`` + ``bronze.rejects`` (Delta), and the
rejects also to the dead-letter topic (``settings.topic_dlq``, :mod:`speed_layer.dlq_sink`).

Exactly once: the query's checkpoint fixes each micro-batch's offsets, and both Delta appends
carry ``txnAppId``/``txnVersion`` (= the batch id), so a batch replayed after a crash is skipped
by Delta instead of landing twice. The DLQ is at least once: a replayed batch re-sends its
rejects (same keys); ``bronze.rejects`` is the exactly-once record of them.
"""

from __future__ import annotations

import time
import uuid

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, Observation, SparkSession

from adclick import table_properties
from adclick.catalog import table
from adclick.settings import Settings
from speed_layer.dlq_sink import send as send_dead_letters
from speed_layer.parse import narrow, to_bronze_rows, to_reject_rows, with_parsed_event

APP_ID_EVENTS = "adclick-bronze-landing-events"
APP_ID_REJECTS = "adclick-bronze-landing-rejects"


def _append(df: DataFrame, path: str, partition_by: tuple[str, ...], app_id: str, batch_id: int) -> None:
    (
        df.write.format("delta")
        .mode("append")
        .option("txnAppId", app_id)
        .option("txnVersion", batch_id)
        .partitionBy(*partition_by)
        .save(path)
    )


def write_tasks(spark: SparkSession, settings: Settings) -> int:
    """Tasks of each micro-batch's bronze write (``settings.stream_write_tasks``; 0: the cores Spark
    has). Each task writes one file per (event_date, region) it holds, so on 2 cores a batch of
    12 Kafka partitions lands as ~2 files per partition instead of ~12."""
    return settings.stream_write_tasks or spark.sparkContext.defaultParallelism


KAFKA_SOURCE_SCHEMA = (
    "key binary, value binary, topic string, partition int, offset long, "
    "timestamp timestamp, timestampType int"
)


def ensure_tables(spark: SparkSession, settings: Settings) -> None:
    """Create both bronze tables (empty, with their schema) if missing, so readers never miss one,
    and set their statistics columns (also on tables an earlier release created)."""
    from delta.tables import DeltaTable

    empty = with_parsed_event(spark.createDataFrame([], KAFKA_SOURCE_SCHEMA))
    for name, rows in (("bronze.events", to_bronze_rows(empty)), ("bronze.rejects", to_reject_rows(empty))):
        t = table(name)
        writer = rows.write.format("delta").mode("append").partitionBy(*t.partition_by)
        writer = table_properties.with_stats_columns(writer, spark, settings, t)
        if not DeltaTable.isDeltaTable(spark, t.path(settings)):
            writer.save(t.path(settings))


def _observed_rejects(seen: Observation, wait_s: float = 5.0) -> int | None:
    """The rejects counted while the valid rows were written, or None when nothing was observed:
    Delta skips a replayed batch's append without running its job (and a skipped append leaves
    the rejects to be looked for again, which is always correct, only dearer)."""
    deadline = time.monotonic() + wait_s
    while not seen._jo.future().isCompleted():  # the metrics arrive with the job's end
        if time.monotonic() > deadline:
            return None
        time.sleep(0.005)
    return int(seen.get["rejects"])


def land_batch(settings: Settings, batch: DataFrame, batch_id: int) -> None:
    """foreachBatch body: parse once, append the valid rows; the rejects only when there are any.

    The rejects are counted while the valid rows are written (an observed metric of the same
    job), so a clean batch costs one job: no cache, no extra count. A batch with rejects parses
    its records again (Spark re-reads the batch's fixed offsets) to append and dead-letter them.
    """
    spark = batch.sparkSession
    events, rejects = table("bronze.events"), table("bronze.rejects")
    seen = Observation(f"bronze-landing-{batch_id}-{uuid.uuid4().hex[:8]}")
    parsed = narrow(with_parsed_event(batch)).observe(
        seen, F.count_if(F.col("reject_reason").isNotNull()).alias("rejects")
    )
    valid = to_bronze_rows(parsed).coalesce(write_tasks(spark, settings))
    _append(valid, events.path(settings), events.partition_by, APP_ID_EVENTS, batch_id)
    if _observed_rejects(seen) == 0:
        return
    bad = to_reject_rows(narrow(with_parsed_event(batch))).persist()
    try:
        if bad.isEmpty():
            return
        _append(bad, rejects.path(settings), rejects.partition_by, APP_ID_REJECTS, batch_id)
        # After the Delta commit, so the topic never holds a reject bronze.rejects lacks; a
        # crash before the send replays the batch: Delta skips, the send happens.
        send_dead_letters(settings, bad)
    finally:
        bad.unpersist()
