"""GDPR/CCPA erasure of one user key, end to end, and the proof that it is gone.

:func:`run_erasure` (the ``gdpr_erasure`` DAG, ``adclick erase``), in this order:

1. **scope**: the active legal holds; a hold on the user refuses the request (logged
   ``refused_held``); date and advertiser holds keep the rows they cover (counted as held);
2. **find**: the days of the user's rows in the lake, the speed partitions their events count in,
   and the archived days (every object of ``bronze.events``, ``bronze.rejects``,
   ``silver.events`` read back) holding the key;
3. **lake**: a Delta DELETE per table (``bronze.events``, ``silver.events``, ``restored.*``,
   ``dims.users``; the rejects' raw payloads and data-quality examples holding the key): the files
   with the rows are rewritten without them (deletion vectors, if a table uses them, purged);
4. **archive**: each archived day holding the key is rewritten and verified, the manifest's new
   run becomes current, and the old objects are deleted (:func:`batch_layer.archive.rewrite_day`);
5. **gold**: the daily gold tables of every touched day recomputed from what silver (or the
   rewritten archive) now holds, and the monthly rollup of touched months whose silver is in the
   lake; counts and exact uniques change accordingly;
6. **speed**: touched speed partitions the batch has made final are dropped (gold serves them);
   later ones are recomputed from bronze (no sketch can forget one user);
7. **spool**: the ingestion spool's records of the key are dropped; the duplicate hint holds only
   Bloom bits of event ids, no user data, so there is nothing of the user in it;
8. **VACUUM** of every rewritten table (``ADCLICK_ERASURE_VACUUM_HOURS``): the old files, the only
   other place the rows were, are deleted once that has passed;
9. **Kafka**: the topics' ``retention.ms`` and ``segment.ms`` give the time until which the
   broker may still hold the user's records (``kafka_retained_until``); Kafka cannot delete one
   record of a topic;
10. **verify**: every Parquet file under the keyed tables' directories (referenced or not) and
    every object of the archive is read; any row with the key outside a hold fails the run.

``ops.erasure_log`` gets one row per request: when, who, the SHA-256 of the key (never the key
or the id), tables, rows and files, archive objects, gold and speed days, held rows, spool
records, the Kafka bound, whether the proof passed, and the outcome.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from urllib.parse import unquote, urlparse

import pyspark.sql.functions as F
import pyspark.sql.types as T
from pyspark.sql import Column, DataFrame, SparkSession

from adclick.catalog import table
from adclick.erasure import (
    KEYED,
    PAYLOAD,
    ErasureError,
    Scope,
    check_user_key,
    kafka_bound,
    key_hash,
    scope_for,
    speed_days,
)
from adclick.progress import Progress
from adclick.retention import ARCHIVED, EXPIRED_BY_WATERMARK
from adclick.settings import Settings
from batch_layer import archive, lake
from batch_layer.ops import batch_watermark, utc_now

ERASURE_LOG = T.StructType(
    [
        T.StructField("request_id", T.StringType()),
        T.StructField("requested_at", T.TimestampType()),
        T.StructField("completed_at", T.TimestampType()),
        T.StructField("user_key_hash", T.StringType()),
        T.StructField("by", T.StringType()),
        T.StructField("reason", T.StringType()),
        T.StructField("status", T.StringType()),  # erased | refused_held | not_verified | failed
        T.StructField("tables", T.ArrayType(T.StringType())),
        T.StructField("rows", T.MapType(T.StringType(), T.LongType())),
        T.StructField("files_rewritten", T.LongType()),
        T.StructField("archive_objects_rewritten", T.LongType()),
        T.StructField("gold_days", T.ArrayType(T.DateType())),
        T.StructField("speed_days", T.ArrayType(T.DateType())),
        T.StructField("held_rows", T.LongType()),
        T.StructField("spool_records", T.LongType()),
        T.StructField("kafka_retained_until", T.TimestampType()),
        T.StructField("verified", T.BooleanType()),
        T.StructField("detail", T.StringType()),
    ]
)
STEPS = 10


class ErasureNotVerified(ErasureError):
    """The verification scan found the key after the erasure: the request is not done."""


def _day_of_file(column: str) -> Column:
    return F.to_date(F.regexp_extract(F.col("file"), rf"/{column}=(\d{{4}}-\d{{2}}-\d{{2}})/", 1))


def _erasable(scope: Scope, name: str, *, from_files: bool = False) -> Column:
    """The rows of table ``name`` the request erases: the key's rows no hold keeps (never null).
    ``from_files``: the frame is read from raw files, its day taken from the file's path."""
    if name in KEYED:
        day_column, match = KEYED[name], scope.user_rows()
    else:
        column, day_column = PAYLOAD[name]
        match = scope.payload_rows(column)
    day = day_column
    ad = "ad_id" if name not in ("dims.users", *PAYLOAD) else None
    if from_files and day_column is not None and table(name).partition_by:
        day = "_day"
    return F.coalesce(match & ~scope.kept(day, ad_column=ad), F.lit(False))


