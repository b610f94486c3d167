"""Speed vs gold reconciliation: per (day, ad) click counts of the two layers, and why they differ.

Reads ``speed.ad_clicks_minute`` rows (approximate, stream) and ``silver.events`` rows (exact,
batch) of one day. :func:`reconcile` (pure) gives one row per (``day``, ``ad_id``) with a
``reason``; :func:`summarise` reduces them to one verdict. :func:`run_reconcile` (I/O) writes
``ops.reconciliation`` (the day's partition replaced) and appends ``ops.reconciliation_summary``.

Expected differences: the speed layer drops events that arrive behind its watermark (``late``),
judges fraud per micro-batch instead of per day (``fraud_reclassified``), and cannot remove a
duplicate whose copies arrived further apart than its watermark (``duplicate``).

An event reaching Kafka more than the speed watermark after its event time *may* be dropped: the
speed layer drops it only when the stream has already seen events that much newer (a day replayed
in a minute is all "late" by that measure and all counted). So late clicks are split per
event-time minute, the speed layer's own grain: up to the minute's shortfall (gold - speed) they
are ``late_dropped``, the rest ``late_counted``. A shortfall in a minute without late clicks is a
loss no known cause explains.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pyspark.sql.functions as F
import pyspark.sql.types as T
from pyspark.sql import Column, DataFrame, SparkSession

from adclick.measures import UNKNOWN
from adclick.settings import Settings
from batch_layer.jobs import Clock, Lineage, read_table, track_run, write_partition
from batch_layer.lake import append_rows
from batch_layer.ops import utc_now
from batch_layer.silver import filter_event_day

REASONS = ("match", "late", "fraud_reclassified", "duplicate", "unknown")
SPEED_MINUTES = "window_start timestamp, ad_id string, clicks long, fraud_clicks long, window_date date"
COUNTS = (
    "speed_clicks",
    "speed_fraud_clicks",
    "gold_clicks",
    "gold_fraud_clicks",
    "late_dropped_clicks",
    "late_counted_clicks",
    "duplicated_clicks",
)
SUMS = COUNTS[:4]
SUMMARY = T.StructType(
    [
        T.StructField("day", T.DateType()),
        *[T.StructField(name, T.LongType()) for name in SUMS],
        T.StructField("speed_total", T.LongType()),
        T.StructField("gold_total", T.LongType()),
        T.StructField("diff", T.LongType()),
        T.StructField("missed", T.LongType()),
        T.StructField("over_counted", T.LongType()),
        T.StructField("late_dropped", T.LongType()),
        T.StructField("late_counted", T.LongType()),
        T.StructField("duplicates", T.LongType()),
        T.StructField("fraud_reclassified", T.LongType()),
        T.StructField("unexplained", T.LongType()),
        T.StructField("total_drift", T.DoubleType()),
        T.StructField("drift", T.DoubleType()),
        T.StructField("passed", T.BooleanType()),
        T.StructField("checked_at", T.TimestampType()),
    ]
)
_UNITS = {"second": 1, "minute": 60, "hour": 3600}
_DURATION = re.compile(r"^\s*(\d+)\s*(second|minute|hour)s?\s*$", re.IGNORECASE)


def watermark_seconds(text: str) -> int:
    """``"10 minutes"`` -> 600; seconds, minutes and hours (singular or plural)."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(
            f"not a watermark duration: {text!r} (use e.g. '30 seconds', '10 minutes', '1 hour')"
        )
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def _ad() -> Column:
    return F.coalesce(F.col("ad_id").cast("string"), F.lit(UNKNOWN)).alias("ad_id")


def _minute(ts: str) -> Column:
    """The epoch minute of ``ts``: the speed layer's 1-minute event-time windows, time-zone free."""
    return F.floor(F.unix_micros(F.col(ts)) / 60_000_000).alias("minute")


def _speed_minutes(speed_minutes: DataFrame) -> DataFrame:
    return speed_minutes.groupBy(F.to_date("window_start").alias("day"), _minute("window_start"), _ad()).agg(
        F.sum("clicks").cast("long").alias("speed_clicks"),
        F.sum("fraud_clicks").cast("long").alias("speed_fraud_clicks"),
    )


