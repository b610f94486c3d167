"""How the batch jobs write their partitions (batch_layer.lake.replace_partition, jobs.write_tables):
the statistics columns the catalog names, and several tables written at once."""

from __future__ import annotations

from datetime import date

import pyspark.sql.functions as F
import pytest
from delta.tables import DeltaTable

from adclick.catalog import table
from adclick.settings import Settings
from adclick.table_properties import STATS_COLUMNS
from batch_layer import jobs, lake

DAY = date(2026, 11, 27)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path, lake_root=(tmp_path / "lake").as_uri())


def _properties(spark, settings: Settings, name: str) -> dict[str, str]:
    return DeltaTable.forPath(spark, table(name).path(settings)).detail().first()["properties"] or {}


def _events(spark, day: date, n: int):
    return spark.range(n).select(
        F.format_string("e%d", "id").alias("event_id"),
        F.lit("click").alias("event_type"),
        F.lit("ad-1").alias("ad_id"),
        F.lit("cmp-1").alias("campaign_id"),
        F.lit(day).cast("timestamp").alias("event_time"),
        F.lit(day).alias("event_date"),
    )


def test_silver_is_created_with_its_statistics_columns(spark, settings) -> None:
    lake.replace_partition(_events(spark, DAY, 5), settings, "silver.events", DAY)
    columns = table("silver.events").stats_columns
    assert columns and _properties(spark, settings, "silver.events")[STATS_COLUMNS] == columns


def test_a_silver_table_written_before_gets_them_at_its_next_write(spark, settings) -> None:
    location = table("silver.events").path(settings)
    _events(spark, DAY, 5).write.format("delta").partitionBy("event_date").save(location)
    assert STATS_COLUMNS not in _properties(spark, settings, "silver.events")
    lake.replace_partition(_events(spark, DAY, 3), settings, "silver.events", DAY)
    assert (
        _properties(spark, settings, "silver.events")[STATS_COLUMNS] == table("silver.events").stats_columns
    )
    assert lake.read(spark, settings, "silver.events").count() == 3  # the day replaced, not appended


def test_write_tables_writes_each_table_and_records_them_in_order(spark, settings) -> None:
    frames = {
        "gold.ad_clicks_daily": spark.range(4).select("id", F.lit(DAY).alias("day")),
        "gold.audience_daily": spark.range(7).select("id", F.lit(DAY).alias("day")),
        "gold.experiments_daily": spark.range(2).select("id", F.lit(DAY).alias("day")),
    }
    lineage = jobs.Lineage(lake.Snapshot(spark, settings))
    jobs.write_tables(frames, settings, DAY, lineage)
    assert [ref.rpartition("@")[0] for ref in lineage.outputs] == list(frames)
    assert lineage.rows_out == 4 + 7 + 2
    for name, frame in frames.items():
        assert lake.read(spark, settings, name).count() == frame.count()


def test_write_tables_raises_a_failed_write_after_the_others_ended(spark, settings) -> None:
    frames = {
        "gold.ad_clicks_daily": spark.range(4).select("id", F.lit(DAY).alias("day")),
        "gold.audience_daily": spark.range(3).select("id"),  # no partition column: the write fails
    }
    with pytest.raises(Exception, match="day"):
        jobs.write_tables(frames, settings, DAY, jobs.Lineage(lake.Snapshot(spark, settings)))
    assert lake.read(spark, settings, "gold.ad_clicks_daily").count() == 4
