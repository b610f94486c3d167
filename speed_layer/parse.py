"""Kafka records -> contract events (pure DataFrame transforms, no I/O).

Input: the Kafka source's columns (``key``, ``value``, ``topic``, ``partition``, ``offset``,
``timestamp``). Output of :func:`with_parsed_event`: the same rows with an ``event`` struct parsed
with the contract's Spark schema and a ``reject_reason`` (null when the record is a valid event).
:func:`narrow` keeps only what the two outputs need (the raw bytes only for rejects), so a
micro-batch can be parsed once and cached small; :func:`to_bronze_rows` and
:func:`to_reject_rows` shape the two outputs from either frame. Every input row lands in exactly
one of them.
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame

from adclick.contract import EVENT_TYPES, spark_schema

UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
REQUIRED = ("event_id", "ad_id", "ts", "region", "received_at")


def _first(checks: list[tuple[Column, str]], otherwise: Column) -> Column:
    expr = otherwise
    for condition, reason in reversed(checks):
        expr = F.when(condition, F.lit(reason)).otherwise(expr)
    return expr


def _reason() -> Column:
    """The first problem of a record, or null for a valid one.

    A valid record costs one JSON parse (``from_json``) and a few null checks; the dearer
    diagnosis (UTF-8, JSON syntax, object or not) only runs on records that already failed.
    """
    e = F.col("event")
    field_checks = [(e[field].isNull(), f"{field}: is required or has the wrong type") for field in REQUIRED]
    incomplete = F.lit(False)
    for condition, _ in field_checks:
        incomplete = incomplete | condition
    diagnosis = _first(
        [
            (~F.is_valid_utf8(F.col("value")), "value is not valid UTF-8"),
            (F.try_parse_json(F.col("value_text")).isNull(), "value is not valid JSON"),
            (F.substring(F.ltrim(F.col("value_text")), 1, 1) != "{", "value is not a JSON object"),
        ],
        otherwise=_first(field_checks, otherwise=F.lit(None).cast("string")),
    )
    return _first(
        [
            (F.col("value").isNull(), "empty record"),
            (~F.lower(e["event_id"]).rlike(UUID_RE) & ~incomplete, "event_id: must be a UUID"),
            (
                ~F.coalesce(e["event_type"], F.lit("click")).isin(*EVENT_TYPES) & ~incomplete,
                "event_type: unknown type",
            ),
        ],
        otherwise=F.when(incomplete, diagnosis),
    )


def with_parsed_event(kafka_df: DataFrame) -> DataFrame:
    """Adds ``value_text``, ``event`` (contract struct) and ``reject_reason``."""
    return (
        kafka_df.withColumn("value_text", F.col("value").cast("string"))
        .withColumn("event", F.from_json(F.col("value_text"), spark_schema(), {"mode": "PERMISSIVE"}))
        .withColumn("reject_reason", _reason())
    )


def narrow(parsed: DataFrame) -> DataFrame:
    """The parsed frame without the JSON text, and with the raw value kept only for rejects."""
    return parsed.select(
        "event",
        "reject_reason",
        F.when(F.col("reject_reason").isNotNull(), F.col("value")).alias("value"),
        "key",
        "topic",
        "partition",
        "offset",
        "timestamp",
    )


def to_bronze_rows(parsed: DataFrame) -> DataFrame:
    """Valid events, one row per Kafka record, with lineage and the partition columns.

    Grain: one row per (topic, partition, offset). Duplicated event_ids stay (dedup is downstream).
    """
    e = F.col("event")
    event_time = F.timestamp_millis(e["ts"])
    return parsed.where(F.col("reject_reason").isNull()).select(
        F.lower(e["event_id"]).alias("event_id"),
        F.coalesce(e["event_type"], F.lit("click")).alias("event_type"),
        e["ad_id"].alias("ad_id"),
        e["campaign_id"].alias("campaign_id"),
        event_time.alias("event_time"),
        e["user_key"].alias("user_key"),
        e["ip_key"].alias("ip_key"),
        e["country"].alias("country"),
        e["user_agent"].alias("user_agent"),
        e["referrer"].alias("referrer"),
        e["page_url"].alias("page_url"),
        e["placement_id"].alias("placement_id"),
        e["x"].alias("x"),
        e["y"].alias("y"),
        e["experiment_id"].alias("experiment_id"),
        e["variant"].alias("variant"),
        e["click_id"].alias("click_id"),
        e["cost_micros"].alias("cost_micros"),
        e["revenue_micros"].alias("revenue_micros"),
        F.coalesce(e["attributes"], F.create_map().cast("map<string,string>")).alias("attributes"),
        e["v"].cast("int").alias("schema_version"),
        F.timestamp_millis(e["received_at"]).alias("received_at"),
        F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.to_date(event_time).alias("event_date"),
        e["region"].alias("region"),
    )


def to_reject_rows(parsed: DataFrame) -> DataFrame:
    """Records that failed parsing or validation, with the raw payload and the reason."""
    return parsed.where(F.col("reject_reason").isNotNull()).select(
        F.col("value").alias("raw_value"),
        F.col("key").cast("string").alias("kafka_key"),
        F.col("reject_reason").alias("reason"),
        F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.to_date(F.col("timestamp")).alias("reject_date"),
    )