def _scan_frame(spark: SparkSession, files: list[str], name: str) -> DataFrame:
    """Raw Parquet ``files`` of table ``name`` with the columns the erasure judges rows by."""
    if name in PAYLOAD:
        column, day_column = PAYLOAD[name]
        types = {"raw_value": "binary", "details": "string"}
        schema = f"`{column}` {types[column]}"
        if not table(name).partition_by:  # ops.dq_results: the day is a column of the file
            schema += f", `{day_column}` date"
    else:
        day_column = KEYED[name]
        schema = "user_key string" + (", ad_id string, event_time timestamp" if name != "dims.users" else "")
    frame = lake.read_columns(spark, files, schema).withColumn("file", F.input_file_name())
    if day_column is not None and table(name).partition_by:
        frame = frame.withColumn("_day", _day_of_file(table(name).partition_by[0]))
    return frame


def _found(spark: SparkSession, files: list[str], name: str, scope: Scope) -> dict[str, int]:
    """The files among ``files`` holding rows the request erases, with how many."""
    if not files:
        return {}
    frame = _scan_frame(spark, files, name)
    hits = frame.where(_erasable(scope, name, from_files=True)).groupBy("file").count().collect()
    return {r.file: int(r["count"]) for r in hits}


# Find


def _lake_days(spark: SparkSession, settings: Settings, name: str, scope: Scope) -> set[date]:
    rows = lake.read_if_exists(spark, settings, name)
    day_column = KEYED.get(name) or (PAYLOAD.get(name) or (None, None))[1]
    if rows is None or day_column is None:
        return set()
    found = rows.where(_erasable(scope, name)).select(day_column).distinct().collect()
    return {r[0] for r in found if r[0] is not None}


def _held_rows(spark: SparkSession, settings: Settings, scope: Scope) -> int:
    held = 0
    for name in ("bronze.events", "silver.events"):
        rows = lake.read_if_exists(spark, settings, name)
        if rows is not None:
            held += rows.where(scope.user_rows() & ~_erasable(scope, name)).count()
    return held


def _event_times(rows: DataFrame, erasable: Column) -> list[datetime]:
    """The distinct event times of the rows to erase (their speed partitions follow from them)."""
    found = rows.where(erasable & F.col("event_time").isNotNull()).select("event_time").distinct()
    return [r.event_time for r in found.collect()]


def _user_event_times(spark: SparkSession, settings: Settings, scope: Scope) -> list[datetime]:
    rows = lake.read_if_exists(spark, settings, "bronze.events")
    return [] if rows is None else _event_times(rows, _erasable(scope, "bronze.events"))


