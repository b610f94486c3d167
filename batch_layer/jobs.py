"""Batch jobs: bronze -> ``silver.events``, silver -> gold, gold daily -> monthly, with their lineage.

Each job takes the day (month) it computes from its caller, reads its inputs through a
:class:`batch_layer.lake.Snapshot` (each input table pinned at the version it had when the job
started), rewrites exactly its own partition (``replaceWhere``), so a rerun gives the same table
contents, and records one ``ops.job_runs`` row with its inputs and outputs as ``table@version``,
the fraud model version silver scored with and the code version (:mod:`batch_layer.lineage`
follows those rows back to bronze). The transforms are :mod:`batch_layer.silver` and
:mod:`batch_layer.gold`; the Delta I/O is :mod:`batch_layer.lake`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from adclick.code_version import code_version
from adclick.dims import SCHEMAS as DIM_SCHEMAS
from adclick.fraud import DEFAULT_RULES, FraudRules
from adclick.settings import Settings
from batch_layer import gold, lake
from batch_layer.lake import MissingInputError
from batch_layer.ops import last_run, record_run, utc_now
from batch_layer.silver import ModelScores, filter_event_day, to_silver

if TYPE_CHECKING:
    from batch_layer.fraud_model import TrainedModel

Clock = Callable[[], datetime]

__all__ = [
    "GOLD_DAILY",
    "Clock",
    "JobResult",
    "Lineage",
    "MissingInputError",
    "read_table",
    "run_gold",
    "run_monthly",
    "run_silver",
    "silver_model",
    "track_run",
    "write_partition",
]


@dataclass(frozen=True)
class JobResult:
    run_id: str
    job: str
    day: date
    rows_in: int
    rows_out: int
    outputs: tuple[str, ...]
    inputs: tuple[str, ...] = ()
    model_version: str | None = None

    def output_version(self, name: str) -> int:
        """The version of table ``name`` this run wrote."""
        for ref in self.outputs:
            table_name, _, version = ref.rpartition("@")
            if table_name == name:
                return int(version)
        raise KeyError(f"{self.job} run {self.run_id} wrote no {name}; it wrote {', '.join(self.outputs)}")


@dataclass
class Lineage:
    """What a job body read (its snapshot's pinned inputs) and wrote, for its ``ops.job_runs`` row."""

    snapshot: lake.Snapshot
    outputs: list[str] = field(default_factory=list)
    rows_in: int = 0
    rows_out: int = 0
    model_version: str | None = None

    @property
    def inputs(self) -> list[str]:
        return self.snapshot.inputs


def read_table(
    spark: SparkSession, settings: Settings, name: str, lineage: Lineage, *, empty_schema: str | None = None
) -> DataFrame:
    """The table ``name`` at the version ``lineage``'s snapshot pinned (the first read pins it).

    A missing table reads as empty with ``empty_schema`` when one is given, else raises
    :class:`MissingInputError`. ``spark`` and ``settings`` are the snapshot's.
    """
    del spark, settings
    return lineage.snapshot.read(name, empty_schema=empty_schema)


def write_partition(df: DataFrame, settings: Settings, name: str, value: date, lineage: Lineage) -> DataFrame:
    """Replace the partition ``value`` of table ``name`` (its first partition column) with ``df``.

    The table is created on the first write. ``lineage`` gets the new ``table@version`` and the rows
    the partition now holds; returns those rows, read at the version written.
    """
    version = lake.replace_partition(df, settings, name, value)
    lineage.outputs.append(f"{name}@{version}")
    written = lake.partition(df.sparkSession, settings, name, value, version)
    lineage.rows_out += written.count()
    return written


def write_tables(frames: dict[str, DataFrame], settings: Settings, day: date, lineage: Lineage) -> None:
    """:func:`write_partition` of each table of ``frames``, all at once (one thread each): the
    tables are independent, and a Delta write's driver-side work (log replay, commit, statistics)
    then overlaps the others' tasks. ``lineage`` gets the outputs in the order of ``frames``."""
    parts = {name: Lineage(lineage.snapshot) for name in frames}
    with ThreadPoolExecutor(max_workers=len(frames) or 1, thread_name_prefix="write") as pool:
        futures = [
            pool.submit(write_partition, frame, settings, name, day, parts[name])
            for name, frame in frames.items()
        ]
        for future in futures:
            future.result()  # the first failure, after every write has ended
    for part in parts.values():
        lineage.outputs.extend(part.outputs)
        lineage.rows_out += part.rows_out


def track_run(
    spark: SparkSession,
    settings: Settings,
    job: str,
    day: date,
    body: Callable[[Lineage], None],
    *,
    clock: Clock,
    run_id: str | None,
    snapshot: lake.Snapshot | None = None,
) -> JobResult:
    """Run ``body`` and record it in ``ops.job_runs`` (a failure too, then re-raised), with the
    code version running it (:func:`adclick.code_version.code_version`).

    ``body`` reads through ``lineage.snapshot``: ``snapshot`` when the caller's step pinned its
    inputs already (the step then reads the same versions after the job), else a new one.
    """
    run_id = run_id or uuid.uuid4().hex
    lineage = Lineage(snapshot if snapshot is not None else lake.Snapshot(spark, settings))
    row = {"run_id": run_id, "job": job, "day": day, "started_at": clock(), "code_version": code_version()}
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
    return JobResult(
        run_id,
        job,
        day,
        lineage.rows_in,
        lineage.rows_out,
        tuple(lineage.outputs),
        tuple(lineage.inputs),
        lineage.model_version,
    )


def silver_model(
    spark: SparkSession, settings: Settings, day: date, choice: str | None = None
) -> TrainedModel | None:
    """The fraud model the silver job of ``day`` scores with: a run input, pinned like its tables.

    ``choice`` (default ``settings.fraud_model_version``, ``ADCLICK_FRAUD_MODEL_VERSION``):

    * ``pinned``: the model the day's last succeeded silver run used (none when that run scored
      with the rules only), so a rerun rewrites the same rows; the latest saved model when the day
      has never run;
    * ``latest``: the latest saved model (None when none is saved);
    * a version (``fm-<time>-<hash>``): that model.

    Raises :class:`batch_layer.fraud_model.FraudModelError` when the version asked for, or pinned,
    is not saved.
    """
    from batch_layer import fraud_model

    choice = fraud_model.check_choice(choice or settings.fraud_model_version)
    if choice == fraud_model.LATEST:
        return fraud_model.load(settings)
    if choice != fraud_model.PINNED:
        return fraud_model.load(settings, choice)
    previous = last_run(spark, settings, "silver", day)
    if previous is None:
        return fraud_model.load(settings)
    if previous.model_version is None:
        return None
    try:
        return fraud_model.load(settings, previous.model_version)
    except fraud_model.FraudModelError as exc:
        raise fraud_model.FraudModelError(
            f"{day} was last scored with fraud model {previous.model_version} (silver run "
            f"{previous.run_id}), which cannot be loaded: {exc}. To rescore the day with another model, "
            f"set ADCLICK_FRAUD_MODEL_VERSION=latest or =<version>"
        ) from None


def run_silver(
    spark: SparkSession,
    settings: Settings,
    day: date,
    *,
    model: TrainedModel | None = None,
    model_scores: ModelScores | None = None,
    rules: FraudRules = DEFAULT_RULES,
    clock: Clock = utc_now,
    run_id: str | None = None,
) -> JobResult:
    """Recompute ``silver.events`` for ``day`` from every bronze row whose event time is on ``day``.

    ``model`` (see :func:`silver_model`) scores the clicks and its version is recorded; or
    ``model_scores``, any scoring function (the version recorded is then the one on the rows);
    neither: the rules alone.
    """
    if model is not None and model_scores is not None:
        raise ValueError("pass a fraud model or a scoring function, not both")
    if model is not None:
        from batch_layer.fraud_model import scorer

        model_scores = scorer(model)

    def body(lineage: Lineage) -> None:
        inputs = lineage.snapshot.pin("bronze.events", "dims.ads", "dims.users")
        bronze = filter_event_day(inputs.read("bronze.events"), day)
        ads = inputs.read("dims.ads", empty_schema=DIM_SCHEMAS["dims.ads"])
        users = inputs.read("dims.users", empty_schema=DIM_SCHEMAS["dims.users"])
        lineage.rows_in = bronze.count()
        silver = to_silver(
            bronze,
            ads,
            users,
            rules=rules,
            model_scores=model_scores,
            model_threshold=settings.fraud_model_threshold,
        )
        written = write_partition(silver, settings, "silver.events", day, lineage)
        if model is not None:
            lineage.model_version = model.version
        elif model_scores is not None:
            lineage.model_version = written.agg(F.max("model_version")).first()[0]

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
    snapshot: lake.Snapshot | None = None,
    silver: DataFrame | None = None,
) -> JobResult:
    """Recompute the daily gold tables (hourly, daily, audience, experiments) of ``day`` from silver.

    ``snapshot``: the caller's, when it reads silver again after the job (the gold gate); silver is
    then read at the version that snapshot pinned. ``silver``: rows to read instead of the table
    (an archived day's rows, read back from the archive by the erasure).
    """

    def body(lineage: Lineage) -> None:
        source = silver if silver is not None else lineage.snapshot.pin("silver.events").read("silver.events")
        # Only what the four tables read is kept (a third of silver's width), once for all four.
        day_rows = filter_event_day(source, day).select(*gold.SILVER_COLUMNS).persist()
        try:
            lineage.rows_in = day_rows.count()
            write_tables(
                {name: transform(day_rows) for name, transform in GOLD_DAILY.items()}, settings, day, lineage
            )
        finally:
            day_rows.unpersist()

    return track_run(spark, settings, "gold", day, body, clock=clock, run_id=run_id, snapshot=snapshot)


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
        inputs = lineage.snapshot.pin("gold.ad_clicks_daily", "silver.events")
        days = inputs.read("gold.ad_clicks_daily")
        silver = inputs.read("silver.events")
        month_days = days.where((F.col("day") >= F.lit(first)) & (F.col("day") < F.lit(end)))
        silver_month = silver.where(
            (F.col("event_date") >= F.lit(first)) & (F.col("event_date") < F.lit(end))
        )
        lineage.rows_in = month_days.count()
        write_partition(
            gold.monthly(month_days, silver_month), settings, "gold.ad_clicks_monthly", first, lineage
        )

    return track_run(spark, settings, "monthly", first, body, clock=clock, run_id=run_id)
