"""The trained click-fraud model of the batch layer: features, training, evaluation, storage, scoring.

Reads ``silver.events`` (for training: the days ``train_to - days + 1 .. train_to``) and, for
scoring, whatever silver-like rows it is given. Writes one model version directory under
``<home>/models/fraud/<version>`` (a Spark ML ``PipelineModel`` and ``metrics.json``) and one row
per version in ``ops.fraud_models``. Scoring keeps the grain of its input: one row out per event in,
with ``model_score`` (the model's fraud probability, click rows only) and ``model_version``.

What the model learns, honestly: there are no human-confirmed fraud labels. The label is the
rules' own verdict (:mod:`adclick.fraud`): the rule score of silver against the rules' threshold
(weak supervision). The model therefore cannot be better than the rules at finding what the
rules find; its use is to turn the rules' hard, per-minute thresholds into a smooth score over
hourly behaviour (a click stream just under every limit, many ads from one user in an hour, a
click share near 1) so that traffic resembling flagged traffic scores high even when no single rule
fires. Its metrics measure agreement with the rules on held-out clicks, not accuracy against
ground truth. Training labels from ``rule_score`` rather than silver's ``is_fraud`` because
``is_fraud`` already includes the previous model's verdict; learning from it would feed the model
its own output.

Features (:func:`features`) are computed with window functions over the rows given and mostly per
UTC hour, so a click gets the same features whether it is scored with its day (silver) or trained
with a week of history. The model is a gradient-boosted tree ensemble (``GBTClassifier``, few
shallow trees: seconds on two cores for a day of clicks, and trees mirror the rules' thresholds).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyspark.sql.functions as F
import pyspark.sql.types as T
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import GBTClassificationModel, GBTClassifier
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql.utils import AnalysisException

from adclick.catalog import table
from adclick.enrich import BOT_RE
from adclick.errors import AdclickError
from adclick.fraud import DEFAULT_RULES, FraudRules
from adclick.settings import Settings

IP_CLICKS_HOUR = "f_ip_clicks_hour"
USER_CLICKS_HOUR = "f_user_clicks_hour"
USER_ADS_HOUR = "f_user_ads_hour"
USER_CLICK_SHARE = "f_user_click_share"
SECONDS_SINCE_PREVIOUS = "f_seconds_since_previous"
IS_BOT_UA = "f_is_bot_ua"
DEVICE_TYPES = ("desktop", "mobile", "tablet", "bot")
DEVICE_FEATURES = tuple(f"f_device_{d}" for d in DEVICE_TYPES)
HOUR_OF_DAY = "f_hour_of_day"
FEATURES: tuple[str, ...] = (
    IP_CLICKS_HOUR,
    USER_CLICKS_HOUR,
    USER_ADS_HOUR,
    USER_CLICK_SHARE,
    SECONDS_SINCE_PREVIOUS,
    IS_BOT_UA,
    *DEVICE_FEATURES,
    HOUR_OF_DAY,
)
"""The model's inputs, in assembler order; every one is a double, non-null on click rows."""

SECONDS_SINCE_PREVIOUS_CAP = 3600.0
"""A user's previous event more than an hour back (or none in the input) counts as an hour."""

MODEL_SCORE = "model_score"
MODEL_VERSION = "model_version"
RULE_LABEL = "_fm_rule_label"
TEST_BUCKETS = 5
"""One event_id hash bucket in ``TEST_BUCKETS`` is held out for evaluation (20 %)."""

MIN_ROWS = 100
VERSION_RE = re.compile(r"fm-\d{14}-[0-9a-f]{8}")

# GBT: few shallow trees train in seconds on two cores and are plenty for a dozen features.
GBT_PARAMS: dict[str, Any] = {"maxIter": 20, "maxDepth": 4, "stepSize": 0.3, "minInstancesPerNode": 2}

