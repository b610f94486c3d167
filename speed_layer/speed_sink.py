"""Speed layer sink: one micro-batch of events (deduplicated within the watermark) ->
``speed.ad_clicks_minute`` (MERGE), the micro-batch's one Delta commit.

Grain: one row per (``window_start`` minute, ``ad_id``, ``campaign_id``, ``country``,
``device_type``) with the counts of :mod:`adclick.aggregates` and a mergeable HLL sketch of users.
A micro-batch's counts are *added* to the rows it touches (sketches unioned), so the current
minute is visible within a trigger. Derived from the minute table, off the micro-batch's path:
``speed.ad_clicks_5min`` (recomputed for the touched minutes, :mod:`speed_layer.window_refresh`)
and the top ads per minute (ranked at read time, ``serving.top_ads_minute``).

Exactly once: the MERGE runs with Delta's idempotent-write settings (``txnAppId`` =
:data:`APP_ID` and the table, ``txnVersion`` = the batch id), so a micro-batch replayed after a
crash is skipped by Delta instead of being added twice.
"""

from __future__ import annotations

from datetime import datetime

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from adclick import table_properties
from adclick.aggregates import (
    COUNTS,
    DIMENSIONS,
    minute_aggregates,
    speed_events,
    with_partition_date,
)
from adclick.catalog import table
from adclick.dims import DimsCache
from adclick.settings import Settings
from adclick.table_properties import TXN_APP, TXN_VERSION
from speed_layer.window_refresh import WindowRefresh, refresh_windows

APP_ID = "adclick-speed-minute"
KEYS = ("window_start", *DIMENSIONS)
TABLES = ("speed.ad_clicks_minute", "speed.ad_clicks_5min")


def ensure_properties(spark: SparkSession, settings: Settings) -> None:
    """Set :data:`adclick.table_properties.SPEED` on the speed tables that exist (a lake of an
    earlier release); new tables get them when they are first written."""
    from delta.tables import DeltaTable

    for name in TABLES:
        location = table(name).path(settings)
        if DeltaTable.isDeltaTable(spark, location):
            table_properties.ensure(spark, location, table_properties.SPEED)


def _create(rows: DataFrame, settings: Settings, name: str, app_id: str, batch_id: int) -> None:
    writer = rows.write.format("delta").partitionBy(*table(name).partition_by)
    for key, value in table_properties.SPEED.items():
        writer = writer.option(key, value)
    writer.option("txnAppId", app_id).option("txnVersion", batch_id).save(table(name).path(settings))


def _merge_windows(
    spark: SparkSession,
    settings: Settings,
    name: str,
    aggs: DataFrame,
    *,
    batch_id: int,
    dates: list[str],
    starts: tuple[str, str],
) -> None:
    """Add a batch's window aggregates to a speed table: counts summed, sketches unioned.

    ``dates``: every ``window_date`` the batch's rows have; ``starts``: their first and last
    ``window_start`` (``yyyy-MM-dd HH:mm:ss``). The MERGE names both as literal predicates on the
    target, so Delta reads (and conflict-checks) only those partitions and, within them, only
    the files whose ``window_start`` range overlaps the batch's: an old partition expired by the
    retention run at the same time never fails the stream's commit.
    """
    from delta.tables import DeltaTable

    t = table(name)
    app_id = f"{APP_ID}:{name}"
    rows = with_partition_date(aggs)
    if not DeltaTable.isDeltaTable(spark, t.path(settings)):
        _create(rows, settings, name, app_id, batch_id)
        return
    update = {c: F.col(f"t.{c}") + F.col(f"s.{c}") for c in COUNTS}
    union = F.expr("hll_union(t.users_sketch, s.users_sketch)")
    update["users_sketch"] = union
    update["unique_users"] = F.hll_sketch_estimate(union)
    pruned = [
        "t.window_date IN (" + ", ".join(f"DATE'{d}'" for d in dates) + ")",
        f"t.window_start >= TIMESTAMP'{starts[0]}'",
        f"t.window_start <= TIMESTAMP'{starts[1]}'",
    ]
    condition = " AND ".join([*pruned, *(f"t.{k} = s.{k}" for k in ("window_date", *KEYS))])
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


def update_batch(
    settings: Settings,
    batch: DataFrame,
    batch_id: int,
    *,
    dims: DimsCache | None = None,
    windows: WindowRefresh | None = None,
) -> None:
    """foreachBatch body: enrich, judge the per-event fraud rules, aggregate per minute, merge the
    minutes; then the 5-minute windows of the minutes touched are due for a refresh.

    ``dims`` gives the ads dimension (cached across batches); without it the events keep their
    own ``campaign_id``. The events are aggregated once, into the (cached, small) minute rows.
    ``windows`` refreshes the 5-minute windows off this thread (:mod:`speed_layer.window_refresh`);
    without it they are refreshed here, after the MERGE.
    """
    spark = batch.sparkSession
    ads = dims.get(spark)[0] if dims is not None else None
    aggs = minute_aggregates(speed_events(batch, ads)).persist()
    try:
        stamps = aggs.select(F.date_format("window_start", "yyyy-MM-dd HH:mm:ss").alias("m")).distinct()
        minutes = sorted(r.m for r in stamps.collect())
        if not minutes:
            return
        _merge_windows(
            spark,
            settings,
            "speed.ad_clicks_minute",
            aggs,
            batch_id=batch_id,
            dates=sorted({m[:10] for m in minutes}),
            starts=(minutes[0], minutes[-1]),
        )
    finally:
        aggs.unpersist()
    first, last = datetime.fromisoformat(minutes[0]), datetime.fromisoformat(minutes[-1])
    if windows is None:
        refresh_windows(spark, settings, first, last)
    else:
        windows.touched(first, last)
        windows.after_batch(spark)
