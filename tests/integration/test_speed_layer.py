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


def _truth_minutes(truth) -> dict[tuple[str, str], int]:
    return {
        (ad, minute): n
        for ad, per_minute in truth.clicks_by_ad_minute.items()
        for minute, n in per_minute.items()
    }


def _speed_minutes(spark, settings: Settings) -> dict[tuple[str, str], int]:
    minutes = spark.read.format("delta").load(table("speed.ad_clicks_minute").path(settings))
    return {
        (r.ad_id, r.minute): r.n
        for r in minutes.groupBy("ad_id", F.date_format("window_start", "yyyy-MM-dd'T'HH:mm").alias("minute"))
        .agg(F.sum(F.col("clicks") + F.col("fraud_clicks")).alias("n"))
        .where("n > 0")
        .collect()
    }


def test_sigkill_mid_stream_then_restart_gives_exact_counts(isolated: Settings, spark, tmp_path) -> None:
    """The app is SIGKILLed between micro-batches' writes and commits; the restart neither loses nor
    double counts, and the ads dimension fills the campaigns the events did not carry."""
    import os
    import subprocess
    import sys
    import time

    import psutil

    from adclick import dims
    from speed_layer import app
    from traffic.generator import GeneratorConfig, generate_timed
    from traffic.sinks import send_to_kafka
    from traffic.truth import Truth

    truth = Truth()
    config = GeneratorConfig(
        start=now_utc() - timedelta(hours=1),
        duration=timedelta(minutes=12),
        clicks=900,
        late_fraction=0.0,
        seed=4242,
    )
    timed = list(generate_timed(config, truth))
    for _, event in timed:
        event.pop("campaign_id", None)  # the ad server did not say: the ads dimension must
    dims.load(spark, isolated, ads=truth.ads, users=truth.users)
    half = len(timed) // 2
    assert send_to_kafka(timed[:half], settings=isolated).failed == 0

    env = {
        **os.environ,
        "ADCLICK_HOME": str(isolated.home),
        "ADCLICK_LAKE_ROOT": isolated.lake_root,
        "ADCLICK_TOPIC_EVENTS": isolated.topic_events,
        "ADCLICK_STREAM_TRIGGER_SECONDS": "0.5",
        "ADCLICK_STREAM_MAX_OFFSETS_PER_TRIGGER": "300",  # several micro-batches, so one is mid-way
    }
    log = open(tmp_path / "stream.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "stream", "--queries", "speed"], env=env, stdout=log, stderr=log
    )
    commits = isolated.path("checkpoints", "speed", "commits")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if commits.is_dir() and len([f for f in commits.iterdir() if f.name.isdigit()]) >= 2:
            break
        time.sleep(0.5)
    assert proc.poll() is None, (tmp_path / "stream.log").read_text()[-3000:]
    tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    for p in tree:
        p.kill()  # SIGKILL: no shutdown hook, possibly between a MERGE and its checkpoint commit
    psutil.wait_procs(tree, timeout=30)
    log.close()
    assert send_to_kafka(timed[half:], settings=isolated).failed == 0

    app.run(isolated, queries=("speed",), available_now=True, log=lambda _: None)
    assert _speed_minutes(spark, isolated) == _truth_minutes(truth)

    minutes = spark.read.format("delta").load(table("speed.ad_clicks_minute").path(isolated))
    campaign_of = {a["ad_id"]: a["campaign_id"] for a in truth.ads}
    pairs = {(r.ad_id, r.campaign_id) for r in minutes.select("ad_id", "campaign_id").distinct().collect()}
    assert pairs and all(campaign_of[ad] == campaign for ad, campaign in pairs)

    progress = spark.read.format("delta").load(table("ops.stream_progress").path(isolated))
    assert progress.where("query = 'speed_minute'").count() >= 1


def test_events_behind_the_watermark_are_dropped_and_counted(isolated: Settings, spark) -> None:
    """Speed counts on-time events; those older than the watermark are left to the batch layer,
    counted in ``ops.stream_progress`` (and still land in bronze, tested with bronze landing)."""
    import uuid

    from speed_layer import app
    from traffic.sinks import send_to_kafka

    base = now_utc().replace(second=0, microsecond=0) - timedelta(hours=2)

    def clicks(ad: str, at, n: int) -> list:
        ts = at.isoformat().replace("+00:00", "Z")
        event = {"ad_id": ad, "ts": ts, "country": "DE"}
        return [(at, {**event, "event_id": str(uuid.uuid4())}) for _ in range(n)]

    first = clicks("ad-on-time", base + timedelta(minutes=30), 5)
    assert send_to_kafka(first, settings=isolated).failed == 0
    app.run(isolated, queries=("speed",), available_now=True, log=lambda _: None)

    # The watermark is now 30 - 10 = minute 20. Minute 5 is behind it; minute 29 is not.
    late = clicks("ad-late", base + timedelta(minutes=5), 4)
    on_time = clicks("ad-on-time", base + timedelta(minutes=29), 3)
    assert send_to_kafka(late + on_time, settings=isolated).failed == 0
    app.run(isolated, queries=("speed",), available_now=True, log=lambda _: None)

    got = _speed_minutes(spark, isolated)
    minute = lambda m: (base + timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M")  # noqa: E731
    assert got == {("ad-on-time", minute(30)): 5, ("ad-on-time", minute(29)): 3}
    progress = spark.read.format("delta").load(table("ops.stream_progress").path(isolated))
    assert progress.agg(F.sum("late_rows_dropped")).first()[0] == 4
