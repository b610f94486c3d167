"""Every Delta read and write of the batch layer: tables at a pinned version, partition overwrites,
appends, MERGEs and table versions.

Reads: any table of :mod:`adclick.catalog`, always at one explicit version (``versionAsOf``).
A step takes a :class:`Snapshot` when it starts; the snapshot resolves the current version of
each input table once, and every later read of that table in the step sees that version, so rows
landing in bronze (or a concurrent job rewriting silver) while a step runs never mix two versions
into one result. Writes: ``replaceWhere`` overwrites of one partition (:func:`replace_partition`),
blind appends (:func:`append`, :func:`append_rows`) and insert-only MERGEs (:func:`insert_new`).
No other module of ``batch_layer/`` touches ``spark.read``, ``DataFrame.write`` or ``DeltaTable``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

import pyspark.sql.functions as F
import pyspark.sql.types as T
from pyspark.sql import DataFrame, SparkSession

from adclick import table_properties
from adclick.catalog import table
from adclick.errors import AdclickError
from adclick.settings import Settings


class MissingInputError(AdclickError):
    """A batch job's input table does not exist yet."""


def path(settings: Settings, name: str) -> str:
    return table(name).path(settings)


def version(spark: SparkSession, settings: Settings, name: str) -> int | None:
    """The latest version of table ``name``, or None when there is no table yet."""
    return table_version(spark, path(settings, name))


def table_version(spark: SparkSession, location: str) -> int | None:
    """The latest version of the Delta table at ``location``, or None when there is none."""
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, location):
        return None
    return int(DeltaTable.forPath(spark, location).history(1).first()["version"])


def read(spark: SparkSession, settings: Settings, name: str, at: int | None = None) -> DataFrame:
    """Table ``name`` at version ``at`` (None: the version it has now, resolved once, here).

    Raises :class:`MissingInputError` when there is no table.
    """
    if at is None:
        at = version(spark, settings, name)
        if at is None:
            raise MissingInputError(
                f"{name}: no Delta table at {path(settings, name)}; its producer has not run yet"
            )
    return spark.read.format("delta").option("versionAsOf", at).load(path(settings, name))


def read_if_exists(spark: SparkSession, settings: Settings, name: str) -> DataFrame | None:
    """Table ``name`` at its current version, or None when it does not exist yet."""
    at = version(spark, settings, name)
    return None if at is None else read(spark, settings, name, at)


def partition(spark: SparkSession, settings: Settings, name: str, value: date, at: int) -> DataFrame:
    """The rows of partition ``value`` (the table's first partition column) at version ``at``."""
    column = table(name).partition_by[0]
    return read(spark, settings, name, at).where(F.col(column) == F.lit(value))


class Snapshot:
    """The input tables of one step, each read at the version it had when the step pinned it.

    :meth:`pin` resolves versions (once per table: pinning again keeps the first version);
    :meth:`read` pins a table it has not seen yet. :attr:`inputs` lists ``table@version`` of the
    pinned tables that exist, in pin order (the ``inputs`` of an ``ops.job_runs`` row).
    """

    def __init__(self, spark: SparkSession, settings: Settings) -> None:
        self.spark, self.settings = spark, settings
        self._versions: dict[str, int | None] = {}

    def pin(self, *names: str) -> Snapshot:
        for name in names:
            if name not in self._versions:
                self._versions[name] = version(self.spark, self.settings, name)
        return self

    def version(self, name: str) -> int | None:
        """The pinned version of ``name`` (None: no table when it was pinned)."""
        self.pin(name)
        return self._versions[name]

    @property
    def inputs(self) -> list[str]:
        return [f"{name}@{v}" for name, v in self._versions.items() if v is not None]

    def read(self, name: str, *, empty_schema: str | T.StructType | None = None) -> DataFrame:
        """Table ``name`` at its pinned version; a missing table reads as empty with
        ``empty_schema`` when one is given, else raises :class:`MissingInputError`."""
        at = self.version(name)
        if at is None and empty_schema is not None:
            return self.spark.createDataFrame([], empty_schema)
        if at is None:
            raise MissingInputError(
                f"{name}: no Delta table at {path(self.settings, name)}; its producer has not run yet"
            )
        return read(self.spark, self.settings, name, at)

    def event_day(self, name: str, day: date) -> DataFrame:
        """The rows of an event table (bronze or silver) whose event time is on ``day``."""
        return self.read(name).where(F.col("event_date") == F.lit(day))