_ASSEMBLED = "_fm_features"
_LABEL = "_fm_label"
_RAW = "_fm_raw"
_PROBABILITY = "_fm_probability"
_PREDICTION = "_fm_prediction"
_P1 = "_fm_p1"
_HELD_OUT = "_fm_held_out"
_MICROS_PER_SECOND = 1_000_000
_MICROS_PER_HOUR = 3600 * _MICROS_PER_SECOND
_MICROS_PER_DAY = 24 * _MICROS_PER_HOUR

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


# ---------------------------------------------------------------- features


def _is_click() -> Column:
    return F.coalesce(F.col("event_type") == "click", F.lit(False))


def _micros() -> Column:
    return F.unix_micros(F.col("event_time"))


def _hour() -> Column:
    # Epoch-aligned UTC hour, independent of the session time zone.
    return F.floor(_micros() / _MICROS_PER_HOUR)


def _hourly(key: str) -> Window:
    """The rows of one ``key`` in one UTC hour; a row whose key or time is null is alone."""
    k = F.col(key)
    alone = F.when(k.isNull() | F.col("event_time").isNull(), F.col("event_id"))
    return Window.partitionBy(k, alone, _hour())


def features(events: DataFrame) -> DataFrame:
    """Adds the model's features (:data:`FEATURES`, doubles) to every row; null on non-click rows.

    Keeps every input row and column. Computed over the rows given (window functions, no clock);
    "hour" is the click's UTC clock hour (epoch-aligned, like ``date_trunc('hour')`` in UTC). A row
    with a null ``ip_key`` (``user_key``) is a group of its own for the ip (user) features: it is
    never pooled with other null-key rows. On click rows every feature is non-null:

    * ``f_ip_clicks_hour``: clicks from the same ``ip_key`` in the hour, this one included (>= 1).
    * ``f_user_clicks_hour``: clicks by the same ``user_key`` in the hour (>= 1).
    * ``f_user_ads_hour``: distinct ``ad_id`` the user clicked in the hour (0 when the ad is null).
    * ``f_user_click_share``: the user's clicks / all the user's events (impressions, clicks,
      conversions) in the hour, in (0, 1]. A share rather than clicks/impressions: it is bounded
      and defined when the input holds no impression of the user.
    * ``f_seconds_since_previous``: seconds since the same user's previous event of any type in the
      input (ordered by event_time, then event_id), capped at 3600; 3600 when there is none (first
      event, null user or null time).
    * ``f_is_bot_ua``: 1.0 when ``device_type`` is ``bot`` or the user agent matches
      :data:`adclick.enrich.BOT_RE`, else 0.0 (the bot rule's test).
    * ``f_device_desktop|mobile|tablet|bot``: one-hot ``device_type``; ``unknown``, null or any other
      value is all zeros. Fixed categories, so the features need no fitted indexer.
    * ``f_hour_of_day``: the UTC hour of day, 0..23; -1 when ``event_time`` is null.
    """
    click = _is_click()
    by_ip, by_user = _hourly("ip_key"), _hourly("user_key")
    user = F.col("user_key")
    previous = F.lag(_micros()).over(
        Window.partitionBy(user, F.when(user.isNull(), F.col("event_id"))).orderBy(
            _micros(), F.col("event_id")
        )
    )
    since = (_micros() - previous) / _MICROS_PER_SECOND
    clicked_ad = F.when(click, F.col("ad_id"))
    bot = F.coalesce(F.col("device_type") == "bot", F.lit(False)) | F.coalesce(
        F.col("user_agent").rlike(BOT_RE), F.lit(False)
    )
    user_clicks = F.count(F.when(click, F.lit(1))).over(by_user)
    values: dict[str, Column] = {
        IP_CLICKS_HOUR: F.count(F.when(click, F.lit(1))).over(by_ip),
        USER_CLICKS_HOUR: user_clicks,
        USER_ADS_HOUR: F.size(F.collect_set(clicked_ad).over(by_user)),
        USER_CLICK_SHARE: user_clicks / F.count(F.lit(1)).over(by_user),
        SECONDS_SINCE_PREVIOUS: F.coalesce(
            F.least(since, F.lit(SECONDS_SINCE_PREVIOUS_CAP)), F.lit(SECONDS_SINCE_PREVIOUS_CAP)
        ),
        IS_BOT_UA: bot.cast("double"),
        **{
            name: F.coalesce(F.col("device_type") == device, F.lit(False)).cast("double")
            for name, device in zip(DEVICE_FEATURES, DEVICE_TYPES, strict=True)
        },
        HOUR_OF_DAY: F.coalesce(F.pmod(_hour(), F.lit(24)), F.lit(-1)),
    }
    return events.withColumns({name: F.when(click, value.cast("double")) for name, value in values.items()})


