"""The batch layer's ops tables: ``ops.job_runs`` and ``ops.batch_watermark`` (append-only Delta).

* ``ops.job_runs``: one row per batch job run (inputs/outputs as ``table@version``, row counts,
  status, times from the caller's clock, the code version that ran it).
* ``ops.batch_watermark``: one row per day that passed its gates; the watermark of a pipeline is its
  latest ``day``, and it only ever moves forward one day at a time.

Every append uses an explicit schema, so the first write (or an empty one) creates a well-typed table.
The reads and writes go through :mod:`batch_layer.lake`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyspark.sql.functions as F
import pyspark.sql.types as T
from pyspark.sql import Row, SparkSession

from adclick.errors import AdclickError
from adclick.settings import Settings
from batch_layer import lake

DAILY_PIPELINE = "daily_batch"
JOB_RUNS = T.StructType(
    [
        T.StructField("run_id", T.StringType()),
        T.StructField("job", T.StringType()),
        T.StructField("day", T.DateType()),
        T.StructField("started_at", T.TimestampType()),
        T.StructField("finished_at", T.TimestampType()),
        T.StructField("status", T.StringType()),
        T.StructField("inputs", T.ArrayType(T.StringType())),
        T.StructField("outputs", T.ArrayType(T.StringType())),
        T.StructField("rows_in", T.LongType()),
        T.StructField("rows_out", T.LongType()),
        T.StructField("model_version", T.StringType()),
        T.StructField("message", T.StringType()),
        # Added after the first release: null in rows written before it (the table evolves).
        T.StructField("code_version", T.StringType()),
    ]
)
BATCH_WATERMARK = T.StructType(
    [
        T.StructField("pipeline", T.StringType()),
        T.StructField("day", T.DateType()),
        T.StructField("advanced_at", T.TimestampType()),
        T.StructField("run_id", T.StringType()),
    ]
)


class WatermarkError(AdclickError):
    """The batch watermark would move backwards or skip a day."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def record_run(spark: SparkSession, settings: Settings, row: Mapping[str, Any]) -> None:
    """Append one ``ops.job_runs`` row (keys as in :data:`JOB_RUNS`; missing ones are null)."""
    lake.append_rows(spark, settings, "ops.job_runs", [row], JOB_RUNS)


def last_run(spark: SparkSession, settings: Settings, job: str, day: date) -> Row | None:
    """The latest succeeded ``ops.job_runs`` row of ``job`` for ``day``, or None when it never
    succeeded. Latest by ``finished_at``, then by the version of its first output (a later write
    of a table has a higher version, also when two runs share a clock reading)."""
    runs = lake.read_if_exists(spark, settings, "ops.job_runs")
    if runs is None:
        return None
    first_output = F.try_element_at(F.col("outputs"), F.lit(1))
    output_version = F.regexp_extract(first_output, r"@(\d+)$", 1).try_cast("long")
    return (
        runs.where((F.col("job") == job) & (F.col("day") == F.lit(day)) & (F.col("status") == "succeeded"))
        .orderBy(F.col("finished_at").desc_nulls_last(), output_version.desc_nulls_last())
        .first()
    )


def batch_watermark(spark: SparkSession, settings: Settings, pipeline: str = DAILY_PIPELINE) -> date | None:
    """The latest day that passed every gate of ``pipeline``, or None before the first advance."""
    marks = lake.read_if_exists(spark, settings, "ops.batch_watermark")
    if marks is None:
        return None
    return marks.where(F.col("pipeline") == pipeline).agg(F.max("day")).first()[0]


def waits_for(current: date | None, day: date) -> date | None:
    """The day that must pass its gates before ``day`` can move a watermark at ``current``, or
    None when ``day`` can run now: any day while no day is final, a day up to the watermark (a
    rerun; the watermark stays) or the day after it."""
    if current is None or day <= current + timedelta(days=1):
        return None
    return current + timedelta(days=1)


def ensure_turn(current: date | None, day: date, pipeline: str = DAILY_PIPELINE) -> None:
    """Raise :class:`WatermarkError` when ``day`` would skip a day past the watermark ``current``."""
    first = waits_for(current, day)
    if first is not None:
        raise WatermarkError(
            f"{pipeline} watermark is at {current}; refusing to skip to {day}: run {first} first"
        )


def watermark_without_spark(settings: Settings, pipeline: str = DAILY_PIPELINE) -> date | None:
    """:func:`batch_watermark` read with delta-rs instead of Spark (for Airflow's sensors, which
    run no JVM): None while the table does not exist."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    location = lake.path(settings, "ops.batch_watermark")
    options: dict[str, str] = {}
    if location.startswith("s3a://"):
        location = "s3://" + location.removeprefix("s3a://")
        options = {
            "AWS_ENDPOINT_URL": settings.s3_endpoint,
            "AWS_ACCESS_KEY_ID": settings.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": settings.s3_secret_key.get_secret_value(),
            "AWS_REGION": settings.s3_region,
            "AWS_ALLOW_HTTP": str(settings.s3_endpoint.startswith("http://")).lower(),
        }
    try:
        marks = DeltaTable(location, storage_options=options).to_pyarrow_table(columns=["pipeline", "day"])
    except TableNotFoundError:
        return None
    days = [row["day"] for row in marks.to_pylist() if row["pipeline"] == pipeline]
    return max(days, default=None)


def advance_watermark(
    spark: SparkSession,
    settings: Settings,
    day: date,
    run_id: str,
    pipeline: str = DAILY_PIPELINE,
    *,
    clock: Callable[[], datetime] = utc_now,
) -> None:
    """Move ``pipeline``'s watermark to ``day``: the day after the current one (or any first day).

    Advancing to the current day or an earlier one writes nothing (a retried task, or a backfill
    recomputing a day already final, leaves the watermark where it is: it never moves back); a gap
    raises :class:`WatermarkError`, since days up to the watermark must all have passed.
    """
    current = batch_watermark(spark, settings, pipeline)
    ensure_turn(current, day, pipeline)
    if current is not None and day <= current:  # a rerun or backfill of a final day: it stays
        return
    row = {"pipeline": pipeline, "day": day, "advanced_at": clock(), "run_id": run_id}
    lake.append_rows(spark, settings, "ops.batch_watermark", [row], BATCH_WATERMARK)
