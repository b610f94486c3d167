"""The statistics columns the catalog names reach the bronze tables the stream creates
(speed_layer.bronze_sink.ensure_tables, through adclick.table_properties), also on tables an
earlier release created without them."""

from __future__ import annotations

from delta.tables import DeltaTable

from adclick.catalog import table
from adclick.settings import Settings
from adclick.table_properties import STATS_COLUMNS
from speed_layer import bronze_sink

BRONZE = ("bronze.events", "bronze.rejects")


def _stats(spark, settings: Settings, name: str) -> str | None:
    location = table(name).path(settings)
    return (DeltaTable.forPath(spark, location).detail().first()["properties"] or {}).get(STATS_COLUMNS)


def test_bronze_tables_are_created_with_their_statistics_columns(spark, tmp_path) -> None:
    settings = Settings(home=tmp_path, lake_root=(tmp_path / "lake").as_uri())
    bronze_sink.ensure_tables(spark, settings)
    for name in BRONZE:
        assert table(name).stats_columns and _stats(spark, settings, name) == table(name).stats_columns


def test_bronze_tables_without_them_get_them_when_the_stream_starts(spark, tmp_path) -> None:
    settings = Settings(home=tmp_path, lake_root=(tmp_path / "lake").as_uri())
    bronze_sink.ensure_tables(spark, settings)
    for name in BRONZE:
        location = table(name).path(settings)
        spark.sql(f"ALTER TABLE delta.`{location}` UNSET TBLPROPERTIES ('{STATS_COLUMNS}')")
        assert _stats(spark, settings, name) is None
    bronze_sink.ensure_tables(spark, settings)
    assert [_stats(spark, settings, name) for name in BRONZE] == [table(n).stats_columns for n in BRONZE]