def _delay_into_kafka(silver_day: DataFrame) -> Column:
    """Seconds from the event time to the event reaching Kafka, where the speed layer first sees
    it: the later of ``arrival_delay_s`` (the API's receipt) and the Kafka record's time (an event
    spooled during an outage, or replayed from an archive, reaches Kafka later than the API took
    it)."""
    delay = F.col("arrival_delay_s")
    if "kafka_timestamp" in silver_day.columns:
        kafka = (F.unix_micros(F.col("kafka_timestamp")) - F.unix_micros(F.col("event_time"))) / 1e6
        delay = F.greatest(delay, kafka)
    return delay


def _gold_minutes(silver_day: DataFrame, watermark: int) -> DataFrame:
    click = F.col("event_type") == "click"
    fraud = F.coalesce(F.col("is_fraud"), F.lit(False))
    event_id = F.col("event_id")
    late = _delay_into_kafka(silver_day) > watermark
    return silver_day.groupBy(F.col("event_date").alias("day"), _minute("event_time"), _ad()).agg(
        F.count_distinct(F.when(click & ~fraud, event_id)).alias("gold_clicks"),
        F.count_distinct(F.when(click & fraud, event_id)).alias("gold_fraud_clicks"),
        F.count_distinct(F.when(click & late, event_id)).alias("late_clicks"),
        F.count_distinct(F.when(click & (F.col("copies") > 1), event_id)).alias("duplicated_clicks"),
    )


def _total(layer: str) -> Column:
    return F.col(f"{layer}_clicks") + F.col(f"{layer}_fraud_clicks")


def _split_late(minutes: DataFrame) -> DataFrame:
    """Per (minute, ad): the late clicks the speed layer lacks (up to its shortfall) were dropped,
    the others it counted. Which late event of the minute was dropped is unknown, how many is not."""
    shortfall = F.greatest(_total("gold") - _total("speed"), F.lit(0))
    dropped = F.least(F.col("late_clicks"), shortfall)
    return minutes.withColumn("late_dropped_clicks", dropped).withColumn(
        "late_counted_clicks", F.col("late_clicks") - dropped
    )


def _reason(diff: Column) -> Column:
    same_split = F.col("speed_fraud_clicks") == F.col("gold_fraud_clicks")
    return (
        F.when((diff == 0) & same_split, F.lit("match"))
        .when(diff == 0, F.lit("fraud_reclassified"))
        .when((diff < 0) & (-diff <= F.col("late_dropped_clicks")), F.lit("late"))
        .when((diff > 0) & (diff <= F.col("duplicated_clicks")), F.lit("duplicate"))
        .otherwise(F.lit("unknown"))
    )


def reconcile(speed_minutes: DataFrame, silver_day: DataFrame, *, watermark_seconds: int) -> DataFrame:
    """One row per (``day``, ``ad_id``) with a click in either layer.

    Columns: ``speed_clicks``, ``speed_fraud_clicks`` (summed over the day's minutes),
    ``gold_clicks``, ``gold_fraud_clicks`` (from silver); of the silver clicks that reached Kafka
    more than ``watermark_seconds`` after their event time, ``late_dropped_clicks`` (those the speed
    layer lacks: per event-time minute, up to the minute's shortfall) and ``late_counted_clicks``
    (the rest: late, counted all the same); ``duplicated_clicks`` (silver clicks with more than one
    bronze copy), ``diff`` (speed total - gold total) and ``reason``: ``match``;
    ``fraud_reclassified`` (same total, other fraud split); ``late`` (speed short by at most the
    late clicks it dropped); ``duplicate`` (speed over by at most the duplicated clicks); else
    ``unknown`` (a difference no known cause explains).
    """
    cells = ["day", "minute", "ad_id"]
    minute_counts = (*COUNTS[:4], "late_clicks", "duplicated_clicks")
    minutes = _speed_minutes(speed_minutes).join(_gold_minutes(silver_day, watermark_seconds), cells, "full")
    minutes = _split_late(
        minutes.select(*cells, *[F.coalesce(F.col(c), F.lit(0)).cast("long").alias(c) for c in minute_counts])
    )
    counts = minutes.groupBy("day", "ad_id").agg(*[F.sum(c).cast("long").alias(c) for c in COUNTS])
    return (
        counts.where(_total("speed") + _total("gold") > 0)
        .withColumn("diff", _total("speed") - _total("gold"))
        .withColumn("reason", _reason(F.col("diff")))
    )


