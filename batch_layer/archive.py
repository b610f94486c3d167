"""The cold tier: a day partition exported to the S3 store as Parquet, verified, and restored.

Archive of one (table, day) (:func:`archive_day`), in this order, each step safe to repeat:

1. the partition at a pinned Delta version is written as zstd Parquet to a staging directory
   (``var/archive/staging``) and its row count and content hash taken (:func:`content_digest`:
   an order-independent sum of one xxhash64 per row, over every column);
2. each file is uploaded (``STANDARD``) under
   ``<prefix>/<layer>/<table>/<column>=<day>/<run_id>/part-NNNNN.parquet`` with its SHA-256;
3. **read back**: every object is downloaded again and its SHA-256 compared, and Spark reads the
   downloaded files and their row count and content hash must equal the lake partition's;
4. each object is moved to the policy's storage class (an in-place copy, as S3 lifecycle rules
   do; reading a ``GLACIER`` object back needs a restore, so the check comes first);
5. ``ops.archive_manifest`` gets one row per object (key, bytes, SHA-256, rows, the partition's
   rows and content hash, the source Delta version);
6. only then is the partition deleted from the lake, if it still holds what was exported (a
   commit to the table since the export is checked by content; a changed day is kept and
   archived again by the next run).

A run killed anywhere loses nothing: before step 5 the lake still has the rows and the next run
exports again (objects no manifest row names are removed as orphans); after step 5 the next run
finds the manifest's digest equal to the lake's and goes straight to step 6.

Restore (:func:`restore_day`) asks the store to restore each cold object, waits until it is
readable, checks its SHA-256 and the day's content hash against the manifest, and writes the
rows to ``restored.<layer>_<table>``.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyspark.sql.functions as F
import pyspark.sql.types as T
from pyspark.sql import Column, DataFrame, SparkSession

from adclick.catalog import table
from adclick.errors import AdclickError
from adclick.retention import COLD_CLASSES, RESTORED_OF, Policy
from adclick.settings import Settings
from batch_layer import lake
from batch_layer.ops import utc_now

MANIFEST = T.StructType(
    [
        T.StructField("run_id", T.StringType()),
        T.StructField("table", T.StringType()),
        T.StructField("day", T.DateType()),
        T.StructField("bucket", T.StringType()),
        T.StructField("object_key", T.StringType()),
        T.StructField("storage_class", T.StringType()),
        T.StructField("bytes", T.LongType()),
        T.StructField("sha256", T.StringType()),
        T.StructField("rows", T.LongType()),
        T.StructField("partition_rows", T.LongType()),
        T.StructField("content_hash", T.StringType()),
        T.StructField("source_version", T.LongType()),
        T.StructField("archived_at", T.TimestampType()),
    ]
)


class ArchiveError(AdclickError):
    """An archive or restore could not be verified; nothing was deleted."""


@dataclass(frozen=True)
class Digest:
    rows: int
    content_hash: str  # decimal text: the sum of the rows' xxhash64 values


@dataclass(frozen=True)
class ArchivedObject:
    key: str
    bytes: int
    sha256: str
    rows: int
    file: Path  # the verified local copy (staging), until the archive step is done


def _hashable(frame: DataFrame) -> list[Any]:
    """Every column in a form Spark can hash (maps as their sorted entries)."""
    cols = []
    for f in frame.schema.fields:
        c = F.col(f"`{f.name}`")
        cols.append(F.array_sort(F.map_entries(c)) if isinstance(f.dataType, T.MapType) else c)
    return cols


def content_digest(frame: DataFrame) -> Digest:
    """Row count and an order-independent content hash of ``frame`` (same rows, same digest,
    whatever the files or their order)."""
    row_hash = F.xxhash64(*_hashable(frame)).cast("decimal(38,0)")
    got = frame.agg(F.count(F.lit(1)).alias("n"), F.sum(row_hash).alias("h")).first()
    return Digest(int(got["n"]), str(got["h"] if got["h"] is not None else 0))


def sha256_of(file: Path) -> str:
    h = hashlib.sha256()
    with file.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def day_prefix(settings: Settings, name: str, day: date) -> str:
    layer, tname = name.split(".", 1)
    column = table(name).partition_by[0]
    return f"{settings.archive_prefix}/{layer}/{tname}/{column}={day.isoformat()}/"


def staging(settings: Settings, *parts: str) -> Path:
    return settings.path("archive", "staging", *parts)


def current_objects(spark: SparkSession, settings: Settings, name: str, day: date) -> list[dict[str, Any]]:
    """The manifest rows of (``name``, ``day``)'s latest archive run (empty: never archived)."""
    manifest = lake.read_if_exists(spark, settings, "ops.archive_manifest")
    if manifest is None:
        return []
    rows = [
        r.asDict() for r in manifest.where((F.col("table") == name) & (F.col("day") == F.lit(day))).collect()
    ]
    if not rows:
        return []
    latest = max(rows, key=lambda r: (r["archived_at"], r["run_id"]))["run_id"]
    return sorted((r for r in rows if r["run_id"] == latest), key=lambda r: r["object_key"])


