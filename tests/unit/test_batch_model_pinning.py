"""The fraud model is a run input (batch_layer.jobs.silver_model): a rerun of a day scores with the
model the day's last silver run used, so silver and gold come out identical after a newer model is
trained; asking for another model (a version, ``latest``) rescores the day with it."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyspark.sql.functions as F
import pytest
from pydantic import ValidationError

from adclick.catalog import table
from adclick.settings import Settings
from batch_layer import fraud_model, jobs, lake
from batch_layer.fraud_model import FraudModelError, TrainedModel
from batch_layer.pipeline import run_step
from speed_layer.bronze_sink import KAFKA_SOURCE_SCHEMA
from speed_layer.parse import to_bronze_rows, with_parsed_event

TRAIN_DAY = date(2026, 11, 26)
DAY = date(2026, 11, 27)
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
HEADLESS = "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/124.0.0.0 Safari/537.36"
GOLD = ("gold.ad_clicks_hourly", "gold.ad_clicks_daily", "gold.audience_daily", "gold.experiments_daily")


def traffic(day: date, seed: int) -> list[dict[str, Any]]:
    """Bronze rows of one day: 80 people (an impression, then a click 5..120 s later, once or twice)
    and 12 bots (a dozen clicks on different ads 1..3 s apart, three bots per ip), which the rules
    flag (bot user agent, or the per-user and per-ip click rates)."""
    rng = random.Random(seed)
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    rows: list[dict[str, Any]] = []

    def add(event_id: str, kind: str, at: datetime, **keys: Any) -> None:
        rows.append(
            {
                "event_id": event_id,
                "event_type": kind,
                "event_time": at,
                "received_at": at + timedelta(seconds=1),
                "kafka_timestamp": at + timedelta(seconds=1),
                "kafka_topic": "adclick.events",
                "kafka_partition": len(rows) % 3,
                "kafka_offset": len(rows),
                "event_date": day,
                "country": "FR",
                "region": "eu",
                "schema_version": 1,
                "attributes": {},
                "cost_micros": 100 if kind == "click" else None,
                **keys,
            }
        )

    for n in range(80):
        at = midnight + timedelta(hours=rng.randrange(24), minutes=rng.randrange(50))
        ua = rng.choice([CHROME, IPHONE])
        for k in range(rng.choice([1, 1, 2])):
            keys = {
                "ad_id": f"ad-{rng.randrange(20)}",
                "user_key": f"p{n}",
                "ip_key": f"ip-p{n}",
                "user_agent": ua,
            }
            add(f"{day}-p{n}-i{k}", "impression", at, **keys)
            at += timedelta(seconds=rng.uniform(5, 120))
            add(f"{day}-p{n}-c{k}", "click", at, **keys)
            at += timedelta(seconds=rng.uniform(600, 1200))
    for n in range(12):
        at = midnight + timedelta(hours=rng.randrange(24))
        ua = HEADLESS if n % 2 else CHROME
        for k in range(12):
            at += timedelta(seconds=rng.uniform(1, 3))
            keys = {"ad_id": f"ad-{k}", "user_key": f"b{n}", "ip_key": f"ip-b{n // 3}", "user_agent": ua}
            add(f"{day}-b{n}-c{k}", "click", at, **keys)
    return rows


def fit(spark, settings: Settings, *, trained_at: datetime, inverted: bool) -> TrainedModel:
    """A model trained on TRAIN_DAY's silver, labelled by the rules' verdict (inverted: the opposite,
    so that it scores people high and bots low), saved and registered."""
    silver = lake.read(spark, settings, "silver.events").where(F.col("event_date") == F.lit(TRAIN_DAY))
    flagged = F.col("rule_score") >= F.lit(0.5)
    history = silver.withColumn("label", ~flagged if inverted else flagged)
    model = fraud_model.train(spark, history, trained_at=trained_at, label_col="label")
    fraud_model.save(model, settings)
    fraud_model.register(spark, settings, model)
    return model


@pytest.fixture(scope="module")
def settings(spark, tmp_path_factory) -> Settings:
    """A temp lake with two days of bronze; TRAIN_DAY's silver computed before any model exists."""
    home = tmp_path_factory.mktemp("pinning")
    settings = Settings(home=home, lake_root=(home / "lake").as_uri())
    schema = to_bronze_rows(with_parsed_event(spark.createDataFrame([], KAFKA_SOURCE_SCHEMA))).schema
    rows = traffic(TRAIN_DAY, seed=3) + traffic(DAY, seed=4)
    events = table("bronze.events")
    (
        spark.createDataFrame([tuple(r.get(f) for f in schema.names) for r in rows], schema)
        .write.format("delta")
        .partitionBy(*events.partition_by)
        .save(events.path(settings))
    )
    run_step(spark, settings, "silver", TRAIN_DAY, log=lambda _: None)
    return settings


