"""The training job: ``silver.events`` of a week -> a trained, saved and registered fraud model.

Reads ``silver.events`` (the days ``train_to - days + 1 .. train_to``, at the version it has when
the job starts, through :mod:`batch_layer.lake`); writes the model's directory and its
``ops.fraud_models`` row (:mod:`batch_layer.fraud_model.store`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pyspark.sql.functions as F
from pyspark.sql import SparkSession

from adclick.fraud import DEFAULT_RULES, FraudRules
from adclick.settings import Settings
from batch_layer import lake
from batch_layer.fraud_model.store import register, save
from batch_layer.fraud_model.train import FraudModelError, TrainedModel, train

RULE_LABEL = "_fm_rule_label"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def run_training(
    spark: SparkSession,
    settings: Settings,
    *,
    train_to: date,
    days: int = 7,
    clock: Callable[[], datetime] = _utc_now,
    rules: FraudRules = DEFAULT_RULES,
    seed: int = 7,
) -> TrainedModel:
    """Trains on ``silver.events`` of ``train_to - days + 1 .. train_to``, saves and registers.

    The label is the rules' verdict, ``rule_score >= rules.threshold`` (not silver's ``is_fraud``,
    which includes the previous model's verdict). Precision/recall are measured at
    ``settings.fraud_model_threshold``. ``clock`` gives the training time that names the version.
    """
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    train_from = train_to - timedelta(days=days - 1)
    inputs = lake.Snapshot(spark, settings).pin("silver.events")
    if inputs.version("silver.events") is None:
        where = lake.path(settings, "silver.events")
        raise FraudModelError(
            f"cannot train the fraud model: no silver.events table at {where}; run the silver job first"
        )
    silver = inputs.read("silver.events")
    history = silver.where(F.col("event_date").between(F.lit(train_from), F.lit(train_to)))
    if history.isEmpty():
        raise FraudModelError(
            f"cannot train the fraud model: silver.events has no rows from {train_from} to {train_to}; "
            "run the silver job for those days first"
        )
    labelled = history.withColumn(RULE_LABEL, F.col("rule_score") >= F.lit(rules.threshold))
    model = train(
        spark,
        labelled,
        trained_at=clock(),
        label_col=RULE_LABEL,
        seed=seed,
        threshold=settings.fraud_model_threshold,
    )
    save(model, settings)
    register(spark, settings, model)
    return model
