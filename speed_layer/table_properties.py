"""Delta table properties the stream's tables need, set on a table that lacks them."""

from __future__ import annotations

from pyspark.sql import SparkSession


def ensure(spark: SparkSession, location: str, properties: dict[str, str]) -> None:
    """Set the ``properties`` the Delta table at ``location`` does not have with these values
    (one ``ALTER TABLE``; none when all are set already)."""
    from delta.tables import DeltaTable

    current = DeltaTable.forPath(spark, location).detail().first()["properties"] or {}
    missing = {k: v for k, v in properties.items() if current.get(k) != v}
    if missing:
        setting = ", ".join(f"'{k}' = '{v}'" for k, v in missing.items())
        spark.sql(f"ALTER TABLE delta.`{location}` SET TBLPROPERTIES ({setting})")
