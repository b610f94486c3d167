"""Bronze -> silver (pure transforms): one row per distinct ``event_id`` of a day.

Reads ``bronze.events`` rows of one event day (``speed_layer.parse.to_bronze_rows`` columns) and
the ``dims.ads`` / ``dims.users`` frames. Writes nothing; :func:`to_silver` returns the
``silver.events`` rows of docs/lake.md: the bronze columns and lineage of the earliest received
copy, plus device, dimension, fraud (rules, optional model), ``arrival_delay_s`` and ``copies``.

A row belongs to a day by its event time (``event_date``), never by when it arrived, so an event
received hours late is in its own day's silver once that day is recomputed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, Window

from adclick.enrich import enrich_ads, enrich_users, with_device_by_agent
from adclick.fraud import DEFAULT_RULES, FraudRules, fraud_verdicts, with_fraud_verdicts

MODEL_REASON = "model"
# The columns silver adds after the bronze ones, in table order.
ADDED_COLUMNS = (
    "device_type",
    "os",
    "browser",
    "advertiser_id",
    "cpc_micros",
    "age_group",
    "segment",
    "fraud_reasons",
    "rule_score",
    "model_score",
    "model_version",
    "fraud_score",
    "is_fraud",
    "arrival_delay_s",
    "copies",
)
ModelScores = Callable[[DataFrame], DataFrame]


def filter_event_day(bronze: DataFrame, day: date) -> DataFrame:
    """The bronze rows whose event time falls on ``day`` (whenever they were received)."""
    return bronze.where(F.col("event_date") == F.lit(day))


def dedup_earliest(bronze_day: DataFrame) -> DataFrame:
    """One row per ``event_id``: the earliest received copy, plus ``copies`` (bronze rows of that id).

    Earliest is by ``received_at``, then ``kafka_partition``, ``kafka_offset`` (``kafka_topic`` last,
    so that no two rows ever tie and a rerun keeps the same copy).
    """
    by_id = Window.partitionBy("event_id")
    earliest = by_id.orderBy(
        F.col("received_at").asc_nulls_last(),
        F.col("kafka_partition").asc_nulls_last(),
        F.col("kafka_offset").asc_nulls_last(),
        F.col("kafka_topic").asc_nulls_last(),
    )
    return (
        bronze_day.withColumn("_position", F.row_number().over(earliest))
        .withColumn("copies", F.count(F.lit(1)).over(by_id))
        .where(F.col("_position") == 1)
        .drop("_position")
    )


def with_arrival_delay(df: DataFrame) -> DataFrame:
    """Adds ``arrival_delay_s`` (double): ``received_at - event_time`` in seconds (negative if early)."""
    micros = F.unix_micros(F.col("received_at")) - F.unix_micros(F.col("event_time"))
    return df.withColumn("arrival_delay_s", micros.cast("double") / F.lit(1_000_000.0))


def _without_model(df: DataFrame) -> DataFrame:
    return df.withColumns(
        {"model_score": F.lit(None).cast("double"), "model_version": F.lit(None).cast("string")}
    )


def with_combined_fraud(df: DataFrame, model_threshold: float) -> DataFrame:
    """Combines the rules' verdict (``rule_score``, ``is_fraud``, ``fraud_reasons``) with the model's.

    ``fraud_score`` = greatest(rule_score, model_score or 0); a click is fraud when the rules say so
    or its ``model_score`` reaches ``model_threshold``, and then ``model`` joins its reasons.
    """
    fired = F.coalesce(
        (F.col("event_type") == "click") & (F.col("model_score") >= F.lit(model_threshold)), F.lit(False)
    )
    reasons = F.when(fired, F.array_append(F.col("fraud_reasons"), F.lit(MODEL_REASON))).otherwise(
        F.col("fraud_reasons")
    )
    return df.withColumns(
        {
            "fraud_reasons": reasons,
            "fraud_score": F.greatest(F.col("rule_score"), F.coalesce(F.col("model_score"), F.lit(0.0))),
            "is_fraud": F.col("is_fraud") | fired,
        }
    )


def to_silver(
    bronze_day: DataFrame,
    ads: DataFrame,
    users: DataFrame,
    *,
    rules: FraudRules = DEFAULT_RULES,
    model_scores: ModelScores | None = None,
    model_threshold: float = 0.5,
) -> DataFrame:
    """``silver.events`` rows from one day of bronze: dedup -> device -> ads -> users -> fraud.

    The rules judge each click against the whole day; user agents are parsed once per distinct
    agent.
    ``model_scores`` (e.g. ``batch_layer.fraud_model.scorer(model)``) gets the rule-scored rows and must add
    ``model_score`` (double) and ``model_version`` (string); without it both are null.
    """
    deduped = (
        dedup_earliest(bronze_day)
        .transform(with_arrival_delay)
        .transform(with_device_by_agent, bronze_day)  # the regexes once per distinct user agent
    )
    # The rules read none of the dimensions' columns: they judge the deduplicated rows, so the
    # narrow branch of the plan carries no dimension joins.
    verdicts = fraud_verdicts(deduped, rules)
    enriched = deduped.transform(enrich_ads, ads).transform(enrich_users, users)
    judged = with_fraud_verdicts(enriched, verdicts, rules).withColumnRenamed("fraud_score", "rule_score")
    scored = model_scores(judged) if model_scores is not None else _without_model(judged)
    typed = scored.withColumns(
        {
            "model_score": F.col("model_score").cast("double"),
            "model_version": F.col("model_version").cast("string"),
        }
    )
    combined = with_combined_fraud(typed, model_threshold)
    return combined.select(*bronze_day.columns, *ADDED_COLUMNS)