def replace_partition(df: DataFrame, settings: Settings, name: str, value: date) -> int:
    """Replace partition ``value`` of table ``name`` (its first partition column) with ``df``;
    the table is created on the first write. Returns the table's version after the write."""
    t = table(name)
    column = t.partition_by[0]
    writer = (
        df.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", f"{column} = DATE'{value.isoformat()}'")
        .option("mergeSchema", str(t.evolves).lower())
        .partitionBy(*t.partition_by)
    )
    writer = table_properties.with_stats_columns(writer, df.sparkSession, settings, t)
    writer.save(t.path(settings))
    written = version(df.sparkSession, settings, name)
    assert written is not None
    return written


def append(frame: DataFrame, settings: Settings, name: str) -> None:
    """Append ``frame`` to table ``name`` (created on the first write). Blind appends never conflict
    with another writer appending at the same time."""
    t = table(name)
    (
        frame.write.format("delta")
        .mode("append")
        .option("mergeSchema", str(t.evolves).lower())
        .partitionBy(*t.partition_by)
        .save(t.path(settings))
    )


def append_rows(
    spark: SparkSession,
    settings: Settings,
    name: str,
    rows: Iterable[Mapping[str, Any]],
    schema: T.StructType,
) -> None:
    """Append ``rows`` (dicts; a missing key is null) to table ``name`` with ``schema``, so the first
    write (or an empty one) creates a well-typed table."""
    data = [tuple(row.get(f.name) for f in schema.fields) for row in rows]
    append(spark.createDataFrame(data, schema), settings, name)


def insert_new(frame: DataFrame, settings: Settings, name: str, key: str) -> None:
    """MERGE ``frame`` into table ``name`` inserting only the rows whose ``key`` is not there yet
    (the table is created on the first write), so writing the same rows again adds nothing."""
    from delta.tables import DeltaTable

    spark = frame.sparkSession
    location = path(settings, name)
    if not DeltaTable.isDeltaTable(spark, location):
        append(frame, settings, name)
        return
    (
        DeltaTable.forPath(spark, location)
        .alias("t")
        .merge(frame.alias("s"), f"t.{key} = s.{key}")
        .whenNotMatchedInsertAll()
        .execute()
    )


# Lifecycle (batch_layer.lifecycle, batch_layer.archive, batch_layer.maintenance): partition files,
# deletes, compaction, VACUUM, and the Parquet files of the archive.


def partition_files(spark: SparkSession, settings: Settings, name: str) -> dict[date, list[str]]:
    """The data files of table ``name`` per value of its first (date) partition column, read from
    the Delta log (no data is scanned); empty when there is no table."""
    at = version(spark, settings, name)
    if at is None:
        return {}
    return _files_per_day(read(spark, settings, name, at), table(name).partition_by[0])


def partition_files_at(spark: SparkSession, settings: Settings, name: str, value: date, at: int) -> list[str]:
    """The data files of partition ``value`` (first partition column) of table ``name`` at version
    ``at``, sorted, read from that version's Delta log (no data is scanned)."""
    files = _files_per_day(read(spark, settings, name, at), table(name).partition_by[0])
    return sorted(files.get(value, []))


