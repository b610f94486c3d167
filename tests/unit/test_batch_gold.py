"""Silver -> gold (batch_layer.gold): exact measures, unknown keys, months from days, ratios."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyspark.sql.functions as F
import pytest
from pyspark.testing import assertDataFrameEqual

from adclick.aggregates import COUNTS, minute_aggregates
from batch_layer.gold import (
    AUDIENCE,
    DIMENSIONS,
    EXPERIMENT,
    MEASURES,
    RATIOS,
    audience_daily,
    daily,
    experiments_daily,
    hourly,
    monthly,
    with_ratios,
)

DAY = date(2026, 11, 27)
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SILVER = (
    "event_id string, event_type string, event_time timestamp, event_date date, ad_id string, "
    "campaign_id string, advertiser_id string, country string, region string, device_type string, "
    "age_group string, segment string, experiment_id string, variant string, user_key string, "
    "cost_micros long, revenue_micros long, is_fraud boolean"
)
KEYS = ("ad-1", "camp-1", "adv-1", "FR", "eu", "desktop")
MEASURE_COLS = ", ".join(f"{m} long" for m in MEASURES)
RATIO_COLS = ", ".join(f"{r} double" for r in RATIOS)


def ev(
    event_id: str,
    kind: str,
    seconds: float = 0.0,
    *,
    user: str | None = "u1",
    keys: tuple = KEYS,
    audience: tuple = ("25-34", "sports"),
    experiment: tuple = (None, None),
    cost: int | None = None,
    revenue: int | None = None,
    fraud: bool | None = False,
) -> tuple:
    when = T0 + timedelta(seconds=seconds)
    return (event_id, kind, when, when.date(), *keys, *audience, *experiment, user, cost, revenue, fraud)


@pytest.fixture(scope="module")
def silver(spark):
    no_keys = (None, None, None, None, None, None)
    rows = [
        ev("i1", "impression", 10, user="u1"),
        ev("i2", "impression", 20, user="u2"),
        ev("i3", "impression", 3700, user="u3"),  # 13:01, the next hour
        ev("c1", "click", 30, user="u1", cost=100),
        ev("c2", "click", 40, user="u2", cost=200, fraud=True),  # fraud: counted apart, no cost
        ev("c3", "click", 50, user="u2", cost=None),  # a click without a cost adds nothing
        ev("c4", "click", 3720, user=None, cost=40, fraud=None),  # unjudged: not fraud; no user
        ev("v1", "conversion", 600, user="u1", revenue=5000),
        # every dimension null: one "unknown" group, never a null key
        ev("n1", "click", 60, user="u9", keys=no_keys, audience=(None, None), cost=7),
    ]
    return spark.createDataFrame(rows, SILVER)


def test_daily_counts_are_exact_and_null_keys_are_unknown(spark, silver) -> None:
    out = daily(silver)
    assert out.columns == ["day", *DIMENSIONS, *MEASURES, *RATIOS]
    expected = spark.createDataFrame(
        [
            # impressions, clicks, fraud, conversions, cost, revenue, users; ctr, cvr, rpc, cpa
            (DAY, *KEYS, 3, 3, 1, 1, 140, 5000, 3, 1.0, 1 / 3, 5000 / 3, 140.0),
            (DAY, *["unknown"] * 6, 0, 1, 0, 0, 7, 0, 1, None, 0.0, 0.0, None),
        ],
        f"day date, {', '.join(f'{d} string' for d in DIMENSIONS)}, {MEASURE_COLS}, {RATIO_COLS}",
    )
    assertDataFrameEqual(out, expected)


def test_hourly_splits_the_day_by_event_hour(silver) -> None:
    out = hourly(silver).where(F.col("ad_id") == "ad-1")
    assert out.columns == ["window_start", *DIMENSIONS, *MEASURES, *RATIOS, "day"]
    got = {r.window_start.hour: (r.day, r.impressions, r.clicks, r.unique_users) for r in out.collect()}
    # c4 has no user: counted as a click, not as a user
    assert got == {12: (DAY, 2, 2, 2), 13: (DAY, 1, 1, 1)}


def test_audience_daily_groups_by_age_and_segment(silver) -> None:
    out = audience_daily(silver)
    assert out.columns == ["day", *AUDIENCE, *MEASURES, *RATIOS]
    got = {(r.ad_id, r.age_group, r.segment): (r.clicks, r.unique_users) for r in out.collect()}
    assert got == {("ad-1", "25-34", "sports"): (3, 3), ("unknown", "unknown", "unknown"): (1, 1)}


def test_experiments_daily_keeps_only_events_with_an_experiment(spark) -> None:
    rows = [
        ev("a1", "impression", user="u1", experiment=("exp-1", "A")),
        ev("a2", "click", 5, user="u1", experiment=("exp-1", "A"), cost=10),
        ev("b1", "impression", user="u2", experiment=("exp-1", None)),  # variant lost: unknown
        ev("x1", "click", 7, user="u3", cost=10),  # no experiment
        ev("x2", "click", 8, user="u4", experiment=(" ", "A"), cost=10),  # blank: no experiment
    ]
    out = experiments_daily(spark.createDataFrame(rows, SILVER))
    assert out.columns == ["day", *EXPERIMENT, *MEASURES, *RATIOS]
    got = {(r.experiment_id, r.variant): (r.impressions, r.clicks, r.ctr) for r in out.collect()}
    assert got == {("exp-1", "A"): (1, 1, 1.0), ("exp-1", "unknown"): (1, 0, 0.0)}


def test_gold_counts_mean_what_the_speed_layer_counts(silver) -> None:
    minutes = minute_aggregates(silver).groupBy("ad_id").agg(*[F.sum(c).alias(c) for c in COUNTS])
    days = daily(silver).groupBy("ad_id").agg(*[F.sum(c).alias(c) for c in COUNTS])
    assertDataFrameEqual(days, minutes)


def test_monthly_sums_days_but_counts_users_exactly(spark) -> None:
    day2 = 24 * 3600
    december = 4 * day2  # 2026-12-01
    rows = [
        ev("d1-c1", "click", 0, user="u1", cost=100),
        ev("d1-c2", "click", 10, user="u2", cost=100),
        ev("d2-c1", "click", day2, user="u1", cost=100),  # u1 again on the next day
        ev("d2-c2", "click", day2 + 10, user="u3", cost=100),
        ev("d2-v1", "conversion", day2 + 20, user="u3", revenue=900),
        ev("d2-n", "impression", day2 + 30, user=None),
        ev("dec-c1", "click", december, user="u1", cost=100),
    ]
    silver = spark.createDataFrame(rows, SILVER)
    days = daily(silver)
    daily_uniques = days.where(F.col("day") < date(2026, 12, 1)).agg(F.sum("unique_users")).first()[0]
    assert daily_uniques == 4  # u1 counted on both days
    out = monthly(days, silver)
    assert out.columns == ["month", *DIMENSIONS, *MEASURES, *RATIOS]
    expected = spark.createDataFrame(
        [
            (date(2026, 11, 1), *KEYS, 1, 4, 0, 1, 400, 900, 3, 4.0, 0.25, 225.0, 400.0),
            (date(2026, 12, 1), *KEYS, 0, 1, 0, 0, 100, 0, 1, None, 0.0, 0.0, None),
        ],
        f"month date, {', '.join(f'{d} string' for d in DIMENSIONS)}, {MEASURE_COLS}, {RATIO_COLS}",
    )
    assertDataFrameEqual(out, expected)


def test_ratios_are_null_on_a_zero_denominator(spark) -> None:
    rows = [
        ("all", 200, 10, 2, 1000, 9000),
        ("no-impressions", 0, 4, 1, 40, 100),
        ("no-clicks", 50, 0, 0, 0, 0),
        ("no-conversions", 10, 5, 0, 50, 0),
        ("null-counts", None, None, None, None, None),  # malformed: nulls stay null
    ]
    df = spark.createDataFrame(
        rows,
        "k string, impressions long, clicks long, conversions long, cost_micros long, revenue_micros long",
    )
    got = {r.k: (r.ctr, r.cvr, r.rpc_micros, r.cpa_micros) for r in with_ratios(df).collect()}
    assert got == {
        "all": (0.05, 0.2, 900.0, 500.0),
        "no-impressions": (None, 0.25, 25.0, 40.0),
        "no-clicks": (0.0, None, None, None),
        "no-conversions": (0.5, 0.0, 0.0, None),
        "null-counts": (None, None, None, None),
    }
    assert {t for c, t in with_ratios(df).dtypes if c in RATIOS} == {"double"}
