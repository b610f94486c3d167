"""The daily pipeline's data-quality jobs: which rows of a day each suite sees, at which versions.

Reads, through :mod:`batch_layer.lake` and each table pinned once per job: the day's
``bronze.events`` and ``silver.events`` rows (and silver's row counts of the previous
:data:`PREVIOUS_DAYS` days), ``gold.ad_clicks_daily`` at the version the gold job wrote, and
``ops.dq_results`` of a week for the report. Writes: ``ops.dq_results`` (through
:func:`batch_layer.quality.check`) and the week's report, ``<home>/dq/reports/<day>.json``.
The suites and gates themselves are :mod:`batch_layer.quality`.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from adclick.settings import Settings
from batch_layer import lake
from batch_layer import quality as dq

PREVIOUS_DAYS = 7  # the silver row-count check compares a day with up to this many days before it


def previous_counts(silver: DataFrame, day: date) -> list[int]:
    """Silver's row count of each of the :data:`PREVIOUS_DAYS` days before ``day`` that has rows."""
    window = (F.col("event_date") >= F.lit(day - timedelta(days=PREVIOUS_DAYS))) & (
        F.col("event_date") < F.lit(day)
    )
    return [r["n"] for r in silver.where(window).groupBy("event_date").agg(F.count("*").alias("n")).collect()]


def check_bronze_and_silver(
    spark: SparkSession, settings: Settings, day: date, run_id: str
) -> dict[str, Any]:
    """Bronze and silver suites of ``day``; both run and are recorded before either gate raises.

    Returns the expectations checked per table and the ``table@version`` inputs checked.
    """
    inputs = lake.Snapshot(spark, settings).pin("bronze.events", "silver.events")
    results = [
        dq.check(
            spark,
            settings,
            table="bronze.events",
            day=day,
            df=inputs.event_day("bronze.events", day),
            run_id=run_id,
        ),
        dq.check(
            spark,
            settings,
            table="silver.events",
            day=day,
            df=inputs.event_day("silver.events", day),
            run_id=run_id,
            context_values={"previous_counts": previous_counts(inputs.read("silver.events"), day)},
        ),
    ]
    for result in results:
        dq.gate(result)
    return {**{r.table: r.checked for r in results}, "inputs": inputs.inputs}


def check_gold_daily(
    spark: SparkSession,
    settings: Settings,
    day: date,
    run_id: str,
    *,
    silver: lake.Snapshot,
    daily_version: int,
) -> dq.QualityResult:
    """The gold suite of ``day``: ``gold.ad_clicks_daily`` at ``daily_version`` (the version the gold
    job wrote) against the totals of silver at the version ``silver`` pinned (the one gold read)."""
    daily = lake.partition(spark, settings, "gold.ad_clicks_daily", day, daily_version)
    check = dq.check(
        spark,
        settings,
        table="gold.ad_clicks_daily",
        day=day,
        df=daily,
        run_id=run_id,
        context_values=dq.silver_figures(silver.event_day("silver.events", day)),
    )
    dq.gate(check)
    return check


def week_report(spark: SparkSession, settings: Settings, day: date) -> dict[str, Any]:
    """Summary of ``ops.dq_results`` over the week ending on ``day``: per table and day, how many
    expectations ran and which failed; written to ``<home>/dq/reports/<day>.json``."""
    results = lake.read(spark, settings, "ops.dq_results")
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
        "data_docs": str(dq.data_docs_index(settings) or ""),
    }
    out = settings.path("dq", "reports", f"{day.isoformat()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    report["path"] = str(out)
    return report
