"""Storage of fraud models: one directory per version, the ``ops.fraud_models`` registry, and which
version a silver run asks for.

Writes ``<home>/models/fraud/<version>/`` (a Spark ML ``PipelineModel`` under ``pipeline/`` and
``metrics.json``, written last) and one row per version in ``ops.fraud_models`` (through
:mod:`batch_layer.lake`); reads them back.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import date, datetime
from pathlib import Path

import pyspark.sql.types as T
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession

from adclick.settings import Settings
from batch_layer import lake
from batch_layer.fraud_model.features import FEATURES
from batch_layer.fraud_model.train import FraudModelError, TrainedModel

VERSION_RE = re.compile(r"fm-\d{14}-[0-9a-f]{8}")
PINNED = "pinned"
"""Choice of a silver run: the model the day's last silver run used (the latest on a first run)."""
LATEST = "latest"
"""Choice of a silver run: the latest saved model."""

REGISTRY_SCHEMA = T.StructType(
    [
        T.StructField("version", T.StringType(), False),
        T.StructField("trained_at", T.TimestampType(), False),
        T.StructField("train_from", T.DateType(), False),
        T.StructField("train_to", T.DateType(), False),
        T.StructField("rows", T.LongType(), False),
        T.StructField("positives", T.LongType(), False),
        T.StructField("auc_roc", T.DoubleType(), False),
        T.StructField("auc_pr", T.DoubleType(), False),
        T.StructField("precision", T.DoubleType(), False),
        T.StructField("recall", T.DoubleType(), False),
        T.StructField("f1", T.DoubleType(), False),
        T.StructField("path", T.StringType(), False),
    ]
)
"""``ops.fraud_models``: one row per model version."""


def check_choice(choice: str) -> str:
    """``choice`` when it names a model choice (:data:`PINNED`, :data:`LATEST` or a version), else
    raises :class:`FraudModelError`."""
    if choice in (PINNED, LATEST) or VERSION_RE.fullmatch(choice):
        return choice
    raise FraudModelError(
        f"not a fraud model choice: {choice!r}; use {PINNED!r} (the day's previous model), "
        f"{LATEST!r} or a version such as fm-20261128060000-0123abcd"
    )


def model_dir(settings: Settings, version: str) -> Path:
    return settings.path("models", "fraud", version)


def save(model: TrainedModel, settings: Settings) -> Path:
    """Writes ``<home>/models/fraud/<version>/``: ``pipeline/`` (Spark ML) and ``metrics.json``.

    ``metrics.json`` is written last (and atomically), so a directory without it is an unfinished
    save that :func:`load` ignores. Saving a version again overwrites it with the same content.
    """
    target = model_dir(settings, model.version)
    target.mkdir(parents=True, exist_ok=True)
    (target / "metrics.json").unlink(missing_ok=True)
    # Model files, not a table: a local directory, replaced whole (Spark ML refuses to overwrite).
    shutil.rmtree(target / "pipeline", ignore_errors=True)
    model.pipeline.save(str(target / "pipeline"))
    manifest = {
        "version": model.version,
        "trained_at": model.trained_at.isoformat(),
        "train_from": model.train_from.isoformat(),
        "train_to": model.train_to.isoformat(),
        "features": list(model.features),
        "metrics": model.metrics,
    }
    partial = target / "metrics.json.tmp"
    partial.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    partial.replace(target / "metrics.json")
    return target


def versions(settings: Settings) -> list[str]:
    """The completely saved model versions, oldest first (version names sort by training time)."""
    root = settings.path("models", "fraud")
    if not root.is_dir():
        return []
    return sorted(
        d.name
        for d in root.iterdir()
        if d.is_dir() and VERSION_RE.fullmatch(d.name) and (d / "metrics.json").is_file()
    )


def load(settings: Settings, version: str | None = None) -> TrainedModel | None:
    """The saved model ``version``, or the latest one when ``version`` is None.

    Returns None when no model has been saved (the silver job then scores with rules only); raises
    :class:`FraudModelError` when a named version does not exist or was saved by other code (a
    different feature list). Needs an active SparkSession.
    """
    known = versions(settings)
    if version is None:
        if not known:
            return None
        version = known[-1]
    elif version not in known:
        raise FraudModelError(
            f"no fraud model {version!r} under {settings.path('models', 'fraud')}; "
            f"known: {', '.join(known) or 'none'}"
        )
    target = model_dir(settings, version)
    manifest = json.loads((target / "metrics.json").read_text())
    if tuple(manifest["features"]) != FEATURES:
        raise FraudModelError(
            f"fraud model {version} was trained on features {manifest['features']}, this code computes "
            f"{list(FEATURES)}; train a new model"
        )
    return TrainedModel(
        version=manifest["version"],
        pipeline=PipelineModel.load(str(target / "pipeline")),
        metrics=manifest["metrics"],
        train_from=date.fromisoformat(manifest["train_from"]),
        train_to=date.fromisoformat(manifest["train_to"]),
        features=tuple(manifest["features"]),
        trained_at=datetime.fromisoformat(manifest["trained_at"]),
    )


def registry_row(spark: SparkSession, settings: Settings, model: TrainedModel) -> DataFrame:
    """The ``ops.fraud_models`` row of ``model`` (schema :data:`REGISTRY_SCHEMA`)."""
    m = model.metrics
    row = (
        model.version,
        model.trained_at,
        model.train_from,
        model.train_to,
        int(m["rows"]),
        int(m["positives"]),
        float(m["auc_roc"]),
        float(m["auc_pr"]),
        float(m["precision"]),
        float(m["recall"]),
        float(m["f1"]),
        str(model_dir(settings, model.version)),
    )
    return spark.createDataFrame([row], REGISTRY_SCHEMA)


def register(spark: SparkSession, settings: Settings, model: TrainedModel) -> None:
    """Adds the model's row to ``ops.fraud_models`` (Delta), once: a version already there is kept,
    so registering again (a retried task) adds nothing."""
    lake.insert_new(registry_row(spark, settings, model), settings, "ops.fraud_models", key="version")
