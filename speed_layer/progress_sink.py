"""Stream progress -> ``ops.stream_progress``: one row per micro-batch of each query.

Written by the stream application's watcher from Spark's progress reports (not from inside the
micro-batch), so a row costs nothing on the hot path; rows are buffered and appended every
``FLUSH_SECONDS`` and when the application stops. ``late_rows_dropped`` is the number of events
the speed layer's watermark dropped in that batch: they are in bronze, and the batch layer counts
them. At most one flush interval of rows is lost if the application is killed (the figures are
also in the stream's log and heartbeat).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pyspark.sql import SparkSession

from adclick.catalog import table
from adclick.settings import Settings

SCHEMA = (
    "query string, batch_id long, at timestamp, input_rows long, rows_per_s double, "
    "duration_ms long, late_rows_dropped long"
)
FLUSH_SECONDS = 30.0


def progress_row(query: str, progress: dict[str, Any]) -> tuple:
    """One ``ops.stream_progress`` row from a ``StreamingQueryProgress`` (as a dict)."""
    late = sum(op.get("numRowsDroppedByWatermark", 0) for op in progress.get("stateOperators", []))
    at = datetime.fromisoformat(progress["timestamp"].replace("Z", "+00:00")).astimezone(UTC)
    return (
        query,
        int(progress["batchId"]),
        at.replace(tzinfo=None),
        int(progress.get("numInputRows") or 0),
        float(progress.get("processedRowsPerSecond") or 0.0),
        int((progress.get("durationMs") or {}).get("triggerExecution") or 0),
        int(late),
    )


def append(spark: SparkSession, settings: Settings, rows: list[tuple]) -> None:
    if rows:
        frame = spark.createDataFrame(rows, SCHEMA)
        frame.write.format("delta").mode("append").save(table("ops.stream_progress").path(settings))