def _archive_hits(
    spark: SparkSession,
    settings: Settings,
    client: Any,
    scope: Scope,
    run_id: str,
    *,
    log: Callable[[str], None],
    times: list[datetime] | None = None,
) -> dict[str, dict[str, int]]:
    """Per archived table, the object keys holding rows to erase (every object read back);
    ``times`` gets the event times of the archived bronze rows to erase."""
    hits: dict[str, dict[str, int]] = {}
    into = archive.staging(settings, run_id, "scan")
    try:
        for name in ARCHIVED:
            keys = archive.object_keys(client, settings, archive.table_prefix(settings, name))
            if not keys:
                continue
            copies = archive.fetch(client, settings, keys, into, log=log)
            by_file = _found(spark, [lake.file_uri(c) for c in copies.values()], name, scope)
            local = {str(c): k for k, c in copies.items()}
            found = {local[unquote(urlparse(f).path)]: n for f, n in by_file.items()}
            if found:
                hits[name] = found
            if found and name == "bronze.events" and times is not None:
                frame = _scan_frame(spark, [lake.file_uri(copies[k]) for k in found], name)
                times.extend(_event_times(frame, _erasable(scope, name, from_files=True)))
    finally:
        shutil.rmtree(archive.staging(settings, run_id), ignore_errors=True)
    return hits


def _archived_day(name: str, key: str) -> date:
    column = table(name).partition_by[0]
    marker = f"/{column}="
    return date.fromisoformat(key.split(marker, 1)[1][:10])


# Recompute


def _recompute_gold(
    spark: SparkSession,
    settings: Settings,
    days: set[date],
    archived: set[date],
    request_id: str,
    *,
    log: Callable[[str], None],
) -> list[date]:
    """Gold of the touched lake ``days`` recomputed from silver (days without gold yet are left to
    the batch), then the monthly rollup of every month with a recomputed day (``archived``: the
    days recomputed from the archive) whose silver is all in the lake."""
    from batch_layer.jobs import run_gold, run_monthly

    done = set(archived)
    has_gold = set(lake.partition_files(spark, settings, "gold.ad_clicks_daily"))
    for day in sorted(days - archived):
        if day in has_gold:
            run_gold(spark, settings, day, run_id=f"{request_id}-gold-{day}")
            done.add(day)
            log(f"erasure: gold {day} recomputed")
    silver_archived = archive.archived_days(spark, settings, "silver.events")
    monthly = set(lake.partition_files(spark, settings, "gold.ad_clicks_monthly"))
    for first in sorted({d.replace(day=1) for d in done} & monthly):
        if any(d.replace(day=1) == first for d in silver_archived):
            log(f"erasure: gold.ad_clicks_monthly {first:%Y-%m} kept: some of its silver days are archived")
            continue
        run_monthly(spark, settings, first, run_id=f"{request_id}-monthly-{first}")
        log(f"erasure: gold.ad_clicks_monthly {first:%Y-%m} recomputed")
    return sorted(done)


def _recompute_speed(
    spark: SparkSession, settings: Settings, days: set[date], *, log: Callable[[str], None]
) -> dict[str, int]:
    """Drop the touched speed partitions the batch has made final; recompute the later ones."""
    from datetime import timedelta

    from adclick import dims
    from adclick.aggregates import recomputed_day

    watermark = batch_watermark(spark, settings)
    done = {"dropped": 0, "recomputed": 0}
    present = {n: set(lake.partition_files(spark, settings, n)) for n in EXPIRED_BY_WATERMARK}
    for day in sorted(days):
        if not any(day in p for p in present.values()):
            continue
        if watermark is not None and day <= watermark:
            for name in EXPIRED_BY_WATERMARK:
                lake.delete_partition(spark, settings, name, day)
            done["dropped"] += 1
            log(f"erasure: speed {day} dropped (final in gold, watermark {watermark})")
            continue
        start = datetime(day.year, day.month, day.day)
        bronze = lake.read(spark, settings, "bronze.events").where(
            F.col("event_date").isin(day, day + timedelta(days=1))
            & (F.col("event_time") >= F.lit(start))
            & (F.col("event_time") < F.lit(start + timedelta(days=1, minutes=5)))
        )
        ads, _ = dims.read(spark, settings)
        rows = recomputed_day(bronze.dropDuplicates(["event_id"]), ads, day)
        for name, frame in rows.items():
            lake.replace_partition(frame, settings, name, day)
        done["recomputed"] += 1
        log(f"erasure: speed {day} recomputed from bronze (after the watermark {watermark})")
    return done


