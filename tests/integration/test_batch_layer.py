"""Batch layer on the real broker, stream, Delta and Airflow: gold equals the generator's truth.

Traffic with known truth (duplicates and late events included) goes through Kafka and the stream
application into bronze; the batch steps recompute each day; gold's per-ad daily counts must equal
the truth exactly, and rerunning a day must leave the tables' contents unchanged.
"""

from __future__ import annotations

import itertools
import subprocess
import time
from datetime import UTC, date, datetime, timedelta

import pyspark.sql.functions as F
import pytest
from flow_checks import truth_counts

from adclick.catalog import table
from adclick.contract import now_utc
from adclick.settings import Settings

pytestmark = pytest.mark.integration


def _send_days(settings: Settings, first: date, days: int, clicks: int, seed: int):
    from traffic.generator import GeneratorConfig, generate_timed
    from traffic.sinks import send_to_kafka
    from traffic.truth import Truth

    truth = Truth()
    config = GeneratorConfig(
        start=datetime(first.year, first.month, first.day, tzinfo=UTC),
        duration=timedelta(days=days),
        clicks=clicks,
        late_fraction=0.05,
        duplicate_rate=0.03,
        seed=seed,
    )
    result = send_to_kafka(generate_timed(config, truth), settings=settings)
    assert result.failed == 0 and result.invalid == 0
    assert truth.duplicate_sends > 0 and truth.late_events > 0
    return truth


def _gold_counts(spark, settings: Settings, days: list[date]) -> dict[tuple[str, str, str], int]:
    gold = spark.read.format("delta").load(table("gold.ad_clicks_daily").path(settings))
    rows = (
        gold.where(F.col("day").isin(days))
        .groupBy("ad_id", "day")
        .agg(
            F.sum(F.col("clicks") + F.col("fraud_clicks")).alias("click"),
            F.sum("impressions").alias("impression"),
            F.sum("conversions").alias("conversion"),
        )
        .collect()
    )
    got = {}
    for r in rows:
        for kind in ("click", "impression", "conversion"):
            if r[kind]:
                got[(kind, r.ad_id, r.day.isoformat())] = r[kind]
    return got


def _contents(spark, settings: Settings, name: str, column: str, day: date) -> list:
    rows = spark.read.format("delta").load(table(name).path(settings)).where(F.col(column) == F.lit(day))
    return sorted(map(repr, rows.collect()))


def test_gold_days_equal_truth_and_rerunning_a_day_changes_nothing(isolated: Settings, spark) -> None:
    from adclick import dims
    from batch_layer.ops import batch_watermark
    from batch_layer.pipeline import run_step
    from speed_layer import app

    first = now_utc().date() - timedelta(days=3)
    days = [first, first + timedelta(days=1)]
    truth = _send_days(isolated, first, 2, clicks=500, seed=515)
    dims.load(spark, isolated, ads=truth.ads, users=truth.users)
    app.run(isolated, queries=("bronze", "speed"), available_now=True, log=lambda _: None)

    for day in days:
        run_step(spark, isolated, "day", day, log=lambda _: None)
    assert _gold_counts(spark, isolated, days) == truth_counts(truth, [d.isoformat() for d in days])
    assert batch_watermark(spark, isolated) == days[-1]

    silver = spark.read.format("delta").load(table("silver.events").path(isolated))
    assert silver.groupBy("event_id").count().where("count > 1").count() == 0
    assert silver.where("copies > 1").count() > 0  # the retried sends were there, and folded
    assert silver.where(F.col("campaign_id").isNull()).count() == 0

    summary = spark.read.format("delta").load(table("ops.reconciliation_summary").path(isolated))
    assert {r.day for r in summary.where("passed").collect()} == set(days)

    runs = spark.read.format("delta").load(table("ops.job_runs").path(isolated))
    assert runs.where("job = 'silver' AND status = 'succeeded'").count() == 2
    dq = spark.read.format("delta").load(table("ops.dq_results").path(isolated))
    assert dq.where("NOT success").count() == 0 and dq.count() > 10

    before = {
        (name, col): _contents(spark, isolated, name, col, days[0])
        for name, col in (("silver.events", "event_date"), ("gold.ad_clicks_daily", "day"),
                          ("gold.ad_clicks_hourly", "day"), ("gold.audience_daily", "day"))
    }  # fmt: skip
    run_step(spark, isolated, "silver", days[0], log=lambda _: None)
    run_step(spark, isolated, "gold", days[0], log=lambda _: None)
    after = {key: _contents(spark, isolated, key[0], key[1], days[0]) for key in before}
    assert after == before
    assert batch_watermark(spark, isolated) == days[-1]  # a rerun never moves it back


