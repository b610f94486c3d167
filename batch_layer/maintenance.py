"""Nightly Delta maintenance of the tables the stream writes: OPTIMIZE of closed partitions, then
VACUUM (the ``lake_maintenance`` DAG, ``adclick maintain``).

The stream commits to ``bronze.events`` every 10 s, so each day ends as hundreds of small files
per partition, which every later read pays for; the speed tables, MERGEd every few seconds, are
auto-compacted as they are written but keep the small files of the MERGEs since the last one.

Reads the Delta log of :data:`TABLES` (the active files of each partition; no data is scanned).
Writes, per table: one OPTIMIZE commit (bin-packing, no Z-order: cheap, and the rows do not
change) per closed partition date that needs it, then a VACUUM of the table if anything was
compacted; and to ``ops.lifecycle_log`` one ``compact`` row per partition date and one
``vacuum`` row per table, with a ``maintenance-<day>-<hex>`` run id.

:func:`plan_table` decides (pure, on file counts):

* a partition date is **closed** when it is strictly before the run's ``as_of`` day (UTC);
  the as-of day and any later one are **open** and never touched (the stream still writes them);
* a closed date is **compacted** when one of its partitions (bronze.events: one of its
  ``event_date`` x ``region`` directories) holds at least ``ADCLICK_MAINTENANCE_MIN_FILES``
  active files, and **skipped** otherwise (compacted already): a rerun plans nothing, a late
  event landing in a compacted day adds a file but does not trigger a rewrite on its own.

VACUUM keeps files removed less than ``ADCLICK_MAINTENANCE_VACUUM_HOURS`` ago, so time travel
(and a batch job reading a pinned version while the run compacts it) keeps working that long.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importing this module imports no Spark: the CLI builds its parser from TABLES
    from pyspark.sql import SparkSession

    from adclick.settings import Settings

TABLES = (
    "bronze.events",
    "bronze.rejects",
    "speed.ad_clicks_minute",
    "speed.ad_clicks_5min",
)


@dataclass(frozen=True)
class TablePlan:
    """What a run does to one table: the closed dates to compact and to skip, the open ones, and
    the active files per date (all partitions of the date) when it was planned."""

    table: str
    compact: tuple[date, ...] = ()
    skip: tuple[date, ...] = ()
    open: tuple[date, ...] = ()
    files: Mapping[date, int] = field(default_factory=dict)

    def files_in(self, days: Iterable[date]) -> int:
        return sum(self.files.get(d, 0) for d in days)


def partition_day(value: str) -> date | None:
    """A partition directory's date value, or None (a null partition, ``__HIVE_DEFAULT_PARTITION__``)."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def plan_table(name: str, counts: Mapping[tuple[str, ...], int], as_of: date, min_files: int) -> TablePlan:
    """The plan of table ``name`` from its active files per partition (``counts``: partition values,
    the date first, -> files; :func:`batch_layer.lake.partition_file_counts`) as of ``as_of``.

    A partition without a date is left alone: OPTIMIZE filters on the date, which cannot name it.
    """
    files: dict[date, int] = {}
    largest: dict[date, int] = {}
    for values, n in counts.items():
        day = partition_day(values[0]) if values else None
        if day is None:
            continue
        files[day] = files.get(day, 0) + n
        largest[day] = max(largest.get(day, 0), n)
    closed = sorted(d for d in files if d < as_of)
    return TablePlan(
        name,
        compact=tuple(d for d in closed if largest[d] >= min_files),
        skip=tuple(d for d in closed if largest[d] < min_files),
        open=tuple(sorted(d for d in files if d >= as_of)),
        files=files,
    )


def _days(days: Iterable[Any]) -> str:
    return ", ".join(str(d) for d in days) or "-"


def plan_line(plan: TablePlan, *, dry_run: bool) -> str:
    """The log line of a table the run leaves as it is (a dry run, or nothing to compact)."""
    if not plan.files:
        return f"maintenance: {plan.table}: no partitions, nothing to do"
    todo = (
        f"would compact {len(plan.compact)} partition date(s) "
        f"({_days(f'{d}: {plan.files[d]} files' for d in plan.compact)})"
        if dry_run
        else "nothing to compact"
    )
    return (
        f"maintenance: {plan.table}: {todo}, {len(plan.skip)} compacted already, "
        f"{len(plan.open)} open ({_days(plan.open)})"
    )


def _outcome(
    plan: TablePlan,
    compacted: Iterable[date] = (),
    conflicts: Iterable[date] = (),
    files_after: int | None = None,
    vacuumed: bool = False,
) -> dict[str, Any]:
    before = plan.files_in(plan.compact)
    return {
        "compacted": [d.isoformat() for d in compacted],
        "conflicts": [d.isoformat() for d in conflicts],
        "skipped": len(plan.skip),
        "open": len(plan.open),
        "files_before": before,
        "files_after": before if files_after is None else files_after,
        "vacuumed": vacuumed,
    }


