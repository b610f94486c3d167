"""Windowed aggregates, sketch roll-ups and top-N (adclick.aggregates), on inline rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyspark.sql.functions as F
import pytest
from pyspark.testing import assertDataFrameEqual

from adclick.aggregates import (
    DIMENSIONS,
    MEASURES,
    merge_sketches,
    minute_aggregates,
    sliding_aggregates,
    sliding_from_minutes,
)

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
EVENTS = (
    "event_id string, event_type string, event_time timestamp, ad_id string, campaign_id string, "
    "country string, device_type string, user_key string, cost_micros long, revenue_micros long, "
    "is_fraud boolean"
)
COUNT_COLS = (
    "impressions long, clicks long, fraud_clicks long, conversions long, "
    "cost_micros long, revenue_micros long"
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ev(
    event_id: str,
    kind: str,
    seconds: float | None,
    *,
    ad: str | None = "ad-1",
    campaign: str | None = "camp-1",
    country: str | None = "FR",
    device: str | None = "desktop",
    user: str | None = None,
    cost: int | None = None,
    revenue: int | None = None,
    fraud: bool | None = False,
) -> tuple:
    when = None if seconds is None else at(seconds)
    return (event_id, kind, when, ad, campaign, country, device, user, cost, revenue, fraud)


@pytest.fixture(scope="module")
def events(spark):
    rows = [
        # minute 12:00, ad-1 / camp-1 / FR / desktop
        ev("i1", "impression", 1, user="u1"),
        ev("i2", "impression", 2, user="u2"),
        ev("c1", "click", 3, user="u1", cost=100),
        ev("c2", "click", 4, user="u3", cost=200, fraud=True),  # fraud: counted apart, no cost
        ev("c3", "click", 5, user="u2", cost=None),  # a click without cost adds nothing
        ev("c6", "click", 6, user="u2", cost=40, fraud=None),  # unjudged: not fraud
        ev("v1", "conversion", 50, user="u1", revenue=5000),
        # minute 12:00, nulls in the dimensions
        ev("c4", "click", 30, campaign=None, country=None, device=None, user=None, cost=50),
        # minute 12:01
        ev("c5", "click", 61, user="u1", cost=100),
        ev("c7", "click", 62, user="u4", cost=300, fraud=True),
        # malformed: no event time, so no window
        ev("x1", "click", None, user="u9", cost=999),
    ]
    return spark.createDataFrame(rows, EVENTS)


def test_minute_aggregates_exact_values(spark, events) -> None:
    out = minute_aggregates(events)
    assert out.columns == ["window_start", *DIMENSIONS, *MEASURES]
    assert dict(out.dtypes)["users_sketch"] == "binary"
    expected = spark.createDataFrame(
        [
            (T0, "ad-1", "camp-1", "FR", "desktop", 2, 3, 1, 1, 140, 5000, 3),
            (T0, "ad-1", "unknown", "unknown", "unknown", 0, 1, 0, 0, 50, 0, 0),
            (at(60), "ad-1", "camp-1", "FR", "desktop", 0, 1, 1, 0, 100, 0, 2),
        ],
        f"window_start timestamp, ad_id string, campaign_id string, country string, device_type string, "
        f"{COUNT_COLS}, unique_users long",
    )
    assertDataFrameEqual(out.drop("users_sketch"), expected)


def test_clicks_plus_fraud_clicks_is_the_distinct_click_count(events) -> None:
    out = minute_aggregates(events).agg(F.sum("clicks"), F.sum("fraud_clicks")).first()
    distinct_clicks = (
        events.where((F.col("event_type") == "click") & F.col("event_time").isNotNull())
        .select("event_id")
        .distinct()
        .count()
    )
    assert out[0] + out[1] == distinct_clicks == 7
    assert out[1] == 2


def test_an_event_belongs_to_five_sliding_windows(spark) -> None:
    one = spark.createDataFrame([ev("c1", "click", 150, user="u1", cost=10)], EVENTS)  # 12:02:30
    out = sliding_aggregates(one)
    assert out.columns == ["window_start", "window_end", *DIMENSIONS, *MEASURES]
    expected = spark.createDataFrame(
        [(at(60 * m), at(60 * m + 300), 1, 10) for m in range(-2, 3)],
        "window_start timestamp, window_end timestamp, clicks long, cost_micros long",
    )
    assertDataFrameEqual(out.select("window_start", "window_end", "clicks", "cost_micros"), expected)


def test_sliding_windows_count_each_event_in_every_window_it_falls_in(events) -> None:
    out = {r.window_start: r for r in sliding_aggregates(events).where(F.col("country") == "FR").collect()}
    # 12:00 events lie in windows starting 11:56..12:00, 12:01 events in 11:57..12:01
    first, last = out[min(out)], out[max(out)]
    assert (first.clicks, first.fraud_clicks, first.unique_users) == (3, 1, 3)  # the 11:56 window
    assert (last.clicks, last.fraud_clicks, last.unique_users) == (1, 1, 2)  # the 12:01 window
    assert len(out) == 6


def test_windows_from_minutes_equal_windows_over_the_events(spark) -> None:
    """The 5-minute rows derived from minute rows equal Spark's own sliding windows over the events."""
    rows = [
        ev(
            f"e{i}",
            ("impression", "click", "conversion")[i % 3],
            37 * i,
            user=f"u{i % 7}",
            cost=i,
            revenue=i * 10,
            country=("FR", "DE")[i % 2],
            fraud=i % 5 == 0,
        )
        for i in range(60)
    ]  # 37 minutes of events, two countries, overlapping users
    raw = spark.createDataFrame(rows, EVENTS)
    derived = sliding_from_minutes(minute_aggregates(raw))
    direct = (
        raw.groupBy(F.window("event_time", "5 minutes", "1 minute").alias("w"), *DIMENSIONS)
        .agg(
            F.count_if((F.col("event_type") == "click") & ~F.col("is_fraud")).alias("clicks"),
            F.count_if((F.col("event_type") == "click") & F.col("is_fraud")).alias("fraud_clicks"),
            F.count_if(F.col("event_type") == "impression").alias("impressions"),
            F.sum(F.when(F.col("event_type") == "conversion", F.col("revenue_micros"))).alias("revenue"),
            F.count_distinct("user_key").alias("users"),
        )
        .select(
            F.col("w.start").alias("window_start"),
            F.col("w.end").alias("window_end"),
            *DIMENSIONS,
            "clicks",
            "fraud_clicks",
            "impressions",
            F.coalesce("revenue", F.lit(0)).alias("revenue"),
            "users",
        )
    )
    got = derived.select(
        "window_start",
        "window_end",
        *DIMENSIONS,
        "clicks",
        "fraud_clicks",
        "impressions",
        F.col("revenue_micros").alias("revenue"),
        F.col("unique_users").alias("users"),
    )
    assert derived.columns == ["window_start", "window_end", *DIMENSIONS, *MEASURES]
    assert direct.count() > 40  # every window of 37 minutes of traffic, in both countries
    assertDataFrameEqual(got, direct)