def archived_days(spark: SparkSession, settings: Settings, name: str) -> set[date]:
    manifest = lake.read_if_exists(spark, settings, "ops.archive_manifest")
    if manifest is None:
        return set()
    return {r.day for r in manifest.where(F.col("table") == name).select("day").distinct().collect()}


def _upload(client: Any, settings: Settings, file: Path, key: str, *, sha: str, rows: int) -> None:
    client.upload_file(
        str(file),
        settings.s3_bucket,
        key,
        ExtraArgs={"StorageClass": "STANDARD", "Metadata": {"sha256": sha, "rows": str(rows)}},
    )


def _download(client: Any, settings: Settings, key: str, to: Path) -> Path:
    to.parent.mkdir(parents=True, exist_ok=True)
    client.download_file(settings.s3_bucket, key, str(to))
    return to


def _parquet_rows(file: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(file).metadata.num_rows)


def _remove_orphans(client: Any, settings: Settings, prefix: str, keep: set[str], named: set[str]) -> int:
    """Delete objects under ``prefix`` other than ``keep`` that no manifest row in ``named``
    names (uploads of a run killed before its manifest commit); with ``named`` empty, every
    object but ``keep`` goes (the erasure's rewrite supersedes the earlier runs)."""
    removed = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.s3_bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if obj["Key"] not in keep and obj["Key"] not in named:
                client.delete_object(Bucket=settings.s3_bucket, Key=obj["Key"])
                removed += 1
    return removed


def _named_keys(spark: SparkSession, settings: Settings, name: str, day: date) -> set[str]:
    manifest = lake.read_if_exists(spark, settings, "ops.archive_manifest")
    if manifest is None:
        return set()
    where = (F.col("table") == name) & (F.col("day") == F.lit(day))
    return {r.object_key for r in manifest.where(where).select("object_key").collect()}