def run_maintenance(
    spark: SparkSession,
    settings: Settings,
    as_of: date,
    *,
    tables: Iterable[str] = TABLES,
    dry_run: bool = False,
    log: Callable[[str], None] = print,
    run_id: str | None = None,
) -> dict[str, Any]:
    """One maintenance run as of ``as_of``: OPTIMIZE the closed partition dates of ``tables`` that
    have many files, then VACUUM each table it compacted. Returns a summary per table.

    Idempotent: a second run finds every closed date compacted and does nothing. An OPTIMIZE that
    loses a race with a concurrent writer of the same partition (a stream catching up on a
    closed day) is logged and left for the next run; the other partitions go on. ``dry_run``
    logs the plan and changes nothing.
    """
    from batch_layer import lake
    from batch_layer.lifecycle import new_run_id

    tables = list(tables)
    run_id = run_id or new_run_id("maintenance", as_of)
    min_files, hours = settings.maintenance_min_files, settings.maintenance_vacuum_hours
    plans = [plan_table(n, lake.partition_file_counts(spark, settings, n), as_of, min_files) for n in tables]
    log(
        f"maintenance: {as_of} run {run_id}: {sum(len(p.compact) for p in plans)} partition date(s) to "
        f"compact in {len(tables)} table(s) (closed: before {as_of}; at least {min_files} files in a "
        f"partition); VACUUM keeps {hours} h" + (" (dry run)" if dry_run else "")
    )
    summary: dict[str, dict[str, Any]] = {}
    for plan in plans:
        if dry_run or not plan.compact:
            log(plan_line(plan, dry_run=dry_run))
            summary[plan.table] = _outcome(plan)
        else:
            summary[plan.table] = _maintain(spark, settings, plan, as_of, run_id, log=log)
    return {
        "run_id": run_id,
        "as_of": as_of.isoformat(),
        "dry_run": dry_run,
        "min_files": min_files,
        "vacuum_hours": hours,
        "compacted": sum(len(t["compacted"]) for t in summary.values()),
        "conflicts": sum(len(t["conflicts"]) for t in summary.values()),
        "vacuumed": sum(t["vacuumed"] for t in summary.values()),
        "tables": summary,
    }


def _maintain(
    spark: SparkSession,
    settings: Settings,
    plan: TablePlan,
    as_of: date,
    run_id: str,
    *,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Carry out one table's plan: OPTIMIZE each date, VACUUM, the ``ops.lifecycle_log`` rows."""
    from delta import exceptions as conflict

    from batch_layer import lake
    from batch_layer.lifecycle import record

    hours = settings.maintenance_vacuum_hours
    compacted, conflicts = [], []
    for day in plan.compact:
        log(f"maintenance: {plan.table} {day}: OPTIMIZE ({plan.files[day]} files)")
        try:
            lake.compact_partition(spark, settings, plan.table, day, None)
        except (  # Delta's Python conflict classes share no base class but PySparkException
            conflict.DeltaConcurrentModificationException,
            conflict.ConcurrentAppendException,
            conflict.ConcurrentDeleteReadException,
            conflict.ConcurrentDeleteDeleteException,
            conflict.ConcurrentWriteException,
            conflict.MetadataChangedException,
            conflict.ProtocolChangedException,
        ) as exc:
            name = exc.__class__.__name__
            log(f"maintenance: {plan.table} {day}: a concurrent write won ({name}); left for the next run")
            conflicts.append(day)
            continue
        compacted.append(day)
    counts = lake.partition_file_counts(spark, settings, plan.table)
    after = plan_table(plan.table, counts, as_of, settings.maintenance_min_files)
    rows = [
        {
            "run_id": run_id,
            "action": "compact",
            "table": plan.table,
            "day": day,
            "objects": after.files.get(day, 0),
            "detail": f"maintenance OPTIMIZE: {plan.files[day]} -> {after.files.get(day, 0)} files",
        }
        for day in compacted
    ]
    if compacted:
        lake.vacuum(spark, settings, plan.table, hours)
        detail = f"maintenance: retain {hours} h"
        rows.append({"run_id": run_id, "action": "vacuum", "table": plan.table, "detail": detail})
    record(spark, settings, rows)
    outcome = _outcome(plan, compacted, conflicts, after.files_in(plan.compact), bool(compacted))
    log(
        f"maintenance: {plan.table}: compacted {len(compacted)} partition date(s) ({_days(compacted)}), "
        f"{len(plan.skip)} compacted already, {len(conflicts)} conflict(s), {len(plan.open)} open; "
        f"files {outcome['files_before']} -> {outcome['files_after']}"
        + (f"; VACUUM retain {hours} h" if compacted else "")
    )
    return outcome