# Kafka, spool


def _topic_configs(settings: Settings, topic: str) -> dict[str, int]:
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=10_000)
    try:
        answer = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all"
        )
    finally:
        admin.close()
    out: dict[str, int] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("retention.ms", "segment.ms"):
                    value = v.get("value") if isinstance(v, dict) else v
                    out[k] = int(value)
                else:
                    walk(v)
        elif isinstance(node, list | tuple):
            for v in node:
                walk(v)

    walk(answer)
    return out


def _kafka_bound(settings: Settings, now: datetime, *, log: Callable[[str], None]) -> datetime | None:
    bounds = []
    for topic in (settings.topic_events, settings.topic_dlq):
        try:
            configs = _topic_configs(settings, topic)
        except Exception as exc:  # the broker down: state the configured bound instead
            log(f"erasure: Kafka topic {topic}: configs not readable ({exc}); using the configured retention")
            configs = {"retention.ms": settings.kafka_retention_hours * 3_600_000}
        bound = kafka_bound(now, configs.get("retention.ms"), configs.get("segment.ms"))
        log(
            f"erasure: Kafka topic {topic} keeps records {configs.get('retention.ms')} ms "
            f"(segments roll every {configs.get('segment.ms')} ms): "
            + (f"it may hold the user's records until {bound:%Y-%m-%d %H:%M} UTC" if bound else "for ever")
        )
        bounds.append(bound)
    return None if any(b is None for b in bounds) else max(b for b in bounds if b is not None)


def _erase_spool(settings: Settings, scope: Scope, *, log: Callable[[str], None]) -> int:
    from adclick.spool_format import erase_records

    needle = scope.user_key.encode()
    done = erase_records(settings.path("spool"), lambda _key, value: needle in value)
    if done.slots_in_use:
        log(
            f"erasure: spool slot(s) {', '.join(done.slots_in_use)} held by a running API, not rewritten "
            f"({done.in_use_matches} matching record(s) drain to Kafka, bounded by its retention)"
        )
    log(f"erasure: spool: {done.dropped} record(s) dropped, {done.segments_rewritten} segment(s) rewritten")
    return done.dropped


# Verify


