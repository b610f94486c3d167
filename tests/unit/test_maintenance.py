"""The lake maintenance run (batch_layer/maintenance.py): which partition dates it compacts and which
it leaves, on plain file counts; the run's orchestration against a fake lake (what is compacted,
vacuumed and logged, dry runs, conflicts); the CLI and spark-submit wiring."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from adclick.settings import Settings
from batch_layer.maintenance import TABLES, plan_line, plan_table, run_maintenance

TODAY = date(2026, 12, 2)


def ago(n: int) -> str:
    return (TODAY - timedelta(days=n)).isoformat()


def test_only_closed_dates_with_a_crowded_partition_are_compacted() -> None:
    counts = {
        (ago(3), "eu"): 1,  # compacted already, both regions
        (ago(3), "na"): 2,
        (ago(2), "eu"): 1,  # one region over the minimum: the whole date is compacted
        (ago(2), "na"): 4,
        (ago(1), "eu"): 3,  # 3 + 3 files, but no partition has 4: skipped
        (ago(1), "na"): 3,
        (ago(0), "eu"): 40,  # today: the stream still writes it
        ((TODAY + timedelta(days=1)).isoformat(), "na"): 9,  # a clock-skewed event: open too
        ("__HIVE_DEFAULT_PARTITION__", "eu"): 12,  # no date: OPTIMIZE cannot name it
    }
    plan = plan_table("bronze.events", counts, TODAY, min_files=4)
    assert plan.compact == (date(2026, 11, 30),)
    assert plan.skip == (date(2026, 11, 29), date(2026, 12, 1))
    assert plan.open == (TODAY, date(2026, 12, 3))
    assert plan.files[date(2026, 11, 30)] == 5 and plan.files_in(plan.compact) == 5
    assert date(2026, 12, 1) in plan.files and len(plan.files) == 5


def test_the_minimum_is_inclusive_and_a_single_column_table_plans_the_same() -> None:
    counts = {(ago(1),): 4, (ago(2),): 3, (ago(0),): 4}
    assert plan_table("speed.ad_clicks_minute", counts, TODAY, min_files=4).compact == (date(2026, 12, 1),)
    assert plan_table("speed.ad_clicks_minute", counts, TODAY, min_files=3).compact == (
        date(2026, 11, 30),
        date(2026, 12, 1),
    )
    empty = plan_table("speed.ad_clicks_5min", {}, TODAY, min_files=4)
    assert (empty.compact, empty.skip, empty.open, dict(empty.files)) == ((), (), (), {})
    assert plan_line(empty, dry_run=True) == "maintenance: speed.ad_clicks_5min: no partitions, nothing to do"


def test_an_earlier_as_of_day_leaves_the_days_from_it_open() -> None:
    counts = {(ago(n),): 10 for n in range(4)}
    plan = plan_table("speed.ad_clicks_minute", counts, TODAY - timedelta(days=2), min_files=4)
    assert plan.compact == (date(2026, 11, 29),)
    assert plan.open == (date(2026, 11, 30), date(2026, 12, 1), TODAY)


def test_settings_refuse_a_minimum_that_cannot_compact_and_a_negative_retention() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="maintenance_min_files"):
        Settings(maintenance_min_files=1)  # a single file is already compact: every run would rewrite it
    with pytest.raises(ValidationError, match="maintenance_vacuum_hours"):
        Settings(maintenance_vacuum_hours=-1)
    assert (Settings().maintenance_min_files, Settings().maintenance_vacuum_hours) == (4, 168)


class FakeLake:
    """The lake calls of a run: file counts per partition that OPTIMIZE turns into one file per
    partition, and the compactions, VACUUMs and lifecycle rows it was asked for."""

    def __init__(self, monkeypatch, counts: dict[str, dict[tuple[str, ...], int]]) -> None:
        from batch_layer import lake, lifecycle

        self.counts = counts
        self.compacted: list[tuple[str, date, str | None]] = []
        self.vacuumed: list[tuple[str, int]] = []
        self.rows: list[dict] = []
        self.conflict_on: set[tuple[str, date]] = set()
        monkeypatch.setattr(lake, "partition_file_counts", lambda _s, _st, name: dict(counts.get(name, {})))
        monkeypatch.setattr(lake, "compact_partition", self.compact)
        monkeypatch.setattr(lake, "vacuum", lambda _s, _st, name, hours: self.vacuumed.append((name, hours)))
        monkeypatch.setattr(lifecycle, "record", lambda _s, _st, rows: self.rows.extend(rows))

    def compact(self, _spark, _settings, name: str, day: date, zorder_by: str | None) -> None:
        if (name, day) in self.conflict_on:
            from delta.exceptions import ConcurrentDeleteReadException

            raise ConcurrentDeleteReadException(message="a concurrent MERGE removed a file it read")
        self.compacted.append((name, day, zorder_by))
        table = self.counts[name]
        for key in [k for k in table if k[0] == day.isoformat()]:
            table[key] = 1


def run(settings: Settings | None = None, **options):
    """A run as of TODAY on the fake lake (no Spark session: every lake call is faked)."""
    return run_maintenance(None, settings or Settings(), TODAY, **options)  # type: ignore[arg-type]


@pytest.fixture
def fake(monkeypatch) -> FakeLake:
    return FakeLake(
        monkeypatch,
        {
            "bronze.events": {(ago(1), "eu"): 12, (ago(1), "na"): 6, (ago(2), "eu"): 1, (ago(0), "eu"): 30},
            "bronze.rejects": {(ago(1),): 2},
            "speed.ad_clicks_minute": {(ago(1),): 40, (ago(2),): 8, (ago(0),): 50},
        },
    )


def test_a_run_compacts_the_planned_dates_then_vacuums_only_the_tables_it_compacted(fake) -> None:
    lines: list[str] = []
    settings = Settings(maintenance_vacuum_hours=72)
    result = run(settings, log=lines.append, run_id="maintenance-t")
    assert fake.compacted == [
        ("bronze.events", date(2026, 12, 1), None),  # bin-packing, no Z-order
        ("speed.ad_clicks_minute", date(2026, 11, 30), None),
        ("speed.ad_clicks_minute", date(2026, 12, 1), None),
    ]
    assert fake.vacuumed == [("bronze.events", 72), ("speed.ad_clicks_minute", 72)]
    assert fake.counts["bronze.events"][(ago(0), "eu")] == 30  # today untouched
    bronze = result["tables"]["bronze.events"]
    assert bronze == {
        "compacted": ["2026-12-01"],
        "conflicts": [],
        "skipped": 1,
        "open": 1,
        "files_before": 18,
        "files_after": 2,
        "vacuumed": True,
    }
    assert (
        result["tables"]["bronze.rejects"]["compacted"] == []
        and result["tables"]["bronze.rejects"]["skipped"] == 1
    )
    assert (result["compacted"], result["vacuumed"], result["conflicts"]) == (3, 2, 0)
    assert [(r["action"], r["table"], r.get("day"), r.get("objects")) for r in fake.rows] == [
        ("compact", "bronze.events", date(2026, 12, 1), 2),
        ("vacuum", "bronze.events", None, None),
        ("compact", "speed.ad_clicks_minute", date(2026, 11, 30), 1),
        ("compact", "speed.ad_clicks_minute", date(2026, 12, 1), 1),
        ("vacuum", "speed.ad_clicks_minute", None, None),
    ]
    assert {r["run_id"] for r in fake.rows} == {"maintenance-t"}
    assert fake.rows[0]["detail"] == "maintenance OPTIMIZE: 18 -> 2 files"
    assert (
        "maintenance: bronze.events: compacted 1 partition date(s) (2026-12-01), 1 compacted already, "
        "0 conflict(s), 1 open; files 18 -> 2; VACUUM retain 72 h"
    ) in lines
    assert "maintenance: speed.ad_clicks_5min: no partitions, nothing to do" in lines
    assert "maintenance: bronze.rejects: nothing to compact, 1 compacted already, 0 open (-)" in lines

    again = run(settings, log=lines.append)
    assert (again["compacted"], again["vacuumed"]) == (0, 0)  # a rerun does nothing
    assert len(fake.compacted) == 3 and len(fake.vacuumed) == 2 and len(fake.rows) == 5


def test_a_dry_run_plans_and_changes_nothing(fake) -> None:
    lines: list[str] = []
    result = run(dry_run=True, log=lines.append)
    assert (fake.compacted, fake.vacuumed, fake.rows) == ([], [], [])
    assert result["dry_run"] is True and result["compacted"] == 0
    assert result["tables"]["speed.ad_clicks_minute"]["files_before"] == 48
    assert lines[0].endswith("(dry run)") and "3 partition date(s) to compact in 4 table(s)" in lines[0]
    assert (
        "maintenance: speed.ad_clicks_minute: would compact 2 partition date(s) "
        "(2026-11-30: 8 files, 2026-12-01: 40 files), 0 compacted already, 1 open (2026-12-02)"
    ) in lines


def test_a_conflicting_partition_is_left_for_the_next_run_and_the_others_go_on(fake) -> None:
    fake.conflict_on = {("speed.ad_clicks_minute", date(2026, 11, 30))}
    lines: list[str] = []
    result = run(tables=["speed.ad_clicks_minute"], log=lines.append)
    minute = result["tables"]["speed.ad_clicks_minute"]
    assert (minute["compacted"], minute["conflicts"], minute["vacuumed"]) == (
        ["2026-12-01"],
        ["2026-11-30"],
        True,
    )
    assert (minute["files_before"], minute["files_after"]) == (48, 9)
    assert [r["action"] for r in fake.rows] == ["compact", "vacuum"]
    assert (
        "maintenance: speed.ad_clicks_minute 2026-11-30: a concurrent write won "
        "(ConcurrentDeleteReadException); left for the next run"
    ) in lines
    fake.conflict_on.clear()
    later = run(tables=["speed.ad_clicks_minute"], log=lines.append)
    assert later["tables"]["speed.ad_clicks_minute"]["compacted"] == ["2026-11-30"]  # the next run does it
    assert fake.compacted[-1] == ("speed.ad_clicks_minute", date(2026, 11, 30), None)


def test_vacuum_keeps_the_hours_it_is_given_and_restores_the_session(monkeypatch) -> None:
    """Delta 4 ignores a VACUUM retention other than 0 h unless told not to (then the table's 7-day
    default applies): ``lake.vacuum`` switches that off, and the 168 h check below 168 h, for the
    call only."""
    from types import SimpleNamespace

    import delta.tables

    from batch_layer import lake

    check = "spark.databricks.delta.retentionDurationCheck.enabled"
    ignore = "spark.databricks.delta.vacuum.retentionWindowIgnore.enabled"

    class Conf(dict):
        def set(self, key: str, value: str) -> None:
            self[key] = value

        def unset(self, key: str) -> None:
            self.pop(key, None)

    spark = SimpleNamespace(conf=Conf({check: "true"}))
    seen: list[tuple[float, dict]] = []

    class Table:
        def vacuum(self, hours: float) -> None:
            seen.append((hours, dict(spark.conf)))

    monkeypatch.setattr(delta.tables, "DeltaTable", SimpleNamespace(forPath=lambda _s, _p: Table()))
    for hours in (72, 168, 0):
        lake.vacuum(spark, Settings(), "bronze.events", hours)  # type: ignore[arg-type]
    assert seen == [
        (72.0, {check: "false", ignore: "false"}),
        (168.0, {check: "true", ignore: "false"}),
        (0.0, {check: "false", ignore: "false"}),
    ]
    assert spark.conf == {check: "true"}  # as before the calls


def test_the_cli_and_the_submit_script_wire_the_maintenance_run() -> None:
    from batch_layer.submit import LIFECYCLE, command
    from cli.main import build_parser

    parser = build_parser()
    args = parser.parse_args(["maintain", "--date", "2026-12-01", "--dry-run", "--table", "bronze.events"])
    assert (args.date, args.dry_run, args.table) == (date(2026, 12, 1), True, ["bronze.events"])
    args = parser.parse_args(["maintain"])
    assert (args.date, args.dry_run, args.table) == (None, False, None)
    with pytest.raises(SystemExit):
        parser.parse_args(["maintain", "--table", "silver.events"])  # not a table the stream writes
    assert "maintenance" in LIFECYCLE
    assert set(TABLES) == {
        "bronze.events",
        "bronze.rejects",
        "speed.ad_clicks_minute",
        "speed.ad_clicks_5min",
    }
    cmd = command(Settings(), "maintenance", date(2026, 12, 2), ["--dry-run"])
    assert cmd.endswith("batch_layer/submit.py maintenance --date 2026-12-02 --dry-run")
