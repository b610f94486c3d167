"""Where a table's partition came from: ``ops.job_runs`` followed back to bronze and Kafka.

:func:`trace` reads ``ops.job_runs`` (the runs recorded for the days of the asked day's month),
finds the latest succeeded run that wrote the partition, then, for each ``table@version`` that run
read, the run that wrote that table's partition of the day at or before that version, down to
``bronze.events``. A bronze leaf holds the day's data files at the version silver read and the
Kafka offsets of its rows (min/max ``kafka_offset`` and count per topic and partition), read at
that version. Tables no batch job writes (``dims.*``, ``speed.*``) are leaves. Writes nothing.

Choosing the producing run (:func:`producing_run`), the days a run read (:func:`input_days`) and
the text and JSON forms (:func:`render`, :func:`to_dict`) are pure; the Delta reads go through
:mod:`batch_layer.lake`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyspark.sql.functions as F
from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession

from adclick.catalog import table
from adclick.errors import AdclickError
from adclick.settings import Settings
from batch_layer import lake

BRONZE = "bronze.events"
# The tables a batch job writes, with the job (the ``adclick batch`` step) that writes them.
PRODUCERS: dict[str, str] = {
    "silver.events": "silver",
    "gold.ad_clicks_hourly": "gold",
    "gold.ad_clicks_daily": "gold",
    "gold.audience_daily": "gold",
    "gold.experiments_daily": "gold",
    "gold.ad_clicks_monthly": "monthly",
    "ops.reconciliation": "reconcile",
}
MONTHLY_JOBS = frozenset({"monthly"})


class LineageError(AdclickError):
    """The asked partition cannot be traced: an unknown table, or no recorded run wrote it."""


@dataclass(frozen=True)
class Run:
    """One ``ops.job_runs`` row; times in UTC (None in a row that lacks them)."""

    run_id: str
    job: str
    day: date
    status: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    rows_in: int | None = None
    rows_out: int | None = None
    model_version: str | None = None
    code_version: str | None = None  # null in rows written before the column existed

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Run:
        return cls(
            run_id=row["run_id"],
            job=row["job"],
            day=row["day"],
            status=row["status"],
            started_at=_utc(row.get("started_at")),
            finished_at=_utc(row.get("finished_at")),
            inputs=tuple(row.get("inputs") or ()),
            outputs=tuple(row.get("outputs") or ()),
            rows_in=row.get("rows_in"),
            rows_out=row.get("rows_out"),
            model_version=row.get("model_version"),
            code_version=row.get("code_version"),
        )

    def output_version(self, name: str) -> int | None:
        """The version of ``name`` this run wrote, None when it wrote no ``name``."""
        for ref in self.outputs:
            ref_name, ref_version = parse_ref(ref)
            if ref_name == name:
                return ref_version
        return None


@dataclass(frozen=True)
class KafkaRange:
    """The Kafka records of one topic partition that a bronze day holds."""

    topic: str | None
    partition: int | None
    first_offset: int
    last_offset: int
    records: int


@dataclass
class Node:
    """A table's partition ``day`` read at ``version``, and where it came from.

    ``run`` is the run that wrote the partition (``written`` is the version it wrote, at or before
    ``version``: later commits may be other days' writes); a bronze node has ``files`` and
    ``kafka`` instead. ``repeat``: the same run (or bronze version) is traced earlier in the tree.
    """

    table: str
    day: date
    version: int | None
    run: Run | None = None
    written: int | None = None
    inputs: list[Node] = field(default_factory=list)
    files: list[str] | None = None
    kafka: list[KafkaRange] | None = None
    note: str | None = None
    repeat: bool = False
    current_version: int | None = None  # the root's table version now
    changed_since: bool | None = None  # the root partition's files differ now from ``written``


def _utc(when: datetime | None) -> datetime | None:
    """PySpark collects a timestamp naive, in the process's local zone: make it UTC."""
    return None if when is None else when.astimezone(UTC)


def parse_ref(ref: str) -> tuple[str, int]:
    """``"silver.events@9"`` -> ``("silver.events", 9)``."""
    name, _, version = ref.rpartition("@")
    return name, int(version)


def producer(name: str) -> str:
    """The job that writes table ``name``; :class:`LineageError` naming the traceable tables."""
    try:
        return PRODUCERS[name]
    except KeyError:
        raise LineageError(
            f"unknown table {name!r}: lineage follows the tables a batch job writes: "
            f"{', '.join(sorted(PRODUCERS))}"
        ) from None


def partition_day(name: str, day: date) -> date:
    """The partition of table ``name`` that holds ``day`` (a monthly table: the month's first day)."""
    return day.replace(day=1) if producer(name) in MONTHLY_JOBS else day


def month_days(day: date) -> list[date]:
    first = day.replace(day=1)
    end = (first + timedelta(days=32)).replace(day=1)
    return [first + timedelta(days=i) for i in range((end - first).days)]


def input_days(job: str, day: date) -> list[date]:
    """The days of its inputs a ``job`` run for ``day`` read: the month's for ``monthly``."""
    return month_days(day) if job in MONTHLY_JOBS else [day]


def producing_run(runs: Iterable[Run], name: str, day: date, version: int | None = None) -> Run | None:
    """The run that wrote partition ``day`` of table ``name`` as seen at ``version``.

    Among the succeeded runs of ``name``'s job for ``day`` that wrote ``name`` (at or before
    ``version`` when given: a later write is not what a reader of ``version`` saw), the one that
    wrote the highest version; equal versions (a table recreated, a row recorded twice) go to the
    latest ``finished_at``, then the highest ``run_id``. None when there is none.
    """
    job = producer(name)

    def written(run: Run) -> int | None:
        if run.status != "succeeded" or run.job != job or run.day != day:
            return None
        at = run.output_version(name)
        return None if at is None or (version is not None and at > version) else at

    candidates = [(at, run) for run in runs if (at := written(run)) is not None]
    if not candidates:
        return None
    return max(
        candidates,
        key=lambda c: (c[0], c[1].finished_at or datetime.min.replace(tzinfo=UTC), c[1].run_id),
    )[1]


def no_run_message(name: str, day: date) -> str:
    job = producer(name)
    return f"no succeeded run in ops.job_runs wrote {name} for {day}; run `adclick batch {job} --date {day}`"


def kafka_ranges(bronze_day: DataFrame) -> DataFrame:
    """Per Kafka topic and partition of bronze rows: first and last offset, and how many records."""
    return (
        bronze_day.groupBy(F.col("kafka_topic").alias("topic"), F.col("kafka_partition").alias("partition"))
        .agg(
            F.min("kafka_offset").alias("first_offset"),
            F.max("kafka_offset").alias("last_offset"),
            F.count(F.lit(1)).alias("records"),
        )
        .orderBy("topic", "partition")
    )


class _Tracer:
    """Builds the tree over one list of runs; a run (or bronze version) met twice is traced once."""

    def __init__(self, spark: SparkSession, settings: Settings, runs: Sequence[Run]) -> None:
        self.spark, self.settings, self.runs = spark, settings, runs
        self.seen: set[tuple[str, date, str]] = set()

    def produced(self, name: str, day: date, version: int | None, run: Run) -> Node:
        node = Node(name, day, version, run=run, written=run.output_version(name))
        key = (name, day, run.run_id)
        if key in self.seen:
            node.repeat = True
            return node
        self.seen.add(key)
        if not run.inputs:
            node.note = "the run recorded no input tables (it read rows given by its caller)"
        multi_day = run.job in MONTHLY_JOBS
        for ref in run.inputs:
            input_name, input_version = parse_ref(ref)
            if input_name != BRONZE and input_name not in PRODUCERS:  # a leaf: once, not per day
                node.inputs.append(Node(input_name, day, input_version, note="not written by a batch job"))
                continue
            for input_day in input_days(run.job, day):
                child = self.input(input_name, input_day, input_version, skip_missing=multi_day)
                if child is not None:
                    node.inputs.append(child)
        return node

    def input(self, name: str, day: date, version: int, *, skip_missing: bool) -> Node | None:
        if name == BRONZE:
            return self.bronze(day, version)
        run = producing_run(self.runs, name, day, version)
        if run is None:
            if skip_missing:  # a month's day that no run wrote (yet) was not in the month's input
                return None
            job = producer(name)
            note = f"no succeeded {job} run of {day} in ops.job_runs wrote it at or before v{version}"
            return Node(name, day, version, note=note)
        return self.produced(name, day, version, run)

    def bronze(self, day: date, version: int) -> Node:
        node = Node(BRONZE, day, version)
        key = (BRONZE, day, str(version))
        if key in self.seen:
            node.repeat = True
            return node
        self.seen.add(key)
        try:
            node.files = lake.partition_files_at(self.spark, self.settings, BRONZE, day, version)
            rows = lake.partition(self.spark, self.settings, BRONZE, day, version)
            node.kafka = [KafkaRange(**r.asDict()) for r in kafka_ranges(rows).collect()]
        except (PySparkException, Py4JJavaError) as exc:  # time travel fails once VACUUM removed the files
            node.note = f"cannot be read at v{version} any more: {str(exc).strip().splitlines()[0]}"
        return node


def recorded_runs(spark: SparkSession, settings: Settings, day: date) -> list[Run]:
    """Every ``ops.job_runs`` row of a day in ``day``'s month (empty when the table does not exist)."""
    runs = lake.read_if_exists(spark, settings, "ops.job_runs")
    if runs is None:
        return []
    days = month_days(day)
    rows = runs.where(F.col("day").between(F.lit(days[0]), F.lit(days[-1]))).collect()
    return [Run.from_row(r.asDict()) for r in rows]


def trace(spark: SparkSession, settings: Settings, name: str, day: date) -> Node:
    """Where partition ``day`` of table ``name`` came from (see the module docstring).

    Raises :class:`LineageError` for a table no batch job writes, or a day no succeeded run wrote.
    """
    day = partition_day(name, day)
    runs = recorded_runs(spark, settings, day)
    run = producing_run(runs, name, day)
    if run is None:
        raise LineageError(no_run_message(name, day))
    root = _Tracer(spark, settings, runs).produced(name, day, run.output_version(name), run)
    root.current_version = lake.version(spark, settings, name)
    if None not in (root.written, root.current_version) and root.current_version != root.written:
        then = lake.partition_files_at(spark, settings, name, day, root.written)
        now = lake.partition_files_at(spark, settings, name, day, root.current_version)
        root.changed_since = then != now
    return root


# --- text and JSON ------------------------------------------------------------------------------


def _when(at: datetime | None) -> str:
    return "?" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _count(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def describe_run(run: Run) -> str:
    """``silver run <id>, <finished> (<s> s), model <v>, <in> rows in -> <out> out, code <v>``."""
    parts = [f"{run.job} run {run.run_id}", _when(run.finished_at)]
    if run.started_at is not None and run.finished_at is not None:
        parts[-1] += f" ({(run.finished_at - run.started_at).total_seconds():.1f} s)"
    if run.job == "silver":
        parts.append(f"model {run.model_version}" if run.model_version else "rules only, no model")
    parts.append(f"{_count(run.rows_in)} rows in -> {_count(run.rows_out)} out")
    parts.append(f"code {run.code_version or 'not recorded'}")
    return ", ".join(parts)


def _head(node: Node, parent_day: date | None) -> str:
    where = "" if node.day == parent_day else f" {node.day}"
    at = "" if node.version is None else f" @ v{node.version}"
    if parent_day is None:  # the root: the day always, no space before the version's "@"
        where = f" {node.day}"
    text = f"{node.table}{where}{at}"
    if node.run is not None:
        written = ""
        if node.written is not None and node.written != node.version:
            written = f"day written at v{node.written} by "
        again = ", as above" if node.repeat else ""
        return f"{text}  ({written}{describe_run(node.run)}{again})"
    if node.table == BRONZE and node.files is not None:
        column = table(BRONZE).partition_by[0]
        return f"{text}: {len(node.files)} files in {column}={node.day}"
    if node.repeat:
        return f"{text}  (as above)"
    return f"{text}: {node.note}" if node.note else text


def _details(node: Node) -> list[str]:
    lines = []
    if node.kafka is not None:
        lines += [
            f"kafka {k.topic} partition {k.partition}: offsets {k.first_offset:,}..{k.last_offset:,} "
            f"({k.records:,} records)"
            for k in node.kafka
        ]
        if not node.kafka:
            lines.append("no rows of the day at this version")
    if node.note and (node.run is not None or node.files is not None):
        lines.append(node.note)
    if node.current_version is not None and node.current_version != node.written:
        change = {
            True: "its files changed since (compaction, erasure or an unrecorded write)",
            False: "this partition is unchanged since",
            None: "",
        }[node.changed_since]
        lines.append(f"table now at v{node.current_version}" + (f"; {change}" if change else ""))
    return lines


def render(root: Node) -> str:
    """The tree as indented text: each input under what read it, ``<-`` pointing to the source."""
    lines = [_head(root, None)]
    lines += ["  " + line for line in _details(root)]

    def walk(node: Node, parent_day: date, column: int) -> None:
        lines.append(" " * column + "<- " + _head(node, parent_day))
        lines.extend(" " * (column + 3) + line for line in _details(node))
        for child in node.inputs:
            walk(child, node.day, column + 3)

    for child in root.inputs:
        walk(child, root.day, 2)
    return "\n".join(lines)


def to_dict(node: Node) -> dict[str, Any]:
    """The tree as JSON-ready dicts (dates and times as ISO 8601 text)."""

    def plain(value: Any) -> Any:
        if isinstance(value, datetime | date):
            return value.isoformat()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return plain(dataclasses.asdict(node))