def verify(
    spark: SparkSession, settings: Settings, scope: Scope, run_id: str, *, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Read every Parquet file under the keyed tables' directories (referenced by the current
    version or not) and every archived object; returns the files and objects still holding rows
    the request erases (empty: proven) and the Delta commit files that mention the key."""
    from adclick.s3 import client as s3_client

    lake_hits: dict[str, int] = {}
    scanned = 0
    for name in (*KEYED, *PAYLOAD):
        files = lake.stored_files(spark, settings, name)
        scanned += len(files)
        lake_hits.update(_found(spark, files, name, scope))
    archive_hits = _archive_hits(spark, settings, s3_client(settings), scope, run_id, log=log)
    log_files = [
        f for name in (*KEYED, *PAYLOAD) for f in lake.stored_files(spark, settings, name, log_files=True)
    ]
    mentions = 0
    if log_files:
        mentions = (
            lake.read_text(spark, log_files)
            .where(F.instr("value", scope.user_key) > 0)
            .select("file")
            .distinct()
            .count()
        )
    objects = sum(len(v) for v in archive_hits.values())
    log(
        f"erasure: verify: {scanned} lake file(s) and the archive read; {len(lake_hits)} file(s) and "
        f"{objects} object(s) still hold the key; {mentions} Delta commit file(s) mention it in the "
        "column statistics of files since removed (they expire with delta.logRetentionDuration)"
    )
    return {
        "lake": lake_hits,
        "archive": archive_hits,
        "delta_log_mentions": mentions,
        "files_scanned": scanned,
    }


# The request


def _ads_of(spark: SparkSession, settings: Settings) -> dict[str, list[str]]:
    ads = lake.read_if_exists(spark, settings, "dims.ads")
    out: dict[str, list[str]] = {}
    if ads is not None:
        for r in ads.select("advertiser_id", "ad_id").collect():
            out.setdefault(str(r.advertiser_id), []).append(r.ad_id)
    return out


def _record(spark: SparkSession, settings: Settings, row: dict[str, Any]) -> None:
    lake.append_rows(spark, settings, "ops.erasure_log", [{**row, "completed_at": utc_now()}], ERASURE_LOG)


def run_erasure(
    spark: SparkSession,
    settings: Settings,
    user_key: str,
    *,
    by: str,
    reason: str,
    request_id: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Erase ``user_key`` everywhere the project keeps data, then prove it (module docstring).

    Raises :class:`ErasureError` when a legal hold on the user refuses the request and
    :class:`ErasureNotVerified` when the key is still found; both are logged in ``ops.erasure_log``.
    Safe to rerun: a second run finds nothing left and proves it again.
    """
    key = check_user_key(user_key)
    request_id = request_id or f"erasure-{uuid.uuid4().hex[:12]}"
    row: dict[str, Any] = {
        "request_id": request_id,
        "requested_at": utc_now(),
        "user_key_hash": key_hash(key),
        "by": by,
        "reason": reason,
    }
    from batch_layer.lifecycle import active_holds

    try:
        scope = scope_for(key, active_holds(spark, settings), _ads_of(spark, settings))
    except ErasureError as exc:
        log(f"erasure: {request_id}: refused: {exc}")
        _record(spark, settings, {**row, "status": "refused_held", "verified": False, "detail": str(exc)})
        raise
    if scope.held_by:
        log(f"erasure: {request_id}: rows under hold(s) {', '.join(scope.held_by)} are kept")
    try:
        result = _erase(spark, settings, scope, row, log=log)
    except ErasureNotVerified:
        raise
    except Exception as exc:
        _record(spark, settings, {**row, "status": "failed", "verified": False, "detail": str(exc)[:2000]})
        raise
    total = sum(result["rows"].values())
    log(f"erasure: {request_id}: done and verified ({total:,} row(s) in {len(result['tables'])} table(s))")
    return result


