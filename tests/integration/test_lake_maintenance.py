"""Lake maintenance on real Spark + Delta, on a private lake: a bronze.events landed in many small
commits and a speed.ad_clicks_minute-shaped table are compacted for the closed day only, with the
same rows, time travel kept by VACUUM's retention and ended by a zero one.

Needs no service: Delta is a library here, so the module has its own session (the tier's `spark`
fixture starts the whole stack) and reuses one already running in this process.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pyspark.sql.functions as F
import pytest
from pyspark.testing import assertDataFrameEqual

from adclick.settings import Settings, get_settings

TODAY = date(2026, 11, 30)
YESTERDAY = TODAY - timedelta(days=1)
EARLIER = TODAY - timedelta(days=2)
KAFKA_COLS = "key binary, value binary, topic string, partition int, offset long, timestamp timestamp"
SPEED_COLS = "window_start timestamp, ad_id string, clicks long, window_date date"


@pytest.fixture(scope="module")
def lake_spark():
    from pyspark.sql import SparkSession

    from adclick.spark import get_spark

    running = SparkSession.getActiveSession()
    session = get_spark(
        "adclick-tests", settings=get_settings(), extra_conf={"spark.sql.shuffle.partitions": "2"}
    )
    yield session
    if running is None:
        session.stop()


@pytest.fixture
def private_lake(tmp_path) -> Settings:
    return get_settings().model_copy(
        update={"home": tmp_path, "lake_root": (tmp_path / "lake").as_uri(), "maintenance_min_files": 4}
    )


def _bronze_commit(spark, settings: Settings, days: list[date], commit: int) -> None:
    """One stream-like commit to bronze.events: 4 events per day, 2 in eu (FR) and 2 in na (US),
    one file per (day, region)."""
    from adclick.contract import to_event, validate_incoming
    from batch_layer import lake
    from speed_layer.parse import to_bronze_rows, with_parsed_event

    records = []
    for day in days:
        for i in range(4):
            ts = datetime(day.year, day.month, day.day, 10, tzinfo=UTC) + timedelta(minutes=commit, seconds=i)
            raw = {
                "event_id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{day}-{commit}-{i}")),
                "ad_id": f"ad-{i % 3}",
                "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "country": "FR" if i % 2 else "US",
                "user_id": f"u-{commit}-{i}",
                "ip": "10.1.2.3",
                "colour": "blue" if i % 2 else "green",  # an extra field: the attributes map
            }
            received = ts + timedelta(seconds=1)
            event = to_event(
                validate_incoming(raw, now=received),
                key=b"k",
                received_at_ms=int(received.timestamp() * 1000),
            )
            records.append(
                (b"ad", event.to_json(), "adclick.events", 0, commit * 100 + len(records), received)
            )
    rows = to_bronze_rows(with_parsed_event(spark.createDataFrame(records, KAFKA_COLS)))
    lake.append(rows.coalesce(1), settings, "bronze.events")


def _speed_commit(spark, settings: Settings, days: list[date], commit: int) -> None:
    from batch_layer import lake

    rows = [
        (datetime(d.year, d.month, d.day, 10, commit, tzinfo=UTC), f"ad-{commit % 3}", commit + 1, d)
        for d in days
    ]
    lake.append(spark.createDataFrame(rows, SPEED_COLS).coalesce(1), settings, "speed.ad_clicks_minute")


def _rows(spark, settings: Settings, name: str, at: int | None = None):
    from batch_layer import lake

    frame = lake.read(spark, settings, name, at)
    return frame.withColumn("attributes", F.to_json("attributes")) if "attributes" in frame.columns else frame


def test_closed_days_are_compacted_with_the_same_rows_and_time_travel_lasts_as_long_as_vacuum_keeps(
    lake_spark, private_lake: Settings
) -> None:
    from batch_layer import lake
    from batch_layer.maintenance import run_maintenance
    from speed_layer.bronze_sink import ensure_tables

    spark, settings = lake_spark, private_lake
    ensure_tables(spark, settings)
    for commit in range(6):
        _bronze_commit(spark, settings, [YESTERDAY, TODAY], commit)
    for commit in range(5):
        _speed_commit(spark, settings, [YESTERDAY, TODAY], commit)
    for commit in range(2):
        _speed_commit(spark, settings, [EARLIER], commit)  # 2 files: under the minimum, left alone

    y, t, e = YESTERDAY.isoformat(), TODAY.isoformat(), EARLIER.isoformat()
    files = lake.partition_file_counts(spark, settings, "bronze.events")
    assert files == {(y, "eu"): 6, (y, "na"): 6, (t, "eu"): 6, (t, "na"): 6}
    assert lake.partition_file_counts(spark, settings, "speed.ad_clicks_minute") == {
        (y,): 5,
        (t,): 5,
        (e,): 2,
    }
    before = lake.version(spark, settings, "bronze.events")
    by_day = lake.partition_files(spark, settings, "bronze.events")
    old_files, today_files = sorted(by_day[YESTERDAY]), sorted(by_day[TODAY])
    # Collected, not cached: Spark answers a cached read of a table version from the cache, which
    # hides the version's files from partition_file_counts.
    rows_before = _rows(spark, settings, "bronze.events", before).collect()
    speed_before = _rows(spark, settings, "speed.ad_clicks_minute").collect()
    assert len(rows_before) == 48 and len(old_files) == 12

    lines: list[str] = []
    result = run_maintenance(spark, settings, TODAY, log=lines.append)

    logged = "\n".join(lines)
    after = lake.partition_file_counts(spark, settings, "bronze.events")
    assert after[(y, "eu")] <= 2 and after[(y, "na")] <= 2, logged
    assert (after[(t, "eu")], after[(t, "na")]) == (6, 6)  # the open day keeps every file
    now = lake.version(spark, settings, "bronze.events")
    assert lake.partition_files_at(spark, settings, "bronze.events", TODAY, now) == today_files
    speed = lake.partition_file_counts(spark, settings, "speed.ad_clicks_minute")
    assert speed[(y,)] <= 2 and (speed[(t,)], speed[(e,)]) == (5, 2), logged
    bronze = result["tables"]["bronze.events"]
    assert (bronze["compacted"], bronze["open"], bronze["files_before"]) == ([y], 1, 12)
    assert bronze["files_after"] == after[(y, "eu")] + after[(y, "na")] and bronze["vacuumed"]
    assert result["tables"]["speed.ad_clicks_minute"]["skipped"] == 1
    assert result["tables"]["bronze.rejects"]["compacted"] == [] and result["compacted"] == 2

    assertDataFrameEqual(_rows(spark, settings, "bronze.events"), rows_before)  # OPTIMIZE moves no row
    assertDataFrameEqual(_rows(spark, settings, "speed.ad_clicks_minute"), speed_before)
    # VACUUM kept the removed files (168 h): the version before OPTIMIZE still reads, from them.
    assertDataFrameEqual(_rows(spark, settings, "bronze.events", before), rows_before)
    assert set(old_files) <= set(lake.stored_files(spark, settings, "bronze.events"))
    log = lake.read(spark, settings, "ops.lifecycle_log").where(F.col("run_id") == result["run_id"]).collect()
    assert sorted((r.action, r.table, str(r.day)) for r in log) == [
        ("compact", "bronze.events", y),
        ("compact", "speed.ad_clicks_minute", y),
        ("vacuum", "bronze.events", "None"),
        ("vacuum", "speed.ad_clicks_minute", "None"),
    ]

    compacted = lake.version(spark, settings, "bronze.events")
    again = run_maintenance(spark, settings, TODAY, log=lines.append)
    assert again["compacted"] == 0 and again["vacuumed"] == 0  # compacted already: nothing to do
    assert lake.version(spark, settings, "bronze.events") == compacted

    # Late events add small files to the closed day; the next run compacts it again and, keeping
    # nothing (0 h), deletes every removed file: the version before the first OPTIMIZE is gone.
    for commit in range(6, 10):
        _bronze_commit(spark, settings, [YESTERDAY], commit)
    rows_late = _rows(spark, settings, "bronze.events").collect()
    assert len(rows_late) == 48 + 16
    keep_nothing = settings.model_copy(update={"maintenance_vacuum_hours": 0})
    last = run_maintenance(spark, keep_nothing, TODAY, tables=["bronze.events"], log=lines.append)
    assert last["tables"]["bronze.events"]["compacted"] == [y] and last["vacuumed"] == 1
    on_disk = set(lake.stored_files(spark, settings, "bronze.events"))
    assert not set(old_files) & on_disk, "VACUUM 0 h left files the first OPTIMIZE removed"
    assert set(today_files) <= on_disk
    assertDataFrameEqual(_rows(spark, settings, "bronze.events"), rows_late)
    with pytest.raises(Exception, match=r"(?i)not exist|FileNotFound|FILE_NOT_EXIST"):
        _rows(spark, settings, "bronze.events", before).collect()
