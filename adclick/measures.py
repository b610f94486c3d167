"""Metric definitions shared by the speed and batch layers, so both count the same way.

Dimensions of every ad-click aggregate (:data:`DIMENSIONS`, null values become :data:`UNKNOWN` so
MERGE keys are never null) and the count measures (:data:`COUNTS`, :func:`count_measures`):
``impressions``, ``clicks`` (distinct non-fraud click event_ids), ``fraud_clicks`` (distinct fraud
click event_ids; so ``clicks + fraud_clicks`` = distinct click event_ids, whatever the rules),
``conversions``, ``cost_micros`` (over non-fraud clicks), ``revenue_micros`` (over conversions).
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import Column

UNKNOWN = "unknown"
DIMENSIONS = ("ad_id", "campaign_id", "country", "device_type")
COUNTS = ("impressions", "clicks", "fraud_clicks", "conversions", "cost_micros", "revenue_micros")


def dimension_columns() -> list[Column]:
    """The :data:`DIMENSIONS` as grouping columns, nulls as :data:`UNKNOWN`."""
    return [F.coalesce(F.col(d).cast("string"), F.lit(UNKNOWN)).alias(d) for d in DIMENSIONS]


def count_measures() -> list[Column]:
    """The aggregate columns of :data:`COUNTS` (event counts and money) over events that are
    already unique by ``event_id`` (the speed layer deduplicates within its watermark, silver
    keeps one row per event), so plain counts are distinct counts. Spark rewrites each
    ``count_distinct`` into an expand of every row, once per distinct count: plain counts are one
    pass. Both layers use these columns, so they count the same way."""
    kind = F.col("event_type")
    click = kind == "click"
    fraud = F.coalesce(F.col("is_fraud"), F.lit(False))
    honest_click = click & ~fraud
    conversion = kind == "conversion"
    event_id = F.col("event_id")
    return [
        F.count(F.when(kind == "impression", event_id)).alias("impressions"),
        F.count(F.when(honest_click, event_id)).alias("clicks"),
        F.count(F.when(click & fraud, event_id)).alias("fraud_clicks"),
        F.count(F.when(conversion, event_id)).alias("conversions"),
        F.coalesce(F.sum(F.when(honest_click, F.col("cost_micros"))), F.lit(0))
        .cast("long")
        .alias("cost_micros"),
        F.coalesce(F.sum(F.when(conversion, F.col("revenue_micros"))), F.lit(0))
        .cast("long")
        .alias("revenue_micros"),
    ]
