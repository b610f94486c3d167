"""Lineage (batch_layer.lineage, adclick lineage): which run wrote a version, the text tree, the code
version of job runs, and the real jobs traced back to bronze files and Kafka offsets on a temp lake."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyspark.sql.types as T
import pytest

from adclick import dims
from adclick.code_version import code_version, format_code_version, git_state
from adclick.settings import Settings
from batch_layer import jobs, lake, ops
from batch_layer.lineage import (
    KafkaRange,
    LineageError,
    Node,
    Run,
    input_days,
    partition_day,
    producing_run,
    render,
    to_dict,
    trace,
)
from cli.main import main

DAY = date(2026, 11, 27)
NEXT = DAY + timedelta(days=1)
FIXED = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
DAILY = "gold.ad_clicks_daily"


def run(run_id: str, job: str = "gold", day: date = DAY, *, out: str = f"{DAILY}@3", **extra: Any) -> Run:
    return Run(
        run_id=run_id,
        job=job,
        day=day,
        status=extra.pop("status", "succeeded"),
        finished_at=extra.pop("finished_at", FIXED),
        outputs=(out,),
        **extra,
    )


# --- choosing the run that wrote a version (pure) -----------------------------------------------


def test_the_run_that_wrote_the_version_read_or_the_latest_before_it() -> None:
    runs = [run("g1", out=f"{DAILY}@1"), run("g4", out=f"{DAILY}@4"), run("g7", out=f"{DAILY}@7")]
    assert producing_run(runs, DAILY, DAY, 4).run_id == "g4"  # wrote exactly the version read
    assert producing_run(runs, DAILY, DAY, 6).run_id == "g4"  # v5, v6: other days' writes
    assert producing_run(runs, DAILY, DAY).run_id == "g7"  # no version: the latest write
    assert producing_run(runs, DAILY, DAY, 0) is None  # read before any recorded write


def test_failed_runs_other_jobs_and_other_days_are_ignored() -> None:
    runs = [
        run("ok", out=f"{DAILY}@2"),
        run("failed", out=f"{DAILY}@5", status="failed"),
        run("other-day", day=NEXT, out=f"{DAILY}@6"),
        run("other-job", job="monthly", out=f"{DAILY}@8"),
        run("other-table", out="gold.ad_clicks_hourly@9"),
    ]
    assert producing_run(runs, DAILY, DAY).run_id == "ok"
    assert producing_run(runs, DAILY, NEXT).run_id == "other-day"
    assert producing_run(runs, "gold.ad_clicks_hourly", DAY).run_id == "other-table"


def test_a_tie_on_the_version_goes_to_the_later_finish_then_the_higher_run_id() -> None:
    later = FIXED + timedelta(minutes=5)
    tied = [run("b", finished_at=FIXED), run("a", finished_at=later), run("c", finished_at=None)]
    assert producing_run(tied, DAILY, DAY, 3).run_id == "a"
    assert producing_run([run("b"), run("d"), run("c")], DAILY, DAY).run_id == "d"


def test_the_monthly_table_is_traced_from_the_first_of_the_month() -> None:
    assert partition_day("gold.ad_clicks_monthly", date(2026, 11, 17)) == date(2026, 11, 1)
    assert partition_day(DAILY, date(2026, 11, 17)) == date(2026, 11, 17)
    november = input_days("monthly", date(2026, 11, 1))
    assert (len(november), november[0], november[-1]) == (30, date(2026, 11, 1), date(2026, 11, 30))
    assert input_days("gold", DAY) == [DAY]
    runs = [run("m", job="monthly", day=date(2026, 11, 1), out="gold.ad_clicks_monthly@0")]
    assert producing_run(runs, "gold.ad_clicks_monthly", date(2026, 11, 1)).run_id == "m"
    with pytest.raises(LineageError, match=r"unknown table 'gold\.nope'.*gold\.ad_clicks_daily"):
        partition_day("gold.nope", DAY)


def test_render_indents_each_input_under_what_read_it() -> None:
    start = FIXED - timedelta(seconds=12.5)
    silver = Run(
        "s-1", "silver", DAY, "succeeded", start, FIXED, ("bronze.events@7",), ("silver.events@4",),
        1200, 1180, "fm-1", "0.1.0+gabc1234",
    )  # fmt: skip
    gold = Run(
        "g-1", "gold", DAY, "succeeded", start, FIXED, ("silver.events@5",), (f"{DAILY}@12",), 1180, 2403
    )
    bronze = Node(
        "bronze.events",
        DAY,
        7,
        files=["f1", "f2"],
        kafka=[
            KafkaRange("adclick.events", 0, 1200, 58311, 57112),
            KafkaRange("adclick.events", 1, 0, 9, 10),
        ],
    )
    dims_leaf = Node("dims.ads", DAY, 0, note="not written by a batch job")
    tree = Node(
        DAILY,
        DAY,
        12,
        run=gold,
        written=12,
        current_version=14,
        changed_since=False,
        inputs=[Node("silver.events", DAY, 5, run=silver, written=4, inputs=[bronze, dims_leaf])],
    )
    assert render(tree).splitlines() == [
        "gold.ad_clicks_daily 2026-11-27 @ v12  (gold run g-1, 2026-11-28 03:00:00 UTC (12.5 s), "
        "1,180 rows in -> 2,403 out, code not recorded)",
        "  table now at v14; this partition is unchanged since",
        "  <- silver.events @ v5  (day written at v4 by silver run s-1, 2026-11-28 03:00:00 UTC (12.5 s), "
        "model fm-1, 1,200 rows in -> 1,180 out, code 0.1.0+gabc1234)",
        "     <- bronze.events @ v7: 2 files in event_date=2026-11-27",
        "        kafka adclick.events partition 0: offsets 1,200..58,311 (57,112 records)",
        "        kafka adclick.events partition 1: offsets 0..9 (10 records)",
        "     <- dims.ads @ v0: not written by a batch job",
    ]
    as_json = to_dict(tree)
    assert as_json["run"]["finished_at"] == "2026-11-28T03:00:00+00:00"
    assert as_json["inputs"][0]["inputs"][0]["kafka"][0]["last_offset"] == 58311


# --- the code version ----------------------------------------------------------------------------


def test_code_version_format() -> None:
    assert format_code_version("0.1.0", "1a2b3c4") == "0.1.0+g1a2b3c4"
    assert format_code_version("0.1.0", "1a2b3c4", dirty=True) == "0.1.0+g1a2b3c4.dirty"
    assert format_code_version("0.1.0", None, dirty=True) == "0.1.0"


def test_git_state_reads_a_checkout_and_falls_back_outside_one(tmp_path: Path) -> None:
    assert git_state(tmp_path) == (None, False)  # an installed package: no .git
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "a.txt").write_text("one")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "--short=7", "HEAD"], check=True, capture_output=True, text=True
    )
    assert git_state(tmp_path) == (head.stdout.strip(), False)
    (tmp_path / "untracked.txt").write_text("not part of the build")
    assert git_state(tmp_path) == (head.stdout.strip(), False)
    (tmp_path / "a.txt").write_text("two")
    assert git_state(tmp_path) == (head.stdout.strip(), True)


def test_this_checkout_records_its_commit() -> None:
    assert re.fullmatch(r"0\.1\.0\+g[0-9a-f]{7}(\.dirty)?", code_version())


# --- the CLI's errors (no Spark) ----------------------------------------------------------------


@pytest.fixture
def no_spark(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(name: str, work: Any) -> int:
        raise AssertionError("Spark was started for an argument error")

    monkeypatch.setattr("cli.lineage_commands._with_spark", refuse)


def test_cli_refuses_an_unknown_table_listing_the_known_ones(no_spark, capsys) -> None:
    assert main(["lineage", "gold.clicks", "--date", "2026-11-27"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "error: unknown table 'gold.clicks': lineage follows the tables a batch job writes:"
    )
    assert "gold.ad_clicks_monthly, gold.audience_daily" in err and "silver.events" in err
    assert "Traceback" not in err


def test_cli_refuses_a_bad_date(no_spark, capsys) -> None:
    assert main(["lineage", DAILY, "--date", "2026-02-30"]) == 1
    assert capsys.readouterr().err == (
        "error: --date '2026-02-30' is not a day (YYYY-MM-DD): day is out of range for month\n"
    )
    with pytest.raises(SystemExit):  # --date is required
        main(["lineage", DAILY])


# --- the real jobs on a temp lake, traced -------------------------------------------------------


@pytest.fixture(scope="module")
def bronze_schema(spark) -> T.StructType:
    from speed_layer.bronze_sink import KAFKA_SOURCE_SCHEMA
    from speed_layer.parse import to_bronze_rows, with_parsed_event

    return to_bronze_rows(with_parsed_event(spark.createDataFrame([], KAFKA_SOURCE_SCHEMA))).schema


def bronze_rows(day: date, kind: str, offsets: dict[int, range], prefix: str) -> list[dict[str, Any]]:
    """One click or impression per Kafka offset, at noon of ``day`` plus the offset in seconds."""
    rows = []
    for partition, span in offsets.items():
        for offset in span:
            when = datetime(day.year, day.month, day.day, 12, tzinfo=UTC) + timedelta(seconds=offset)
            rows.append(
                {
                    "event_id": f"{prefix}-{partition}-{offset}",
                    "event_type": kind,
                    "ad_id": "ad-1",
                    "event_time": when,
                    "user_key": f"u{offset % 3}",
                    "country": "FR",
                    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0",
                    "attributes": {},
                    "schema_version": 1,
                    "received_at": when + timedelta(seconds=1),
                    "kafka_topic": "adclick.events",
                    "kafka_partition": partition,
                    "kafka_offset": offset,
                    "kafka_timestamp": when + timedelta(seconds=1),
                    "event_date": day,
                    "region": "eu",
                }
            )
    return rows


def land(spark, settings: Settings, schema: T.StructType, rows: list[dict[str, Any]]) -> None:
    """Append to bronze.events as the landing query does (one commit)."""
    frame = spark.createDataFrame([tuple(r.get(f) for f in schema.names) for r in rows], schema)
    lake.append(frame, settings, "bronze.events")


def day_files(settings: Settings, day: date) -> set[str]:
    """The Parquet files in bronze's folder of ``day``, as listed on disk."""
    folder = settings.lake_local_path / "bronze" / "events" / f"event_date={day}"
    return {p.name for p in folder.rglob("*.parquet")}


