"""Speed vs gold reconciliation (batch_layer.reconcile): every reason, the summary, the watermark text."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from batch_layer.reconcile import COUNTS, reconcile, summarise, watermark_seconds

DAY = date(2026, 11, 27)
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SPEED = "window_start timestamp, ad_id string, clicks long, fraud_clicks long"
SILVER = (
    "event_id string, event_type string, event_date date, ad_id string, is_fraud boolean, "
    "arrival_delay_s double, copies long"
)
WATERMARK = 600


def clicks(ad: str | None, n: int, *, fraud: int = 0, late: int = 0, copied: int = 0, kind: str = "click"):
    """``n`` silver events of ``ad``: the first ``fraud`` are fraud, the last ``late`` arrived late,
    the first ``copied`` had two bronze copies."""
    return [
        (
            f"{ad}-{kind}-{i}",
            kind,
            DAY,
            ad,
            i < fraud,
            WATERMARK + 1.0 if i >= n - late else 2.0,
            2 if i < copied else 1,
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def rows(spark):
    speed = [
        (T0, "ad-match", 3, 1),
        (T0, "ad-late", 1, 0),
        (T0 + timedelta(minutes=5), "ad-late", 1, 0),  # minutes of the day are summed
        (T0, "ad-reclass", 3, 0),
        (T0, "ad-dup", 5, 0),
        (T0, "ad-unknown", 1, 0),
        (T0, "ad-speed-only", 2, 0),
        (T0, None, 1, 0),  # the speed layer's own "unknown" ad key
        (T0, "ad-no-clicks", 0, 0),
    ]
    silver = [
        *clicks("ad-match", 4, fraud=1, copied=2),
        *clicks("ad-late", 4, late=2),  # speed short by 2, both late: explained
        *clicks("ad-reclass", 3, fraud=1),  # same total, other split
        *clicks("ad-dup", 4, copied=1),  # speed over by 1, one click had 2 copies: explained
        *clicks("ad-unknown", 4, late=1),  # short by 3, only 1 late: not explained
        *clicks(None, 1),
        *clicks("ad-no-clicks", 5, kind="impression"),
        *clicks("ad-gold-only", 2, kind="conversion"),
    ]
    return reconcile(
        spark.createDataFrame(speed, SPEED),
        spark.createDataFrame(silver, SILVER),
        watermark_seconds=WATERMARK,
    )


def test_every_reason(rows) -> None:
    assert rows.columns == ["day", "ad_id", *COUNTS, "diff", "reason"]
    got = {r.ad_id: tuple(r)[2:] for r in rows.collect()}
    # speed, speed fraud, gold, gold fraud, late, duplicated, diff, reason
    assert got == {
        "ad-match": (3, 1, 3, 1, 0, 2, 0, "match"),
        "ad-late": (2, 0, 4, 0, 2, 0, -2, "late"),
        "ad-reclass": (3, 0, 2, 1, 0, 0, 0, "fraud_reclassified"),
        "ad-dup": (5, 0, 4, 0, 0, 1, 1, "duplicate"),
        "ad-unknown": (1, 0, 4, 0, 1, 0, -3, "unknown"),
        "ad-speed-only": (2, 0, 0, 0, 0, 0, 2, "unknown"),  # over, with no duplicate to blame
        "unknown": (1, 0, 1, 0, 0, 0, 0, "match"),  # a null ad is "unknown" in both layers
    }
    assert {r.day for r in rows.collect()} == {DAY}


def test_summary_counts_clicks_and_judges_drift(rows) -> None:
    summary = summarise(rows, max_drift=0.02)
    assert {k: summary[k] for k in ("speed_total", "gold_total", "diff")} == {
        "speed_total": 18,
        "gold_total": 20,
        "diff": -2,
    }
    assert (summary["missed"], summary["over_counted"], summary["late"]) == (5, 3, 3)
    assert (summary["duplicates"], summary["fraud_reclassified"]) == (3, 1)
    assert summary["unexplained"] == 3 + 2  # ad-unknown short by 3, ad-speed-only over by 2
    assert summary["drift"] == pytest.approx(5 / 20)
    assert summary["total_drift"] == pytest.approx(2 / 20)
    assert summary["passed"] is False
    assert summarise(rows, max_drift=0.25)["passed"] is True


def test_an_empty_day_passes(spark) -> None:
    empty = reconcile(
        spark.createDataFrame([], SPEED), spark.createDataFrame([], SILVER), watermark_seconds=WATERMARK
    )
    summary = summarise(empty, max_drift=0.0)
    assert (summary["gold_total"], summary["diff"], summary["drift"], summary["passed"]) == (0, 0, 0.0, True)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10 minutes", 600), ("1 minute", 60), ("30 seconds", 30), ("2 hours", 7200), (" 5 Minutes ", 300)],
)
def test_watermark_text_to_seconds(text: str, seconds: int) -> None:
    assert watermark_seconds(text) == seconds


@pytest.mark.parametrize("text", ["10", "ten minutes", "10 days", "", "-1 minutes"])
def test_watermark_text_that_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="not a watermark duration"):
        watermark_seconds(text)


def test_a_click_replayed_into_kafka_days_later_counts_as_late(spark) -> None:
    """The API took it on time (arrival_delay_s 2 s) but it reached Kafka two days later (a
    replay, or a long outage drained from the spool): the speed layer never counted it."""
    t = datetime(2026, 11, 27, 10, 0)
    schema = SILVER + ", event_time timestamp, kafka_timestamp timestamp"
    silver = [
        ("e1", "click", DAY, "ad-r", False, 2.0, 1, t, t + timedelta(days=2)),
        ("e2", "click", DAY, "ad-r", False, 2.0, 1, t, t + timedelta(seconds=3)),
        ("e3", "click", DAY, "ad-r", False, 2.0, 1, t, None),  # no Kafka time: the API's delay
    ]
    rows = reconcile(
        spark.createDataFrame([(t, "ad-r", 2, 0)], SPEED),
        spark.createDataFrame(silver, schema),
        watermark_seconds=WATERMARK,
    ).collect()
    assert [(r.late_clicks, r.diff, r.reason) for r in rows] == [(1, -1, "late")]