def _airflow(stack: Settings, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    from infra.airflow_service import airflow_cli

    return airflow_cli(stack, *args, timeout=timeout)


def _task_logs_since(stack: Settings, since: float, dag_id: str = "daily_batch") -> str:
    """Tails of the task logs of ``dag_id`` written since ``since`` that hold an error, so a failed
    run says in the test report which task failed and why."""
    from infra.airflow_service import airflow_dir

    logs = sorted(
        (
            p
            for p in (airflow_dir(stack) / "logs" / f"dag_id={dag_id}").rglob("*.log")
            if p.stat().st_mtime >= since
        ),
        key=lambda p: p.stat().st_mtime,
    )
    out = []
    for path in logs:
        text = path.read_text(errors="replace")
        if "error" in text.lower() or "traceback" in text.lower():
            out.append(f"--- {path.relative_to(airflow_dir(stack))}\n{text[-2500:]}")
    return "\n".join(out) or "(no task log with an error)"


def _run_states(stack: Settings) -> dict[str, str]:
    from infra.airflow_service import airflow_json

    out = _airflow(stack, "dags", "list-runs", "daily_batch", "-o", "json")
    assert out.returncode == 0, out.stderr[-2000:]
    runs = airflow_json(out.stdout)
    by_day = {(r["logical_date"] or "")[:10]: r["state"] for r in runs}
    return by_day | {r["run_id"]: r["state"] for r in runs}


def _fresh_daily_batch(stack: Settings, timeout_s: float = 240) -> None:
    """Forget daily_batch's earlier runs and backfills (a rerun of the suite on the same data
    directory), wait for the DAG processor to register it again, and unpause it."""
    for _ in range(5):  # SQLite may be busy with the scheduler: try again
        deleted = _airflow(stack, "dags", "delete", "daily_batch", "--yes")
        if deleted.returncode == 0 or "not found" in (deleted.stdout + deleted.stderr).lower():
            break
        time.sleep(3)
    assert deleted.returncode == 0 or "not found" in (deleted.stdout + deleted.stderr).lower(), (
        deleted.stdout[-1500:] + deleted.stderr[-1500:]
    )
    deadline = time.monotonic() + timeout_s
    while _airflow(stack, "dags", "details", "daily_batch").returncode != 0:
        assert time.monotonic() < deadline, "daily_batch did not come back after its metadata was deleted"
        time.sleep(5)
    unpaused = _airflow(stack, "dags", "unpause", "daily_batch")
    assert unpaused.returncode == 0, unpaused.stderr[-2000:]


def _wait_landed(spark, stack: Settings, days: list[date], want: int, timeout_s: float = 300) -> None:
    bronze = table("bronze.events").path(stack)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        landed = spark.read.format("delta").load(bronze).where(F.col("event_date").isin(days)).count()
        if landed >= want:
            return
        time.sleep(3)
    raise AssertionError(f"only {landed} of {want} records landed in bronze")


def _free_the_active_run(stack: Settings, wait_s: float = 90) -> None:
    """Mark failed the scheduled run the unpaused DAG starts for yesterday: in the test stack it
    waits 48 hours for its late-arrival grace (tests/conftest.py) and holds daily_batch's one
    active run, so a manual run would stay queued behind it (backfill runs are not counted)."""
    import httpx

    from infra.airflow_service import airflow_json

    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        out = _airflow(stack, "dags", "list-runs", "daily_batch", "-o", "json")
        runs = [r for r in airflow_json(out.stdout) if r["run_id"].startswith("scheduled__")]
        if runs:
            break
        time.sleep(5)
    else:
        return
    password = stack.airflow_admin_password.get_secret_value()
    login = {"username": stack.airflow_admin_user, "password": password}
    token = httpx.post(f"{stack.airflow_url}/auth/token", json=login, timeout=10).json()["access_token"]
    for run in runs:
        patched = httpx.patch(
            f"{stack.airflow_url}/api/v2/dags/daily_batch/dagRuns/{run['run_id']}",
            headers={"Authorization": f"Bearer {token}"},
            json={"state": "failed"},
            timeout=30,
        )
        assert patched.status_code == 200, patched.text[-1000:]


def _recompute_intervals(stack: Settings) -> list[tuple[datetime, datetime, str]]:
    """(start, end, run id) of daily_batch's recompute_day in each run where it succeeded (a run
    marked failed gets its tasks' times too), by start."""
    from infra.airflow_service import airflow_json

    out = _airflow(stack, "dags", "list-runs", "daily_batch", "-o", "json")
    intervals = []
    for run in airflow_json(out.stdout):
        states = _airflow(stack, "tasks", "states-for-dag-run", "daily_batch", run["run_id"], "-o", "json")
        for ti in airflow_json(states.stdout):
            if ti["task_id"] == "recompute_day" and ti["state"] == "success":
                start, end = (datetime.fromisoformat(ti[k]) for k in ("start_date", "end_date"))
                intervals.append((start, end, run["run_id"]))
    return sorted(intervals)


def test_daily_batch_backfill_through_the_airflow_cli_then_dags_test(stack: Settings, spark) -> None:
    """The first of two days backfilled by the running Airflow (`airflow backfill create`) while
    a manual run of the second is triggered beside it; then the second day run again by `airflow
    dags test`: gold equals the truth, the runs never recompute two days at once (the one-slot
    pool), the watermark is at the second day or later, and the rerun keeps gold."""
    from batch_layer.ops import watermark_without_spark
    from infra.airflow_service import airflow_json

    today = now_utc().date()
    days = [today - timedelta(days=6 - i) for i in range(2)]
    truth = _send_days(stack, days[0], 2, clicks=300, seed=616)
    _wait_landed(spark, stack, days, truth.events_sent)

    # A manual run of the second day (the param `day`), started just before the backfill of the
    # first, as a scheduled or catch-up run would be: Airflow runs a backfill beside the DAG's own.
    racer = f"race__{days[-1].isoformat()}"
    for _ in range(4):  # SQLite (the local Airflow database) can be locked by the scheduler
        _fresh_daily_batch(stack)
        _free_the_active_run(stack)
        triggered = _airflow(
            stack, "dags", "trigger", "daily_batch", "--run-id", racer, "-c", f'{{"day": "{days[-1]}"}}'
        )
        created = triggered
        if triggered.returncode != 0:
            assert "database is locked" in triggered.stdout + triggered.stderr, triggered.stderr[-2000:]
            time.sleep(5)
            continue
        created = _airflow(
            stack,
            "backfill", "create", "--dag-id", "daily_batch",
            "--from-date", days[0].isoformat(), "--to-date", days[0].isoformat(),
            "--max-active-runs", "1", "--reprocess-behavior", "completed",
        )  # fmt: skip
        if created.returncode == 0 or "database is locked" not in created.stdout + created.stderr:
            break
        time.sleep(5)
    assert created.returncode == 0, created.stdout[-2000:] + created.stderr[-2000:]
    deadline = time.monotonic() + 1500
    wanted = {days[0].isoformat(), racer}
    while time.monotonic() < deadline:
        states = _run_states(stack)
        if all(states.get(d) in ("success", "failed") for d in wanted):
            break
        time.sleep(10)
    assert {d: states.get(d) for d in wanted} == dict.fromkeys(wanted, "success")
    assert _gold_counts(spark, stack, days) == truth_counts(truth, [d.isoformat() for d in days])
    pools = airflow_json(_airflow(stack, "pools", "get", stack.batch_pool, "-o", "json").stdout)
    assert [int(p["slots"]) for p in pools] == [1]
    intervals = _recompute_intervals(stack)
    assert len(intervals) == 2, [(str(a), str(b), run) for a, b, run in intervals]
    for (_, end, _), (start, _, run_id) in itertools.pairwise(intervals):
        assert start >= end, f"{run_id} recomputed its day while another run did: {intervals}"
    assert watermark_without_spark(stack) >= days[-1]
    gold_before = _contents(spark, stack, "gold.ad_clicks_daily", "day", days[-1])

    def gold_runs() -> int:
        runs = spark.read.format("delta").load(table("ops.job_runs").path(stack))
        mine = (F.col("job") == "gold") & (F.col("day") == F.lit(days[-1])) & (F.col("status") == "succeeded")
        return runs.where(mine).count()

    before = gold_runs()
    # `dags test` runs the DAG's tasks in this process, and the running scheduler would schedule
    # the same run's tasks too (it did: the test's own bronze_complete was refused as already
    # succeeded, and the run deadlocked). A paused DAG's runs are left alone by the scheduler.
    assert _airflow(stack, "dags", "pause", "daily_batch").returncode == 0
    # A manual run of a daily DAG processes the last complete day before its logical date.
    the_next_day = (days[-1] + timedelta(days=1)).isoformat()
    started = time.time()
    tested = _airflow(stack, "dags", "test", "daily_batch", the_next_day, timeout=900)
    output = (tested.stdout + tested.stderr).splitlines()
    errors = [line for line in output if "ERROR" in line or "Error" in line]
    assert tested.returncode == 0, (
        "\n".join(errors[:60]) + "\n" + tested.stdout[-3000:] + tested.stderr[-3000:] + "\n"
        + _task_logs_since(stack, started)
    )  # fmt: skip
    assert gold_runs() == before + 1  # `dags test` recomputed exactly that day
    assert _contents(spark, stack, "gold.ad_clicks_daily", "day", days[-1]) == gold_before
    assert _airflow(stack, "dags", "pause", "daily_batch").returncode == 0
