"""Data-quality gates (batch_layer.quality + expectations.*) on tiny inline days.

One temp home (and so one GX context) serves the whole module: creating a context and warming
GX's Spark metrics is the slow part. Each defect day carries its defects side by side and the test
asserts the exact set of failed expectations: each defect is caught by its own check, and nothing
that is right is reported.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from adclick.catalog import table
from adclick.errors import AdclickError
from adclick.settings import Settings
from batch_layer import quality
from batch_layer.quality import (
    QualityGateFailed,
    QualityResult,
    check,
    data_docs_index,
    gate,
    silver_figures,
)
from expectations.silver import row_count_bounds

DAY = date(2026, 11, 27)
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

BRONZE = (
    "event_id string, event_type string, ad_id string, campaign_id string, event_time timestamp, "
    "user_key string, ip_key string, country string, user_agent string, referrer string, "
    "page_url string, placement_id string, x double, y double, experiment_id string, variant string, "
    "click_id string, cost_micros long, revenue_micros long, attributes map<string,string>, "
    "schema_version int, received_at timestamp, kafka_topic string, kafka_partition int, "
    "kafka_offset long, kafka_timestamp timestamp, event_date date, region string"
)
SILVER = (
    BRONZE + ", device_type string, os string, browser string, advertiser_id string, cpc_micros long, "
    "age_group string, segment string, fraud_reasons array<string>, rule_score double, "
    "model_score double, model_version string, fraud_score double, is_fraud boolean, "
    "arrival_delay_s double, copies int"
)
GOLD = (
    "day date, ad_id string, campaign_id string, advertiser_id string, country string, region string, "
    "device_type string, impressions long, clicks long, fraud_clicks long, conversions long, "
    "cost_micros long, revenue_micros long, unique_users long, ctr double, cvr double, "
    "rpc_micros double, cpa_micros double"
)


def names(ddl: str) -> list[str]:
    # Top-level "name type" pairs; the only commas inside a type are in map<string,string>.
    return [part.split()[0] for part in ddl.replace("map<string,string>", "map").split(", ")]


def event(n: int, kind: str = "click", *, silver: bool = False, **overrides: Any) -> tuple:
    at = T0 + timedelta(seconds=n)
    row: dict[str, Any] = {
        "event_id": f"00000000-0000-4000-8000-{n:012d}",
        "event_type": kind,
        "ad_id": "ad-1",
        "campaign_id": "camp-1",
        "event_time": at,
        "user_key": f"u{n % 3}",
        "ip_key": "ip-1",
        "country": "FR",
        "user_agent": "Mozilla/5.0",
        "referrer": None,
        "page_url": None,
        "placement_id": None,
        "x": None,
        "y": None,
        "experiment_id": None,
        "variant": None,
        "click_id": None,
        "cost_micros": 1500 if kind == "click" else None,  # null money is allowed
        "revenue_micros": 90_000 if kind == "conversion" else None,
        "attributes": {},
        "schema_version": 1,
        "received_at": at + timedelta(seconds=2),
        "kafka_topic": "adclick.events",
        "kafka_partition": 0,
        "kafka_offset": n,
        "kafka_timestamp": at + timedelta(seconds=2),
        "event_date": DAY,
        "region": "eu",
    }
    if silver:
        row |= {
            "device_type": "desktop",
            "os": "Linux",
            "browser": "Chrome",
            "advertiser_id": "adv-1",
            "cpc_micros": 1500,
            "age_group": "unknown",
            "segment": "unknown",
            "fraud_reasons": [],
            "rule_score": 0.0,
            "model_score": None,
            "model_version": None,
            "fraud_score": 0.0,
            "is_fraud": False,
            "arrival_delay_s": 2.0,
            "copies": 1,
        }
    unknown = set(overrides) - set(row)
    assert not unknown, unknown
    return tuple((row | overrides).values())


def good_events(*, silver: bool) -> list[tuple]:
    kinds = ["impression"] * 4 + ["click"] * 3 + ["conversion"]
    rows = [event(i, kind, silver=silver) for i, kind in enumerate(kinds)]
    rows[0] = event(0, "impression", silver=silver, country=None, region="unknown")  # no country
    if silver:
        rows[6] = event(6, "click", silver=True, fraud_score=1.0, is_fraud=True, fraud_reasons=["ip_rate"])
    return rows


def gold_row(device: str, imps: int, clicks: int, fraud: int, convs: int, ctr: float | None) -> tuple:
    cost = clicks * 1500
    return (
        DAY,
        "ad-1",
        "camp-1",
        "adv-1",
        "FR",
        "eu",
        device,
        imps,
        clicks,
        fraud,
        convs,
        cost,
        0,
        2,
        ctr,
        None,
        None,
        None,
    )


# Matches good_events(silver=True): 4 impressions, 3 clicks (1 fraud), 1 conversion.
GOOD_GOLD = [gold_row("desktop", 4, 2, 1, 1, 0.5), gold_row("unknown", 0, 0, 0, 0, None)]


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("quality_home"))


def dq_rows(spark, settings: Settings, run_id: str) -> list:
    path = table("ops.dq_results").path(settings)
    return spark.read.format("delta").load(path).where(f"run_id = '{run_id}'").collect()


def failed_names(result: QualityResult) -> set[str]:
    return {f.name for f in result.failed}


def test_the_ddl_helpers_read_every_column() -> None:
    from expectations import bronze, gold, silver

    assert names(BRONZE) == list(bronze.COLUMNS)
    assert names(SILVER) == list(silver.COLUMNS)
    assert set(gold.KEYS) | set(gold.COUNTS) <= set(names(GOLD))


def test_row_count_bounds_are_the_tolerance_around_the_median_and_the_maximum() -> None:
    assert row_count_bounds([100], 0.9) == (10, 190)  # not 11: float noise does not round up
    assert row_count_bounds([90, 100, 120], 0.25) == (75, 150)  # median 100, max 120, steady
    assert row_count_bounds([3], 1.5) == (0, 7)
    assert row_count_bounds([1000, 1200], 0.9) == (110, 2280)  # an even count: the middle two


def test_a_ramp_up_has_no_upper_bound_but_a_lost_day_still_fails() -> None:
    # The stack started late on the first day, full days after it: the next full day passes.
    first_partial = [1_200, 200_000, 210_000]
    low, high = row_count_bounds(first_partial, 0.9)
    assert high is None and low == 20_000  # 10 % of the median, not of the mean (137,067)
    assert row_count_bounds([80, 120], 0.25) == (75, None)  # 80 < 75 % of 120: still ramping
    # Steady days again: the upper bound is back, from their maximum.
    assert row_count_bounds([200_000, 210_000, 205_000], 0.9) == (20_500, 399_000)


def test_the_row_count_check_needs_previous_days() -> None:
    from expectations import silver

    def types(counts: list[int]) -> list[str]:
        return [
            e.expectation_type for e in silver.suite(DAY, previous_counts=counts, tolerance=0.9).expectations
        ]

    assert "expect_table_row_count_to_be_between" not in types([])
    assert types([5]) == [*types([]), "expect_table_row_count_to_be_between"]


def test_silver_figures_count_distinct_events_by_type(spark) -> None:
    rows = [*good_events(silver=True), event(1, "click", silver=True)]  # a repeated click id
    assert silver_figures(spark.createDataFrame(rows, SILVER)) == {
        "silver_clicks": 4,  # 3 + event 1 as a click (its id is also an impression's)
        "silver_impressions": 4,
        "silver_conversions": 1,
    }


@pytest.fixture(scope="module")
def good_day(spark, settings: Settings) -> dict[str, QualityResult]:
    silver_df = spark.createDataFrame(good_events(silver=True), SILVER)
    return {
        "bronze": check(
            spark,
            settings,
            table="bronze.events",
            day=DAY,
            df=spark.createDataFrame(good_events(silver=False), BRONZE),
            run_id="good",
        ),
        "silver": check(
            spark,
            settings,
            table="silver.events",
            day=DAY,
            df=silver_df,
            run_id="good",
            context_values={"previous_counts": [7, 10, 9]},
        ),
        "gold": check(
            spark,
            settings,
            table="gold.ad_clicks_daily",
            day=DAY,
            df=spark.createDataFrame(GOOD_GOLD, GOLD),
            run_id="good",
            context_values=silver_figures(silver_df),
        ),
    }


def test_a_good_day_passes_every_suite(good_day: dict[str, QualityResult]) -> None:
    for result in good_day.values():
        assert result.success, result.failed
        assert result.failed == ()
        gate(result)  # does not raise
    assert good_day["silver"].suite == "silver.events"
    # bronze: schema, 6 not-null, 2 sets, 2 money = 11; silver adds 4 not-null, unique, score,
    # day, row count; gold: 7 keys, day, 7 counts, ctr, 3 totals.
    assert {k: r.checked for k, r in good_day.items()} == {"bronze": 11, "silver": 19, "gold": 19}


def test_dq_results_get_one_row_per_expectation(spark, settings: Settings, good_day) -> None:
    rows = dq_rows(spark, settings, "good")
    by_table = {t: [r for r in rows if r.table == t] for t in ("bronze.events", "silver.events")}
    assert len(by_table["bronze.events"]) == good_day["bronze"].checked
    assert len(by_table["silver.events"]) == good_day["silver"].checked
    assert len(rows) == sum(r.checked for r in good_day.values())
    silver_names = [r.expectation for r in by_table["silver.events"]]
    assert len(set(silver_names)) == len(silver_names)  # one row per expectation, none twice
    assert "expect_column_values_to_be_unique(event_id)" in silver_names
    assert all(r.success and r.day == DAY and r.suite == r.table for r in rows)
    count = next(
        r for r in by_table["silver.events"] if r.expectation == "expect_table_row_count_to_be_between"
    )
    assert json.loads(count.observed) == {"observed_value": 8}
    assert json.loads(count.details)["kwargs"]["min_value"] == 1  # mean 26/3 -> 0.1 x 8.67 -> 1


def test_data_docs_live_under_the_home(settings: Settings, good_day) -> None:
    index = data_docs_index(settings)
    assert index == settings.path("dq", "data_docs", "index.html")
    assert index.is_file()
    assert "silver.events" in index.read_text()
    report = good_day["silver"].report
    assert report is not None and report.is_file()
    assert report.is_relative_to(settings.path("dq", "data_docs"))
    assert settings.path("dq", "gx", "great_expectations.yml").is_file()


def test_data_docs_index_is_none_before_any_check(tmp_path) -> None:
    assert data_docs_index(Settings(home=tmp_path)) is None


def test_bronze_catches_null_ad_ids_unknown_types_negative_money_and_a_missing_column(
    spark, settings: Settings
) -> None:
    rows = [
        *good_events(silver=False),
        event(20, ad_id=None),
        event(21, "view"),
        event(22, cost_micros=-5),
    ]
    df = spark.createDataFrame(rows, BRONZE).drop("referrer")
    result = check(spark, settings, table="bronze.events", day=DAY, df=df, run_id="bad-bronze")
    assert not result.success
    assert failed_names(result) == {
        "expect_table_columns_to_match_set",
        "expect_column_values_to_not_be_null(ad_id)",
        "expect_column_values_to_be_in_set(event_type)",
        "expect_column_values_to_be_between(cost_micros)",
    }
    seen = {f.name: f.observed for f in result.failed}
    assert seen["expect_table_columns_to_match_set"] == {"missing": ["referrer"]}
    assert seen["expect_column_values_to_be_in_set(event_type)"]["examples"] == ["view"]
    assert seen["expect_column_values_to_not_be_null(ad_id)"]["unexpected_count"] == 1
    assert seen["expect_column_values_to_be_between(cost_micros)"]["examples"] == [-5]
    rows_out = dq_rows(spark, settings, "bad-bronze")
    assert len(rows_out) == result.checked == 11
    assert {r.expectation for r in rows_out if not r.success} == failed_names(result)


@pytest.fixture(scope="module")
def bad_silver(spark, settings: Settings) -> QualityResult:
    rows = [
        *good_events(silver=True),
        event(3, "impression", silver=True),  # the same event_id twice
        event(8, "click", silver=True, fraud_score=1.5),
        event(9, "click", silver=True, event_date=DAY + timedelta(days=1)),
    ]
    return check(
        spark,
        settings,
        table="silver.events",
        day=DAY,
        df=spark.createDataFrame(rows, SILVER),
        run_id="bad-silver",
        context_values={"previous_counts": [1000, 1200]},  # 11 rows, far below 10% of 1100
    )


def test_silver_catches_duplicates_bad_scores_other_days_and_a_short_day(bad_silver: QualityResult) -> None:
    assert failed_names(bad_silver) == {
        "expect_column_values_to_be_unique(event_id)",
        "expect_column_values_to_be_between(fraud_score)",
        "expect_column_values_to_be_in_set(event_date)",
        "expect_table_row_count_to_be_between",
    }
    seen = {f.name: f.observed for f in bad_silver.failed}
    assert seen["expect_column_values_to_be_unique(event_id)"]["unexpected_count"] == 2  # both copies
    assert seen["expect_column_values_to_be_between(fraud_score)"]["examples"] == [1.5]
    assert seen["expect_column_values_to_be_in_set(event_date)"]["examples"] == [DAY + timedelta(days=1)]
    assert seen["expect_table_row_count_to_be_between"] == {"observed_value": 11}


def test_gold_catches_clicks_that_do_not_match_silver(spark, settings: Settings, monkeypatch) -> None:
    # As a new process would: the GX context is opened again from what earlier checks wrote.
    monkeypatch.setattr(quality, "_CONTEXTS", {})
    rows = [gold_row("desktop", 4, 1, 1, 1, 0.25), gold_row("mobile", 0, 3, 0, 0, None)]  # 5 clicks, not 3
    result = check(
        spark,
        settings,
        table="gold.ad_clicks_daily",
        day=DAY,
        df=spark.createDataFrame(rows, GOLD),
        run_id="bad-gold",
        context_values={"silver_clicks": 3, "silver_impressions": 4, "silver_conversions": 1},
    )
    assert failed_names(result) == {"clicks_match_silver"}
    assert result.failed[0].observed == {"rows": [{"observed": 5, "expected": 3}]}
    with pytest.raises(QualityGateFailed, match=r"clicks_match_silver: .*\"observed\": 5"):
        gate(result)


def test_gate_names_every_failed_expectation(bad_silver: QualityResult) -> None:
    with pytest.raises(QualityGateFailed) as raised:
        gate(bad_silver)
    message = str(raised.value)
    assert isinstance(raised.value, AdclickError)
    assert message.startswith("silver.events 2026-11-27 failed 4 of 19 expectations (run bad-silver)")
    for name in failed_names(bad_silver):
        assert name in message
    assert '"observed_value": 11' in message


def test_gold_needs_silver_figures(spark, settings: Settings) -> None:
    df = spark.createDataFrame(GOOD_GOLD, GOLD)
    with pytest.raises(AdclickError, match="silver_clicks"):
        check(spark, settings, table="gold.ad_clicks_daily", day=DAY, df=df, run_id="x")
