"""The retention run, restores, legal holds and the lifecycle audit log (I/O at the edges of
:mod:`adclick.retention`, which decides; :mod:`batch_layer.archive` moves the data).

* ``ops.legal_holds``: append-only; a hold is one ``add`` row and, once released, one ``release``
  row with the same ``hold_id``. Active holds are those with no release.
* ``ops.lifecycle_log``: one row per thing the lifecycle did or refused to do (``compact``,
  ``archive``, ``expire``, ``vacuum``, ``restore``, ``skip_held``), with the run, table, day,
  rows and objects: the audit trail of where each day's data went.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from typing import Any

import pyspark.sql.functions as F
import pyspark.sql.types as T
from pyspark.sql import SparkSession

from adclick.errors import AdclickError
from adclick.progress import Progress
from adclick.retention import (
    ARCHIVED,
    MANAGED,
    RESTORED_OF,
    Action,
    Hold,
    holding,
    plan,
    policy_for,
    restored_expiry,
)
from adclick.settings import Settings
from batch_layer import archive, lake
from batch_layer.ops import batch_watermark, utc_now

LEGAL_HOLDS = T.StructType(
    [
        T.StructField("hold_id", T.StringType()),
        T.StructField("action", T.StringType()),  # add | release
        T.StructField("kind", T.StringType()),  # dates | advertiser | user
        T.StructField("date_from", T.DateType()),
        T.StructField("date_to", T.DateType()),
        T.StructField("advertiser_id", T.StringType()),
        T.StructField("user_key", T.StringType()),
        T.StructField("reason", T.StringType()),
        T.StructField("by", T.StringType()),
        T.StructField("at", T.TimestampType()),
    ]
)
LIFECYCLE_LOG = T.StructType(
    [
        T.StructField("at", T.TimestampType()),
        T.StructField("run_id", T.StringType()),
        T.StructField("action", T.StringType()),
        T.StructField("table", T.StringType()),
        T.StructField("day", T.DateType()),
        T.StructField("rows", T.LongType()),
        T.StructField("objects", T.LongType()),
        T.StructField("detail", T.StringType()),
    ]
)
ZORDER_BY = "ad_id"


class HoldError(AdclickError):
    """A legal hold request is not valid."""


def new_run_id(kind: str, day: date) -> str:
    return f"{kind}-{day.isoformat()}-{uuid.uuid4().hex[:8]}"


def record(spark: SparkSession, settings: Settings, rows: Iterable[dict[str, Any]]) -> None:
    """Append lifecycle log rows (``at`` defaults to now)."""
    now = utc_now()
    rows = [{"at": now, **r} for r in rows]
    if rows:
        lake.append_rows(spark, settings, "ops.lifecycle_log", rows, LIFECYCLE_LOG)


# Legal holds


def add_hold(
    spark: SparkSession,
    settings: Settings,
    *,
    reason: str,
    by: str,
    date_from: date | None = None,
    date_to: date | None = None,
    advertiser_id: str | None = None,
    user_key: str | None = None,
) -> Hold:
    """Record a legal hold on a date range, an advertiser or a (pseudonymised) user key."""
    given = [x for x in ((date_from or date_to), advertiser_id, user_key) if x]
    if len(given) != 1:
        raise HoldError("a hold covers exactly one of: a date range (--from/--to), an advertiser, a user")
    if not reason.strip() or not by.strip():
        raise HoldError("a hold needs a reason and who places it (--reason, --by)")
    kind = "dates" if (date_from or date_to) else "advertiser" if advertiser_id else "user"
    if kind == "dates":
        date_from, date_to = date_from or date_to, date_to or date_from
        if date_to < date_from:  # type: ignore[operator]
            raise HoldError(f"--to {date_to} is before --from {date_from}")
    hold = Hold(
        f"hold-{uuid.uuid4().hex[:10]}", kind, reason, by, date_from, date_to, advertiser_id, user_key
    )  # type: ignore[arg-type]
    row = {
        "hold_id": hold.hold_id,
        "action": "add",
        "kind": hold.kind,
        "date_from": hold.date_from,
        "date_to": hold.date_to,
        "advertiser_id": hold.advertiser_id,
        "user_key": hold.user_key,
        "reason": reason,
        "by": by,
        "at": utc_now(),
    }
    lake.append_rows(spark, settings, "ops.legal_holds", [row], LEGAL_HOLDS)
    return hold


def release_hold(spark: SparkSession, settings: Settings, hold_id: str, *, by: str, reason: str) -> Hold:
    active = {h.hold_id: h for h in active_holds(spark, settings)}
    if hold_id not in active:
        raise HoldError(f"no active hold {hold_id!r}; `adclick hold list` shows them")
    row = {"hold_id": hold_id, "action": "release", "kind": active[hold_id].kind, "reason": reason, "by": by}
    lake.append_rows(spark, settings, "ops.legal_holds", [{**row, "at": utc_now()}], LEGAL_HOLDS)
    return active[hold_id]


def active_holds(spark: SparkSession, settings: Settings) -> list[Hold]:
    rows = lake.read_if_exists(spark, settings, "ops.legal_holds")
    if rows is None:
        return []
    collected = rows.collect()
    released = {r.hold_id for r in collected if r.action == "release"}
    return [
        Hold(r.hold_id, r.kind, r.reason, r.by, r.date_from, r.date_to, r.advertiser_id, r.user_key)
        for r in sorted(collected, key=lambda r: r.at)
        if r.action == "add" and r.hold_id not in released
    ]


def _content_holds(
    spark: SparkSession, settings: Settings, name: str, day: date, holds: list[Hold]
) -> dict[str, bool]:
    """Which advertiser and user holds have rows in partition ``day`` of ``name``."""
    wanted = [h for h in holds if h.kind in ("advertiser", "user")]
    if not wanted:
        return {}
    rows = lake.partition(spark, settings, name, day, lake.version(spark, settings, name))
    if (
        any(h.kind == "advertiser" for h in wanted)
        and "advertiser_id" not in rows.columns
        and "ad_id" in rows.columns
    ):
        ads = lake.read_if_exists(spark, settings, "dims.ads")
        if ads is not None:
            rows = rows.join(F.broadcast(ads.select("ad_id", "advertiser_id")), "ad_id", "left")
    found = {}
    for h in wanted:
        column, value = (
            ("advertiser_id", h.advertiser_id) if h.kind == "advertiser" else ("user_key", h.user_key)
        )
        found[h.hold_id] = column in rows.columns and not rows.where(F.col(column) == value).isEmpty()
    return found


# The retention run


def _compacted(files: dict[date, list[str]]) -> set[date]:
    """Days whose every partition directory holds at most one file."""
    done = set()
    for day, locations in files.items():
        per_dir: dict[str, int] = {}
        for loc in locations:
            d = loc.rsplit("/", 1)[0]
            per_dir[d] = per_dir.get(d, 0) + 1
        if max(per_dir.values(), default=0) <= 1:
            done.add(day)
    return done


def table_plan(
    spark: SparkSession,
    settings: Settings,
    name: str,
    today: date,
    *,
    holds: list[Hold],
    watermark: date | None,
) -> list[Action]:
    policy = policy_for(settings, name)
    files = lake.partition_files(spark, settings, name)
    if not files:
        return []
    removable = [a.day for a in plan(policy, files, today, compacted=files, watermark=watermark)]
    held = {
        day: ids
        for day in removable
        if (ids := holding(holds, day, _content_holds(spark, settings, name, day, holds)))
    }
    return plan(policy, files, today, compacted=_compacted(files), watermark=watermark, holds=held)


def run_retention(
    spark: SparkSession,
    settings: Settings,
    today: date,
    *,
    tables: Iterable[str] = MANAGED,
    dry_run: bool = False,
    log: Callable[[str], None] = print,
    run_id: str | None = None,
) -> dict[str, Any]:
    """One retention run as of ``today``: compact warm partitions, archive cold ones (verified
    before any delete), expire speed partitions gold has made final and restored partitions past
    their time, skip (and log) what a legal hold keeps, then VACUUM what changed.

    Idempotent: a second run finds nothing left to do; a run killed midway is finished by the next
    (see :mod:`batch_layer.archive`). ``dry_run`` logs the plan and changes nothing.
    """
    run_id = run_id or new_run_id("retention", today)
    holds = active_holds(spark, settings)
    watermark = batch_watermark(spark, settings)
    actions = [
        a
        for name in tables
        for a in table_plan(spark, settings, name, today, holds=holds, watermark=watermark)
    ]
    counts = {k: 0 for k in ("compact", "archive", "expire", "skip_held", "expire_restored", "vacuum")}
    log(
        f"retention: {today} run {run_id}: {len(actions)} action(s) on {len(list(tables))} table(s); "
        f"{len(holds)} active hold(s); batch watermark {watermark}" + (" (dry run)" if dry_run else "")
    )
    changed: set[str] = set()
    with Progress("retention", expected=len(actions), unit="partitions") as progress:
        for action in actions:
            progress.write(f"retention: {action.kind} {action.table} {action.day}: {action.why}")
            if not dry_run:
                _carry_out(spark, settings, action, run_id, log=progress.write)
                if action.kind != "skip_held":
                    changed.add(action.table)
            counts[action.kind] += 1
            progress.tick()
    if not dry_run:
        expired = expire_restored(spark, settings, today, run_id, log=log)
        counts["expire_restored"] = sum(expired.values())
        changed |= set(expired)
        for name in sorted(changed):
            lake.vacuum(spark, settings, name, settings.retention_vacuum_hours)
            record(
                spark,
                settings,
                [
                    {
                        "run_id": run_id,
                        "action": "vacuum",
                        "table": name,
                        "detail": f"retain {settings.retention_vacuum_hours} h",
                    }
                ],
            )
            counts["vacuum"] += 1
    return {"run_id": run_id, "today": today.isoformat(), "dry_run": dry_run, **counts}


def _carry_out(
    spark: SparkSession, settings: Settings, action: Action, run_id: str, *, log: Callable[[str], None]
) -> None:
    row: dict[str, Any] = {"run_id": run_id, "action": action.kind, "table": action.table, "day": action.day}
    if action.kind == "skip_held":
        row["detail"] = f"{action.why}: {', '.join(action.holds)}"
        log(f"retention: {action.table} {action.day} kept: {row['detail']}")
    elif action.kind == "compact":
        lake.compact_partition(spark, settings, action.table, action.day, ZORDER_BY)
        row["detail"] = f"OPTIMIZE ZORDER BY {ZORDER_BY}"
    elif action.kind == "expire":
        lake.delete_partition(spark, settings, action.table, action.day)
        row["detail"] = action.why
    elif action.kind == "archive":
        done = archive.archive_day(
            spark, settings, policy_for(settings, action.table), action.day, run_id, log=log
        )
        row.update(
            rows=done["rows"], objects=done["objects"], detail=f"{done['outcome']}, {done['bytes']} bytes"
        )
    record(spark, settings, [row])


# Restores


def restore(
    spark: SparkSession,
    settings: Settings,
    first: date,
    last: date,
    *,
    tables: Iterable[str] = ARCHIVED,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Restore the archived days ``first``..``last`` of ``tables`` into ``restored.*`` and register
    them in Trino; they expire again ``ADCLICK_RETENTION_RESTORED_DAYS`` after today."""
    if last < first:
        raise archive.ArchiveError(f"--to {last} is before --from {first}")
    run_id = new_run_id("restore", first)
    wanted = [
        (n, d)
        for n in tables
        for d in sorted(archive.archived_days(spark, settings, n))
        if first <= d <= last
    ]
    if not wanted:
        raise archive.ArchiveError(f"nothing archived between {first} and {last} in {', '.join(tables)}")
    restored = {}
    with Progress("restore", expected=len(wanted), unit="partitions") as progress:
        for name, day in wanted:
            done = archive.restore_day(spark, settings, name, day, run_id, log=progress.write)
            record(
                spark,
                settings,
                [
                    {
                        "run_id": run_id,
                        "action": "restore",
                        "table": done["table"],
                        "day": day,
                        "rows": done["rows"],
                        "objects": done["objects"],
                        "detail": f"from {name}",
                    }
                ],
            )
            restored[f"{name} {day}"] = done["rows"]
            progress.tick()
    try:
        from adclick.catalog import table
        from serving.registry import register_all

        register_all(settings, [table(RESTORED_OF[n]) for n in tables])
    except Exception as exc:  # Trino down: the rows are restored; `adclick batch` / the DAG registers later
        log(f"warning: restored tables not registered in Trino ({exc})")
    return {"run_id": run_id, "restored": restored}