def export_and_verify(
    spark: SparkSession,
    settings: Settings,
    client: Any,
    name: str,
    day: date,
    *,
    frame: DataFrame,
    digest: Digest,
    run_id: str,
) -> list[ArchivedObject]:
    """Steps 1-3: write ``frame`` as Parquet, upload every file, read every object back and
    check it (SHA-256 per object, row count and content hash of the whole day). Raises
    :class:`ArchiveError` on any difference."""
    out = staging(settings, run_id, name, day.isoformat())
    shutil.rmtree(out, ignore_errors=True)
    lake.write_parquet(frame, out.as_uri(), settings.archive_max_rows_per_object)
    files = sorted(out.glob("part-*.parquet"))
    prefix = day_prefix(settings, name, day) + f"{run_id}/"
    uploaded = []
    for i, file in enumerate(files):
        sha, rows = sha256_of(file), _parquet_rows(file)
        key = f"{prefix}part-{i:05d}.parquet"
        _upload(client, settings, file, key, sha=sha, rows=rows)
        uploaded.append(ArchivedObject(key, file.stat().st_size, sha, rows, file))
    back = staging(settings, run_id, "verify", name, day.isoformat())
    copies = []
    for obj in uploaded:
        copy = _download(client, settings, obj.key, back / Path(obj.key).name)
        if sha256_of(copy) != obj.sha256:
            raise ArchiveError(f"{name} {day}: {obj.key} read back with another SHA-256; nothing deleted")
        copies.append(copy)
    again = (
        content_digest(lake.read_parquet(spark, *(lake.file_uri(c) for c in copies)))
        if copies
        else Digest(0, "0")
    )
    if again != digest:
        raise ArchiveError(
            f"{name} {day}: the archive reads back {again.rows:,} rows (hash {again.content_hash}), "
            f"the lake has {digest.rows:,} (hash {digest.content_hash}); nothing deleted"
        )
    return uploaded


def set_storage_class(client: Any, settings: Settings, obj: ArchivedObject, storage_class: str) -> None:
    """Move an archived object to ``storage_class`` and check it (size, class, SHA-256 metadata).

    The move is an in-place copy, as S3 lifecycle transitions are; a store that refuses an
    in-place copy (s3proxy's filesystem backend) gets the verified local file again in one PUT
    with the storage class (s3proxy stores a multipart upload, boto3's choice above 8 MiB, as
    ``STANDARD`` whatever class it names; one PUT takes objects up to 5 GB).
    """
    from botocore.exceptions import ClientError

    bucket = settings.s3_bucket
    if storage_class != "STANDARD":
        try:
            client.copy_object(
                Bucket=bucket,
                Key=obj.key,
                CopySource={"Bucket": bucket, "Key": obj.key},
                StorageClass=storage_class,
                MetadataDirective="COPY",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("InvalidRequest", "NotImplemented"):
                raise
            with obj.file.open("rb") as body:  # one PUT: a multipart upload would land as STANDARD
                client.put_object(
                    Bucket=bucket,
                    Key=obj.key,
                    Body=body,
                    StorageClass=storage_class,
                    Metadata={"sha256": obj.sha256, "rows": str(obj.rows)},
                )
    head = client.head_object(Bucket=bucket, Key=obj.key)
    got = head.get("StorageClass", "STANDARD")
    if (
        got != storage_class
        or int(head["ContentLength"]) != obj.bytes
        or head["Metadata"].get("sha256") != obj.sha256
    ):
        raise ArchiveError(
            f"{obj.key}: after the move to {storage_class} the store has class {got}, "
            f"{head['ContentLength']} bytes, sha256 {head['Metadata'].get('sha256')}; nothing deleted"
        )


def _check_present(client: Any, settings: Settings, objects: list[dict[str, Any]]) -> None:
    from botocore.exceptions import ClientError

    for obj in objects:
        try:
            head = client.head_object(Bucket=settings.s3_bucket, Key=obj["object_key"])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "?")
            raise ArchiveError(
                f"{obj['object_key']}: named by the manifest but not readable in the store ({code}); "
                "nothing deleted"
            ) from exc
        if int(head["ContentLength"]) != int(obj["bytes"]):
            raise ArchiveError(
                f"{obj['object_key']}: {head['ContentLength']} bytes in the store, the manifest says "
                f"{obj['bytes']}; nothing deleted"
            )


