"""Reference dimensions ``dims.ads`` and ``dims.users``: loaders write them, both layers read them.

* ``dims.ads``: one row per ``ad_id`` -> ``campaign_id``, ``advertiser_id``, ``cpc_micros``.
* ``dims.users``: one row per pseudonymised ``user_key`` -> ``age_group``, ``segment``.

:func:`load` upserts rows (MERGE on the key, so a reload replaces an ad's campaign or CPC and
never duplicates it). :func:`read` gives both tables, empty and typed when a table does not exist
yet, so enrichment works before any dimension was loaded (it then fills ``unknown``/null).
:class:`DimsCache` keeps them cached in a long-running stream and re-reads a table only when its
Delta version moved, checked at most every ``refresh_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from adclick.catalog import table
from adclick.settings import Settings

SCHEMAS = {
    "dims.ads": "ad_id string, campaign_id string, advertiser_id string, cpc_micros long",
    "dims.users": "user_key string, age_group string, segment string",
}
KEYS = {"dims.ads": "ad_id", "dims.users": "user_key"}


def _rows(name: str, rows: Iterable[Mapping[str, Any]]) -> list[tuple]:
    columns = [c.split()[0] for c in SCHEMAS[name].split(", ")]
    key = KEYS[name]
    unique = {r[key]: tuple(r.get(c) for c in columns) for r in rows if r.get(key) is not None}
    return list(unique.values())


def load(
    spark: SparkSession,
    settings: Settings,
    *,
    ads: Iterable[Mapping[str, Any]] = (),
    users: Iterable[Mapping[str, Any]] = (),
) -> dict[str, int]:
    """Upsert dimension rows (the last row of a key wins); returns the rows given per table."""
    from delta.tables import DeltaTable

    loaded = {}
    for name, rows in (("dims.ads", ads), ("dims.users", users)):
        data = _rows(name, rows)
        loaded[name] = len(data)
        if not data:
            continue
        frame = spark.createDataFrame(data, SCHEMAS[name])
        path = table(name).path(settings)
        if not DeltaTable.isDeltaTable(spark, path):
            frame.write.format("delta").mode("append").save(path)
            continue
        key = KEYS[name]
        (
            DeltaTable.forPath(spark, path)
            .alias("t")
            .merge(frame.alias("s"), f"t.{key} = s.{key}")
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
            .execute()
        )
    return loaded


def _read_one(spark: SparkSession, settings: Settings, name: str, version: int | None = None) -> DataFrame:
    from delta.tables import DeltaTable

    path = table(name).path(settings)
    if version is not None:  # pinned: a cached copy never changes under a running stream
        return spark.read.format("delta").option("versionAsOf", version).load(path)
    if DeltaTable.isDeltaTable(spark, path):
        return spark.read.format("delta").load(path)
    return spark.createDataFrame([], SCHEMAS[name])


def read(spark: SparkSession, settings: Settings) -> tuple[DataFrame, DataFrame]:
    """``(ads, users)``; an absent table reads as empty with its schema."""
    return _read_one(spark, settings, "dims.ads"), _read_one(spark, settings, "dims.users")


def _version(spark: SparkSession, settings: Settings, name: str) -> int | None:
    from delta.tables import DeltaTable

    path = table(name).path(settings)
    if not DeltaTable.isDeltaTable(spark, path):
        return None
    return int(DeltaTable.forPath(spark, path).history(1).first()["version"])


class DimsCache:
    """The dimensions, cached in memory, refreshed when a table's Delta version changes."""

    def __init__(
        self, settings: Settings, refresh_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic
    ):
        self.settings = settings
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._frames: dict[str, DataFrame] = {}
        self._versions: dict[str, int | None] = {}
        self._checked_at: float | None = None

    def get(self, spark: SparkSession) -> tuple[DataFrame, DataFrame]:
        now = self.clock()
        if self._checked_at is None or now - self._checked_at >= self.refresh_seconds:
            self._checked_at = now
            for name in SCHEMAS:
                version = _version(spark, self.settings, name)
                if name not in self._frames or version != self._versions.get(name):
                    old = self._frames.get(name)
                    self._frames[name] = _read_one(spark, self.settings, name, version).cache()
                    self._versions[name] = version
                    if old is not None:
                        old.unpersist()
        return self._frames["dims.ads"], self._frames["dims.users"]
