"""Windowed ad-click aggregates (pure transforms) of the speed tables, shared by both lambda paths.

Reads deduplicated, enriched, fraud-scored events: ``event_id``, ``event_type``, ``event_time``,
``ad_id``, ``campaign_id``, ``country``, ``device_type``, ``user_key``, ``cost_micros``,
``revenue_micros``, ``is_fraud`` (from :func:`adclick.enrich.with_device`, :func:`adclick.enrich.enrich_ads`
and :func:`adclick.fraud.with_fraud`). Writes nothing; the outputs are:

* :func:`minute_aggregates`: one row per (``window_start`` of the 1-minute tumbling window,
  ``ad_id``, ``campaign_id``, ``country``, ``device_type``);
* :func:`sliding_aggregates` / :func:`sliding_from_minutes`: one row per (5-minute window sliding
  by 1 minute: ``window_start``, ``window_end``, the same four dimensions), so each event counts
  in 5 windows; derived from the minute rows;
* :func:`speed_events`: the speed layer's enrichment and per-event fraud rules;
* :func:`merge_sketches`: rows rolled up to coarser keys (minutes -> hour -> day) by summing counts
  and unioning the HLL sketches, without re-reading events;
* :func:`recomputed_day`: a whole day of the two speed tables from events, in one pass (the
  erasure rewrites a speed day from bronze with it).

Measures (:data:`MEASURES`): ``impressions``, ``clicks`` (distinct non-fraud click event_ids),
``fraud_clicks`` (distinct fraud click event_ids; so ``clicks + fraud_clicks`` = distinct click
event_ids, whatever the rules), ``conversions``, ``cost_micros`` (sum of the event's cost over
non-fraud clicks), ``revenue_micros`` (sum over conversions), ``users_sketch`` (binary HLL sketch of
``user_key`` over all events of the group) and ``unique_users`` (its estimate, exact for small sets).
Null dimension values become ``unknown`` so that MERGE keys are never null; an event without an
``event_time`` has no window and is left out (bronze never has one).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame

from adclick.enrich import enrich_ads, with_device
from adclick.fraud import PER_EVENT_REASONS, with_fraud
from adclick.measures import COUNTS, DIMENSIONS, count_measures, dimension_columns

MEASURES = (*COUNTS, "users_sketch", "unique_users")


def _measures() -> list[Column]:
    return [*count_measures(), F.hll_sketch_agg(F.col("user_key")).alias("users_sketch")]


def _aggregate(events: DataFrame, window: Column, with_end: bool) -> DataFrame:
    grouped = (
        events.where(F.col("event_time").isNotNull())
        .groupBy(window.alias("window"), *dimension_columns())
        .agg(*_measures())
    )
    bounds = [F.col("window.start").alias("window_start")]
    if with_end:
        bounds.append(F.col("window.end").alias("window_end"))
    return grouped.select(
        *bounds,
        *DIMENSIONS,
        *COUNTS,
        "users_sketch",
        F.hll_sketch_estimate("users_sketch").alias("unique_users"),
    )


def minute_aggregates(events: DataFrame) -> DataFrame:
    """One row per (1-minute tumbling ``window_start``, ad_id, campaign_id, country, device_type).

    Columns: ``window_start`` (timestamp, epoch-aligned minute), the four dimensions, then
    :data:`MEASURES`.
    """
    return _aggregate(events, F.window("event_time", "1 minute"), with_end=False)


def sliding_aggregates(events: DataFrame, size_minutes: int = 5) -> DataFrame:
    """One row per (window of ``size_minutes`` sliding by 1 minute, ad_id, campaign_id, country,
    device_type).

    Columns: ``window_start``, ``window_end``, the four dimensions, then :data:`MEASURES`. An event
    belongs to ``size_minutes`` windows (5 by default). Computed from the minute rows
    (:func:`sliding_from_minutes`), not by copying every event into each of its windows.
    """
    return sliding_from_minutes(minute_aggregates(events), size_minutes)


def sliding_from_minutes(minute_aggs: DataFrame, size_minutes: int = 5) -> DataFrame:
    """The sliding windows of :func:`sliding_aggregates` from minute rows (:func:`minute_aggregates`,
    or a table of them): each minute row is counted in the ``size_minutes`` windows that hold it
    (starting at its minute and each of the ``size_minutes - 1`` before), counts summed and
    sketches unioned. The same rows as aggregating the events over ``F.window(event_time,
    size, "1 minute")``, at the cost of the (few) minute rows rather than the events.
    """
    if size_minutes < 1:
        raise ValueError(f"size_minutes must be >= 1, got {size_minutes}")
    back = F.explode(F.sequence(F.lit(0), F.lit(size_minutes - 1)))
    spread = minute_aggs.select("*", back.alias("_back")).withColumn(
        "_start", F.col("window_start") - F.make_dt_interval(mins=F.col("_back"))
    )
    merged = merge_sketches(spread, [F.col("_start").alias("window_start"), *DIMENSIONS])
    end = F.col("window_start") + F.make_dt_interval(mins=F.lit(size_minutes))
    return merged.select("window_start", end.alias("window_end"), *DIMENSIONS, *MEASURES)


def speed_events(events: DataFrame, ads: DataFrame | None) -> DataFrame:
    """Events as the speed layer counts them: device from the user agent, campaign from the ads
    dimension when given, and the per-event fraud rules only (:data:`adclick.fraud.PER_EVENT_REASONS`):
    the windowed rules need the whole day the batch layer sees. No user-profile join: no speed
    measure uses the demographics. The user agents are parsed on every row: parsing the distinct
    agents and joining them back would read ``events`` twice, and a micro-batch's rows come out
    of the dedup state (run twice, its metrics counted twice)."""
    enriched = with_device(events)
    if ads is not None:
        enriched = enrich_ads(enriched, ads)
    return with_fraud(enriched, reasons=PER_EVENT_REASONS)


def merge_sketches(df: DataFrame, keys: Sequence[str | Column]) -> DataFrame:
    """Rolls aggregate rows up to ``keys``: counts summed, ``users_sketch`` merged, uniques re-estimated.

    ``keys`` are column names or expressions, e.g. minutes to hours::

        merge_sketches(minutes, [F.date_trunc("hour", "window_start").alias("window_start"), *DIMENSIONS])

    The counts of :data:`COUNTS` present in ``df`` are summed (distinct event counts add up because
    an event lies in exactly one input row when the input windows do not overlap); the sketches are
    unioned with ``hll_union_agg``, which gives the same sketch as aggregating the raw events of the
    coarser group. Columns: the keys, the summed counts, ``users_sketch``, ``unique_users``.
    """
    if "users_sketch" not in df.columns:
        raise ValueError("merge_sketches needs a users_sketch column")
    sums = [F.sum(c).cast("long").alias(c) for c in COUNTS if c in df.columns]
    return (
        df.groupBy(*keys)
        .agg(*sums, F.hll_union_agg("users_sketch").alias("users_sketch"))
        .withColumn("unique_users", F.hll_sketch_estimate("users_sketch"))
    )


def with_partition_date(aggs: DataFrame) -> DataFrame:
    """Adds the speed tables' partition column, ``window_date`` (the window start's UTC date)."""
    return aggs.withColumn("window_date", F.to_date("window_start"))


def recomputed_day(events: DataFrame, ads: DataFrame, day: date) -> dict[str, DataFrame]:
    """The rows of partition ``day`` of the two speed tables, recomputed from events in one pass
    (pure; the erasure rewrites a speed day from bronze with it).

    ``events``: the distinct events (one row per ``event_id``) from ``day`` 00:00 to 00:04 of the
    next day (a 5-minute window starting at 23:59 holds events of the next day). Same transforms
    as :func:`speed_layer.speed_sink.update_batch`; no event is dropped as late, as the stream may have.
    """
    minutes = minute_aggregates(speed_events(events, ads))
    on_day = F.col("window_date") == F.lit(day)
    return {
        "speed.ad_clicks_minute": with_partition_date(minutes).where(on_day),
        "speed.ad_clicks_5min": with_partition_date(sliding_from_minutes(minutes)).where(on_day),
    }
