"""The trained fraud model (batch_layer.fraud_model): features on inline rows, training on a small
synthetic day (bots clicking fast vs people), storage round trip, scoring, registry, the job."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pyspark.sql.functions as F
import pytest

from adclick.catalog import table
from adclick.errors import AdclickError
from adclick.settings import Settings
from batch_layer import fraud_model
from batch_layer.fraud_model import FEATURES, FraudModelError, TrainedModel

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TRAINED_AT = datetime(2026, 11, 28, 6, 0, 0, tzinfo=UTC)
COLUMNS = (
    "event_id string, event_type string, ad_id string, event_time timestamp, user_key string, "
    "ip_key string, country string, user_agent string, device_type string, is_fraud boolean"
)
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
IPAD = "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
HEADLESS = "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/124.0.0.0 Safari/537.36"


def ev(
    event_id: str,
    seconds: float | None,
    *,
    kind: str | None = "click",
    ad: str | None = "ad-1",
    user: str | None = None,
    ip: str | None = None,
    ua: str | None = CHROME,
    device: str | None = "desktop",
    fraud: bool | None = False,
    start: datetime = T0,
) -> tuple:
    when = None if seconds is None else start + timedelta(seconds=seconds)
    return (event_id, kind, ad, when, user, ip, "FR", ua, device, fraud)


# ---------------------------------------------------------------- features

# (ip_clicks, user_clicks, user_ads, click_share, seconds_since_previous, is_bot,
#  desktop, mobile, tablet, bot, hour_of_day)
FEATURE_ROWS = [
    ev("u1-imp", 0, kind="impression", user="u1", ip="ip-a"),
    ev("u1-c1", 0.5, user="u1", ip="ip-a"),
    ev("u1-c2", 10, user="u1", ip="ip-a", ad="ad-2"),
    ev("u1-c3", 3700, user="u1", ip="ip-a"),  # 13:01: another hour, 3690 s later (capped)
    ev("u2-c", 20, user="u2", ip="ip-a", ua=HEADLESS, device="bot"),
    ev("nu-c", 30, user=None, ip="ip-a", ua=IPHONE, device="mobile"),  # no user: alone for user features
    ev("n1", 40, user=None, ip=None, ua=None, device=None),  # no user, no ip: alone twice over
    ev("n2", 41, user=None, ip=None, ua=IPAD, device="tablet"),
    ev("u3-conv", 5, kind="conversion", user="u3", ip=None),
    ev("u3-c", 50, user="u3", ip=None, device="unknown"),
    ev("u4-c", 60, user="u4", ip="ip-b", ad=None),  # a click on no ad: no distinct ad
    ev("u4-bad", 61, kind=None, user="u4", ip="ip-b"),  # malformed: no event type, not a click
]
EXPECTED_FEATURES = {
    "u1-c1": (4, 2, 2, 2 / 3, 0.5, 0, 1, 0, 0, 0, 12),
    "u1-c2": (4, 2, 2, 2 / 3, 9.5, 0, 1, 0, 0, 0, 12),
    "u1-c3": (1, 1, 1, 1.0, 3600, 0, 1, 0, 0, 0, 13),
    "u2-c": (4, 1, 1, 1.0, 3600, 1, 0, 0, 0, 1, 12),
    "nu-c": (4, 1, 1, 1.0, 3600, 0, 0, 1, 0, 0, 12),
    "n1": (1, 1, 1, 1.0, 3600, 0, 0, 0, 0, 0, 12),
    "n2": (1, 1, 1, 1.0, 3600, 0, 0, 0, 1, 0, 12),
    "u3-c": (1, 1, 1, 0.5, 45, 0, 0, 0, 0, 0, 12),
    # u4-bad is an event of u4 in the hour but not a click
    "u4-c": (1, 1, 0, 0.5, 3600, 0, 1, 0, 0, 0, 12),
}


def feature_values(spark) -> dict[str, tuple]:
    df = spark.createDataFrame(FEATURE_ROWS, COLUMNS)
    out = fraud_model.features(df)
    assert out.columns == [*df.columns, *FEATURES]
    assert dict(out.dtypes)[FEATURES[0]] == "double"
    rows = out.collect()
    assert len(rows) == len(FEATURE_ROWS)  # one row out per row in
    return {r.event_id: tuple(r[f] for f in FEATURES) for r in rows}


def test_features_exact_values_with_null_keys_and_non_clicks(spark) -> None:
    got = feature_values(spark)
    for event_id, expected in EXPECTED_FEATURES.items():
        assert got[event_id] == pytest.approx(tuple(float(v) for v in expected)), event_id
    for non_click in ("u1-imp", "u3-conv", "u4-bad"):
        assert got[non_click] == (None,) * len(FEATURES)


def test_features_use_utc_hours_whatever_the_session_time_zone(spark) -> None:
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "Asia/Kolkata")  # +05:30: local hours differ
    try:
        got = feature_values(spark)
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)
    assert got["u1-c1"] == pytest.approx((4.0, 2.0, 2.0, 2 / 3, 0.5, 0.0, 1.0, 0.0, 0.0, 0.0, 12.0))
    assert got["u1-c3"][-1] == 13.0


# ---------------------------------------------------------------- a small synthetic history


def synthetic(seed: int = 3) -> list[tuple]:
    """Two days of people (an impression, then a click 5..120 s later, on one or two ads an hour) and
    bots (a dozen clicks on different ads 1..3 s apart, no impression, three bots per ip)."""
    rng = random.Random(seed)
    rows: list[tuple] = []
    for n in range(70):
        start = T0.replace(hour=0) + timedelta(days=n % 2, hours=rng.randrange(24), minutes=rng.randrange(50))
        device, ua = rng.choice([("desktop", CHROME), ("mobile", IPHONE), ("tablet", IPAD)])
        t = 0.0
        for k in range(rng.choice([1, 1, 2])):
            ad = f"ad-{rng.randrange(20)}"
            common = {"ad": ad, "user": f"p{n}", "ip": f"ip-p{n}", "ua": ua, "device": device, "start": start}
            rows.append(ev(f"p{n}-i{k}", t, kind="impression", **common))
            t += rng.uniform(5, 120)
            rows.append(ev(f"p{n}-c{k}", t, **common))
            t += rng.uniform(600, 1200)
    for n in range(12):
        start = T0.replace(hour=0) + timedelta(days=n % 2, hours=rng.randrange(24))
        device, ua = ("bot", HEADLESS) if n % 2 else ("desktop", CHROME)
        t = 0.0
        for k in range(12):
            t += rng.uniform(1, 3)
            rows.append(
                ev(
                    f"b{n}-c{k}",
                    t,
                    ad=f"ad-{k}",
                    user=f"b{n}",
                    ip=f"ip-b{n // 3}",
                    ua=ua,
                    device=device,
                    fraud=True,
                    start=start,
                )
            )
    return rows


@pytest.fixture(scope="module")
def history(spark):
    return spark.createDataFrame(synthetic(), COLUMNS).cache()


@pytest.fixture(scope="module")
def trained(spark, history) -> TrainedModel:
    return fraud_model.train(spark, history, trained_at=TRAINED_AT)


def test_train_reports_held_out_metrics_and_separates_bots_from_people(trained, history) -> None:
    m = trained.metrics
    clicks = history.where(F.col("event_type") == "click")
    assert m["rows"] == clicks.count() == sum(1 for r in synthetic() if r[1] == "click")
    assert m["positives"] == 12 * 12
    assert m["positive_share"] == pytest.approx(144 / m["rows"])
    held_out = clicks.where(F.pmod(F.xxhash64("event_id"), F.lit(5)) == 0)
    assert m["test_rows"] == held_out.count()
    assert m["test_positives"] == held_out.where("is_fraud").count()
    assert m["train_rows"] + m["test_rows"] == m["rows"]
    for name in ("auc_roc", "auc_pr", "precision", "recall", "f1"):
        assert 0.0 <= m[name] <= 1.0, name
    assert m["auc_roc"] > 0.9
    assert m["auc_pr"] > 0.9
    assert m["threshold"] == 0.5
    assert trained.train_from == date(2026, 11, 27)
    assert trained.train_to == date(2026, 11, 28)
    assert trained.features == FEATURES
    assert trained.version.startswith("fm-20261128060000-")
    assert fraud_model.VERSION_RE.fullmatch(trained.version)


def test_the_version_hashes_the_content_not_the_run(spark, history, trained) -> None:
    again = fraud_model.train(spark, history, trained_at=TRAINED_AT + timedelta(hours=1))
    assert again.version == trained.version.replace("fm-20261128060000", "fm-20261128070000")
    assert again.metrics == trained.metrics


def test_train_refuses_too_few_rows_one_class_and_a_missing_label(spark, history) -> None:
    few = history.limit(30)
    with pytest.raises(FraudModelError, match=r"labelled clicks, at least 100 are needed") as info:
        fraud_model.train(spark, few, trained_at=TRAINED_AT)
    assert isinstance(info.value, AdclickError)
    people = history.withColumn("is_fraud", F.lit(False))
    with pytest.raises(FraudModelError, match=r"only non-fraud labels"):
        fraud_model.train(spark, people, trained_at=TRAINED_AT)
    with pytest.raises(FraudModelError, match=r"no label column 'verdict'"):
        fraud_model.train(spark, history, trained_at=TRAINED_AT, label_col="verdict")
    with pytest.raises(ValueError, match="time zone"):
        fraud_model.train(spark, history, trained_at=TRAINED_AT.replace(tzinfo=None))


# ---------------------------------------------------------------- scoring

SCORE_ROWS = [
    ev("person-imp", 0, kind="impression", user="alice", ip="ip-1"),
    ev("person", 40, user="alice", ip="ip-1"),
    *[
        ev(f"bot-{k}", 100 + 2 * k, user="mallory", ip="ip-2", ad=f"ad-{k}", ua=HEADLESS, device="bot")
        for k in range(12)
    ],
    ev("no-keys", 50, user=None, ip=None, ua=None, device=None),
    ev("conv", 60, kind="conversion", user="alice", ip="ip-1"),
    ev("no-type", 70, kind=None, user="alice", ip="ip-1"),
]


def test_scorer_adds_a_probability_on_clicks_and_keeps_the_grain(spark, trained) -> None:
    df = spark.createDataFrame(SCORE_ROWS, COLUMNS)
    out = fraud_model.scorer(trained)(df)
    assert out.columns == [*df.columns, "model_score", "model_version"]
    assert dict(out.dtypes)["model_score"] == "double"
    rows = {r.event_id: r for r in out.collect()}
    assert len(rows) == len(SCORE_ROWS)
    assert {r.model_version for r in rows.values()} == {trained.version}
    assert rows["conv"].model_score is None
    assert rows["no-type"].model_score is None
    assert rows["person-imp"].model_score is None
    for event_id in ("person", "no-keys", *(f"bot-{k}" for k in range(12))):
        assert 0.0 <= rows[event_id].model_score <= 1.0, event_id
    assert rows["person"].model_score < 0.5
    assert min(rows[f"bot-{k}"].model_score for k in range(12)) > 0.5


def test_scorer_replaces_existing_model_columns(spark, trained) -> None:
    df = spark.createDataFrame(SCORE_ROWS, COLUMNS).withColumns(
        {"model_score": F.lit(0.25), "model_version": F.lit("old")}
    )
    out = fraud_model.scorer(trained)(df)
    assert out.columns == [*COLUMNS_NAMES, "model_score", "model_version"]
    assert out.where(F.col("model_version") != trained.version).count() == 0


COLUMNS_NAMES = [c.strip().split(" ")[0] for c in COLUMNS.split(",")]


def test_scorer_without_a_model_adds_typed_nulls(spark) -> None:
    df = spark.createDataFrame(SCORE_ROWS, COLUMNS)
    out = fraud_model.scorer(None)(df)
    assert out.columns == [*df.columns, "model_score", "model_version"]
    assert dict(out.dtypes)["model_score"] == "double"
    assert dict(out.dtypes)["model_version"] == "string"
    assert out.count() == len(SCORE_ROWS)
    assert out.where(F.col("model_score").isNotNull() | F.col("model_version").isNotNull()).count() == 0


# ---------------------------------------------------------------- storage and registry


def test_save_then_load_gives_the_same_scores(spark, trained, tmp_path) -> None:
    settings = Settings(home=tmp_path)
    assert fraud_model.load(settings) is None  # nothing saved yet: rules only
    path = fraud_model.save(trained, settings)
    assert path == tmp_path / "models" / "fraud" / trained.version
    assert (path / "metrics.json").is_file()
    (tmp_path / "models" / "fraud" / "fm-29991231000000-00000000").mkdir()  # unfinished save: ignored

    loaded = fraud_model.load(settings)
    assert loaded is not None
    assert loaded.version == trained.version
    assert loaded.metrics == trained.metrics
    assert (loaded.train_from, loaded.train_to, loaded.trained_at) == (
        trained.train_from,
        trained.train_to,
        trained.trained_at,
    )
    df = spark.createDataFrame(SCORE_ROWS, COLUMNS)

    def scores(model: TrainedModel) -> dict[str, float | None]:
        return {r.event_id: r.model_score for r in fraud_model.scorer(model)(df).collect()}

    assert scores(loaded) == scores(trained)
    assert fraud_model.load(settings, trained.version).version == trained.version
    with pytest.raises(FraudModelError, match="no fraud model 'fm-20000101000000-deadbeef'"):
        fraud_model.load(settings, "fm-20000101000000-deadbeef")


def test_register_writes_one_row_per_version(spark, trained, tmp_path) -> None:
    settings = Settings(home=tmp_path)
    fraud_model.register(spark, settings, trained)
    fraud_model.register(spark, settings, trained)  # a retried task adds nothing
    out = spark.read.format("delta").load(table("ops.fraud_models").path(settings))
    # Delta stores every column as nullable; names, order and types are the contract.
    assert [(f.name, f.dataType) for f in out.schema] == [
        (f.name, f.dataType) for f in fraud_model.REGISTRY_SCHEMA
    ]
    rows = out.collect()
    assert len(rows) == 1
    row = rows[0].asDict()
    m = trained.metrics
    assert row == {
        "version": trained.version,
        "trained_at": datetime(2026, 11, 28, 6, 0),  # session time zone is UTC
        "train_from": date(2026, 11, 27),
        "train_to": date(2026, 11, 28),
        "rows": m["rows"],
        "positives": 144,
        "auc_roc": m["auc_roc"],
        "auc_pr": m["auc_pr"],
        "precision": m["precision"],
        "recall": m["recall"],
        "f1": m["f1"],
        "path": str(tmp_path / "models" / "fraud" / trained.version),
    }


# ---------------------------------------------------------------- the job


def test_run_training_reads_silver_days_labels_with_rule_scores_saves_and_registers(
    spark, trained, tmp_path
) -> None:
    settings = Settings(home=tmp_path)
    in_range = spark.createDataFrame(synthetic(), COLUMNS)
    # The same traffic two days later: outside the range trained on, must not be read.
    later = in_range.withColumns(
        {
            "event_id": F.concat(F.lit("later-"), "event_id"),
            "event_time": F.col("event_time") + F.expr("INTERVAL 2 DAYS"),
        }
    )
    (
        in_range.unionByName(later)
        .withColumns(
            {
                "rule_score": F.when(F.col("is_fraud"), F.lit(0.9)).otherwise(F.lit(0.0)),
                # silver's is_fraud also carries the previous model's verdict: not a label
                "is_fraud": F.lit(True),
                "event_date": F.to_date("event_time"),
            }
        )
        .write.format("delta")
        .partitionBy("event_date")
        .save(table("silver.events").path(settings))
    )
    with pytest.raises(FraudModelError, match="no rows from 2026-11-01 to 2026-11-07"):
        fraud_model.run_training(spark, settings, train_to=date(2026, 11, 7), clock=lambda: TRAINED_AT)

    model = fraud_model.run_training(
        spark, settings, train_to=date(2026, 11, 28), days=2, clock=lambda: TRAINED_AT
    )
    # Same clicks, same labels (rule_score >= 0.5 is the synthetic truth), same split: same evaluation
    # as training on the rows directly.
    assert model.metrics == trained.metrics
    assert (model.train_from, model.train_to) == (date(2026, 11, 27), date(2026, 11, 28))
    assert model.version.startswith("fm-20261128060000-")
    assert fraud_model.load(settings).version == model.version
    registry = spark.read.format("delta").load(table("ops.fraud_models").path(settings))
    assert [r.version for r in registry.collect()] == [model.version]


def test_run_training_without_silver_says_so(spark, tmp_path) -> None:
    with pytest.raises(FraudModelError, match=r"no silver\.events table"):
        fraud_model.run_training(
            spark, Settings(home=tmp_path), train_to=date(2026, 11, 28), clock=lambda: TRAINED_AT
        )
