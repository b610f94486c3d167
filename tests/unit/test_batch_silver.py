"""Bronze -> silver (batch_layer.silver) on inline rows, and the batch jobs end to end on a temp lake."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyspark.sql.functions as F
import pytest

from adclick import dims
from adclick.catalog import table
from adclick.fraud import FraudRules
from adclick.settings import Settings
from batch_layer import jobs, ops, pipeline
from batch_layer.lake import version
from batch_layer.reconcile import run_reconcile
from batch_layer.silver import ADDED_COLUMNS, dedup_earliest, filter_event_day, to_silver, with_arrival_delay
from speed_layer.bronze_sink import KAFKA_SOURCE_SCHEMA
from speed_layer.parse import to_bronze_rows, with_parsed_event

DAY = date(2026, 11, 27)
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
ADS = "ad_id string, campaign_id string, advertiser_id string, cpc_micros long"
USERS = "user_key string, age_group string, segment string"


@pytest.fixture(scope="module")
def bronze_schema(spark):
    """The real bronze schema, as the landing parser makes it."""
    return to_bronze_rows(with_parsed_event(spark.createDataFrame([], KAFKA_SOURCE_SCHEMA))).schema


def row(
    event_id: str,
    kind: str = "click",
    seconds: float = 0.0,
    *,
    delay: float = 1.0,
    partition: int = 0,
    offset: int = 0,
    ad: str | None = "ad-1",
    campaign: str | None = "camp-1",
    user: str | None = "u1",
    ua: str | None = CHROME,
    **extra: Any,
) -> dict[str, Any]:
    """One bronze row: event at T0 + ``seconds``, received ``delay`` seconds later."""
    when = T0 + timedelta(seconds=seconds)
    return {
        "event_id": event_id,
        "event_type": kind,
        "ad_id": ad,
        "campaign_id": campaign,
        "event_time": when,
        "user_key": user,
        "ip_key": f"ip-{user}",
        "country": "FR",
        "user_agent": ua,
        "attributes": {},
        "schema_version": 1,
        "received_at": when + timedelta(seconds=delay),
        "kafka_topic": "adclick.events",
        "kafka_partition": partition,
        "kafka_offset": offset,
        "kafka_timestamp": when + timedelta(seconds=delay),
        "event_date": when.date(),
        "region": "eu",
        **extra,
    }


def bronze(spark, schema, rows: list[dict[str, Any]]):
    return spark.createDataFrame([tuple(r.get(f) for f in schema.names) for r in rows], schema)


def test_dedup_keeps_the_earliest_received_copy_and_counts_the_copies(spark, bronze_schema) -> None:
    rows = [
        row("e1", delay=5, partition=2, offset=10, referrer="replayed"),
        row("e1", delay=1, partition=3, offset=7, referrer="second"),
        row("e1", delay=1, partition=1, offset=9, referrer="earliest"),  # same instant: partition 1 wins
        row("e2", delay=2, partition=4, offset=12, referrer="later offset"),
        row("e2", delay=2, partition=4, offset=11, referrer="earliest"),
        row("e3", referrer=None),
    ]
    out = dedup_earliest(bronze(spark, bronze_schema, rows))
    assert out.columns == [*bronze_schema.names, "copies"]
    got = {r.event_id: (r.kafka_partition, r.kafka_offset, r.referrer, r.copies) for r in out.collect()}
    assert got == {"e1": (1, 9, "earliest", 3), "e2": (4, 11, "earliest", 2), "e3": (0, 0, None, 1)}


def test_arrival_delay_is_received_minus_event_time_in_seconds(spark, bronze_schema) -> None:
    rows = [row("a", delay=90.5), row("b", delay=-2.0), row("c", delay=0)]  # b: a client clock ahead
    out = with_arrival_delay(bronze(spark, bronze_schema, rows))
    assert dict(out.dtypes)["arrival_delay_s"] == "double"
    assert {r.event_id: r.arrival_delay_s for r in out.collect()} == {"a": 90.5, "b": -2.0, "c": 0.0}


def test_a_late_arrival_lands_in_its_event_day(spark, bronze_schema) -> None:
    end_of_day = (23 * 3600 + 58 * 60) - 12 * 3600  # 23:58 on DAY
    rows = [
        row("late", seconds=end_of_day, delay=3 * 3600 + 120, user="u7"),  # received 02:00 next day
        row("next", seconds=end_of_day + 240, delay=1),  # 00:02 next day
    ]
    events = bronze(spark, bronze_schema, rows)
    assert [r.event_id for r in filter_event_day(events, DAY).collect()] == ["late"]
    assert [r.event_id for r in filter_event_day(events, DAY + timedelta(days=1)).collect()] == ["next"]
    ads, users = spark.createDataFrame([], ADS), spark.createDataFrame([], USERS)
    silver = to_silver(filter_event_day(events, DAY), ads, users).collect()
    assert [(r.event_id, r.event_date, r.arrival_delay_s) for r in silver] == [("late", DAY, 10920.0)]


def test_to_silver_enriches_and_fills_unknown_for_missing_keys(spark, bronze_schema) -> None:
    rows = [
        row("known", user="u1"),
        row("no-campaign", campaign=None, user="u-unprofiled"),  # campaign comes from dims.ads
        row("no-ad-dim", ad="ad-9", campaign=None, user=None),  # ad unknown to the dimension, no user
        row("no-ua", ua=None, user="u1"),  # malformed: no user agent at all
    ]
    ads = spark.createDataFrame([("ad-1", "camp-1", "adv-1", 250)], ADS)
    users = spark.createDataFrame([("u1", "25-34", "sports"), ("u2", None, "news")], USERS)
    out = to_silver(bronze(spark, bronze_schema, rows), ads, users)
    assert out.columns == [*bronze_schema.names, *ADDED_COLUMNS]
    got = {
        r.event_id: (r.campaign_id, r.advertiser_id, r.cpc_micros, r.age_group, r.segment, r.device_type)
        for r in out.collect()
    }
    assert got == {
        "known": ("camp-1", "adv-1", 250, "25-34", "sports", "desktop"),
        "no-campaign": ("camp-1", "adv-1", 250, "unknown", "unknown", "desktop"),
        "no-ad-dim": (None, None, None, "unknown", "unknown", "desktop"),
        "no-ua": ("camp-1", "adv-1", 250, "25-34", "sports", "unknown"),
    }


def test_rules_judge_the_deduplicated_day(spark, bronze_schema) -> None:
    rules = FraudRules(max_repeat_clicks=2)
    ads, users = spark.createDataFrame([], ADS), spark.createDataFrame([], USERS)
    # one click sent three times is one click: no repeat
    copies = [row("once", seconds=5, partition=p, offset=p, user="u1") for p in range(3)]
    # three distinct clicks of one user on one ad: the third repeats
    distinct = [row(f"r{i}", seconds=10 + i, user="u2") for i in range(3)]
    out = to_silver(bronze(spark, bronze_schema, copies + distinct), ads, users, rules=rules)
    got = {r.event_id: (r.copies, list(r.fraud_reasons), r.is_fraud) for r in out.collect()}
    assert got["once"] == (3, [], False)
    assert got["r2"] == (1, ["repeat_click"], True)
    assert got["r0"] == (1, [], False)


def test_without_a_model_the_rules_decide(spark, bronze_schema) -> None:
    rows = [row("bot", ua=BOT), row("human"), row("imp", kind="impression", ua=BOT, user="u9")]
    ads, users = spark.createDataFrame([], ADS), spark.createDataFrame([], USERS)
    out = to_silver(bronze(spark, bronze_schema, rows), ads, users)
    types = dict(out.dtypes)
    assert (types["model_score"], types["model_version"], types["fraud_score"]) == (
        "double",
        "string",
        "double",
    )
    got = {
        r.event_id: (
            r.rule_score,
            r.model_score,
            r.model_version,
            r.fraud_score,
            r.is_fraud,
            list(r.fraud_reasons),
        )
        for r in out.collect()
    }
    assert got == {
        "bot": (0.9, None, None, 0.9, True, ["bot_user_agent"]),
        "human": (0.0, None, None, 0.0, False, []),
        "imp": (0.0, None, None, 0.0, False, []),  # only clicks are judged
    }


def test_a_model_adds_its_verdict_to_the_rules(spark, bronze_schema) -> None:
    scores = {"model-only": 0.9, "at-threshold": 0.6, "below": 0.59, "bot-low": 0.2, "bot-high": 0.95}
    scores |= {"imp-high": 0.99}

    def scorer(df):
        score = F.lit(None).cast("double")
        for event_id, value in scores.items():
            score = F.when(F.col("event_id") == event_id, F.lit(value)).otherwise(score)
        # the scorer may leave work columns behind; silver keeps only its own
        return df.withColumns({"model_score": score, "model_version": F.lit("m-7"), "features": F.lit(1)})

    rows = [
        row("model-only"),
        row("at-threshold", user="u2"),
        row("below", user="u3"),
        row("bot-low", ua=BOT, user="u4"),
        row("bot-high", ua=BOT, user="u5"),
        row("imp-high", kind="impression", user="u6"),
        row("unscored", user="u7"),  # the model gave no score: the rules alone
    ]
    ads, users = spark.createDataFrame([], ADS), spark.createDataFrame([], USERS)
    out = to_silver(bronze(spark, bronze_schema, rows), ads, users, model_scores=scorer, model_threshold=0.6)
    assert "features" not in out.columns
    got = {r.event_id: (list(r.fraud_reasons), r.fraud_score, r.is_fraud) for r in out.collect()}
    assert got == {
        "model-only": (["model"], 0.9, True),
        "at-threshold": (["model"], 0.6, True),
        "below": ([], 0.59, False),
        "bot-low": (["bot_user_agent"], 0.9, True),
        "bot-high": (["bot_user_agent", "model"], 0.95, True),
        "imp-high": ([], 0.99, False),  # an impression is never fraud, whatever its score
        "unscored": ([], 0.0, False),
    }
    assert {r.model_version for r in out.collect()} == {"m-7"}


# --- the jobs on a temp lake ------------------------------------------------------------------

FIXED = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
NEXT = DAY + timedelta(days=1)
LATE = (23 * 3600 + 50 * 60) - 12 * 3600  # 23:50 on DAY, from T0


def lake_rows() -> list[dict[str, Any]]:
    day2 = 24 * 3600
    return [
        row("i1", "impression", 0, user="u1"),
        row("c1", "click", 30, user="u1", cost_micros=100, partition=0, offset=1),
        row("c1", "click", 30, delay=1200, user="u1", cost_micros=100, partition=5, offset=3),  # replay
        row("c2", "click", 60, user="u2", cost_micros=100),
        row("c3", "click", 90, ad="ad-2", campaign=None, ua=BOT, user="u8", cost_micros=70),  # fraud
        row("c4", "click", 120, ad="ad-2", campaign=None, user=None, ua=None, cost_micros=50),
        row("v1", "conversion", 600, user="u1", revenue_micros=5000),
        row("c5", "click", LATE, delay=4200, user="u3", cost_micros=100),  # arrives after midnight
        row("x1", "click", 300, ad="ad-3", user="u2", experiment_id="exp-1", variant="A", cost_micros=10),
        row("i2", "impression", 400, ad="ad-9", campaign=None, user=None),
        row("i3", "impression", day2, user="u1"),
        row("c6", "click", day2 + 40, user="u1", cost_micros=100),
        row("c7", "click", day2 + 50, ad="ad-2", campaign=None, user="u4", cost_micros=70),
        row("v2", "conversion", day2 + 900, ad="ad-2", campaign=None, user="u4", revenue_micros=900),
    ]


@pytest.fixture(scope="module")
def lake(spark, bronze_schema, tmp_path_factory) -> Settings:
    home = tmp_path_factory.mktemp("lake")
    settings = Settings(home=home, lake_root=(home / "lake").as_uri())
    events = table("bronze.events")
    bronze(spark, bronze_schema, lake_rows()).write.format("delta").partitionBy(*events.partition_by).save(
        events.path(settings)
    )
    dims.load(
        spark, settings, ads=[{"ad_id": a, "campaign_id": f"camp-{a[-1]}"} for a in ("ad-1", "ad-2", "ad-3")]
    )
    # what the speed layer counted per event-time minute: it missed the late c5 and judged c3 honest
    minute = timedelta(minutes=1)
    speed = spark.createDataFrame(
        [
            (T0, "ad-1", 1, 0),  # c1
            (T0 + minute, "ad-1", 1, 0),  # c2
            (T0 + minute, "ad-2", 1, 0),  # c3
            (T0 + 2 * minute, "ad-2", 1, 0),  # c4
            (T0 + 5 * minute, "ad-3", 1, 0),  # x1
            (T0 + timedelta(days=1), "ad-1", 1, 0),  # c6
        ],
        "window_start timestamp, ad_id string, clicks long, fraud_clicks long",
    ).withColumn("window_date", F.to_date("window_start"))
    speed.write.format("delta").save(table("speed.ad_clicks_minute").path(settings))
    return settings


def local(when: datetime) -> datetime:
    """``when`` as PySpark collects a timestamp: naive, in the Python process's local zone."""
    return datetime.fromtimestamp(when.timestamp())