def partition_file_counts(spark: SparkSession, settings: Settings, name: str) -> dict[tuple[str, ...], int]:
    """The number of active data files in each partition of table ``name`` at its current version,
    keyed by the values of all its partition columns as the partition directories spell them
    (text; ``__HIVE_DEFAULT_PARTITION__`` for a null). From the Delta log's file list, so no data
    is scanned; empty when there is no table."""
    from urllib.parse import unquote

    at = version(spark, settings, name)
    if at is None:
        return {}
    columns = table(name).partition_by
    counts: dict[tuple[str, ...], int] = {}
    for location in read(spark, settings, name, at).inputFiles():
        values = dict(
            segment.split("=", 1) for segment in unquote(location).split("/")[:-1] if "=" in segment
        )
        if all(c in values for c in columns):
            key = tuple(values[c] for c in columns)
            counts[key] = counts.get(key, 0) + 1
    return counts


def _files_per_day(frame: DataFrame, column: str) -> dict[date, list[str]]:
    import re
    from urllib.parse import unquote

    pattern = re.compile(rf"/{re.escape(column)}=(\d{{4}}-\d{{2}}-\d{{2}})/")
    files: dict[date, list[str]] = {}
    for location in frame.inputFiles():
        found = pattern.search(unquote(location))
        if found:
            files.setdefault(date.fromisoformat(found.group(1)), []).append(location)
    return files


def delete_partition(spark: SparkSession, settings: Settings, name: str, value: date) -> int | None:
    """Delete partition ``value`` (first partition column) of table ``name`` (a metadata-only
    commit: whole files are removed); returns the table's version after it (None: no table)."""
    from delta.tables import DeltaTable

    location = path(settings, name)
    if not DeltaTable.isDeltaTable(spark, location):
        return None
    column = table(name).partition_by[0]
    DeltaTable.forPath(spark, location).delete(F.col(column) == F.lit(value))
    return version(spark, settings, name)


def compact_partition(
    spark: SparkSession, settings: Settings, name: str, value: date, zorder_by: str | None
) -> None:
    """OPTIMIZE partition ``value`` of table ``name`` (Z-ordered by ``zorder_by`` when the table
    has that column): its small files become few large ones; the rows do not change."""
    from delta.tables import DeltaTable

    column = table(name).partition_by[0]
    builder = (
        DeltaTable.forPath(spark, path(settings, name))
        .optimize()
        .where(f"{column} = DATE'{value.isoformat()}'")
    )
    columns = read(spark, settings, name).columns
    if zorder_by and zorder_by in columns:
        builder.executeZOrderBy(zorder_by)
    else:
        builder.executeCompaction()


def vacuum(spark: SparkSession, settings: Settings, name: str, retain_hours: int) -> None:
    """VACUUM table ``name``: files removed more than ``retain_hours`` ago are deleted for good
    (time travel to versions older than that ends). Below Delta's 168 h safety floor the check
    is switched off for this call only (the policy setting is the operator's decision).

    Delta 4 ignores a retention other than 0 h (``vacuum.retentionWindowIgnore.enabled``, on by
    default) and keeps the table's ``delta.deletedFileRetentionDuration`` (7 days) instead; that
    is switched off for this call too, so ``retain_hours`` is what VACUUM keeps."""
    from delta.tables import DeltaTable

    overrides = {"spark.databricks.delta.vacuum.retentionWindowIgnore.enabled": "false"}
    if retain_hours < 168:
        overrides["spark.databricks.delta.retentionDurationCheck.enabled"] = "false"
    before = {key: spark.conf.get(key, None) for key in overrides}
    for key, value in overrides.items():
        spark.conf.set(key, value)
    try:
        DeltaTable.forPath(spark, path(settings, name)).vacuum(float(retain_hours))
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def write_parquet(frame: DataFrame, directory: str, max_rows_per_file: int) -> None:
    """``frame`` as zstd Parquet files under ``directory`` (a URI), one writer, at most
    ``max_rows_per_file`` rows per file: the archive's export format."""
    (
        frame.repartition(1)
        .write.mode("overwrite")
        .option("compression", "zstd")
        .option("maxRecordsPerFile", max_rows_per_file)
        .parquet(directory)
    )


def file_uri(local: Any) -> str:
    """A local path as the URI Spark reads: ``file://`` and the path as is (``Path.as_uri()``
    percent-encodes the ``=`` of a ``column=value`` folder, which Spark does not decode)."""
    return f"file://{local}"


