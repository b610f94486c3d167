"""backfill_7_days: seconds for a 7-day backfill of ``daily_batch`` through ``airflow backfill create``.

Method, on the running stack: generated traffic for seven closed UTC days (``BENCH_DAG_CLICKS``
clicks a day, 4,000 by default: about 231,000 events a day, as ``daily_dag_small_day``) is sent
to Kafka and waited for in bronze and in the speed layer; then ``daily_batch`` is unpaused and
``airflow backfill create --from-date <first> --to-date <last> --max-active-runs 1
--reprocess-behavior completed`` runs the seven days through the scheduler, timed from the
command's start until every run of the backfill has ended. Every run must succeed, and gold's
clicks of each day must equal the generator's distinct clicks, else the benchmark fails. The DAG
is paused again afterwards.

The days are seven consecutive days with no bronze rows yet that the watermark rule lets a run
pass: the seven days after the watermark when they are all closed, else the latest seven earlier
ones at or after ``ADCLICK_BATCH_START_DATE`` (backfilled days; the watermark stays). The stack's
``daily_batch`` must have catch-up off (the benchmark runner's default): a catch-up from the
start date would recompute every day since it beside the backfill.

The peer, in the same run: the Spark work of the seven runs, the sum of their steps' own
durations (``batch: <step> <day> done in <s>s`` in the ``recompute_day`` logs). The ratio says how
much of a backfill is per-run fixed cost (Airflow's scheduling and task starts, a JVM and a Spark
session per day) rather than work.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime, timedelta

from adclick.settings import Settings
from bench.daily_dag_small_day import STEP_DONE, _gold_clicks, wait_landed
from bench.result import write_result

CLICKS = int(os.environ.get("BENCH_DAG_CLICKS", "4000"))
DAYS = 7
TARGET_S = 600
SEED = 20261201


def pick_days(watermark: date | None, today: date, first: date, filled: set[date]) -> list[date]:
    """The backfill's days (module docstring): ``filled`` are the days bronze has rows of."""
    yesterday = today - timedelta(days=1)

    def window(start: date) -> list[date]:
        return [start + timedelta(days=i) for i in range(DAYS)]

    starts = []
    if watermark is None:
        starts.append(yesterday - timedelta(days=DAYS - 1))
    else:
        if watermark + timedelta(days=DAYS) <= yesterday:
            starts.append(watermark + timedelta(days=1))
        start = watermark - timedelta(days=DAYS - 1)
        while start >= first:
            starts.append(start)
            start -= timedelta(days=1)
    for start in starts:
        days = window(start)
        if start >= first and not filled & set(days):
            return days
    raise RuntimeError(
        f"no {DAYS} consecutive days without bronze rows between {first} and the watermark ({watermark})"
    )


def _dag_catchup(settings: Settings) -> bool:
    from infra.airflow_service import airflow_cli, airflow_json

    details = airflow_cli(settings, "dags", "details", "daily_batch", "-o", "json")
    if details.returncode != 0:
        raise RuntimeError(f"airflow dags details daily_batch failed: {details.stderr[-1000:]}")
    found = airflow_json(details.stdout)
    return bool((found[0] if isinstance(found, list) else found).get("catchup"))


def _backfill_states(settings: Settings, days: list[date]) -> dict[date, tuple[str, str]]:
    """(state, run id) of each day's backfill run (logical date = the day)."""
    from infra.airflow_service import airflow_cli, airflow_json

    out = airflow_cli(settings, "dags", "list-runs", "daily_batch", "-o", "json")
    found: dict[date, tuple[str, str]] = {}
    for run in airflow_json(out.stdout) if out.returncode == 0 else []:
        day = date.fromisoformat(run["logical_date"][:10])
        if day in days and run["run_id"].startswith("backfill__"):
            found[day] = (run["state"], run["run_id"])
    return found


def _spark_work(settings: Settings, run_ids: list[str]) -> dict[str, float]:
    """The steps' own durations summed over the runs' ``recompute_day`` logs (last attempt)."""
    from infra.airflow_service import airflow_dir

    totals: dict[str, float] = {}
    for run_id in run_ids:
        logs = sorted(
            (airflow_dir(settings) / "logs" / "dag_id=daily_batch" / f"run_id={run_id}").rglob("*.log")
        )
        attempts = [p for p in logs if "task_id=recompute_day" in str(p)]
        if not attempts:
            continue
        for name, seconds in STEP_DONE.findall(attempts[-1].read_text(errors="replace")):
            totals[name] = totals.get(name, 0.0) + float(seconds)
    return totals


