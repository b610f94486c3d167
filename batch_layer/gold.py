"""Silver -> gold (pure transforms): exact ad-click aggregates per hour, day, month, audience, experiment.

Reads ``silver.events`` rows (one per distinct ``event_id``, fraud-scored). Writes nothing; each
function returns the rows of one gold table of docs/lake.md:

* :func:`hourly`: one row per (``window_start`` hour, :data:`DIMENSIONS`), plus ``day``;
* :func:`daily`: one row per (``day``, :data:`DIMENSIONS`);
* :func:`monthly`: one row per (``month``, :data:`DIMENSIONS`), counts summed from the daily rows;
* :func:`audience_daily`: one row per (``day``, :data:`AUDIENCE`);
* :func:`experiments_daily`: one row per (``day``, :data:`EXPERIMENT`), events with an experiment only.

The counts mean what they mean in the speed layer (``adclick.aggregates``: clicks are distinct
non-fraud click event_ids, cost over non-fraud clicks, revenue over conversions), but
``unique_users`` is the exact count of distinct ``user_key``: it is recomputed from silver at every
grain, never added up, since one user active on two days is one user of the month. Null dimension
values are ``unknown`` so group keys are never null. Ratios are doubles, null on a zero denominator.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame

from adclick.measures import COUNTS, UNKNOWN, count_measures

DIMENSIONS = ("ad_id", "campaign_id", "advertiser_id", "country", "region", "device_type")
AUDIENCE = ("ad_id", "campaign_id", "advertiser_id", "region", "age_group", "segment")
EXPERIMENT = ("experiment_id", "variant", "ad_id", "campaign_id")
MEASURES = (*COUNTS, "unique_users")
# name -> (numerator, denominator)
RATIOS = {
    "ctr": ("clicks", "impressions"),
    "cvr": ("conversions", "clicks"),
    "rpc_micros": ("revenue_micros", "clicks"),
    "cpa_micros": ("cost_micros", "conversions"),
}


# The silver columns the daily tables read (measures, dimensions, periods): what gold keeps of a day.
SILVER_COLUMNS = tuple(
    dict.fromkeys(
        (
            "event_id",
            "event_type",
            "event_time",
            "event_date",
            "is_fraud",
            "cost_micros",
            "revenue_micros",
            "user_key",
            *DIMENSIONS,
            *AUDIENCE,
            *EXPERIMENT,
        )
    )
)


def _keys(dimensions: Sequence[str]) -> list[Column]:
    return [F.coalesce(F.col(d).cast("string"), F.lit(UNKNOWN)).alias(d) for d in dimensions]


def _measures() -> list[Column]:
    """The speed layer's counts (same definitions), with exact unique users instead of a sketch."""
    return [*count_measures(), F.count_distinct(F.col("user_key")).alias("unique_users")]


def with_ratios(df: DataFrame) -> DataFrame:
    """Adds ``ctr``, ``cvr``, ``rpc_micros``, ``cpa_micros`` (doubles; null when the denominator is 0)."""
    return df.withColumns(
        {
            name: F.when(F.col(den) != 0, F.col(num).cast("double") / F.col(den))
            for name, (num, den) in RATIOS.items()
        }
    )


def _aggregate(silver: DataFrame, period: Column, dimensions: Sequence[str]) -> DataFrame:
    grouped = silver.groupBy(period, *_keys(dimensions)).agg(*_measures())
    return with_ratios(grouped)


def hourly(silver: DataFrame) -> DataFrame:
    """``gold.ad_clicks_hourly``: per (``window_start`` hour, dimensions); ``day`` for partitioning."""
    hour = F.date_trunc("hour", F.col("event_time")).alias("window_start")
    rows = _aggregate(silver.where(F.col("event_time").isNotNull()), hour, DIMENSIONS)
    return rows.withColumn("day", F.to_date("window_start"))


def daily(silver: DataFrame) -> DataFrame:
    """``gold.ad_clicks_daily``: per (``day``, dimensions)."""
    return _aggregate(silver, F.col("event_date").alias("day"), DIMENSIONS)


def audience_daily(silver: DataFrame) -> DataFrame:
    """``gold.audience_daily``: per (``day``, ad, campaign, advertiser, region, age group, segment)."""
    return _aggregate(silver, F.col("event_date").alias("day"), AUDIENCE)


def experiments_daily(silver: DataFrame) -> DataFrame:
    """``gold.experiments_daily``: per (``day``, experiment, variant, ad, campaign); with an experiment."""
    with_experiment = silver.where(F.trim(F.col("experiment_id")) != "")
    return _aggregate(with_experiment, F.col("event_date").alias("day"), EXPERIMENT)


def monthly(daily_rows: DataFrame, silver_month: DataFrame) -> DataFrame:
    """``gold.ad_clicks_monthly``: per (``month``, dimensions).

    ``daily_rows`` are the month's ``gold.ad_clicks_daily`` rows (their counts are summed);
    ``silver_month`` the month's ``silver.events`` rows, from which ``unique_users`` is counted
    exactly (a sum of daily uniques would count a returning user once per day).
    """
    counts = daily_rows.groupBy(
        F.trunc(F.col("day"), "month").alias("month"), *[F.col(d) for d in DIMENSIONS]
    ).agg(*[F.sum(c).cast("long").alias(c) for c in COUNTS])
    users = silver_month.groupBy(
        F.trunc(F.col("event_date"), "month").alias("month"), *_keys(DIMENSIONS)
    ).agg(F.count_distinct(F.col("user_key")).alias("unique_users"))
    joined = counts.join(users, ["month", *DIMENSIONS], "left").withColumn(
        "unique_users", F.coalesce(F.col("unique_users"), F.lit(0)).cast("long")
    )
    return with_ratios(joined.select("month", *DIMENSIONS, *MEASURES))
