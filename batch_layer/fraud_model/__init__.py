"""The trained click-fraud model of the batch layer: features, training, evaluation, storage, scoring.

Modules, by what each owns: :mod:`.features` (per-click features), :mod:`.train` (fitting and
held-out evaluation), :mod:`.store` (model directories, the ``ops.fraud_models`` registry, which
version a run asks for), :mod:`.score` (the scorer silver applies), :mod:`.job` (training on
silver). This package re-exports their public names: ``fraud_model.load(...)``,
``fraud_model.run_training(...)``, ...

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

Which model silver scores with is a run input (:func:`batch_layer.jobs.silver_model`): by default
(:data:`PINNED`) a rerun of a day keeps the model its last silver run used; :data:`LATEST` or a
version asks for another.
"""

from batch_layer.fraud_model.features import FEATURES, features
from batch_layer.fraud_model.job import RULE_LABEL, run_training
from batch_layer.fraud_model.score import MODEL_SCORE, MODEL_VERSION, scorer
from batch_layer.fraud_model.store import (
    LATEST,
    PINNED,
    REGISTRY_SCHEMA,
    VERSION_RE,
    check_choice,
    load,
    model_dir,
    register,
    registry_row,
    save,
    versions,
)
from batch_layer.fraud_model.train import (
    GBT_PARAMS,
    MIN_ROWS,
    TEST_BUCKETS,
    FraudModelError,
    TrainedModel,
    train,
)

__all__ = [
    "FEATURES",
    "GBT_PARAMS",
    "LATEST",
    "MIN_ROWS",
    "MODEL_SCORE",
    "MODEL_VERSION",
    "PINNED",
    "REGISTRY_SCHEMA",
    "RULE_LABEL",
    "TEST_BUCKETS",
    "VERSION_RE",
    "FraudModelError",
    "TrainedModel",
    "check_choice",
    "features",
    "load",
    "model_dir",
    "register",
    "registry_row",
    "run_training",
    "save",
    "scorer",
    "train",
    "versions",
]