def record_objects(
    spark: SparkSession,
    settings: Settings,
    name: str,
    day: date,
    *,
    uploaded: list[ArchivedObject],
    storage_class: str,
    digest: Digest,
    source_version: int | None,
    run_id: str,
) -> None:
    """Step 5: one ``ops.archive_manifest`` row per object; from this commit on, ``run_id`` is
    the day's current archive (:func:`current_objects`)."""
    now = utc_now()
    lake.append_rows(
        spark,
        settings,
        "ops.archive_manifest",
        [
            {
                "run_id": run_id,
                "table": name,
                "day": day,
                "bucket": settings.s3_bucket,
                "object_key": o.key,
                "storage_class": storage_class,
                "bytes": o.bytes,
                "sha256": o.sha256,
                "rows": o.rows,
                "partition_rows": digest.rows,
                "content_hash": digest.content_hash,
                "source_version": source_version,
                "archived_at": now,
            }
            for o in uploaded
        ],
        MANIFEST,
    )


def _delete_if_unchanged(
    spark: SparkSession, settings: Settings, name: str, day: date, *, at: int | None, digest: Digest
) -> None:
    """Step 6: delete the partition, only if it still holds what was archived (a write to it since
    version ``at`` is checked by content; a partition that changed is kept, and the next run
    archives it again)."""
    now = lake.version(spark, settings, name)
    if now != at and at is not None and now is not None:
        again = content_digest(lake.partition(spark, settings, name, day, now))
        if again != digest:
            raise ArchiveError(
                f"{name} {day}: the partition changed since it was archived (version {at} -> {now}: "
                f"{digest.rows:,} -> {again.rows:,} rows); nothing deleted, the next run archives it again"
            )
    lake.delete_partition(spark, settings, name, day)


