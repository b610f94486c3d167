"""The daily pipeline's steps, as the DAGs and ``adclick batch`` run them.

Each step takes the day it works on from its caller (the DAG's data interval, or ``--date``) and
composes the jobs of :mod:`batch_layer.jobs`, :mod:`batch_layer.reconcile`,
:mod:`batch_layer.quality_jobs` and :mod:`batch_layer.fraud_model`; a failed gate raises a typed
error naming what failed, so the Airflow task fails loudly with that message. Steps read no table
themselves: the jobs do, each input pinned at the version it had when the step started
(:mod:`batch_layer.lake`). The fraud model silver scores with is a run input too: a rerun of a day
keeps the model its last silver run used unless another is asked for (``fraud_model`` of
:func:`run_step`, ``ADCLICK_FRAUD_MODEL_VERSION``).

Order of a day (``daily_batch``): bronze complete -> ``silver`` -> ``quality`` (bronze and silver
suites) -> ``gold`` (with the gold suite) -> ``reconcile`` (speed vs gold; drift over
``ADCLICK_RECONCILE_MAX_DRIFT`` fails) -> ``watermark`` (the batch watermark moves to the day) ->
register the tables and views in Trino.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pyspark.sql import SparkSession

from adclick.errors import AdclickError
from adclick.settings import Settings


class ArchivedDayError(AdclickError):
    """The day's bronze rows are archived: the day cannot be recomputed from the lake."""


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


def in_turn(settings: Settings, day: date) -> tuple[bool, str]:
    """Whether ``day`` may be recomputed now without skipping past the batch watermark (read
    without Spark): the watermark is at the day before it or later, or no day is final yet.
    Returns the verdict and why."""
    from batch_layer.ops import waits_for, watermark_without_spark

    current = watermark_without_spark(settings)
    first = waits_for(current, day)
    if first is None:
        return True, f"the batch watermark is at {current or 'no day yet'}"
    return False, f"the batch watermark is at {current}: {first} must pass its gates before {day}"


def check_turn(spark: SparkSession, settings: Settings, day: date) -> None:
    """Raise :class:`batch_layer.ops.WatermarkError` when ``day`` would skip past the watermark."""
    from batch_layer.ops import batch_watermark, ensure_turn

    ensure_turn(batch_watermark(spark, settings), day)


def silver(spark: SparkSession, settings: Settings, day: date, run_id: str) -> dict[str, Any]:
    """Silver of ``day``, scored with the fraud model chosen by ``settings.fraud_model_version``
    (:func:`batch_layer.jobs.silver_model`: by default the model the day's last silver run used)."""
    from batch_layer.archive import archived_days
    from batch_layer.jobs import run_silver, silver_model

    if day in archived_days(spark, settings, "bronze.events"):
        # Recomputing from an archived day's empty bronze would publish an empty gold day.
        raise ArchivedDayError(
            f"{day}: bronze.events of this day is in the cold archive (ops.archive_manifest); "
            "gold keeps its figures. Restore it (`adclick archive restore`) to read its events"
        )
    model = silver_model(spark, settings, day)
    result = run_silver(spark, settings, day, model=model, run_id=run_id)
    return {"rows_in": result.rows_in, "rows_out": result.rows_out, "model_version": result.model_version}


def quality(spark: SparkSession, settings: Settings, day: date, run_id: str) -> dict[str, Any]:
    """Bronze and silver suites of the day; both run and are recorded before either gate raises."""
    from batch_layer.quality_jobs import check_bronze_and_silver

    return check_bronze_and_silver(spark, settings, day, run_id)


def gold(spark: SparkSession, settings: Settings, day: date, run_id: str) -> dict[str, Any]:
    """Gold of ``day``, then its suite, both on the silver version pinned when the step started."""
    from batch_layer import lake
    from batch_layer.jobs import run_gold
    from batch_layer.quality_jobs import check_gold_daily

    inputs = lake.Snapshot(spark, settings).pin("silver.events")
    result = run_gold(spark, settings, day, run_id=run_id, snapshot=inputs)
    check_gold_daily(
        spark,
        settings,
        day,
        run_id,
        silver=inputs,
        daily_version=result.output_version("gold.ad_clicks_daily"),
    )
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
    """Summary of ``ops.dq_results`` over the week ending on ``day``, written to
    ``var/dq/reports/<day>.json``."""
    from batch_layer.quality_jobs import week_report

    return week_report(spark, settings, day)


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
    spark: SparkSession,
    settings: Settings,
    step: str,
    day: date,
    log: Callable[[str], None] = print,
    *,
    fraud_model: str | None = None,
    log_groups: bool = False,
) -> dict[str, Any]:
    """Run one step (``day`` runs the five steps of a day in order, in this one Spark session).

    ``log_groups`` wraps each step's lines in ``::group::`` / ``::endgroup::`` markers, which the
    Airflow UI shows as one collapsible section per step in the task's log.

    ``fraud_model`` overrides ``ADCLICK_FRAUD_MODEL_VERSION`` for the silver step: ``pinned`` (the
    model the day's last silver run used; the default), ``latest`` or a model version.
    """
    steps = DAY if step == "day" else (step,)
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise AdclickError(f"unknown batch job {step!r}; known: day, {', '.join(STEPS)}")
    if fraud_model is not None:
        from batch_layer.fraud_model import check_choice

        settings = settings.model_copy(update={"fraud_model_version": check_choice(fraud_model)})
    if step == "day":  # a day that would skip past the watermark fails now, not after its work
        check_turn(spark, settings, day)
    out: dict[str, Any] = {}
    for name in steps:
        if log_groups:
            log(f"::group::{name} {day.isoformat()}")
        log(f"batch: {name} {day.isoformat()} ...")
        started = time.monotonic()
        try:
            out[name] = STEPS[name](spark, settings, day, new_run_id(name, day))
        finally:
            if log_groups:
                log("::endgroup::")
        took = time.monotonic() - started
        summary = json.dumps(out[name], default=str)[:400]
        log(f"batch: {name} {day.isoformat()} done in {took:.1f}s: {summary}")
    return out
