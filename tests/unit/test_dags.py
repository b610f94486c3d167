"""DAG integrity: the DAG folder imports cleanly, every DAG follows the house rules, and the DAGs are
wired by assets (daily_batch -> gold.ad_clicks_daily -> monthly_rollup)."""

from __future__ import annotations

import ast
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS.glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow")))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dag_folder_has_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert len(dagbag.dags) >= len(DAG_FILES)


def test_every_dag_has_tags_retries_docs(dagbag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.default_args.get("retries", 0) >= 1, f"{dag_id} has no retries"
        assert dag.doc_md and dag.doc_md.strip(), f"{dag_id} has no doc_md"


def test_every_dag_alerts_on_a_failed_run_and_the_batch_tasks_on_their_failure(dagbag) -> None:
    from batch_layer.dag_support import on_failure, on_run_failure

    def listed(callbacks) -> list:
        return callbacks if isinstance(callbacks, list) else [callbacks]

    for dag_id, dag in dagbag.dags.items():
        assert on_run_failure in listed(dag.on_failure_callback), f"{dag_id} has no run failure alert"
    for dag_id in ("daily_batch", "monthly_rollup", "fraud_model_training", "data_quality_report"):
        for task in dagbag.dags[dag_id].tasks:
            assert on_failure in listed(task.on_failure_callback), f"{dag_id}.{task.task_id}: no alert"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_catchup_is_explicit(path: Path) -> None:
    tree = ast.parse(path.read_text())
    keywords = {kw.arg for node in ast.walk(tree) if isinstance(node, ast.Call) for kw in node.keywords}
    assert "catchup" in keywords, f"{path.name} must set catchup explicitly"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_module_imports_nothing_heavy_at_parse_time(path: Path) -> None:
    code = (
        "import runpy, sys; runpy.run_path(sys.argv[1]); "
        "mods = ('pyspark', 'great_expectations', 'trino', 'kafka', 'boto3'); "
        "heavy = sorted(m for m in mods if m in sys.modules); "
        "print('HEAVY=' + ','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    marker = [line for line in out.stdout.splitlines() if line.startswith("HEAVY=")]
    assert marker == ["HEAVY="], f"{path.name} imports {marker} at parse time"


def test_daily_batch_runs_the_steps_in_order_with_catchup(dagbag) -> None:
    from adclick.settings import Settings

    dag = dagbag.dags["daily_batch"]
    assert dag.catchup is Settings().batch_catchup  # on by default; the test stack turns it off
    assert Settings.model_fields["batch_catchup"].default is True
    order = ["bronze_complete", "recompute_day", "register_tables"]
    assert sorted(dag.task_ids) == sorted(order)
    for before, after in itertools.pairwise(order):
        assert dag.get_task(after).upstream_task_ids == {before}
    assert {"monthly_rollup", "fraud_model_training", "data_quality_report", "trino_catalog"} <= set(
        dagbag.dags
    )


def test_spark_steps_go_through_spark_submit_with_the_configured_master(monkeypatch) -> None:
    from datetime import date

    from adclick.settings import Settings
    from batch_layer.submit import command

    settings = Settings(spark_master="spark://cluster.example:7077")
    cmd = command(settings, "silver", date(2026, 11, 3))
    assert "/bin/spark-submit --master spark://cluster.example:7077 " in cmd
    assert cmd.endswith("batch_layer/submit.py silver --date 2026-11-03")


# --- asset wiring: daily_batch -> gold.ad_clicks_daily -> monthly_rollup ---------------------


def test_recompute_day_runs_the_day_in_one_submit_and_emits_the_gold_asset(dagbag, monkeypatch) -> None:
    import pendulum
    from airflow.sdk.execution_time.context import OutletEventAccessors

    from adclick.settings import Settings
    from batch_layer.dag_support import GOLD_DAILY

    task = dagbag.dags["daily_batch"].get_task("recompute_day")
    assert task.outlets == [GOLD_DAILY]
    assert GOLD_DAILY.uri == "adclick://gold/ad_clicks_daily"
    commands = []
    monkeypatch.setitem(
        task.python_callable.__globals__,
        "spark_submit_on",
        lambda step, day: commands.append((step, day.isoformat())) or "true",
    )
    events = OutletEventAccessors()
    task.python_callable(data_interval_start=pendulum.datetime(2026, 10, 31, tz="UTC"), outlet_events=events)
    assert events[GOLD_DAILY].extra == {"day": "2026-10-31"}
    assert commands == [("day", "2026-10-31")]  # silver, quality, gold, reconcile, watermark: one JVM
    # A manual run given the param `day` recomputes that day, whatever its data interval.
    task.python_callable(
        data_interval_start=pendulum.datetime(2026, 12, 7, tz="UTC"),
        params={"day": "2026-11-20"},
        outlet_events=(events := OutletEventAccessors()),
    )
    assert events[GOLD_DAILY].extra == {"day": "2026-11-20"}
    assert commands[-1] == ("day", "2026-11-20")
    assert dagbag.dags["daily_batch"].params["day"] is None  # scheduled and backfill runs: their interval
    assert [t for t in dagbag.dags["daily_batch"].tasks if t.outlets] == [task]  # the only producer
    assert task.pool == Settings().batch_pool == "adclick_batch"  # one day at a time, every run


def test_monthly_rollup_is_scheduled_on_the_gold_asset(dagbag) -> None:
    from airflow.sdk.definitions.timetables.assets import AssetTriggeredTimetable

    from batch_layer.dag_support import GOLD_DAILY, GOLD_MONTHLY

    dag = dagbag.dags["monthly_rollup"]
    assert isinstance(dag.timetable, AssetTriggeredTimetable)  # no calendar: it waits for final days
    assert list(dag.timetable.asset_condition.objects) == [GOLD_DAILY]
    assert dag.catchup is False
    assert dag.get_task("monthly").upstream_task_ids == {"plan"}
    assert dag.get_task("monthly").outlets == [GOLD_MONTHLY]
    assert "gold.ad_clicks_daily" in dag.doc_md and "calendar" in dag.doc_md


def gold_events(*days: str):
    """What Airflow hands a run triggered by daily_batch's gold events of ``days``."""
    from datetime import UTC, datetime

    from airflow.sdk.api.datamodels._generated import AssetReferenceAssetEventDagRun
    from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult
    from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor

    from batch_layer.dag_support import GOLD_DAILY

    asset = AssetReferenceAssetEventDagRun(name=GOLD_DAILY.name, uri=GOLD_DAILY.uri, extra={})
    return TriggeringAssetEventsAccessor.build(
        AssetEventDagRunReferenceResult(
            asset=asset,
            extra={"day": day},
            source_task_id="advance_watermark",
            source_dag_id="daily_batch",
            source_run_id=f"scheduled__{day}",
            source_map_index=-1,
            source_aliases=[],
            timestamp=datetime(2026, 12, 1, tzinfo=UTC),
        )
        for day in days
    )


@pytest.mark.parametrize(
    ("days", "params", "months"),
    [
        (("2026-10-31",), {}, ["2026-10-01"]),
        (("2026-11-05",), {}, []),
        (("2026-10-30", "2026-10-31", "2026-11-01"), {}, ["2026-10-01"]),  # events coalesced
        ((), {"day": "2026-09-14"}, ["2026-09-01"]),  # triggered by hand
        ((), {"day": None}, []),
    ],
)
def test_monthly_rollup_plans_the_months_its_events_completed(dagbag, days, params, months) -> None:
    plan = dagbag.dags["monthly_rollup"].get_task("plan").python_callable
    assert plan(triggering_asset_events=gold_events(*days), params=params) == months


@pytest.mark.parametrize(
    ("before", "after", "months"),
    [
        ("2026-10-30", "2026-10-31", ["2026-10-01"]),  # the month's last day
        ("2026-11-04", "2026-11-05", []),  # any other day
        ("2026-10-31", "2026-11-01", []),  # the day after: October was already complete
        ("2026-10-29", "2026-11-02", ["2026-10-01"]),  # a jump over a month end
        ("2026-10-15", "2026-12-31", ["2026-10-01", "2026-11-01", "2026-12-01"]),
        ("2026-12-30", "2027-01-02", ["2026-12-01"]),  # over a year end
        ("2028-02-27", "2028-02-28", []),  # a leap year: February has a 29th
        ("2027-02-27", "2027-02-28", ["2027-02-01"]),
        ("2026-10-31", "2026-10-31", []),  # the watermark did not move
        (None, "2026-10-31", ["2026-10-01"]),  # its first advance
        (None, "2026-10-30", []),
    ],
)
def test_which_months_a_watermark_move_completes(before, after, months) -> None:
    from datetime import date

    from batch_layer.dag_support import months_completed

    got = months_completed(before and date.fromisoformat(before), date.fromisoformat(after))
    assert [m.isoformat() for m in got] == months


def test_rollup_plan_says_why() -> None:
    from datetime import date

    from batch_layer.dag_support import event_days, rollup_plan

    assert rollup_plan([date(2026, 11, 5)]) == (
        [],
        "gold is final up to 2026-11-05: no month ended there, nothing to roll up",
    )
    months, why = rollup_plan([date(2026, 11, 1), date(2026, 10, 31)])
    assert months == [date(2026, 10, 1)] and why.endswith("2026-10-31 .. 2026-11-01: 2026-10 complete")
    assert rollup_plan([]) == ([], "no gold asset event with a day: nothing to roll up")
    # an event made by hand in the Assets view may carry any extra: only a valid day counts
    assert event_days([{"day": "2026-10-31"}, {}, {"note": "x"}, {"day": "soon"}, None]) == [
        date(2026, 10, 31)
    ]


def test_register_tables_is_one_task_with_a_real_signature(dagbag) -> None:
    import inspect

    from batch_layer.pipeline import register

    assert list(inspect.signature(register).parameters) == ["settings"]
    for dag_id in ("daily_batch", "trino_catalog"):
        task = dagbag.dags[dag_id].get_task("register_tables")
        assert task.python_callable.__module__ == "batch_layer.dag_support", dag_id


def test_a_day_in_one_session_runs_the_steps_in_order_each_in_its_own_log_group(monkeypatch) -> None:
    from datetime import date

    from adclick.errors import AdclickError
    from adclick.settings import Settings
    from batch_layer import pipeline

    ran: list[str] = []

    def fake(name: str):
        def step(spark, settings, day, run_id):
            ran.append(name)
            assert run_id.startswith(f"{name}-{day.isoformat()}-")
            if name == "reconcile":
                raise AdclickError("drift")
            return {"ok": name}

        return step

    monkeypatch.setattr(pipeline, "STEPS", {name: fake(name) for name in pipeline.DAY})
    monkeypatch.setattr(pipeline, "check_turn", lambda spark, settings, day: ran.append("turn"))
    lines: list[str] = []
    with pytest.raises(AdclickError, match="drift"):
        pipeline.run_step(None, Settings(), "day", date(2026, 11, 3), log=lines.append, log_groups=True)
    assert ran == ["turn", "silver", "quality", "gold", "reconcile"]  # a failed step stops the day there
    groups = [line for line in lines if line.startswith("::")]
    assert groups == [g for name in ran[1:] for g in (f"::group::{name} 2026-11-03", "::endgroup::")]
    assert "batch: gold 2026-11-03 done in " in "\n".join(lines)
    quiet: list[str] = []
    monkeypatch.setattr(pipeline, "STEPS", {name: fake(name) for name in ("silver",)})
    pipeline.run_step(None, Settings(), "silver", date(2026, 11, 3), log=quiet.append)
    assert not [line for line in quiet if line.startswith("::")]


# --- lifecycle: retention, lake_maintenance, archive_restore, gdpr_erasure ---------------------


def _submits(task, monkeypatch) -> list[tuple[str, str, list[str]]]:
    """The (step, day, extra) of every spark-submit command ``task`` builds (none is run)."""
    calls: list[tuple[str, str, list[str]]] = []
    monkeypatch.setitem(
        task.python_callable.__globals__,
        "spark_submit_on",
        lambda step, day, extra: calls.append((step, day.isoformat(), extra)) or "true",
    )
    return calls


def test_retention_runs_one_submit_as_of_its_day_and_honours_dry_run(dagbag, monkeypatch) -> None:
    import pendulum

    dag = dagbag.dags["retention"]
    assert [t.task_id for t in dag.topological_sort()] == ["apply_policy", "register_tables"]
    assert dag.catchup is False and "lifecycle" in dag.tags
    task = dag.get_task("apply_policy")
    calls = _submits(task, monkeypatch)
    task.python_callable(
        params={"day": None, "dry_run": False}, logical_date=pendulum.datetime(2026, 12, 2, 4)
    )
    task.python_callable(params={"day": "2027-01-05", "dry_run": True}, logical_date=None)
    assert calls == [("retention", "2026-12-02", []), ("retention", "2027-01-05", ["--dry-run"])]


def test_lake_maintenance_runs_one_submit_as_of_its_day_and_honours_dry_run(dagbag, monkeypatch) -> None:
    import pendulum

    dag = dagbag.dags["lake_maintenance"]
    assert dag.task_ids == ["compact_and_vacuum"]
    assert dag.catchup is False and dag.max_active_runs == 1 and "lifecycle" in dag.tags
    assert dag.schedule == "30 1 * * *"
    assert set(dag.params) == {"day", "dry_run"}
    task = dag.get_task("compact_and_vacuum")
    calls = _submits(task, monkeypatch)
    task.python_callable(
        params={"day": None, "dry_run": False}, logical_date=pendulum.datetime(2026, 12, 2, 1, 30)
    )
    task.python_callable(params={"day": "2027-01-05", "dry_run": True}, logical_date=None)
    assert calls == [("maintenance", "2026-12-02", []), ("maintenance", "2027-01-05", ["--dry-run"])]


def test_archive_restore_passes_its_range_to_the_restore_job(dagbag, monkeypatch) -> None:
    dag = dagbag.dags["archive_restore"]
    assert type(dag.timetable).__name__ == "NullTimetable"  # triggered by hand only
    task = dag.get_task("restore")
    calls = _submits(task, monkeypatch)
    task.python_callable(params={"from": "2025-01-01", "to": "2025-01-03"})
    task.python_callable(params={"from": "2025-02-01", "to": None})
    assert calls == [("restore", "2025-01-01", ["--to", "2025-01-03"]), ("restore", "2025-02-01", [])]


def test_gdpr_erasure_passes_the_key_never_an_id_and_refuses_a_malformed_key(dagbag, monkeypatch) -> None:
    from adclick.contract import now_utc

    dag = dagbag.dags["gdpr_erasure"]
    assert type(dag.timetable).__name__ == "NullTimetable"
    assert [t.task_id for t in dag.topological_sort()] == ["erase_and_verify", "register_tables"]
    assert set(dag.params) == {"user_key", "by", "reason"}  # no raw user id parameter
    task = dag.get_task("erase_and_verify")
    calls = _submits(task, monkeypatch)
    key = "0123456789abcdef0123456789abcdef"
    task.python_callable(params={"user_key": key, "by": "dpo", "reason": "ticket 7"}, run_id="manual__1")
    assert calls == [
        (
            "erase",
            now_utc().date().isoformat(),
            ["--user-key", key, "--by", "dpo", "--reason", "ticket 7", "--request-id", "erasure-manual__1"],
        )
    ]
    param = dag.params.get_param("user_key")
    assert param.resolve(key) == key
    with pytest.raises(Exception, match="does not match"):
        param.resolve("alice@example.com")  # a raw id is refused before anything runs