def expire_restored(
    spark: SparkSession, settings: Settings, today: date, run_id: str, *, log: Callable[[str], None]
) -> dict[str, int]:
    """Delete restored partitions whose latest restore is ``retention_restored_days`` old;
    returns the partitions expired per restored table."""
    history = lake.read_if_exists(spark, settings, "ops.lifecycle_log")
    expired: dict[str, int] = {}
    if history is None:
        return expired
    restores = (
        history.where(F.col("action") == "restore")
        .groupBy("table", "day")
        .agg(F.max("at").alias("at"))
        .collect()
    )
    for target in sorted({r.table for r in restores}):
        on = {r.day: r.at.date() for r in restores if r.table == target}
        present = set(lake.partition_files(spark, settings, target))
        for day in restored_expiry(
            {d: o for d, o in on.items() if d in present}, today, settings.retention_restored_days
        ):
            lake.delete_partition(spark, settings, target, day)
            record(
                spark,
                settings,
                [
                    {
                        "run_id": run_id,
                        "action": "expire",
                        "table": target,
                        "day": day,
                        "detail": f"restored {on[day]}, kept {settings.retention_restored_days} days",
                    }
                ],
            )
            log(f"retention: {target} {day}: restored {on[day]}, expired")
            expired[target] = expired.get(target, 0) + 1
    return expired


def lifecycle_days(spark: SparkSession, settings: Settings, name: str) -> dict[date, str]:
    """Where each day of ``name`` lives now: ``lake``, ``archive`` or ``archive+restored``."""
    where = {d: "lake" for d in lake.partition_files(spark, settings, name)}
    restored = set(lake.partition_files(spark, settings, RESTORED_OF[name])) if name in RESTORED_OF else set()
    for day in archive.archived_days(spark, settings, name):
        if day not in where:
            where[day] = "archive+restored" if day in restored else "archive"
    return dict(sorted(where.items()))


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
