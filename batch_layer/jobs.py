"""Batch jobs (the I/O edge): bronze -> ``silver.events``, silver -> gold, gold daily -> monthly.

Each job takes the day (month) it computes from its caller, reads its inputs at a fixed Delta
version, rewrites exactly its own partition (``replaceWhere``), so a rerun gives the same table
contents, and records one ``ops.job_runs`` row with its inputs and outputs as ``table@version``.
The transforms are :mod:`batch_layer.silver` and :mod:`batch_layer.gold`; only this module (and
:func:`batch_layer.reconcile.run_reconcile`) reads and writes the lake.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from adclick.catalog import table
from adclick.dims import SCHEMAS as DIM_SCHEMAS
from adclick.errors import AdclickError
from adclick.fraud import DEFAULT_RULES, FraudRules
from adclick.settings import Settings
from batch_layer import gold
from batch_layer.ops import record_run, table_version, utc_now
from batch_layer.silver import ModelScores, filter_event_day, to_silver

Clock = Callable[[], datetime]


class MissingInputError(AdclickError):
    """A batch job's input table does not exist yet."""


@dataclass(frozen=True)
class JobResult:
    run_id: str
    job: str
    day: date
    rows_in: int
    rows_out: int
    outputs: tuple[str, ...]


@dataclass
class Lineage:
    """What a job body read and wrote, for its ``ops.job_runs`` row."""

    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    rows_in: int = 0
    rows_out: int = 0
    model_version: str | None = None


def read_table(
    spark: SparkSession, settings: Settings, name: str, lineage: Lineage, *, empty_schema: str | None = None
) -> DataFrame:
    """The table ``name`` at its current version (noted in ``lineage.inputs``).

    A missing table reads as empty with ``empty_schema`` when one is given, else raises.
    """
    path = table(name).path(settings)
    version = table_version(spark, path)
    if version is None:
        if empty_schema is None:
            raise MissingInputError(f"{name}: no Delta table at {path}; its producer has not run yet")
        return spark.createDataFrame([], empty_schema)
    lineage.inputs.append(f"{name}@{version}")
    return spark.read.format("delta").option("versionAsOf", version).load(path)


def write_partition(df: DataFrame, settings: Settings, name: str, value: date, lineage: Lineage) -> None:
    """Replace the partition ``value`` of table ``name`` (its first partition column) with ``df``.

    The table is created on the first write. ``lineage`` gets the new ``table@version`` and the rows
    the partition now holds.
    """
    t = table(name)
    path, column = t.path(settings), t.partition_by[0]
    (
        df.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", f"{column} = DATE'{value.isoformat()}'")
        .partitionBy(*t.partition_by)
        .save(path)
    )
    spark = df.sparkSession
    lineage.outputs.append(f"{name}@{table_version(spark, path)}")
    lineage.rows_out += spark.read.format("delta").load(path).where(F.col(column) == F.lit(value)).count()


def track_run(
    spark: SparkSession,
    settings: Settings,
    job: str,
    day: date,
    body: Callable[[Lineage], None],
    *,
    clock: Clock,
    run_id: str | None,
) -> JobResult:
    """Run ``body`` and record it in ``ops.job_runs`` (a failure too, then re-raised)."""
    run_id = run_id or uuid.uuid4().hex
    lineage = Lineage()
    row = {"run_id": run_id, "job": job, "day": day, "started_at": clock()}
    try:
        body(lineage)
    except Exception as exc:
        record_run(spark, settings, {**row, "finished_at": clock(), "status": "failed", "message": str(exc)})
        raise
    record_run(
        spark,
        settings,
        {
            **row,
            "finished_at": clock(),
            "status": "succeeded",
            "inputs": lineage.inputs,
            "outputs": lineage.outputs,
            "rows_in": lineage.rows_in,
            "rows_out": lineage.rows_out,
            "model_version": lineage.model_version,
        },
    )
    return JobResult(run_id, job, day, lineage.rows_in, lineage.rows_out, tuple(lineage.outputs))


def run_silver(
    spark: SparkSession,
    settings: Settings,
    day: date,
    *,
    model_scores: ModelScores | None = None,
    rules: FraudRules = DEFAULT_RULES,
    clock: Clock = utc_now,
    run_id: str | None = None,
) -> JobResult:
    """Recompute ``silver.events`` for ``day`` from every bronze row whose event time is on ``day``."""

    def body(lineage: Lineage) -> None:
        bronze = filter_event_day(read_table(spark, settings, "bronze.events", lineage), day)
        ads = read_table(spark, settings, "dims.ads", lineage, empty_schema=DIM_SCHEMAS["dims.ads"])
        users = read_table(spark, settings, "dims.users", lineage, empty_schema=DIM_SCHEMAS["dims.users"])
        lineage.rows_in = bronze.count()
        silver = to_silver(
            bronze,
            ads,
            users,
            rules=rules,
            model_scores=model_scores,
            model_threshold=settings.fraud_model_threshold,
        )
        write_partition(silver, settings, "silver.events", day, lineage)
        written = spark.read.format("delta").load(table("silver.events").path(settings))
        versions = written.where(F.col("event_date") == F.lit(day)).agg(F.max("model_version"))
        lineage.model_version = versions.first()[0]

    return track_run(spark, settings, "silver", day, body, clock=clock, run_id=run_id)


GOLD_DAILY = {
    "gold.ad_clicks_hourly": gold.hourly,
    "gold.ad_clicks_daily": gold.daily,
    "gold.audience_daily": gold.audience_daily,
    "gold.experiments_daily": gold.experiments_daily,
}


def run_gold(
    spark: SparkSession,
    settings: Settings,
    day: date,
    *,
    clock: Clock = utc_now,
    run_id: str | None = None,
) -> JobResult:
    """Recompute the daily gold tables (hourly, daily, audience, experiments) of ``day`` from silver."""

    def body(lineage: Lineage) -> None:
        silver = read_table(spark, settings, "silver.events", lineage)
        day_rows = filter_event_day(silver, day).persist()
        try:
            lineage.rows_in = day_rows.count()
            for name, transform in GOLD_DAILY.items():
                write_partition(transform(day_rows), settings, name, day, lineage)
        finally:
            day_rows.unpersist()

    return track_run(spark, settings, "gold", day, body, clock=clock, run_id=run_id)


def _next_month(first: date) -> date:
    return (first + timedelta(days=32)).replace(day=1)


def run_monthly(
    spark: SparkSession,
    settings: Settings,
    month: date,
    *,
    clock: Clock = utc_now,
    run_id: str | None = None,
) -> JobResult:
    """Recompute ``gold.ad_clicks_monthly`` for the month of ``month`` (any day of it).

    Counts are summed from the month's ``gold.ad_clicks_daily`` rows; ``unique_users`` is counted
    exactly from the month's silver rows.
    """
    first = month.replace(day=1)
    end = _next_month(first)

    def body(lineage: Lineage) -> None:
        days = read_table(spark, settings, "gold.ad_clicks_daily", lineage)
        silver = read_table(spark, settings, "silver.events", lineage)
        month_days = days.where((F.col("day") >= F.lit(first)) & (F.col("day") < F.lit(end)))
        silver_month = silver.where(
            (F.col("event_date") >= F.lit(first)) & (F.col("event_date") < F.lit(end))
        )
        lineage.rows_in = month_days.count()
        write_partition(
            gold.monthly(month_days, silver_month), settings, "gold.ad_clicks_monthly", first, lineage
        )

    return track_run(spark, settings, "monthly", first, body, clock=clock, run_id=run_id)
