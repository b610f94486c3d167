"""Training and evaluation of the fraud model: silver-like rows with a label -> a fitted model.

Reads the history it is given (silver-like rows with a boolean label column); writes nothing.
The model is a gradient-boosted tree ensemble (``GBTClassifier``, few shallow trees: seconds on
two cores for a day of clicks, and trees mirror the rules' thresholds) over :data:`FEATURES`;
one ``event_id`` hash bucket in :data:`TEST_BUCKETS` is held out and scored for the metrics.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyspark.sql.functions as F
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import GBTClassificationModel, GBTClassifier
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession

from adclick.errors import AdclickError
from batch_layer.fraud_model.features import FEATURES, MICROS_PER_DAY, features, is_click, micros

TEST_BUCKETS = 5
"""One event_id hash bucket in ``TEST_BUCKETS`` is held out for evaluation (20 %)."""

MIN_ROWS = 100

# GBT: few shallow trees train in seconds on two cores and are plenty for a dozen features.
GBT_PARAMS: dict[str, Any] = {"maxIter": 20, "maxDepth": 4, "stepSize": 0.3, "minInstancesPerNode": 2}

_ASSEMBLED = "_fm_features"
_LABEL = "_fm_label"
_RAW = "_fm_raw"
_PROBABILITY = "_fm_probability"
_PREDICTION = "_fm_prediction"
_P1 = "_fm_p1"
_HELD_OUT = "_fm_held_out"


class FraudModelError(AdclickError):
    """The fraud model cannot be trained, found or loaded; the message says why and what to do."""


@dataclass(frozen=True)
class TrainedModel:
    """A fitted fraud model and what it was fitted on.

    ``version`` is ``fm-<trained_at yyyymmddHHMMSS>-<8 hex>``, the hex being a hash of the fitted
    trees, features, parameters and training range: the same data trained at the same time gives the
    same version. ``train_from``/``train_to`` are the first and last UTC event dates of the clicks
    trained on. ``metrics`` holds the held-out evaluation (see :func:`train`).
    """

    version: str
    pipeline: PipelineModel
    metrics: dict[str, Any]
    train_from: date
    train_to: date
    trained_at: datetime
    features: tuple[str, ...] = FEATURES


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"trained_at must carry a time zone, got {at!r}")
    return at.astimezone(UTC)


def _content_hash(stage: GBTClassificationModel, payload: dict[str, Any]) -> str:
    # The debug string's first line names the random uid; the trees below it are the content.
    trees = stage.toDebugString.split("\n", 1)[1]
    text = json.dumps({**payload, "trees": trees}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _evaluate(predictions: DataFrame, threshold: float) -> dict[str, float]:
    """AUC-ROC and AUC-PR of the positive-class probability, and precision/recall/F1 at ``threshold``
    (precision is 0.0 when nothing is predicted positive)."""
    scored = predictions.select(F.col(_P1), F.col(_LABEL)).cache()
    try:
        metrics = {
            name: float(
                BinaryClassificationEvaluator(
                    rawPredictionCol=_P1, labelCol=_LABEL, metricName=metric
                ).evaluate(scored)
            )
            for name, metric in (("auc_roc", "areaUnderROC"), ("auc_pr", "areaUnderPR"))
        }
        flagged = F.col(_P1) >= F.lit(threshold)
        positive = F.col(_LABEL) == 1.0
        counts = scored.agg(
            F.count(F.when(flagged & positive, 1)).alias("tp"),
            F.count(F.when(flagged & ~positive, 1)).alias("fp"),
            F.count(F.when(~flagged & positive, 1)).alias("fn"),
        ).first()
    finally:
        scored.unpersist()
    assert counts is not None
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {**metrics, "precision": precision, "recall": recall, "f1": f1}


def train(
    spark: SparkSession,
    history: DataFrame,
    *,
    trained_at: datetime,
    label_col: str = "is_fraud",
    seed: int = 7,
    threshold: float = 0.5,
    min_rows: int = MIN_ROWS,
) -> TrainedModel:
    """Fits the model on the click rows of ``history`` (silver-like rows with a boolean ``label_col``).

    Features come from :func:`features` over all of ``history`` (impressions feed the click share).
    Clicks with a null label are left out. One ``event_id`` hash bucket in :data:`TEST_BUCKETS`
    (``xxhash64``, so the same event is always on the same side) is held out and scored; ``metrics``:
    ``auc_roc``, ``auc_pr``, ``precision``, ``recall``, ``f1`` (at ``threshold``), ``threshold``,
    ``rows``/``positives``/``positive_share`` (all labelled clicks), ``train_rows``, ``test_rows``,
    ``test_positives``. ``trained_at`` (time-zone aware) names the version; it is not read here.

    Raises :class:`FraudModelError` when there are fewer than ``min_rows`` labelled clicks or when the
    labels, or either side of the split, hold one class only.
    """
    del spark  # the rows carry their session; kept for a uniform job signature
    trained_at = _utc(trained_at)
    if label_col not in history.columns:
        raise FraudModelError(f"cannot train the fraud model: the history has no label column {label_col!r}")
    held_out = F.pmod(F.xxhash64(F.col("event_id")), F.lit(TEST_BUCKETS)) == 0
    clicks = (
        features(history)
        .where(is_click() & F.col(label_col).isNotNull())
        .select(
            *FEATURES,
            F.col(label_col).cast("boolean").cast("double").alias(_LABEL),
            held_out.alias(_HELD_OUT),
            F.floor(micros() / MICROS_PER_DAY).alias("_fm_day"),
        )
        .cache()
    )
    try:
        return _fit(
            clicks,
            label_col=label_col,
            seed=seed,
            threshold=threshold,
            min_rows=min_rows,
            trained_at=trained_at,
        )
    finally:
        clicks.unpersist()


def _fit(
    clicks: DataFrame, *, label_col: str, seed: int, threshold: float, min_rows: int, trained_at: datetime
) -> TrainedModel:
    sides = {
        bool(r[_HELD_OUT]): (int(r["n"]), int(r["pos"] or 0))
        for r in clicks.groupBy(_HELD_OUT)
        .agg(F.count(F.lit(1)).alias("n"), F.sum(_LABEL).alias("pos"))
        .collect()
    }
    train_rows, train_pos = sides.get(False, (0, 0))
    test_rows, test_pos = sides.get(True, (0, 0))
    rows, positives = train_rows + test_rows, train_pos + test_pos
    if rows < min_rows:
        raise FraudModelError(
            f"cannot train the fraud model: {rows} labelled clicks, at least {min_rows} are needed; "
            "train over more days"
        )
    for side, n, pos in (
        ("labelled clicks", rows, positives),
        ("training part", train_rows, train_pos),
        ("held-out part", test_rows, test_pos),
    ):
        if pos in (0, n):
            raise FraudModelError(
                f"cannot train the fraud model: the {side} ({n} clicks) holds only "
                f"{'fraud' if pos else 'non-fraud'} labels ({label_col}); train over more days"
            )
    day_range = clicks.agg(F.min("_fm_day").alias("lo"), F.max("_fm_day").alias("hi")).first()
    assert day_range is not None
    epoch = date(1970, 1, 1)
    train_from = epoch + timedelta(days=int(day_range["lo"]))
    train_to = epoch + timedelta(days=int(day_range["hi"]))

    gbt = (
        GBTClassifier(
            featuresCol=_ASSEMBLED, labelCol=_LABEL, predictionCol=_PREDICTION, seed=seed, **GBT_PARAMS
        )
        .setRawPredictionCol(_RAW)
        .setProbabilityCol(_PROBABILITY)
    )
    assembler = VectorAssembler(inputCols=list(FEATURES), outputCol=_ASSEMBLED)
    pipeline = Pipeline(stages=[assembler, gbt]).fit(clicks.where(~F.col(_HELD_OUT)))
    predictions = pipeline.transform(clicks.where(F.col(_HELD_OUT))).withColumn(
        _P1, vector_to_array(F.col(_PROBABILITY))[1]
    )
    metrics: dict[str, Any] = {
        **_evaluate(predictions, threshold),
        "threshold": threshold,
        "rows": rows,
        "positives": positives,
        "positive_share": positives / rows,
        "train_rows": train_rows,
        "test_rows": test_rows,
        "test_positives": test_pos,
    }
    digest = _content_hash(
        pipeline.stages[-1],
        {
            "features": FEATURES,
            "label": label_col,
            "seed": seed,
            "params": GBT_PARAMS,
            "threshold": threshold,
            "train_from": train_from,
            "train_to": train_to,
            "rows": rows,
        },
    )
    return TrainedModel(
        version=f"fm-{trained_at:%Y%m%d%H%M%S}-{digest}",
        pipeline=pipeline,
        metrics=metrics,
        train_from=train_from,
        train_to=train_to,
        features=FEATURES,
        trained_at=trained_at,
    )