def snapshot(spark, settings: Settings) -> dict[str, list[str]]:
    """DAY's rows of silver and the daily gold tables, one text per row, sorted."""
    out = {"silver.events": lake.read(spark, settings, "silver.events").where(F.col("event_date") == DAY)}
    out |= {name: lake.read(spark, settings, name).where(F.col("day") == DAY) for name in GOLD}
    return {name: sorted(repr(r) for r in df.collect()) for name, df in out.items()}


def silver_runs(spark, settings: Settings, day: date) -> list[tuple[str, str | None]]:
    runs = lake.read(spark, settings, "ops.job_runs").where(
        (F.col("job") == "silver") & (F.col("day") == day)
    )
    return [(r.status, r.model_version) for r in runs.orderBy("finished_at").collect()]


def day_silver(spark, settings: Settings) -> dict[str, Any]:
    rows = lake.read(spark, settings, "silver.events").where(F.col("event_date") == DAY).collect()
    return {r.event_id: r for r in rows}


def quiet(_: str) -> None:
    pass


def test_a_rerun_keeps_the_days_model_until_another_is_asked_for(spark, settings: Settings) -> None:
    a = fit(spark, settings, trained_at=datetime(2026, 11, 27, 4, tzinfo=UTC), inverted=False)
    first = run_step(spark, settings, "silver", DAY, log=quiet)  # the day's first run: the latest, A
    run_step(spark, settings, "gold", DAY, log=quiet)  # with its gate: gold equals silver's totals
    assert first["silver"]["model_version"] == a.version
    before = snapshot(spark, settings)
    scored_a = day_silver(spark, settings)
    assert {r.model_version for r in scored_a.values()} == {a.version}
    bots = [e for e in scored_a if "-b" in e]
    people = [e for e, r in scored_a.items() if "-p" in e and r.event_type == "click"]
    assert min(scored_a[e].model_score for e in bots) > 0.5  # A agrees with the rules
    assert max(scored_a[e].model_score for e in people) < 0.5
    assert not any(scored_a[e].is_fraud for e in people)

    b = fit(spark, settings, trained_at=datetime(2026, 11, 28, 4, tzinfo=UTC), inverted=True)
    assert fraud_model.load(settings).version == b.version  # B is now the latest
    again = run_step(spark, settings, "silver", DAY, log=quiet)
    jobs.run_gold(spark, settings, DAY)  # the gold step without its gate (checked once above)
    assert again["silver"]["model_version"] == a.version
    assert snapshot(spark, settings) == before  # same rows, byte for byte, after B was trained

    asked = run_step(spark, settings, "silver", DAY, log=quiet, fraud_model=b.version)
    jobs.run_gold(spark, settings, DAY)
    assert asked["silver"]["model_version"] == b.version
    scored_b = day_silver(spark, settings)
    assert {r.model_version for r in scored_b.values()} == {b.version}
    assert sorted(scored_b) == sorted(scored_a)  # the same events, judged by B
    assert min(scored_b[e].model_score for e in people) >= 0.5  # B flags the people...
    assert all(scored_b[e].is_fraud and "model" in scored_b[e].fraud_reasons for e in people)
    assert all(scored_b[e].is_fraud for e in bots)  # ...and the rules still flag the bots
    assert snapshot(spark, settings) != before
    daily = lake.read(spark, settings, "gold.ad_clicks_daily").where(F.col("day") == DAY)
    totals = daily.agg(F.sum("clicks"), F.sum("fraud_clicks")).first()
    assert tuple(totals) == (0, len(people) + len(bots))  # gold follows: every click is fraud under B

    assert silver_runs(spark, settings, DAY) == [
        ("succeeded", a.version),
        ("succeeded", a.version),
        ("succeeded", b.version),
    ]
    # The day's model is now B: a plain rerun keeps B, even though A is asked for nowhere.
    assert jobs.silver_model(spark, settings, DAY).version == b.version
    assert jobs.silver_model(spark, settings, DAY, "latest").version == b.version
    assert jobs.silver_model(spark, settings, DAY, a.version).version == a.version
    # TRAIN_DAY was scored before any model existed: a rerun stays rules-only unless asked.
    assert silver_runs(spark, settings, TRAIN_DAY) == [("succeeded", None)]
    assert jobs.silver_model(spark, settings, TRAIN_DAY) is None
    assert jobs.silver_model(spark, settings, TRAIN_DAY, "latest").version == b.version


def test_the_model_choice_is_checked(spark, settings: Settings) -> None:
    with pytest.raises(FraudModelError, match=r"not a fraud model choice: 'newest'"):
        run_step(spark, settings, "silver", DAY, log=quiet, fraud_model="newest")
    with pytest.raises(FraudModelError, match=r"no fraud model 'fm-20000101000000-deadbeef'"):
        jobs.silver_model(spark, settings, DAY, "fm-20000101000000-deadbeef")
    with pytest.raises(ValidationError, match="fraud_model_version"):
        Settings(fraud_model_version="newest")
    assert Settings.model_fields["fraud_model_version"].default == "pinned"