def run(settings: Settings, context: dict) -> dict:
    import pyspark.sql.functions as F

    from adclick.spark import get_spark
    from batch_layer.lake import read_if_exists
    from batch_layer.ops import batch_watermark
    from infra.airflow_service import airflow_cli
    from traffic.generator import GeneratorConfig, generate_timed
    from traffic.sinks import send_to_kafka
    from traffic.truth import Truth

    spark = get_spark("bench-backfill", settings=settings)
    bronze = read_if_exists(spark, settings, "bronze.events")
    filled = set() if bronze is None else {r[0] for r in bronze.select("event_date").distinct().collect()}
    today = datetime.now(UTC).date()
    days = pick_days(batch_watermark(spark, settings), today, settings.batch_start_date, filled)
    truth = Truth()
    config = GeneratorConfig(
        start=datetime(days[0].year, days[0].month, days[0].day, tzinfo=UTC),
        duration=timedelta(days=DAYS),
        clicks=CLICKS * DAYS,
        late_fraction=0.02,
        duplicate_rate=0.01,
        seed=SEED,
    )
    print(
        f"backfill_7_days: sending {days[0]}..{days[-1]} ({CLICKS * DAYS:,} clicks) to Kafka ...", flush=True
    )
    sent = send_to_kafka(generate_timed(config, truth), settings=settings)
    if sent.failed or sent.invalid:
        raise RuntimeError(f"sending failed: {sent}")

    def landed() -> int:
        rows = read_if_exists(spark, settings, "bronze.events")
        return 0 if rows is None else rows.where(F.col("event_date").isin(days)).count()

    wait_landed(spark, settings, landed, truth.events_sent, f"{days[0]}..{days[-1]}", timeout_s=1200)

    if _dag_catchup(settings):
        raise RuntimeError(
            "daily_batch has catch-up on: unpausing it for the backfill would start a catch-up from "
            "ADCLICK_BATCH_START_DATE beside it. Start the stack with ADCLICK_BATCH_CATCHUP=false "
            "(`python -m bench` does when it starts the stack itself)"
        )
    if airflow_cli(settings, "dags", "unpause", "daily_batch").returncode != 0:
        raise RuntimeError("could not unpause daily_batch")
    print(f"backfill_7_days: airflow backfill create {days[0]}..{days[-1]} ...", flush=True)
    started = time.monotonic()
    try:
        created = airflow_cli(
            settings,
            "backfill", "create", "--dag-id", "daily_batch",
            "--from-date", days[0].isoformat(), "--to-date", days[-1].isoformat(),
            "--max-active-runs", "1", "--reprocess-behavior", "completed",
        )  # fmt: skip
        if created.returncode != 0:
            raise RuntimeError(f"backfill create failed:\n{created.stdout[-2000:]}{created.stderr[-2000:]}")
        deadline = time.monotonic() + 3600
        while True:
            states = _backfill_states(settings, days)
            ended = {d: s for d, (s, _) in states.items() if s in ("success", "failed")}
            if len(ended) == DAYS:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the backfill did not end in 3600 s: {states}")
            print(f"    {len(ended)}/{DAYS} days done, {time.monotonic() - started:.0f}s", flush=True)
            time.sleep(10)
        seconds = time.monotonic() - started
    finally:
        airflow_cli(settings, "dags", "pause", "daily_batch")
    failed = sorted(d.isoformat() for d, s in ended.items() if s != "success")
    if failed:
        raise RuntimeError(f"backfill runs failed for {', '.join(failed)}")
    spark = get_spark("bench-backfill", settings=settings)
    try:
        gold = {d: _gold_clicks(spark, settings, d) for d in days}
    finally:
        spark.stop()
    want = {d: truth.count("click", day=d.isoformat()) for d in days}
    if gold != want:
        raise RuntimeError(f"gold clicks per day {gold} differ from the generator's distinct clicks {want}")
    steps = _spark_work(settings, [run_id for _, run_id in states.values()])
    work = sum(steps.values())
    return write_result(
        "backfill_7_days",
        metric="seconds",
        value=seconds,
        unit="s",
        peer={"name": "the seven runs' own Spark work (sum of their steps)", "value": work},
        params={
            "days": [d.isoformat() for d in days],
            "events": truth.events_sent,
            "clicks": sum(want.values()),
            "target_s": TARGET_S,
        },
        summary=(
            f"{seconds:.0f} s for a {DAYS}-day backfill of {truth.events_sent:,} events "
            f"(target <= {TARGET_S} s; {seconds / DAYS:.0f} s a day); their Spark steps {work:.0f} s "
            f"({', '.join(f'{k} {v:.0f}' for k, v in steps.items())})"
        ),
        steps_s=steps,
    )