def snapshot(spark, settings: Settings, name: str) -> list[str]:
    """The table's contents, one text per row, sorted (row order and files may differ)."""
    return sorted(repr(r) for r in spark.read.format("delta").load(table(name).path(settings)).collect())


def read(spark, settings: Settings, name: str):
    return spark.read.format("delta").load(table(name).path(settings))


GOLD = ("gold.ad_clicks_hourly", "gold.ad_clicks_daily", "gold.audience_daily", "gold.experiments_daily")


def test_jobs_rerun_to_identical_tables(spark, lake: Settings) -> None:
    clock = lambda: FIXED  # noqa: E731
    first = jobs.run_silver(spark, lake, DAY, clock=clock)
    assert (first.job, first.day, first.rows_in, first.rows_out) == ("silver", DAY, 10, 9)
    jobs.run_silver(spark, lake, NEXT, clock=clock)
    for day in (DAY, NEXT):
        jobs.run_gold(spark, lake, day, clock=clock)
    jobs.run_monthly(spark, lake, DAY, clock=clock)
    names = ("silver.events", *GOLD, "gold.ad_clicks_monthly")
    before = {name: snapshot(spark, lake, name) for name in names}

    again = jobs.run_silver(spark, lake, DAY, clock=clock)
    jobs.run_gold(spark, lake, DAY, clock=clock)
    jobs.run_monthly(spark, lake, DAY, clock=clock)
    assert {name: snapshot(spark, lake, name) for name in names} == before
    assert again.outputs != first.outputs  # a new table version, same contents

    silver = {r.event_id: r for r in read(spark, lake, "silver.events").collect()}
    assert (silver["c5"].event_date, silver["c5"].arrival_delay_s) == (DAY, 4200.0)
    assert (silver["c1"].copies, silver["c1"].kafka_partition) == (2, 0)
    assert silver["c3"].is_fraud and silver["c3"].campaign_id == "camp-2"

    daily = read(spark, lake, "gold.ad_clicks_daily").where(F.col("ad_id") == "ad-1").collect()
    by_day = {r.day: (r.impressions, r.clicks, r.conversions, r.unique_users) for r in daily}
    assert by_day == {DAY: (1, 3, 1, 3), NEXT: (1, 1, 0, 1)}
    month = read(spark, lake, "gold.ad_clicks_monthly").where(F.col("ad_id") == "ad-1").collect()
    assert [(m.month, m.clicks, m.unique_users) for m in month] == [(date(2026, 11, 1), 4, 3)]  # not 3 + 1

    runs = read(spark, lake, "ops.job_runs").where(F.col("run_id") == first.run_id).collect()
    assert len(runs) == 1
    assert (runs[0].status, runs[0].started_at, runs[0].rows_in, runs[0].rows_out) == (
        "succeeded",
        local(FIXED),
        10,
        9,
    )
    assert runs[0].inputs == ["bronze.events@0", "dims.ads@0"]  # no dims.users table yet
    assert runs[0].outputs == list(first.outputs) == ["silver.events@0"]