def test_minutes_merge_into_the_hour_without_rereading_events(spark) -> None:
    users = [f"u{i}" for i in range(40)]
    rows = [
        # u0..u39 spread over three minutes of hour 12, with overlaps (u0 in every minute)
        *[ev(f"a{i}", "impression", 60 * (i % 3), user=users[i % 25 if i % 3 else 0]) for i in range(60)],
        *[ev(f"b{i}", "click", 60 * (i % 3) + 1, user=users[15 + i], cost=10) for i in range(25)],
        ev("n1", "click", 120, user=None, cost=5, fraud=True),  # no user: in counts, not in uniques
        ev("h13", "click", 3600, user="u0", cost=7),  # next hour
    ]
    raw = spark.createDataFrame(rows, EVENTS)
    hour = F.date_trunc("hour", "window_start").alias("window_start")
    merged = merge_sketches(minute_aggregates(raw), [hour, *DIMENSIONS])
    assert merged.columns == ["window_start", *DIMENSIONS, *MEASURES]

    exact = raw.groupBy(F.date_trunc("hour", "event_time").alias("window_start")).agg(
        F.count_distinct("user_key").alias("exact"),
        F.hll_sketch_estimate(F.hll_sketch_agg("user_key")).alias("sketched"),
        F.sum(F.when((F.col("event_type") == "click") & ~F.col("is_fraud"), 1)).alias("clicks"),
        F.sum(F.when(F.col("event_type") == "impression", 1)).alias("impressions"),
    )
    got = {r.window_start: r for r in merged.collect()}
    want = {r.window_start: r for r in exact.collect()}
    assert set(got) == set(want) and len(got) == 2
    for start, row in got.items():
        assert row.unique_users == want[start].sketched == want[start].exact
        assert (row.clicks, row.impressions) == (want[start].clicks, want[start].impressions or 0)
    noon = got[min(got)]
    assert noon.unique_users == 40 and noon.fraud_clicks == 1 and noon.cost_micros == 250
    # summing per-minute uniques would over-count the users seen in several minutes
    minute_sum = minute_aggregates(raw).where(F.col("window_start") < at(3600)).agg(F.sum("unique_users"))
    assert minute_sum.first()[0] > 40


def test_merge_sketches_needs_a_sketch(spark) -> None:
    df = spark.createDataFrame([(1, 2)], "k int, clicks long")
    with pytest.raises(ValueError, match="users_sketch"):
        merge_sketches(df, ["k"])
