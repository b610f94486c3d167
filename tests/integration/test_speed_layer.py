"""Speed layer on the real broker and Delta: per-minute counts equal the generator's truth."""

from __future__ import annotations

from datetime import timedelta

import pyspark.sql.functions as F
import pytest

from adclick.catalog import table
from adclick.contract import now_utc
from adclick.settings import Settings

pytestmark = pytest.mark.integration


def test_minute_counts_equal_truth_and_replays_add_nothing(isolated: Settings, spark) -> None:
    from speed_layer import app
    from traffic.generator import GeneratorConfig, generate_timed
    from traffic.sinks import send_to_kafka
    from traffic.truth import Truth

    truth = Truth()
    config = GeneratorConfig(
        start=now_utc() - timedelta(hours=1),
        duration=timedelta(minutes=15),
        clicks=400,
        late_fraction=0.0,
        seed=77,
    )
    result = send_to_kafka(generate_timed(config, truth), settings=isolated)
    assert result.failed == 0 and result.invalid == 0
    assert truth.duplicate_sends > 0  # client retries reached Kafka: the watermark dedup must drop them

    app.run(isolated, queries=("speed",), available_now=True, log=lambda _: None)
    minutes = spark.read.format("delta").load(table("speed.ad_clicks_minute").path(isolated))
    got = {
        (r.ad_id, r.minute): r.n
        for r in minutes.groupBy("ad_id", F.date_format("window_start", "yyyy-MM-dd'T'HH:mm").alias("minute"))
        .agg(F.sum(F.col("clicks") + F.col("fraud_clicks")).alias("n"))
        .where("n > 0")
        .collect()
    }
    want = {
        (ad, minute): n
        for ad, per_minute in truth.clicks_by_ad_minute.items()
        for minute, n in per_minute.items()
    }
    assert got == want
    totals = minutes.agg(F.sum("impressions").alias("i"), F.sum("conversions").alias("c")).first()
    assert (totals.i, totals.c) == (truth.distinct["impression"], truth.distinct["conversion"])

    top = spark.read.format("delta").load(table("speed.top_ads_minute").path(isolated))
    minute_text = F.date_format("window_start", "yyyy-MM-dd'T'HH:mm").alias("minute")
    best = {r.minute: r.clicks for r in top.where("rank = 1").select(minute_text, "clicks").collect()}
    per_ad_minute = (
        minutes.groupBy("window_start", "ad_id").agg(F.sum("clicks").alias("clicks")).where("clicks > 0")
    )
    expected_best = {
        r.minute: r.clicks
        for r in per_ad_minute.groupBy(F.date_format("window_start", "yyyy-MM-dd'T'HH:mm").alias("minute"))
        .agg(F.max("clicks").alias("clicks"))
        .collect()
    }
    assert best == expected_best

    # Each 5-minute window holds exactly the events of its five minutes (distinct counts add up).
    five = spark.read.format("delta").load(table("speed.ad_clicks_5min").path(isolated))
    keys = ["ad_id", "campaign_id", "country", "device_type"]
    m = minutes.alias("m")
    expected_five = (
        five.select("window_start", *keys).distinct().alias("f")
        .join(m, [F.col(f"f.{k}") == F.col(f"m.{k}") for k in keys]
              + [F.col("m.window_start") >= F.col("f.window_start"),
                 F.col("m.window_start") < F.col("f.window_start") + F.expr("INTERVAL 5 MINUTES")])
        .groupBy("f.window_start", *[F.col(f"f.{k}") for k in keys])
        .agg(F.sum("m.clicks").alias("clicks"), F.sum("m.fraud_clicks").alias("fraud_clicks"),
             F.sum("m.impressions").alias("impressions"))
    )  # fmt: skip
    five_cols = ["window_start", *keys, "clicks", "fraud_clicks", "impressions"]
    five_before = sorted(map(tuple, five.select(five_cols).collect()))
    assert five_before == sorted(map(tuple, expected_five.collect()))
    assert five.count() > minutes.count()  # sliding: an event counts in 5 windows

    before = sorted(map(tuple, minutes.drop("users_sketch").collect()))
    # Roll the checkpoint back to "batch 0 planned, never committed", as after a crash between the
    # MERGE and the checkpoint's commit: Spark runs batch 0 again with the same offsets, and Delta
    # must skip its writes. (A later no-data batch only moved the watermark: it goes too.)
    checkpoint = isolated.path("checkpoints", "speed")
    for log_dir in ("commits", "offsets"):
        for f in (checkpoint / log_dir).iterdir():
            if f.name.lstrip(".").split(".")[0] != "0" or log_dir == "commits":
                f.unlink()
    app.run(isolated, queries=("speed",), available_now=True, log=lambda _: None)
    assert (checkpoint / "commits" / "0").exists()  # batch 0 was run again
    after = spark.read.format("delta").load(table("speed.ad_clicks_minute").path(isolated))
    assert sorted(map(tuple, after.drop("users_sketch").collect())) == before
    five_after = spark.read.format("delta").load(table("speed.ad_clicks_5min").path(isolated))
    assert sorted(map(tuple, five_after.select(five_cols).collect())) == five_before