def test_reconcile_explains_the_speed_gap(spark, lake: Settings) -> None:
    clock = lambda: FIXED  # noqa: E731
    jobs.run_silver(spark, lake, DAY, clock=clock)
    summary = run_reconcile(spark, lake, DAY, clock=clock)
    again = run_reconcile(spark, lake, DAY, clock=clock)
    assert summary == again
    reasons = {r.ad_id: (r.diff, r.reason) for r in read(spark, lake, "ops.reconciliation").collect()}
    assert reasons == {"ad-1": (-1, "late"), "ad-2": (0, "fraud_reclassified"), "ad-3": (0, "match")}
    assert (summary["speed_total"], summary["gold_total"], summary["missed"]) == (5, 6, 1)
    assert (summary["late_dropped"], summary["late_counted"]) == (1, 0)
    assert summary["total_drift"] == pytest.approx(1 / 6)
    assert (summary["unexplained"], summary["drift"]) == (0, 0.0)  # the one missing click was late
    assert summary["passed"] is True  # 17 % off in all, every click of it explained
    assert read(spark, lake, "ops.reconciliation_summary").count() == 2  # one per check, appended


def test_watermark_moves_forward_one_day_at_a_time(spark, lake: Settings) -> None:
    assert ops.batch_watermark(spark, lake) is None
    ops.advance_watermark(spark, lake, DAY, "run-1", clock=lambda: FIXED)
    ops.advance_watermark(spark, lake, DAY, "run-1-retry")  # the same day again: nothing to do
    ops.advance_watermark(spark, lake, DAY - timedelta(days=1), "run-0")  # a backfilled day: stays
    assert ops.batch_watermark(spark, lake) == DAY
    with pytest.raises(ops.WatermarkError, match=r"skip to 2026-11-29: run 2026-11-28 first"):
        ops.advance_watermark(spark, lake, DAY + timedelta(days=2), "run-3")
    ops.advance_watermark(spark, lake, NEXT, "run-2")
    assert ops.batch_watermark(spark, lake) == NEXT
    assert ops.batch_watermark(spark, lake, pipeline="other") is None
    marks = read(spark, lake, "ops.batch_watermark").orderBy("day").collect()
    assert [(m.day, m.run_id) for m in marks] == [(DAY, "run-1"), (NEXT, "run-2")]
    assert marks[0].advanced_at == local(FIXED)