@pytest.fixture(scope="module")
def traced(spark, bronze_schema, tmp_path_factory) -> dict[str, Any]:
    """The real silver jobs of DAY then NEXT and gold of DAY on one bronze landing, then a second
    landing that no job read yet; the month's roll-up is recorded by hand, reading those versions
    (running it would add a minute: its own write is not what is traced)."""
    home = tmp_path_factory.mktemp("lineage")
    settings = Settings().model_copy(update={"home": home, "lake_root": (home / "lake").as_uri()})
    ticks = itertools.count()
    clock = lambda: FIXED + timedelta(seconds=next(ticks))  # noqa: E731
    land(
        spark,
        settings,
        bronze_schema,
        bronze_rows(DAY, "click", {0: range(0, 3), 1: range(5, 7), 2: range(9, 10)}, "a")
        + bronze_rows(NEXT, "impression", {0: range(100, 102)}, "n"),
    )  # bronze v0
    dims.load(spark, settings, ads=[{"ad_id": "ad-1", "campaign_id": "camp-1"}])
    files_read = day_files(settings, DAY)
    runs = {"s-day": jobs.run_silver(spark, settings, DAY, clock=clock)}  # silver v0
    runs["s-next"] = jobs.run_silver(spark, settings, NEXT, clock=clock)  # silver v1, another day
    runs["gold"] = jobs.run_gold(spark, settings, DAY, clock=clock)  # gold v0, reads silver v1
    land(spark, settings, bronze_schema, bronze_rows(DAY, "click", {0: range(3, 5)}, "late"))  # v1
    month = {"run_id": "m-1", "job": "monthly", "day": date(2026, 11, 1), "status": "succeeded"}
    ops.record_run(
        spark,
        settings,
        {**month, "inputs": [f"{DAILY}@0", "silver.events@1"], "outputs": ["gold.ad_clicks_monthly@0"]},
    )
    return {"settings": settings, "runs": runs, "files_read": files_read}


