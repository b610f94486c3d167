"""Speed vs gold reconciliation (batch_layer.reconcile): every reason, late clicks dropped or counted,
the summary, the watermark text."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from batch_layer.reconcile import COUNTS, reconcile, summarise, watermark_seconds

DAY = date(2026, 11, 27)
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SPEED = "window_start timestamp, ad_id string, clicks long, fraud_clicks long"
SILVER = (
    "event_id string, event_type string, event_date date, ad_id string, is_fraud boolean, "
    "arrival_delay_s double, copies long, event_time timestamp"
)
WATERMARK = 600


def clicks(
    ad: str | None,
    n: int,
    *,
    fraud: int = 0,
    late: int = 0,
    copied: int = 0,
    kind: str = "click",
    minute: int = 0,
):
    """``n`` silver events of ``ad`` at ``minute`` minutes past T0: the first ``fraud`` are fraud,
    the last ``late`` arrived late, the first ``copied`` had two bronze copies."""
    at = T0 + timedelta(minutes=minute)
    return [
        (
            f"{ad}-{kind}-{minute}-{i}",
            kind,
            DAY,
            ad,
            i < fraud,
            WATERMARK + 1.0 if i >= n - late else 2.0,
            2 if i < copied else 1,
            at,
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
        *clicks("ad-late", 2, late=1),  # speed short by 1 in each minute, its late click: explained
        *clicks("ad-late", 2, late=1, minute=5),
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
    # speed, speed fraud, gold, gold fraud, late dropped, late counted, duplicated, diff, reason
    assert got == {
        "ad-match": (3, 1, 3, 1, 0, 0, 2, 0, "match"),
        "ad-late": (2, 0, 4, 0, 2, 0, 0, -2, "late"),
        "ad-reclass": (3, 0, 2, 1, 0, 0, 0, 0, "fraud_reclassified"),
        "ad-dup": (5, 0, 4, 0, 0, 0, 1, 1, "duplicate"),
        "ad-unknown": (1, 0, 4, 0, 1, 0, 0, -3, "unknown"),
        "ad-speed-only": (2, 0, 0, 0, 0, 0, 0, 2, "unknown"),  # over, with no duplicate to blame
        "unknown": (1, 0, 1, 0, 0, 0, 0, 0, "match"),  # a null ad is "unknown" in both layers
    }
    assert {r.day for r in rows.collect()} == {DAY}


def test_summary_counts_clicks_and_judges_drift(rows) -> None:
    summary = summarise(rows, max_drift=0.02)
    assert {k: summary[k] for k in ("speed_total", "gold_total", "diff")} == {
        "speed_total": 18,
        "gold_total": 20,
        "diff": -2,
    }
    assert (summary["missed"], summary["over_counted"]) == (5, 3)
    assert (summary["late_dropped"], summary["late_counted"]) == (3, 0)
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
    schema = SILVER + ", kafka_timestamp timestamp"
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
    assert [(r.late_dropped_clicks, r.late_counted_clicks, r.diff, r.reason) for r in rows] == [
        (1, 0, -1, "late")
    ]


def one_ad(spark, speed: dict[int, int], silver: list[tuple], max_drift: float = 0.02):
    """Reconcile one ad, ``ad-x``: ``speed`` = clicks the speed layer counted per minute past T0,
    ``silver`` = rows from :func:`clicks`. Its one row and the day's summary."""
    frame = spark.createDataFrame(
        [(T0 + timedelta(minutes=m), "ad-x", n, 0) for m, n in speed.items()], SPEED
    )
    rows = reconcile(frame, spark.createDataFrame(silver, SILVER), watermark_seconds=WATERMARK)
    (row,) = rows.collect()
    return row, summarise(rows, max_drift=max_drift)


LATE_COLUMNS = ("late_dropped_clicks", "late_counted_clicks", "diff", "reason")
LATE_SUMMARY = ("late_dropped", "late_counted", "missed", "unexplained", "passed")


def late_figures(row, summary) -> tuple[tuple, tuple]:
    return tuple(row[c] for c in LATE_COLUMNS), tuple(summary[k] for k in LATE_SUMMARY)


def test_late_clicks_the_speed_layer_counted_are_not_counted_as_dropped(spark) -> None:
    """A day replayed in a minute: every click reached Kafka far behind its event time, but the
    stream had seen nothing newer, so the speed layer counted them all."""
    silver = [*clicks("ad-x", 3, late=3), *clicks("ad-x", 2, late=2, minute=7)]
    row, summary = one_ad(spark, {0: 3, 7: 2}, silver)
    assert late_figures(row, summary) == ((0, 5, 0, "match"), (0, 5, 0, 0, True))


def test_late_clicks_the_speed_layer_dropped_are_what_it_missed(spark) -> None:
    silver = [*clicks("ad-x", 4, late=3), *clicks("ad-x", 2, minute=1)]  # 3 late, all in minute 0
    row, summary = one_ad(spark, {0: 1, 1: 2}, silver)
    assert late_figures(row, summary) == ((3, 0, -3, "late"), (3, 0, 3, 0, True))
    assert summary["late_dropped"] == summary["missed"]


def test_late_clicks_dropped_in_one_minute_and_counted_in_another(spark) -> None:
    silver = [
        *clicks("ad-x", 3, late=3),  # all late, all counted
        *clicks("ad-x", 3, late=2, minute=1),  # 2 late, both dropped
        *clicks("ad-x", 2, minute=2),  # on time, counted
    ]
    row, summary = one_ad(spark, {0: 3, 1: 1, 2: 2}, silver)
    assert late_figures(row, summary) == ((2, 3, -2, "late"), (2, 3, 2, 0, True))


def test_an_on_time_loss_is_not_excused_by_late_clicks_of_another_minute(spark) -> None:
    """Speed lost 2 on-time clicks at minute 0 and counted the 2 late ones of minute 1: the day
    is short by 2 with 2 late clicks, yet none of them was dropped: unexplained, the day fails."""
    silver = [*clicks("ad-x", 2), *clicks("ad-x", 2, late=2, minute=1)]
    row, summary = one_ad(spark, {1: 2}, silver)
    assert late_figures(row, summary) == ((0, 2, -2, "unknown"), (0, 2, 2, 2, False))


def test_a_late_drop_offset_by_a_duplicate_of_another_minute(spark) -> None:
    """Speed over by a duplicate at minute 0, short by a late click at minute 1: the ad's day
    matches, and the dropped late click is still reported (so late_dropped exceeds missed)."""
    silver = [*clicks("ad-x", 2, copied=1), *clicks("ad-x", 2, late=1, minute=1)]
    row, summary = one_ad(spark, {0: 3, 1: 1}, silver)
    assert late_figures(row, summary) == ((1, 0, 0, "match"), (1, 0, 0, 0, True))