def test_a_failed_job_is_recorded_and_raised(spark, tmp_path) -> None:
    settings = Settings(home=tmp_path, lake_root=(tmp_path / "lake").as_uri())
    with pytest.raises(jobs.MissingInputError, match=r"silver\.events: no Delta table"):
        jobs.run_gold(spark, settings, DAY, clock=lambda: FIXED)
    runs = read(spark, settings, "ops.job_runs").collect()
    assert [(r.job, r.day, r.status) for r in runs] == [("gold", DAY, "failed")]
    assert "silver.events" in runs[0].message


@pytest.mark.parametrize(
    ("current", "day", "first"),
    [
        (None, DAY, None),  # no day is final yet: any day may be the first
        (DAY, DAY - timedelta(days=3), None),  # a rerun of a final day
        (DAY, DAY, None),
        (DAY, NEXT, None),  # the day after the watermark
        (DAY, NEXT + timedelta(days=1), NEXT),  # would skip NEXT
        (DAY, DAY + timedelta(days=30), NEXT),
    ],
)
def test_which_day_must_pass_first(current, day, first) -> None:
    assert ops.waits_for(current, day) == first


def _empty_lake(tmp_path) -> Settings:
    return Settings(home=tmp_path, lake_root=(tmp_path / "lake").as_uri())


