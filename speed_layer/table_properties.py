"""Delta table properties the stream's tables need, set on a table that lacks them."""

from __future__ import annotations

from pyspark.sql import SparkSession

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


def ensure(spark: SparkSession, location: str, properties: dict[str, str]) -> None:
    """Set the ``properties`` the Delta table at ``location`` does not have with these values
    (one ``ALTER TABLE``; none when all are set already)."""
    from delta.tables import DeltaTable

    current = DeltaTable.forPath(spark, location).detail().first()["properties"] or {}
    missing = {k: v for k, v in properties.items() if current.get(k) != v}
    if missing:
        setting = ", ".join(f"'{k}' = '{v}'" for k, v in missing.items())
        spark.sql(f"ALTER TABLE delta.`{location}` SET TBLPROPERTIES ({setting})")
