"""The daily pipeline's steps, as the DAGs and ``adclick batch`` run them.

Each step takes the day it works on from its caller (the DAG's data interval, or ``--date``) and
composes the jobs of :mod:`batch_layer.jobs`, :mod:`batch_layer.reconcile`,
:mod:`batch_layer.quality` and :mod:`batch_layer.fraud_model`; a failed gate raises a typed
error naming what failed, so the Airflow task fails loudly with that message.

Order of a day (``daily_batch``): bronze complete -> ``silver`` -> ``quality`` (bronze and silver
suites) -> ``gold`` (with the gold suite) -> ``reconcile`` (speed vs gold; drift over
``ADCLICK_RECONCILE_MAX_DRIFT`` fails) -> ``watermark`` (the batch watermark moves to the day) ->
register the tables and views in Trino.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from adclick.catalog import table
from adclick.errors import AdclickError
from adclick.settings import Settings

PREVIOUS_DAYS = 7  # the silver row-count check compares a day with up to this many days before it


class ReconciliationDrift(AdclickError):
    """The speed layer's clicks drift from gold's by more than the configured share."""


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def bronze_complete(settings: Settings, day: date, now: datetime) -> tuple[bool, str]:
    """Whether ``day``'s bronze rows can be trusted complete: the late-arrival grace after the
    day's end has passed, and the bronze landing query has caught up with Kafka (its heartbeat is
    fresh and its lag is zero) or is not running here at all (bronze is then as complete as it
    will get, e.g. on a batch-only machine). Returns the verdict and why."""
    from adclick import stream_status as heartbeat

    ready_at = day_bounds(day)[1] + timedelta(hours=settings.batch_grace_hours)
    if now < ready_at:
        return False, f"{day} is open for late arrivals until {ready_at.isoformat()}"
    if heartbeat.read(settings) is None or not heartbeat.is_fresh(settings):
        return True, "no stream application is landing bronze here; bronze is as complete as it gets"
    behind = heartbeat.lag(settings)
    if behind:
        return False, f"bronze landing is {behind:,} records behind Kafka"
    return True, "grace period over and bronze landing caught up"


def _read(spark: SparkSession, settings: Settings, name: str) -> DataFrame:
    return spark.read.format("delta").load(table(name).path(settings))


def _event_day(spark: SparkSession, settings: Settings, name: str, day: date) -> DataFrame:
    """The rows of an event table (bronze or silver) whose event time is on ``day``."""
    from batch_layer.silver import filter_event_day

    return filter_event_day(_read(spark, settings, name), day)


def _model_scores(settings: Settings) -> Callable | None:
    from batch_layer import fraud_model

    model = fraud_model.load(settings)
    return fraud_model.scorer(model) if model is not None else None


def silver(spark: SparkSession, settings: Settings, day: date, run_id: str) -> dict[str, Any]:
    from batch_layer.jobs import run_silver

    result = run_silver(spark, settings, day, model_scores=_model_scores(settings), run_id=run_id)
    return {"rows_in": result.rows_in, "rows_out": result.rows_out}


def _previous_counts(spark: SparkSession, settings: Settings, day: date) -> list[int]:
    rows = _read(spark, settings, "silver.events")
    window = (F.col("event_date") >= F.lit(day - timedelta(days=PREVIOUS_DAYS))) & (
        F.col("event_date") < F.lit(day)
    )
    return [r["n"] for r in rows.where(window).groupBy("event_date").agg(F.count("*").alias("n")).collect()]


def quality(spark: SparkSession, settings: Settings, day: date, run_id: str) -> dict[str, Any]:
    """Bronze and silver suites of the day; both run and are recorded before either gate raises."""
    from batch_layer import quality as dq

    bronze = _event_day(spark, settings, "bronze.events", day)
    silver_day = _event_day(spark, settings, "silver.events", day)
    results = [
        dq.check(spark, settings, table="bronze.events", day=day, df=bronze, run_id=run_id),
        dq.check(
            spark,
            settings,
            table="silver.events",
            day=day,
            df=silver_day,
            run_id=run_id,
            context_values={"previous_counts": _previous_counts(spark, settings, day)},
        ),
    ]
    for result in results:
        dq.gate(result)
    return {r.table: r.checked for r in results}


def gold(spark: SparkSession, settings: Settings, day: date, run_id: str) -> dict[str, Any]:
    from batch_layer import quality as dq
    from batch_layer.jobs import run_gold

    result = run_gold(spark, settings, day, run_id=run_id)
    silver_day = _event_day(spark, settings, "silver.events", day)
    daily = _read(spark, settings, "gold.ad_clicks_daily")
    check = dq.check(
        spark,
        settings,
        table="gold.ad_clicks_daily",
        day=day,
        df=daily.where(F.col("day") == F.lit(day)),
        run_id=run_id,
        context_values=dq.silver_figures(silver_day),
    )
    dq.gate(check)
    return {"rows_in": result.rows_in, "rows_out": result.rows_out}


def reconcile(spark: SparkSession, settings: Settings, day: date, run_id: str) -> dict[str, Any]:
    from batch_layer.reconcile import run_reconcile

    summary = run_reconcile(spark, settings, day, run_id=run_id)
    if not summary["passed"]:
        raise ReconciliationDrift(
            f"{day}: speed counted {summary['speed_total']:,} clicks, gold {summary['gold_total']:,} "
            f"(drift {summary['drift']:.2%} > {settings.reconcile_max_drift:.2%}): "
            f"{summary['missed']:,} missed ({summary['late_dropped']:,} dropped as late), "
            f"{summary['over_counted']:,} over-counted ({summary['duplicates']:,} duplicates), "
            f"{summary['fraud_reclassified']:,} fraud reclassified; see delta.ops.reconciliation"
        )
    return {k: (v.isoformat() if isinstance(v, date | datetime) else v) for k, v in summary.items()}


def watermark(spark: SparkSession, settings: Settings, day: date, run_id: str) -> dict[str, Any]:
    from batch_layer.ops import advance_watermark, batch_watermark

    advance_watermark(spark, settings, day, run_id)
    return {"watermark": batch_watermark(spark, settings).isoformat()}


def monthly(spark: SparkSession, settings: Settings, day: date, run_id: str) -> dict[str, Any]:
    from batch_layer.jobs import run_monthly

    result = run_monthly(spark, settings, day, run_id=run_id)
    return {"month": result.day.isoformat(), "rows_in": result.rows_in, "rows_out": result.rows_out}


def train_fraud_model(spark: SparkSession, settings: Settings, day: date, run_id: str) -> dict[str, Any]:
    from batch_layer.fraud_model import run_training

    model = run_training(spark, settings, train_to=day)
    return {"version": model.version, **model.metrics}


def dq_report(spark: SparkSession, settings: Settings, day: date, run_id: str) -> dict[str, Any]:
    """Summary of ``ops.dq_results`` over the week ending on ``day``: per table and day, how many
    expectations ran and which failed; written to ``var/dq/reports/<day>.json``."""
    from batch_layer.quality import data_docs_index

    results = _read(spark, settings, "ops.dq_results")
    week = results.where((F.col("day") > F.lit(day - timedelta(days=7))) & (F.col("day") <= F.lit(day)))
    per = (
        week.groupBy("table", "day")
        .agg(
            F.count("*").alias("checked"),
            F.sort_array(F.collect_set(F.when(~F.col("success"), F.col("expectation")))).alias("failed"),
        )
        .orderBy("day", "table")
        .collect()
    )
    report = {
        "day": day.isoformat(),
        "tables": [
            {"table": r.table, "day": r.day.isoformat(), "checked": r.checked, "failed": list(r.failed)}
            for r in per
        ],
        "data_docs": str(data_docs_index(settings) or ""),
    }
    out = settings.path("dq", "reports", f"{day.isoformat()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    report["path"] = str(out)
    return report


def register(settings: Settings) -> dict[str, Any]:
    """Register every lake table in Trino and (re)create the serving views (no Spark, no day).

    Returns ``{logical table name: "registered" | "present" | "absent"}`` plus ``"views"``: the
    serving views now defined.
    """
    from serving.registry import register_all
    from serving.views import apply_views

    done: dict[str, Any] = dict(register_all(settings))
    done["views"] = apply_views(settings)
    return done


STEPS: dict[str, Callable[[SparkSession, Settings, date, str], dict[str, Any]]] = {
    "silver": silver,
    "quality": quality,
    "gold": gold,
    "reconcile": reconcile,
    "watermark": watermark,
    "monthly": monthly,
    "train-fraud-model": train_fraud_model,
    "dq-report": dq_report,
}
DAY = ("silver", "quality", "gold", "reconcile", "watermark")


def new_run_id(step: str, day: date) -> str:
    return f"{step}-{day.isoformat()}-{uuid.uuid4().hex[:8]}"


def run_step(
    spark: SparkSession, settings: Settings, step: str, day: date, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run one step (``day`` runs the five steps of a day in order, in this one Spark session)."""
    steps = DAY if step == "day" else (step,)
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise AdclickError(f"unknown batch job {step!r}; known: day, {', '.join(STEPS)}")
    out: dict[str, Any] = {}
    for name in steps:
        log(f"batch: {name} {day.isoformat()} ...")
        out[name] = STEPS[name](spark, settings, day, new_run_id(name, day))
        log(f"batch: {name} {day.isoformat()} done: {json.dumps(out[name], default=str)[:400]}")
    return out