def test_the_watermark_read_without_spark_is_sparks(spark, tmp_path) -> None:
    lake = _empty_lake(tmp_path)
    assert ops.watermark_without_spark(lake) is None  # no table yet
    assert pipeline.in_turn(lake, DAY + timedelta(days=5))[0] is True  # any day may be the first
    ops.advance_watermark(spark, lake, DAY, "run-1")
    ops.advance_watermark(spark, lake, NEXT, "run-2")
    assert ops.watermark_without_spark(lake) == ops.batch_watermark(spark, lake) == NEXT
    assert ops.watermark_without_spark(lake, pipeline="other") is None
    ready, why = pipeline.in_turn(lake, NEXT + timedelta(days=2))
    assert not ready and f"{NEXT + timedelta(days=1)} must pass its gates before" in why
    assert pipeline.in_turn(lake, NEXT + timedelta(days=1))[0] is True
    assert pipeline.in_turn(lake, DAY)[0] is True  # a rerun


def test_a_day_that_would_skip_the_watermark_fails_before_silver(spark, tmp_path) -> None:
    lake = _empty_lake(tmp_path)
    ops.advance_watermark(spark, lake, DAY - timedelta(days=2), "run-0")
    with pytest.raises(ops.WatermarkError, match=r"skip to 2026-11-27: run 2026-11-26 first"):
        pipeline.run_step(spark, lake, "day", DAY, log=lambda line: None)
    assert version(spark, lake, "silver.events") is None  # no step ran
    assert version(spark, lake, "ops.job_runs") is None