def archive_day(
    spark: SparkSession,
    settings: Settings,
    policy: Policy,
    day: date,
    run_id: str,
    *,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Archive partition ``day`` of ``policy.table`` to the cold tier and delete it from the lake
    (steps in the module docstring). Returns what it did: ``rows``, ``objects``, ``bytes``,
    ``outcome`` (``archived``, ``deleted_after_earlier_archive``, ``already_archived``)."""
    from adclick.s3 import client as s3_client

    name = policy.table
    client = s3_client(settings)
    at = lake.version(spark, settings, name)
    frame = lake.partition(spark, settings, name, day, at) if at is not None else None
    digest = content_digest(frame) if frame is not None else Digest(0, "0")
    existing = current_objects(spark, settings, name, day)
    if digest.rows == 0:
        outcome = "already_archived" if existing else "empty"
        return {"rows": 0, "objects": len(existing), "bytes": 0, "outcome": outcome}
    if (
        existing
        and existing[0]["partition_rows"] == digest.rows
        and existing[0]["content_hash"] == digest.content_hash
    ):
        _check_present(client, settings, existing)  # a run killed after its manifest commit
        lake.delete_partition(spark, settings, name, day)
        log(
            f"retention: {name} {day}: archived earlier (run {existing[0]['run_id']}), "
            "deleted from the lake now"
        )
        size = sum(int(o["bytes"]) for o in existing)
        return {
            "rows": digest.rows,
            "objects": len(existing),
            "bytes": size,
            "outcome": "deleted_after_earlier_archive",
        }
    try:
        uploaded = export_and_verify(
            spark, settings, client, name, day, frame=frame, digest=digest, run_id=run_id
        )
        for obj in uploaded:
            set_storage_class(client, settings, obj, policy.storage_class)
    finally:
        shutil.rmtree(staging(settings, run_id), ignore_errors=True)
    record_objects(
        spark, settings, name, day, uploaded=uploaded, storage_class=policy.storage_class, digest=digest,
        source_version=at, run_id=run_id,
    )  # fmt: skip
    keep = {o.key for o in uploaded}
    orphans = _remove_orphans(
        client, settings, day_prefix(settings, name, day), keep, _named_keys(spark, settings, name, day)
    )
    _delete_if_unchanged(spark, settings, name, day, at=at, digest=digest)
    size = sum(o.bytes for o in uploaded)
    log(
        f"retention: {name} {day}: {digest.rows:,} rows -> {len(uploaded)} object(s), {size:,} bytes, "
        f"{policy.storage_class}; verified, deleted from the lake"
        + (f" ({orphans} orphaned upload(s) of an interrupted run removed)" if orphans else "")
    )
    return {"rows": digest.rows, "objects": len(uploaded), "bytes": size, "outcome": "archived"}


# Restore


def _restore_state(head: dict[str, Any]) -> str:
    """``readable`` (not cold, or restored), ``pending`` (restore in progress) or ``cold``."""
    if head.get("StorageClass", "STANDARD") not in COLD_CLASSES:
        return "readable"
    restore = head.get("Restore")
    if restore is None:
        return "cold"
    return "pending" if 'ongoing-request="true"' in restore else "readable"


def request_restore(client: Any, settings: Settings, key: str, days: int) -> str:
    """Ask the store to restore a cold object for ``days`` days; returns its state after asking.

    A store without the RestoreObject API (s3proxy answers NotImplemented) serves cold objects
    directly: the object is then probed with a ranged GET and reported ``readable``.
    """
    from botocore.exceptions import ClientError

    head = client.head_object(Bucket=settings.s3_bucket, Key=key)
    state = _restore_state(head)
    if state != "cold":
        return state
    try:
        client.restore_object(
            Bucket=settings.s3_bucket,
            Key=key,
            RestoreRequest={"Days": days, "GlacierJobParameters": {"Tier": "Standard"}},
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "RestoreAlreadyInProgress":
            return "pending"
        if code not in ("NotImplemented", "501", "InvalidRequest", "MethodNotAllowed"):
            raise
        client.get_object(Bucket=settings.s3_bucket, Key=key, Range="bytes=0-3")["Body"].read()
        return "readable"
    return _restore_state(client.head_object(Bucket=settings.s3_bucket, Key=key))


def wait_readable(
    client: Any,
    settings: Settings,
    keys: list[str],
    *,
    log: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Request the restore of every cold object in ``keys`` and wait until all are readable
    (``ADCLICK_ARCHIVE_RESTORE_TIMEOUT_S``, polling every ``ADCLICK_ARCHIVE_RESTORE_POLL_S``)."""
    deadline = time.monotonic() + settings.archive_restore_timeout_s
    states = {k: request_restore(client, settings, k, settings.retention_restored_days) for k in keys}
    while any(s != "readable" for s in states.values()):
        pending = [k for k, s in states.items() if s != "readable"]
        if time.monotonic() > deadline:
            raise ArchiveError(f"{len(pending)} object(s) still not restored, e.g. {pending[0]}")
        log(f"restore: waiting for {len(pending)} object(s) to be restored by the store")
        sleep(settings.archive_restore_poll_s)
        for k in pending:
            states[k] = _restore_state(client.head_object(Bucket=settings.s3_bucket, Key=k))


def fetch(
    client: Any, settings: Settings, keys: list[str], into: Path, *, log: Callable[[str], None] = print
) -> dict[str, Path]:
    """Download objects ``keys`` (waiting for cold ones to be restored first) to ``into``/<key>:
    the local copy keeps the key's ``<column>=<day>`` folder."""
    wait_readable(client, settings, keys, log=log)
    return {key: _download(client, settings, key, into / key) for key in keys}


def read_day(
    spark: SparkSession,
    settings: Settings,
    client: Any,
    name: str,
    day: date,
    *,
    run_id: str,
    log: Callable[[str], None] = print,
) -> tuple[list[dict[str, Any]], DataFrame | None]:
    """The manifest rows of (``name``, ``day``)'s current archive and its rows, read from copies
    downloaded to staging (each checked against the manifest's SHA-256); ``([], None)`` when the
    day was never archived. The frame reads the copies until ``staging(run_id)`` is removed."""
    objects = current_objects(spark, settings, name, day)
    if not objects:
        return [], None
    into = staging(settings, run_id, "read", name)
    copies = fetch(client, settings, [o["object_key"] for o in objects], into, log=log)
    for obj in objects:
        if sha256_of(copies[obj["object_key"]]) != obj["sha256"]:
            raise ArchiveError(f"{obj['object_key']}: SHA-256 differs from the manifest; nothing changed")
    return objects, lake.read_parquet(spark, *(lake.file_uri(c) for c in copies.values()))


def object_keys(client: Any, settings: Settings, prefix: str) -> list[str]:
    """Every object key under ``prefix``, named by a manifest row or not."""
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.s3_bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return sorted(keys)


def table_prefix(settings: Settings, name: str) -> str:
    layer, tname = name.split(".", 1)
    return f"{settings.archive_prefix}/{layer}/{tname}/"


def rewrite_day(
    spark: SparkSession,
    settings: Settings,
    name: str,
    day: date,
    *,
    without: Column,
    run_id: str,
    use: Callable[[DataFrame], None] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, int]:
    """Rewrite archived day (``name``, ``day``) without the rows ``without`` matches (a Column
    that is never null), as the erasure does: the current objects are read back (verified), the
    remaining rows exported and verified like an archive (steps 1-4, same storage class), the
    manifest gets the new run (now current), and then every other object of the day is deleted
    from the store, superseded runs and orphans included. ``use`` sees the remaining rows before
    the staging copies go (the erasure recomputes gold from them).

    Safe to repeat: a run killed before its manifest commit left orphans the next run deletes; one
    killed after it left superseded objects the next run deletes. Returns ``rows`` removed,
    ``objects_removed`` and ``objects_written``.
    """
    from adclick.s3 import client as s3_client

    client = s3_client(settings)
    prefix = day_prefix(settings, name, day)
    try:
        objects, frame = read_day(spark, settings, client, name, day, run_id=run_id, log=log)
        removed = frame.where(without).count() if frame is not None else 0
        keep = {o["object_key"] for o in objects}
        written = 0
        if frame is not None and removed:
            rest = frame.where(~without)
            digest = content_digest(rest)
            uploaded = export_and_verify(
                spark, settings, client, name, day, frame=rest, digest=digest, run_id=run_id
            )
            for obj in uploaded:
                set_storage_class(client, settings, obj, objects[0]["storage_class"])
            if use is not None:
                use(rest)
            record_objects(
                spark, settings, name, day, uploaded=uploaded, storage_class=objects[0]["storage_class"],
                digest=digest, source_version=objects[0]["source_version"], run_id=run_id,
            )  # fmt: skip
            keep, written = {o.key for o in uploaded}, len(uploaded)
        gone = _remove_orphans(client, settings, prefix, keep, named=set())
    finally:
        shutil.rmtree(staging(settings, run_id), ignore_errors=True)
    if removed or gone:
        log(
            f"erasure: {name} {day}: {removed:,} row(s) removed from the archive; "
            f"{written} object(s) written, {gone} deleted"
        )
    return {"rows": removed, "objects_removed": gone, "objects_written": written}


def restore_day(
    spark: SparkSession,
    settings: Settings,
    name: str,
    day: date,
    run_id: str,
    *,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Make archived partition ``day`` of ``name`` queryable again in ``restored.<layer>_<table>``,
    after checking every object's SHA-256 and the day's rows and content hash against the manifest."""
    from adclick.s3 import client as s3_client

    objects, frame = read_day(spark, settings, s3_client(settings), name, day, run_id=run_id, log=log)
    if frame is None:
        raise ArchiveError(f"{name} {day}: not in the archive manifest; nothing to restore")
    got = content_digest(frame)
    want = Digest(int(objects[0]["partition_rows"]), objects[0]["content_hash"])
    if got != want:
        raise ArchiveError(f"{name} {day}: restored {got} but the manifest says {want}; not restored")
    target = RESTORED_OF[name]
    version = lake.replace_partition(frame, settings, target, day)
    shutil.rmtree(staging(settings, run_id), ignore_errors=True)
    log(f"restore: {name} {day}: {got.rows:,} rows verified -> {target} (version {version})")
    return {"rows": got.rows, "objects": len(objects), "table": target}
