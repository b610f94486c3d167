"""Bronze landing sink: one micro-batch -> ``bronze.events`` + ``bronze.rejects`` (Delta), and the
rejects also to the dead-letter topic (``settings.topic_dlq``, :mod:`speed_layer.dlq_sink`).

Exactly once: the query's checkpoint fixes each micro-batch's offsets, and both Delta appends
carry ``txnAppId``/``txnVersion`` (= the batch id), so a batch replayed after a crash is skipped
by Delta instead of landing twice. The DLQ is at least once: a replayed batch re-sends its
rejects (same keys); ``bronze.rejects`` is the exactly-once record of them.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

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


KAFKA_SOURCE_SCHEMA = (
    "key binary, value binary, topic string, partition int, offset long, "
    "timestamp timestamp, timestampType int"
)


def ensure_tables(spark: SparkSession, settings: Settings) -> None:
    """Create both bronze tables (empty, with their schema) if missing, so readers never miss one."""
    from delta.tables import DeltaTable

    empty = with_parsed_event(spark.createDataFrame([], KAFKA_SOURCE_SCHEMA))
    for name, rows in (("bronze.events", to_bronze_rows(empty)), ("bronze.rejects", to_reject_rows(empty))):
        t = table(name)
        if not DeltaTable.isDeltaTable(spark, t.path(settings)):
            rows.write.format("delta").mode("append").partitionBy(*t.partition_by).save(t.path(settings))


def land_batch(settings: Settings, batch: DataFrame, batch_id: int) -> None:
    """foreachBatch body: parse once (cached narrow), write the valid rows and the rejects.

    A batch without rejects costs one check (``isEmpty`` on the cached frame) and no DLQ job.
    """
    landing = narrow(with_parsed_event(batch)).persist()
    try:
        events, rejects = table("bronze.events"), table("bronze.rejects")
        _append(to_bronze_rows(landing), events.path(settings), events.partition_by, APP_ID_EVENTS, batch_id)
        bad = to_reject_rows(landing)
        if not bad.isEmpty():
            _append(bad, rejects.path(settings), rejects.partition_by, APP_ID_REJECTS, batch_id)
            # After the Delta commit, so the topic never holds a reject bronze.rejects lacks; a
            # crash before the send replays the batch: Delta skips, the send happens.
            send_dead_letters(settings, bad)
    finally:
        landing.unpersist()