def _erase(
    spark: SparkSession, settings: Settings, scope: Scope, row: dict[str, Any], *, log: Callable[[str], None]
) -> dict[str, Any]:
    from adclick.s3 import client as s3_client

    request_id = row["request_id"]
    rows: dict[str, int] = {}
    files = objects = 0
    changed: set[str] = set()
    with Progress("erasure", expected=STEPS, unit="steps") as progress:
        say = progress.write
        touched = {n: _lake_days(spark, settings, n, scope) for n in ("bronze.events", "silver.events")}
        held = _held_rows(spark, settings, scope)
        times = _user_event_times(spark, settings, scope)
        client = s3_client(settings)
        hits = _archive_hits(spark, settings, client, scope, request_id, log=say, times=times)
        speed = speed_days(times)
        say(
            f"erasure: {request_id}: key in {sum(len(d) for d in touched.values())} lake day(s), "
            f"{sum(len(h) for h in hits.values())} archived object(s); {held} held row(s) kept"
        )
        progress.tick(2)

        for name in (*KEYED, *PAYLOAD):
            if name == "dims.users" and held:
                continue  # the held rows' audience still needs the profile
            done = lake.delete_where(spark, settings, name, _erasable(scope, name))
            if done["rows"]:
                lake.purge_deletion_vectors(spark, settings, name)  # rows only marked: rewrite the files
                rows[name] = done["rows"]
                files += done["files_removed"]
                changed.add(name)
                say(
                    f"erasure: {name}: {done['rows']:,} row(s) deleted, "
                    f"{done['files_removed']} file(s) rewritten"
                )
        progress.tick()

        from_archive: set[date] = set()
        for name, found in hits.items():
            for day in sorted({_archived_day(name, k) for k in found}):
                gold_of = _gold_from_archive(spark, settings, day, request_id, say)
                done = archive.rewrite_day(
                    spark,
                    settings,
                    name,
                    day,
                    without=_erasable(scope, name),
                    run_id=f"{request_id}-{name.replace('.', '-')}",
                    use=gold_of if name == "silver.events" else None,
                    log=say,
                )
                rows[f"archive:{name}"] = rows.get(f"archive:{name}", 0) + done["rows"]
                objects += done["objects_removed"]
                if name == "silver.events" and done["rows"]:
                    from_archive.add(day)
        progress.tick()

        lake_days = touched["silver.events"] | touched["bronze.events"]
        gold = _recompute_gold(spark, settings, lake_days, from_archive, request_id, log=say)
        progress.tick()
        speed_done = _recompute_speed(spark, settings, speed, log=say)
        progress.tick()
        spooled = _erase_spool(settings, scope, log=say)
        progress.tick()
        if speed_done["dropped"] or speed_done["recomputed"]:
            changed |= set(EXPIRED_BY_WATERMARK)
        for name in sorted(changed):
            lake.vacuum(spark, settings, name, settings.erasure_vacuum_hours)
        say(f"erasure: VACUUM of {len(changed)} table(s), keeping {settings.erasure_vacuum_hours} h")
        progress.tick()
        bound = _kafka_bound(settings, utc_now(), log=say)
        progress.tick()
        proof = verify(spark, settings, scope, f"{request_id}-verify", log=say)
        progress.tick()
    verified = not proof["lake"] and not proof["archive"]
    detail = (
        f"speed {speed_done['dropped']} day(s) dropped, {speed_done['recomputed']} recomputed; "
        f"{proof['files_scanned']} lake file(s) scanned; {proof['delta_log_mentions']} Delta commit "
        "file(s) mention the key in removed files' statistics"
    )
    if settings.erasure_vacuum_hours > 0:
        detail += f"; the old files are deleted by the VACUUM {settings.erasure_vacuum_hours} h on"
    result = {
        **row,
        "status": "erased" if verified else "not_verified",
        "tables": sorted({n.removeprefix("archive:") for n in rows}),
        "rows": rows,
        "files_rewritten": files,
        "archive_objects_rewritten": objects,
        "gold_days": gold,
        "speed_days": sorted(speed),
        "held_rows": held,
        "spool_records": spooled,
        "kafka_retained_until": bound,
        "verified": verified,
        "detail": detail,
    }
    _record(spark, settings, result)
    if not verified:
        where = sorted(proof["lake"])[:3] + sorted(k for h in proof["archive"].values() for k in h)[:3]
        raise ErasureNotVerified(
            f"erasure {request_id}: the key is still in {len(proof['lake'])} lake file(s) and "
            f"{sum(len(h) for h in proof['archive'].values())} archived object(s), e.g. {', '.join(where)}"
        )
    return result


def _gold_from_archive(
    spark: SparkSession, settings: Settings, day: date, request_id: str, log: Callable[[str], None]
) -> Callable[[DataFrame], None]:
    """Gold of an archived day from the rewritten archive's silver rows (the lake has none)."""
    from batch_layer.jobs import run_gold

    def recompute(rest: DataFrame) -> None:
        run_gold(spark, settings, day, run_id=f"{request_id}-gold-{day}", silver=rest)
        log(f"erasure: gold {day} recomputed from the rewritten archive")

    return recompute