def test_trace_follows_the_real_jobs_back_to_bronze_files_and_kafka_offsets(spark, traced) -> None:
    settings, runs = traced["settings"], traced["runs"]
    gold, silver_run = runs["gold"], runs["s-day"]
    root = trace(spark, settings, DAILY, DAY)
    assert (root.version, root.run.run_id, root.current_version) == (0, gold.run_id, 0)
    assert root.run.code_version == code_version()
    assert root.run.started_at == FIXED + timedelta(seconds=4)  # the 5th clock reading, back in UTC
    [silver] = root.inputs
    # gold read silver v1 (NEXT's write); DAY's rows there are the ones silver wrote at v0
    assert (silver.table, silver.version, silver.written) == ("silver.events", 1, 0)
    assert silver.run.run_id == silver_run.run_id
    assert silver.run.inputs == ("bronze.events@0", "dims.ads@0")
    bronze, ads = silver.inputs
    assert (bronze.table, bronze.version, bronze.day) == ("bronze.events", 0, DAY)
    assert (ads.table, ads.version, ads.note) == ("dims.ads", 0, "not written by a batch job")
    # the files and offsets at v0, not those of the landing after the runs
    assert len(day_files(settings, DAY)) > len(traced["files_read"]) >= 1
    assert {Path(f).name for f in bronze.files} == traced["files_read"]
    assert bronze.kafka == [
        KafkaRange("adclick.events", 0, 0, 2, 3),
        KafkaRange("adclick.events", 1, 5, 6, 2),
        KafkaRange("adclick.events", 2, 9, 9, 1),
    ]
    assert sum(k.records for k in bronze.kafka) == silver_run.rows_in == 6