def summarise(rows: DataFrame, *, max_drift: float) -> dict[str, Any]:
    """One verdict from :func:`reconcile` rows; every count is in clicks.

    ``missed`` = clicks speed lacks (sum of -diff where diff < 0), ``over_counted`` = clicks speed has
    too many (diff > 0), ``late_dropped`` = late clicks the speed layer dropped (within ``missed``,
    unless an ad's over-counting in other minutes of the day offsets them), ``late_counted`` = late
    clicks it counted all the same, ``duplicates`` = duplicated silver clicks,
    ``fraud_reclassified`` = |speed - gold fraud clicks| of the ads so reasoned; ``unexplained`` =
    sum of |diff| over the ``unknown`` rows; ``drift`` = unexplained / max(gold total, 1) and
    ``total_drift`` = |sum of diff| / max(gold total, 1); ``passed`` = drift <= ``max_drift``.
    Differences with a known cause (late arrivals the speed layer drops by design, fraud judged per
    micro-batch) are reported, not failed on: a day whose events all arrived late and were dropped
    has a total drift of 100 % and passes; a speed layer that loses on-time clicks fails.
    """
    diff = F.col("diff")
    reclassified = F.when(
        F.col("reason") == "fraud_reclassified",
        F.abs(F.col("speed_fraud_clicks") - F.col("gold_fraud_clicks")),
    )
    sums = {
        **{name: F.sum(name) for name in SUMS},
        "diff": F.sum(diff),
        "missed": F.sum(F.when(diff < 0, -diff)),
        "over_counted": F.sum(F.when(diff > 0, diff)),
        "late_dropped": F.sum("late_dropped_clicks"),
        "late_counted": F.sum("late_counted_clicks"),
        "duplicates": F.sum("duplicated_clicks"),
        "fraud_reclassified": F.sum(reclassified),
        "unexplained": F.sum(F.when(F.col("reason") == "unknown", F.abs(diff))),
    }
    got = rows.agg(
        *[F.coalesce(expr, F.lit(0)).cast("long").alias(name) for name, expr in sums.items()]
    ).first()
    out: dict[str, Any] = got.asDict()
    out["speed_total"] = out["speed_clicks"] + out["speed_fraud_clicks"]
    out["gold_total"] = out["gold_clicks"] + out["gold_fraud_clicks"]
    out["total_drift"] = abs(out["diff"]) / max(out["gold_total"], 1)
    out["drift"] = out["unexplained"] / max(out["gold_total"], 1)
    out["passed"] = out["drift"] <= max_drift
    return out


def run_reconcile(
    spark: SparkSession,
    settings: Settings,
    day: date,
    *,
    clock: Clock = utc_now,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Reconcile ``day``: write its ``ops.reconciliation`` rows, append and return its summary.

    The speed layer's watermark (``settings.speed_watermark``) decides which clicks count as late.
    A missing speed table reads as empty (every gold click then shows as missed).
    """
    summary: dict[str, Any] = {}

    def body(lineage: Lineage) -> None:
        speed = read_table(spark, settings, "speed.ad_clicks_minute", lineage, empty_schema=SPEED_MINUTES)
        silver = read_table(spark, settings, "silver.events", lineage)
        silver_day = filter_event_day(silver, day)
        lineage.rows_in = silver_day.count()
        rows = reconcile(
            speed.where(F.col("window_date") == F.lit(day)),
            silver_day,
            watermark_seconds=watermark_seconds(settings.speed_watermark),
        )
        written = write_partition(rows, settings, "ops.reconciliation", day, lineage)
        summary.update(
            day=day, **summarise(written, max_drift=settings.reconcile_max_drift), checked_at=clock()
        )
        append_rows(spark, settings, "ops.reconciliation_summary", [summary], SUMMARY)

    track_run(spark, settings, "reconcile", day, body, clock=clock, run_id=run_id)
    return summary
