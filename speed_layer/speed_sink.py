"""Speed layer sink: one micro-batch of events (deduplicated within the watermark) ->
``speed.ad_clicks_minute`` and ``speed.ad_clicks_5min`` (MERGE, the two at the same time).

Grain: ``speed.ad_clicks_minute`` has one row per (``window_start`` minute, ``ad_id``,
``campaign_id``, ``country``, ``device_type``) with the counts of :mod:`adclick.aggregates`
and a mergeable HLL sketch of users; ``speed.ad_clicks_5min`` the same over 5-minute windows
sliding by a minute (each event counts in 5 of them), derived from the batch's minute rows. A
micro-batch's counts are *added* to the rows it touches (sketches unioned), so the current minute
is visible within a trigger. The top ads per minute are ranked at read time from the minute table
(``serving.top_ads_minute``), so they cost the stream no commit.

Exactly once: each MERGE runs with Delta's idempotent-write settings (``txnAppId`` =
:data:`APP_ID` and the table, ``txnVersion`` = the batch id) on a clone of the query's session of
its own (the two MERGEs run in two threads, and those settings are session-wide), so a micro-batch
replayed after a crash is skipped by Delta instead of being added twice.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession
from pyspark.util import inheritable_thread_target

from adclick.aggregates import (
    COUNTS,
    DIMENSIONS,
    minute_aggregates,
    sliding_from_minutes,
    speed_events,
    with_partition_date,
)
from adclick.catalog import table
from adclick.dims import DimsCache
from adclick.settings import Settings
from speed_layer import table_properties

APP_ID = "adclick-speed-minute"
KEYS = ("window_start", *DIMENSIONS)
TABLES = ("speed.ad_clicks_minute", "speed.ad_clicks_5min")
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


# Deletion vectors: a MERGE marks the updated rows of a file instead of rewriting the whole file
# (a minute's rows are updated every micro-batch). Auto compaction folds the small files each
# MERGE adds into larger ones as they accumulate, so the current day's partition stays a few files.
TABLE_PROPERTIES = {
    "delta.enableDeletionVectors": "true",
    "delta.autoOptimize.autoCompact": "true",
}


def ensure_properties(spark: SparkSession, settings: Settings) -> None:
    """Set :data:`TABLE_PROPERTIES` on the speed tables that exist (a lake of an earlier release);
    new tables get them when the first micro-batch creates them."""
    from delta.tables import DeltaTable

    for name in TABLES:
        location = table(name).path(settings)
        if DeltaTable.isDeltaTable(spark, location):
            table_properties.ensure(spark, location, TABLE_PROPERTIES)


def _create(rows: DataFrame, settings: Settings, name: str, app_id: str, batch_id: int) -> None:
    writer = rows.write.format("delta").partitionBy(*table(name).partition_by)
    for key, value in TABLE_PROPERTIES.items():
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
    (
        DeltaTable.forPath(spark, t.path(settings))
        .alias("t")
        .merge(rows.alias("s"), condition)
        .whenMatchedUpdate(set=update)
        .whenNotMatchedInsertAll()
        .execute()
    )


def _session_of_its_own(spark: SparkSession) -> SparkSession:
    """A clone of ``spark`` (same context, cache and settings; its own SQL conf), for one MERGE's
    session-wide ``txnAppId``/``txnVersion`` while another MERGE runs beside it."""
    return SparkSession(spark.sparkContext, spark._jsparkSession.cloneSession())


def update_batch(
    settings: Settings, batch: DataFrame, batch_id: int, *, dims: DimsCache | None = None
) -> None:
    """foreachBatch body: enrich, judge the per-event fraud rules, aggregate per minute, merge the
    minutes and the 5-minute windows derived from them.

    ``dims`` gives the ads dimension (cached across batches); without it the events keep their
    own ``campaign_id``. The events are aggregated once, into the (cached, small) minute rows;
    the two MERGEs read those rows, each in a thread of its own (each MERGE's fixed cost is
    mostly waiting on its own small jobs and commit, so on a few cores they overlap well); the
    batch fails if either fails, and a replay is skipped by whichever table already has it.
    """
    spark = batch.sparkSession
    ads = dims.get(spark)[0] if dims is not None else None
    aggs = minute_aggregates(speed_events(batch, ads)).persist()
    try:
        stamps = aggs.select(F.date_format("window_start", "yyyy-MM-dd HH:mm:ss").alias("m")).distinct()
        minutes = sorted(r.m for r in stamps.collect())
        if not minutes:
            return
        dates = window_dates(minutes)
        first = (datetime.fromisoformat(minutes[0]) - timedelta(minutes=4)).isoformat(sep=" ")
        merges = [
            ("speed.ad_clicks_minute", aggs, (minutes[0], minutes[-1])),
            ("speed.ad_clicks_5min", sliding_from_minutes(aggs), (first, minutes[-1])),
        ]

        def merge(name: str, rows: DataFrame, starts: tuple[str, str]) -> None:
            own = _session_of_its_own(spark)
            _merge_windows(own, settings, name, rows, batch_id=batch_id, dates=dates, starts=starts)

        with ThreadPoolExecutor(max_workers=len(merges), thread_name_prefix="speed-merge") as pool:
            running = [pool.submit(inheritable_thread_target(spark)(merge), *m) for m in merges]
            for done in running:
                done.result()
    finally:
        aggs.unpersist()