def test_a_partition_rewritten_later_is_traced_at_its_last_write(spark, traced) -> None:
    settings, runs = traced["settings"], traced["runs"]
    root = trace(spark, settings, "silver.events", DAY)  # written at v0, the table is at v1 now
    assert (root.version, root.run.run_id, root.current_version) == (0, runs["s-day"].run_id, 1)
    assert root.changed_since is False  # v1 wrote NEXT, not DAY
    assert "table now at v1; this partition is unchanged since" in render(root)


def test_the_monthly_trace_reaches_each_day_once(spark, traced) -> None:
    settings, runs = traced["settings"], traced["runs"]
    root = trace(spark, settings, "gold.ad_clicks_monthly", date(2026, 11, 20))
    assert (root.day, root.run.run_id, root.version) == (date(2026, 11, 1), "m-1", 0)
    got = [(n.table, n.day, n.version, n.written, n.run.run_id, n.repeat) for n in root.inputs]
    assert got == [
        (DAILY, DAY, 0, 0, runs["gold"].run_id, False),  # NEXT has no gold run: not in the month's input
        ("silver.events", DAY, 1, 0, runs["s-day"].run_id, True),  # traced under the daily node already
        ("silver.events", NEXT, 1, 1, runs["s-next"].run_id, False),
    ]
    assert root.inputs[0].inputs[0].inputs[0].kafka[0].records == 3  # DAY's bronze under the daily node
    assert root.inputs[1].inputs == []  # a repeat is not traced again
    next_bronze = root.inputs[2].inputs[0]
    assert (next_bronze.version, next_bronze.kafka) == (0, [KafkaRange("adclick.events", 0, 100, 101, 2)])


