"""Scoring with a fraud model: the function the silver job applies to a day's rule-scored rows.

Reads the rows it is given; writes nothing. Keeps the grain of its input: one row out per event in,
with ``model_score`` (the model's fraud probability, click rows only) and ``model_version``.
"""

from __future__ import annotations

from collections.abc import Callable

import pyspark.sql.functions as F
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame

from batch_layer.fraud_model.features import features, is_click
from batch_layer.fraud_model.train import FraudModelError, TrainedModel

MODEL_SCORE = "model_score"
MODEL_VERSION = "model_version"


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
            F.when(is_click(), p1).cast("double").alias(MODEL_SCORE),
            F.lit(model.version).cast("string").alias(MODEL_VERSION),
        )

    return score_with_model
