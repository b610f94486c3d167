"""Speed layer sink: one micro-batch of events (deduplicated within the watermark) ->
``speed.ad_clicks_minute`` and ``speed.ad_clicks_5min`` (MERGE) and ``speed.top_ads_minute``
(the affected minutes rewritten).

Grain: ``speed.ad_clicks_minute`` has one row per (``window_start`` minute, ``ad_id``,
``campaign_id``, ``country``, ``device_type``) with the counts of :mod:`adclick.aggregates`
and a mergeable HLL sketch of users; ``speed.ad_clicks_5min`` the same over 5-minute windows
sliding by a minute (each event counts in 5 of them); ``speed.top_ads_minute`` one row per
(minute, rank) for the top ``n`` ads by non-fraud clicks. A micro-batch's counts are *added* to
the rows it touches (sketches unioned), so the current minute is visible within a trigger.

Exactly once: each MERGE runs with Delta's idempotent-write settings (``txnAppId`` =
:data:`APP_ID` and the table, ``txnVersion`` = the batch id) on the query's own session, so a micro-batch
replayed after a crash is skipped by Delta instead of being added twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pyspark.sql.functions as F
from pyspark.sql import DataFrame

from adclick.aggregates import (
    COUNTS,
    DIMENSIONS,
    minute_aggregates,
    sliding_aggregates,
    top_ads,
    with_partition_date,
)
from adclick.catalog import table
from adclick.dims import DimsCache
from adclick.enrich import enrich_ads, enrich_users, with_device
from adclick.fraud import with_fraud
from adclick.settings import Settings

APP_ID = "adclick-speed-minute"
APP_ID_TOP = "adclick-speed-top"
KEYS = ("window_start", *DIMENSIONS)
TXN_APP = "spark.databricks.delta.write.txnAppId"
TXN_VERSION = "spark.databricks.delta.write.txnVersion"


def window_dates(minutes: list[str], span_minutes: int = 5) -> list[str]:
    """The ``window_date`` values of the windows that minutes ``minutes`` (``yyyy-MM-dd HH:mm:ss``)
    fall in: a 5-minute sliding window can start up to 4 minutes before its events, so an event
    just after midnight also touches the day before."""
    found: set[str] = set()
    for m in minutes:
        at = datetime.fromisoformat(m)
        found |= {at.date().isoformat(), (at - timedelta(minutes=span_minutes - 1)).date().isoformat()}
    return sorted(found)


def _merge_windows(
    batch: DataFrame, settings: Settings, name: str, aggs: DataFrame, *, batch_id: int, dates: list[str]
) -> None:
    """Add a batch's window aggregates to a speed table: counts summed, sketches unioned.

    ``dates``: every ``window_date`` the batch's rows have. The MERGE names them as a literal
    predicate on the target, so Delta reads (and conflict-checks) only those partitions: an old
    partition expired by the retention run at the same time never fails the stream's commit.
    """
    from delta.tables import DeltaTable

    spark = batch.sparkSession
    t = table(name)
    app_id = f"{APP_ID}:{name}"
    rows = with_partition_date(aggs)
    if not DeltaTable.isDeltaTable(spark, t.path(settings)):
        rows.write.format("delta").partitionBy(*t.partition_by).option("txnAppId", app_id).option(
            "txnVersion", batch_id
        ).save(t.path(settings))
        return
    update = {c: F.col(f"t.{c}") + F.col(f"s.{c}") for c in COUNTS}
    union = F.expr("hll_union(t.users_sketch, s.users_sketch)")
    update["users_sketch"] = union
    update["unique_users"] = F.hll_sketch_estimate(union)
    pruned = "t.window_date IN (" + ", ".join(f"DATE'{d}'" for d in dates) + ")"
    condition = " AND ".join([pruned, *(f"t.{k} = s.{k}" for k in ("window_date", *KEYS))])
    spark.conf.set(TXN_APP, app_id)
    spark.conf.set(TXN_VERSION, str(batch_id))
    try:
        (
            DeltaTable.forPath(spark, t.path(settings))
            .alias("t")
            .merge(rows.alias("s"), condition)
            .whenMatchedUpdate(set=update)
            .whenNotMatchedInsertAll()
            .execute()
        )
    finally:
        spark.conf.unset(TXN_APP)
        spark.conf.unset(TXN_VERSION)


def _rewrite_top(batch: DataFrame, settings: Settings, minutes: list[str], batch_id: int, n: int) -> None:
    """Recompute the top ads of the minutes this batch touched, from the merged minute table.

    ``minutes`` are ``yyyy-MM-dd HH:mm:ss`` texts made by Spark from the batch's own windows (in
    the session's UTC), never user input; Delta's ``replaceWhere`` only takes SQL text.
    """
    spark = batch.sparkSession
    minute_table = spark.read.format("delta").load(table("speed.ad_clicks_minute").path(settings))
    wanted = [F.to_timestamp(F.lit(m)) for m in minutes]
    touched = minute_table.where(F.col("window_start").isin(*wanted))
    top = top_ads(touched, n=n).withColumn("window_date", F.to_date("window_start"))
    t = table("speed.top_ads_minute")
    condition = "window_start IN (" + ", ".join(f"TIMESTAMP '{m}'" for m in minutes) + ")"
    (
        top.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", condition)
        .option("txnAppId", APP_ID_TOP)
        .option("txnVersion", batch_id)
        .partitionBy(*t.partition_by)
        .save(t.path(settings))
    )


def update_batch(
    settings: Settings, batch: DataFrame, batch_id: int, *, top_n: int = 100, dims: DimsCache | None = None
) -> None:
    """foreachBatch body: enrich, score fraud, aggregate per minute, merge, refresh the top ads.

    ``dims`` gives the ads and user-profile dimensions (cached across batches); without it the
    events keep their own ``campaign_id`` and the demographics are ``unknown``.
    """
    enriched = with_device(batch)
    if dims is not None:
        ads, users = dims.get(batch.sparkSession)
        enriched = enrich_users(enrich_ads(enriched, ads), users)
    events = with_fraud(enriched).persist()
    aggs = minute_aggregates(events).persist()
    try:
        stamps = aggs.select(F.date_format("window_start", "yyyy-MM-dd HH:mm:ss").alias("m")).distinct()
        minutes = sorted(r.m for r in stamps.collect())
        if not minutes:
            return
        dates = window_dates(minutes)
        _merge_windows(batch, settings, "speed.ad_clicks_minute", aggs, batch_id=batch_id, dates=dates)
        _merge_windows(
            batch,
            settings,
            "speed.ad_clicks_5min",
            sliding_aggregates(events),
            batch_id=batch_id,
            dates=dates,
        )
        _rewrite_top(batch, settings, minutes, batch_id, top_n)
    finally:
        aggs.unpersist()
        events.unpersist()