def read_parquet(spark: SparkSession, *paths: str) -> DataFrame:
    return spark.read.parquet(*paths)


# Erasure (batch_layer.erasure): row deletes by predicate, and every Parquet file a table's
# directory holds, referenced or not.


def delete_where(
    spark: SparkSession, settings: Settings, name: str, condition: Any, *, attempts: int = 5
) -> dict[str, int]:
    """DELETE the rows of table ``name`` matching ``condition`` (a Column): the files holding them
    are rewritten without them. Returns the commit's metrics (``rows``, ``files_removed``,
    ``files_added``; zeros when nothing matched or there is no table).

    A concurrent append to a partition the DELETE read (the stream landing bronze) makes Delta
    refuse the commit; the DELETE is then retried on the new version, up to ``attempts`` times.
    """
    from delta.exceptions import ConcurrentAppendException, ConcurrentDeleteReadException
    from delta.tables import DeltaTable

    location = path(settings, name)
    none = {"rows": 0, "files_removed": 0, "files_added": 0}
    if not DeltaTable.isDeltaTable(spark, location):
        return none
    for attempt in range(1, attempts + 1):
        before = version(spark, settings, name)
        try:
            DeltaTable.forPath(spark, location).delete(condition)
            break
        except (ConcurrentAppendException, ConcurrentDeleteReadException):
            if attempt == attempts:
                raise
    commits = (
        DeltaTable.forPath(spark, location)
        .history()
        .where((F.col("version") > F.lit(before)) & (F.col("operation") == "DELETE"))
        .orderBy(F.col("version").desc())
        .limit(1)
        .collect()
    )
    if not commits:
        return none
    metrics = commits[0]["operationMetrics"] or {}
    return {
        "rows": int(metrics.get("numDeletedRows", 0)),
        "files_removed": int(metrics.get("numRemovedFiles", 0)),
        "files_added": int(metrics.get("numAddedFiles", 0)),
    }


def purge_deletion_vectors(spark: SparkSession, settings: Settings, name: str) -> bool:
    """Rewrite the files of table ``name`` that carry deletion vectors (REORG ... APPLY (PURGE)),
    so deleted rows leave the data files; False when the table does not use deletion vectors."""
    from delta.tables import DeltaTable

    location = path(settings, name)
    if not DeltaTable.isDeltaTable(spark, location):
        return False
    properties = DeltaTable.forPath(spark, location).detail().first()["properties"] or {}
    if properties.get("delta.enableDeletionVectors", "false").lower() != "true":
        return False
    spark.sql(f"REORG TABLE delta.`{location}` APPLY (PURGE)")
    return True


def stored_files(spark: SparkSession, settings: Settings, name: str, *, log_files: bool = False) -> list[str]:
    """Every file under table ``name``'s directory on storage, whether the current version
    references it or not: the data files (``*.parquet`` outside ``_delta_log``), or with
    ``log_files`` the commit files of ``_delta_log`` (``*.json``). Empty when there is no directory."""
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    root = jvm.org.apache.hadoop.fs.Path(path(settings, name))
    fs = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
    if not fs.exists(root):
        return []
    found = []
    listing = fs.listFiles(root, True)
    while listing.hasNext():
        location = listing.next().getPath().toString()
        in_log = "/_delta_log/" in location
        wanted = (in_log and location.endswith(".json")) if log_files else location.endswith(".parquet")
        if wanted and (log_files or not in_log):
            found.append(location)
    return sorted(found)


def read_columns(spark: SparkSession, files: list[str], schema: str) -> DataFrame:
    """The columns of ``schema`` (DDL) from the Parquet ``files`` (null in a file without one)."""
    return spark.read.schema(schema).parquet(*files)


def read_text(spark: SparkSession, files: list[str]) -> DataFrame:
    """The lines of text ``files`` (column ``value``) with the file each came from (``file``)."""
    return spark.read.text(files).withColumn("file", F.input_file_name())
