"""daily_dag_small_day: seconds for one ``daily_batch`` DAG run through Airflow on a day of ~200k events.

Method, on the running stack: generated traffic for one closed UTC day (``BENCH_DAG_CLICKS``
clicks, 4,000 by default: about 231,000 events with impressions, conversions, 1 % duplicate sends
and 2 % late events) is sent to Kafka and waited for in bronze; then ``airflow dags test
daily_batch <day + 1>`` runs every task of the DAG (``bronze_complete``, ``recompute_day`` with
its quality gates, ``register_tables``) on the paused DAG, with the late-arrival grace set to
zero, timed from the command's start to its end. The run must succeed, and gold's clicks of the
day must equal the generator's distinct clicks, else the benchmark fails.

The day is one with no bronze rows yet, that the batch watermark rule lets the run finalise:
yesterday on a new stack, else the day after the watermark, else the latest earlier empty day
(a backfilled day; the watermark stays).

The peer, in the same run: the Spark work of the same run, the sum of the five steps' own
durations (``batch: <step> <day> done in <s>s`` in the task's log). The ratio says how much of a
run is fixed cost (Airflow's task starts, the JVM, the Spark session) rather than work.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from adclick.settings import Settings
from bench.result import write_result

CLICKS = int(os.environ.get("BENCH_DAG_CLICKS", "4000"))
TARGET_S = 120
SEED = 20261125
STEP_DONE = re.compile(r"batch: (\w+) \d{4}-\d{2}-\d{2} done in ([\d.]+)s")


def _bronze_rows(spark, settings: Settings, day: date) -> int:
    import pyspark.sql.functions as F

    from batch_layer.lake import read_if_exists

    bronze = read_if_exists(spark, settings, "bronze.events")
    return 0 if bronze is None else bronze.where(F.col("event_date") == F.lit(day)).count()


def pick_day(watermark: date | None, today: date, is_empty) -> date:
    """The day to run: see the module docstring. ``is_empty(day)`` says whether bronze has no rows."""
    yesterday = today - timedelta(days=1)
    if watermark is None:
        candidates = [yesterday]
    else:
        after = watermark + timedelta(days=1)
        earlier = [watermark - timedelta(days=i) for i in range(60)]
        candidates = ([after] if after <= yesterday else []) + earlier
    for day in candidates:
        if is_empty(day):
            return day
    raise RuntimeError(f"no day without bronze rows that the watermark ({watermark}) lets a run finalise")


def wait_landed(
    spark, settings: Settings, landed: Callable[[], int], want: int, what: str, timeout_s: float = 900
) -> None:
    """Wait until ``landed()`` reaches ``want`` bronze rows, stop ``spark`` (no second driver
    competing with the runs for the CPU), then wait until the speed layer has caught up with Kafka:
    a daily run starts hours after its day closed, the stream long caught up."""
    from adclick import stream_status

    deadline = time.monotonic() + timeout_s
    while landed() < want:
        if time.monotonic() > deadline:
            raise RuntimeError(f"bronze did not land {want:,} rows of {what} in {timeout_s:.0f} s")
        time.sleep(3)
    spark.stop()
    deadline = time.monotonic() + timeout_s
    while (stream_status.lag(settings, "speed_minute") or 0) > 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the speed layer did not catch up with Kafka in {timeout_s:.0f} s")
        time.sleep(3)


def _gold_clicks(spark, settings: Settings, day: date) -> int:
    import pyspark.sql.functions as F

    from adclick.catalog import table

    gold = spark.read.format("delta").load(table("gold.ad_clicks_daily").path(settings))
    clicks = F.sum(F.col("clicks") + F.col("fraud_clicks"))
    return gold.where(F.col("day") == F.lit(day)).agg(clicks).first()[0]


def run(settings: Settings, context: dict) -> dict:
    from adclick.spark import get_spark
    from batch_layer.ops import batch_watermark
    from infra.airflow_service import airflow_cli
    from traffic.generator import GeneratorConfig, generate_timed
    from traffic.sinks import send_to_kafka
    from traffic.truth import Truth

    spark = get_spark("bench-daily-dag", settings=settings)
    today = datetime.now(UTC).date()
    day = pick_day(batch_watermark(spark, settings), today, lambda d: _bronze_rows(spark, settings, d) == 0)
    truth = Truth()
    config = GeneratorConfig(
        start=datetime(day.year, day.month, day.day, tzinfo=UTC),
        duration=timedelta(days=1),
        clicks=CLICKS,
        late_fraction=0.02,
        duplicate_rate=0.01,
        seed=SEED,
    )
    print(f"daily_dag_small_day: sending {day} ({CLICKS:,} clicks) to Kafka ...", flush=True)
    sent = send_to_kafka(generate_timed(config, truth), settings=settings)
    if sent.failed or sent.invalid:
        raise RuntimeError(f"sending failed: {sent}")
    wait_landed(spark, settings, lambda: _bronze_rows(spark, settings, day), truth.events_sent, str(day))

    paused = airflow_cli(settings, "dags", "pause", "daily_batch")
    if paused.returncode != 0:
        raise RuntimeError(f"could not pause daily_batch: {paused.stderr[-1000:]}")
    print(f"daily_dag_small_day: airflow dags test daily_batch {day + timedelta(days=1)} ...", flush=True)
    started = time.monotonic()
    tested = airflow_cli(
        settings,
        "dags", "test", "daily_batch", (day + timedelta(days=1)).isoformat(),
        timeout=1800,
        extra_env={"ADCLICK_BATCH_GRACE_HOURS": "0"},
    )  # fmt: skip
    seconds = time.monotonic() - started
    output = tested.stdout + tested.stderr
    if tested.returncode != 0:
        raise RuntimeError(f"the daily_batch run failed:\n{output[-3000:]}")
    steps = {name: float(s) for name, s in STEP_DONE.findall(output)}
    spark = get_spark("bench-daily-dag", settings=settings)
    try:
        gold = _gold_clicks(spark, settings, day)
    finally:
        spark.stop()
    want = truth.count("click", day=day.isoformat())
    if gold != want:
        raise RuntimeError(f"gold has {gold} clicks on {day}, the generator sent {want} distinct clicks")
    work = sum(steps.values())
    return write_result(
        "daily_dag_small_day",
        metric="seconds",
        value=seconds,
        unit="s",
        peer={"name": "the run's own Spark work (sum of the five steps)", "value": work},
        params={"day": day.isoformat(), "events": truth.events_sent, "clicks": want, "target_s": TARGET_S},
        summary=(
            f"{seconds:.0f} s for one daily_batch run of {truth.events_sent:,} events "
            f"(target <= {TARGET_S} s); its Spark steps {work:.0f} s "
            f"({', '.join(f'{k} {v:.0f}' for k, v in steps.items())})"
        ),
        steps_s=steps,
    )