# ---------------------------------------------------------------- training and evaluation


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
        .where(_is_click() & F.col(label_col).isNotNull())
        .select(
            *FEATURES,
            F.col(label_col).cast("boolean").cast("double").alias(_LABEL),
            held_out.alias(_HELD_OUT),
            F.floor(_micros() / _MICROS_PER_DAY).alias("_fm_day"),
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


# ---------------------------------------------------------------- storage


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
    model.pipeline.write().overwrite().save(str(target / "pipeline"))
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
    from delta.tables import DeltaTable

    path = table("ops.fraud_models").path(settings)
    row = registry_row(spark, settings, model)
    if not DeltaTable.isDeltaTable(spark, path):
        row.write.format("delta").mode("append").save(path)
        return
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(row.alias("s"), "t.version = s.version")
        .whenNotMatchedInsertAll()
        .execute()
    )


# ---------------------------------------------------------------- scoring


def _without_model(df: DataFrame) -> DataFrame:
    return df.withColumns(
        {MODEL_SCORE: F.lit(None).cast("double"), MODEL_VERSION: F.lit(None).cast("string")}
    )


def scorer(model: TrainedModel | None) -> Callable[[DataFrame], DataFrame]:
    """The function the silver job applies: ``DataFrame -> DataFrame`` adding ``model_score`` and
    ``model_version``.

    With a model: ``model_score`` is the positive-class probability (double in [0, 1]) on click rows,
    null on other rows; ``model_version`` is the model's version on every row. Without one (None):
    both columns null (double, string). The output has the input's rows and columns (replacing any
    existing ``model_score``/``model_version``), then the two columns; the features are dropped.
    """
    if model is None:

        def score_without_model(df: DataFrame) -> DataFrame:
            return _without_model(df.drop(MODEL_SCORE, MODEL_VERSION))

        return score_without_model

    assembler, classifier = model.pipeline.stages
    probability = classifier.getProbabilityCol()
    scratch = {
        *model.features,
        assembler.getOutputCol(),
        classifier.getRawPredictionCol(),
        probability,
        classifier.getPredictionCol(),
    }

    def score_with_model(df: DataFrame) -> DataFrame:
        columns = [c for c in df.columns if c not in (MODEL_SCORE, MODEL_VERSION)]
        clashes = scratch.intersection(columns)
        if clashes:
            raise FraudModelError(
                f"cannot score: the input already has the model's columns {sorted(clashes)}"
            )
        # Non-click rows have null features; zeros let the assembler pass them, their score is nulled.
        featured = features(df.select(*columns)).fillna(0.0, subset=list(model.features))
        scored = model.pipeline.transform(featured)
        p1 = vector_to_array(F.col(probability))[1]
        return scored.select(
            *columns,
            F.when(_is_click(), p1).cast("double").alias(MODEL_SCORE),
            F.lit(model.version).cast("string").alias(MODEL_VERSION),
        )

    return score_with_model


# ---------------------------------------------------------------- the job


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
    path = table("silver.events").path(settings)
    try:
        silver = spark.read.format("delta").load(path)
    except AnalysisException as exc:
        raise FraudModelError(
            f"cannot train the fraud model: no silver.events table at {path} ({exc.getMessage()[:200]}); "
            "run the silver job first"
        ) from None
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


__all__ = [
    "FEATURES",
    "REGISTRY_SCHEMA",
    "FraudModelError",
    "TrainedModel",
    "features",
    "load",
    "register",
    "registry_row",
    "run_training",
    "save",
    "scorer",
    "train",
    "versions",
]