def test_a_day_no_run_wrote_names_the_command_to_run(spark, traced) -> None:
    message = (
        "no succeeded run in ops.job_runs wrote gold.ad_clicks_daily for 2026-11-28; "
        "run `adclick batch gold --date 2026-11-28`"
    )
    with pytest.raises(LineageError) as caught:
        trace(spark, traced["settings"], DAILY, NEXT)
    assert str(caught.value) == message


def test_the_cli_prints_the_tree(spark, traced, monkeypatch, capsys) -> None:
    monkeypatch.setattr("cli.lineage_commands._with_spark", lambda name, work: work(spark))
    monkeypatch.setattr("cli.lineage_commands.get_settings", lambda: traced["settings"])
    assert main(["lineage", DAILY, "--date", "2026-11-27"]) == 0
    out = capsys.readouterr().out.splitlines()
    gold, silver = traced["runs"]["gold"], traced["runs"]["s-day"]
    code = code_version()
    assert out == [
        f"gold.ad_clicks_daily 2026-11-27 @ v0  (gold run {gold.run_id}, 2026-11-28 03:00:05 UTC (1.0 s), "
        f"6 rows in -> {gold.rows_out} out, code {code})",
        f"  <- silver.events @ v1  (day written at v0 by silver run {silver.run_id}, 2026-11-28 03:00:01 UTC "
        f"(1.0 s), rules only, no model, 6 rows in -> 6 out, code {code})",
        f"     <- bronze.events @ v0: {len(traced['files_read'])} files in event_date=2026-11-27",
        "        kafka adclick.events partition 0: offsets 0..2 (3 records)",
        "        kafka adclick.events partition 1: offsets 5..6 (2 records)",
        "        kafka adclick.events partition 2: offsets 9..9 (1 records)",
        "     <- dims.ads @ v0: not written by a batch job",
    ]
    assert main(["lineage", "silver.events", "--date", "2026-11-28", "--json"]) == 0
    tree = json.loads(capsys.readouterr().out)
    assert (tree["table"], tree["day"], tree["version"], tree["current_version"]) == (
        "silver.events",
        "2026-11-28",
        1,
        1,
    )
    assert tree["run"]["code_version"] == code and tree["inputs"][0]["kafka"][0]["records"] == 2
    assert main(["lineage", DAILY, "--date", "2026-11-28"]) == 1
    assert "run `adclick batch gold --date 2026-11-28`" in capsys.readouterr().err


def test_job_runs_written_before_code_version_still_read(spark, tmp_path) -> None:
    settings = Settings().model_copy(update={"home": tmp_path, "lake_root": (tmp_path / "lake").as_uri()})
    old_schema = T.StructType([f for f in ops.JOB_RUNS.fields if f.name != "code_version"])
    old = {"run_id": "old", "job": "gold", "day": DAY, "status": "succeeded", "finished_at": FIXED}
    lake.append_rows(spark, settings, "ops.job_runs", [{**old, "outputs": [f"{DAILY}@0"]}], old_schema)
    later = FIXED + timedelta(hours=1)
    ops.record_run(
        spark, settings, {**old, "run_id": "new", "day": NEXT, "finished_at": later, "code_version": "x"}
    )
    rows = lake.read(spark, settings, "ops.job_runs").collect()
    assert {r.run_id: r.code_version for r in rows} == {"old": None, "new": "x"}
    assert ops.last_run(spark, settings, "gold", DAY).run_id == "old"
    root = trace(spark, settings, DAILY, DAY)  # its input table is gone: a leaf with no run
    assert (root.run.run_id, root.run.code_version, root.inputs) == ("old", None, [])
    assert "code not recorded" in render(root)
