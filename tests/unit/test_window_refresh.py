"""The 5-minute windows recomputed from the minute table (speed_layer/window_refresh.py): which
windows a range of minutes needs and which minute rows they read, the replace on a temp Delta
lake, and when the background refresh runs."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyspark.sql.functions as F
import pytest
from pyspark.testing import assertDataFrameEqual

from adclick.aggregates import minute_aggregates, sliding_from_minutes, with_partition_date
from adclick.catalog import table
from adclick.settings import Settings
from speed_layer import window_refresh
from speed_layer.window_refresh import WindowRefresh, refresh_windows, windows_of

T0 = datetime(2026, 11, 27, 23, 50)  # naive UTC, as the stream's minutes are; crosses midnight
EVENTS = (
    "event_id string, event_type string, event_time timestamp, ad_id string, campaign_id string, "
    "country string, device_type string, user_key string, cost_micros long, revenue_micros long, "
    "is_fraud boolean"
)


def minute(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def _events(spark, n: int, *, offset: int = 0, span_minutes: int = 20):
    rows = [
        (
            f"e{offset + i}",
            ("impression", "click", "conversion")[i % 3],
            T0 + timedelta(seconds=(i * 61) % (span_minutes * 60)),
            f"ad-{i % 3}",
            "camp-1",
            ("FR", "DE")[i % 2],
            "mobile",
            f"u{i % 9}",
            i,
            10 * i,
            i % 7 == 0,
        )
        for i in range(n)
    ]
    return spark.createDataFrame(rows, EVENTS)


def _minute_rows(events):
    return with_partition_date(minute_aggregates(events))


def _windows(frame):
    return frame.drop("users_sketch")


def test_a_range_of_minutes_needs_the_windows_starting_up_to_4_minutes_before_it(spark) -> None:
    minutes = minute_aggregates(_events(spark, 200))
    first, last = minute(8), minute(10)
    # only the minute rows the refresh reads: [first - 4 min, last + 4 min]
    read = minutes.where(F.col("window_start").between(minute(4), minute(14)))
    got = windows_of(read, first, last)
    starts = sorted({r.window_start for r in got.select("window_start").collect()})
    assert starts == [minute(n) for n in range(4, 11)]  # every window holding minute 8, 9 or 10
    # ... and each is complete: equal to the windows derived from every minute row
    want = with_partition_date(sliding_from_minutes(minutes)).where(
        F.col("window_start").between(minute(4), minute(10))
    )
    assertDataFrameEqual(_windows(got), _windows(want))


@pytest.fixture
def lake(tmp_path) -> Settings:
    return Settings(home=tmp_path, lake_root=(tmp_path / "lake").as_uri())


def _write_minutes(spark, settings: Settings, events) -> None:
    (
        _minute_rows(events)
        .write.format("delta")
        .mode("overwrite")
        .partitionBy("window_date")
        .save(table("speed.ad_clicks_minute").path(settings))
    )


def _five(spark, settings: Settings):
    return spark.read.format("delta").load(table("speed.ad_clicks_5min").path(settings))


def test_refresh_replaces_exactly_the_windows_of_the_touched_minutes(spark, lake) -> None:
    before = _events(spark, 300)
    _write_minutes(spark, lake, before)
    refresh_windows(spark, lake, minute(0), minute(19))  # creates the table
    all_windows = with_partition_date(sliding_from_minutes(minute_aggregates(before)))
    assertDataFrameEqual(
        _windows(_five(spark, lake)), _windows(all_windows.where(F.col("window_start") >= minute(-4)))
    )
    assert {
        r.window_date.isoformat() for r in _five(spark, lake).select("window_date").distinct().collect()
    } == {
        "2026-11-27",
        "2026-11-28",
    }

    # new events in minutes 12..13 land in the minute table; refresh those minutes only
    extra = _events(spark, 40, offset=10_000, span_minutes=2).withColumn(
        "event_time", F.col("event_time") + F.expr("INTERVAL 12 MINUTES")
    )
    after = before.unionByName(extra)
    _write_minutes(spark, lake, after)
    refresh_windows(spark, lake, minute(12), minute(13))
    new_windows = with_partition_date(sliding_from_minutes(minute_aggregates(after)))
    touched = F.col("window_start").between(minute(8), minute(13))
    five = _five(spark, lake)
    assertDataFrameEqual(_windows(five.where(touched)), _windows(new_windows.where(touched)))
    # the windows not holding minute 12 or 13 keep their rows (here equal to before anyway)
    assertDataFrameEqual(
        _windows(five.where(~touched)),
        _windows(all_windows.where((F.col("window_start") >= minute(-4)) & ~touched)),
    )
    assert (
        five.where(touched).agg(F.sum("clicks")).first()[0]
        > all_windows.where(touched).agg(F.sum("clicks")).first()[0]
    )

    # a refresh run again (a retry, or after a crash) writes the same rows
    rows = sorted(map(tuple, _windows(five).collect()))
    refresh_windows(spark, lake, minute(12), minute(13))
    assert sorted(map(tuple, _windows(_five(spark, lake)).collect())) == rows


def test_without_a_minute_table_a_refresh_does_nothing(spark, lake) -> None:
    refresh_windows(spark, lake, minute(0), minute(1))
    assert not (lake.home / "lake" / "speed" / "ad_clicks_5min").exists()


class Recorder:
    def __init__(self, fail: int = 0) -> None:
        self.calls: list[tuple[datetime, datetime]] = []
        self.fail = fail

    def __call__(self, spark, settings, first, last) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("store unavailable")
        self.calls.append((first, last))


def test_every_0_refreshes_after_each_batch_in_its_thread(spark, monkeypatch) -> None:
    rec = Recorder()
    monkeypatch.setattr(window_refresh, "refresh_windows", rec)
    windows = WindowRefresh(Settings(speed_windows_refresh_seconds=0))
    windows.touched(minute(3), minute(4))
    windows.after_batch(spark)
    windows.after_batch(spark)  # nothing pending: no refresh
    assert rec.calls == [(minute(3), minute(4))] and windows.pending() is None


def test_background_refreshes_are_spaced_and_the_rest_is_flushed(spark, monkeypatch) -> None:
    rec = Recorder()
    monkeypatch.setattr(window_refresh, "refresh_windows", rec)
    windows = WindowRefresh(Settings(speed_windows_refresh_seconds=3600))
    windows.touched(minute(5), minute(6))
    windows.after_batch(spark)  # the first one starts at once
    windows.flush(spark)  # waits for it
    assert rec.calls == [(minute(5), minute(6))]
    windows.touched(minute(9), minute(9))
    windows.touched(minute(2), minute(4))  # a late minute: the range widens
    windows.after_batch(spark)  # within the hour: not yet
    assert windows.pending() == (minute(2), minute(9)) and len(rec.calls) == 1
    windows.flush(spark)
    assert rec.calls[-1] == (minute(2), minute(9)) and windows.pending() is None
    windows.close()


def test_a_failed_refresh_keeps_its_minutes_for_the_next(spark, monkeypatch) -> None:
    rec = Recorder(fail=1)
    monkeypatch.setattr(window_refresh, "refresh_windows", rec)
    logged: list[str] = []
    windows = WindowRefresh(Settings(speed_windows_refresh_seconds=3600), log=logged.append)
    windows.touched(minute(1), minute(2))
    windows.after_batch(spark)  # fails in the background: logged, range kept
    windows.touched(minute(7), minute(7))
    windows.flush(spark)
    assert rec.calls == [(minute(1), minute(7))]
    assert len(logged) == 1 and "store unavailable" in logged[0]
    windows.close()


def test_a_failed_flush_raises_and_keeps_the_range(spark, monkeypatch) -> None:
    rec = Recorder(fail=1)
    monkeypatch.setattr(window_refresh, "refresh_windows", rec)
    windows = WindowRefresh(Settings(speed_windows_refresh_seconds=0))
    windows.touched(minute(1), minute(2))
    with pytest.raises(RuntimeError, match="store unavailable"):
        windows.flush(spark)
    assert windows.pending() == (minute(1), minute(2))


def test_catch_up_marks_the_minutes_behind_the_latest_by_the_watermark_and_a_window(spark, lake) -> None:
    _write_minutes(spark, lake, _events(spark, 100))
    latest = max(r.window_start for r in _minute_rows(_events(spark, 100)).select("window_start").collect())
    windows = WindowRefresh(lake.model_copy(update={"speed_watermark": "10 minutes"}))
    windows.catch_up(spark)
    assert windows.pending() == (latest - timedelta(minutes=15), latest)
    empty = WindowRefresh(Settings(home=lake.home / "other", lake_root=(lake.home / "other").as_uri()))
    empty.catch_up(spark)
    assert empty.pending() is None
