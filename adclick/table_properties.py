"""Delta table properties the lake's tables need, set on a table that lacks them (a lake written
by an earlier release gets them at its next write)."""

from __future__ import annotations

from pyspark.sql import DataFrameWriter, SparkSession

from adclick.catalog import Table
from adclick.settings import Settings

# The speed tables. Deletion vectors: a MERGE (or a window refresh) marks the updated rows of a
# file instead of rewriting the whole file (a minute's rows are updated every micro-batch). Auto
# compaction folds the small files each write adds into larger ones as they accumulate, so the
# current day's partition stays a few files.
SPEED = {
    "delta.enableDeletionVectors": "true",
    "delta.autoOptimize.autoCompact": "true",
}

# Delta's idempotent-write session settings: a write under (app id, version) that the table has
# already committed is skipped (the speed MERGE's exactly-once rule).
TXN_APP = "spark.databricks.delta.write.txnAppId"
TXN_VERSION = "spark.databricks.delta.write.txnVersion"

# The columns Delta keeps min/max statistics of (the catalog's ``Table.stats_columns``).
STATS_COLUMNS = "delta.dataSkippingStatsColumns"


def ensure(spark: SparkSession, location: str, properties: dict[str, str]) -> None:
    """Set the ``properties`` the Delta table at ``location`` does not have with these values
    (one ``ALTER TABLE``; none when all are set already)."""
    from delta.tables import DeltaTable

    current = DeltaTable.forPath(spark, location).detail().first()["properties"] or {}
    missing = {k: v for k, v in properties.items() if current.get(k) != v}
    if missing:
        setting = ", ".join(f"'{k}' = '{v}'" for k, v in missing.items())
        spark.sql(f"ALTER TABLE delta.`{location}` SET TBLPROPERTIES ({setting})")


def with_stats_columns(
    writer: DataFrameWriter, spark: SparkSession, settings: Settings, t: Table
) -> DataFrameWriter:
    """``writer`` with table ``t``'s statistics columns: set on the table now when it exists, and
    as a write option, which Delta takes when the write creates the table. Unchanged when the
    catalog gives ``t`` none (Delta's default, the first 32 columns)."""
    if not t.stats_columns:
        return writer
    from delta.tables import DeltaTable

    location = t.path(settings)
    if DeltaTable.isDeltaTable(spark, location):
        ensure(spark, location, {STATS_COLUMNS: t.stats_columns})
    return writer.option(STATS_COLUMNS, t.stats_columns)
