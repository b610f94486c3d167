"""
### daily_batch

Recomputes one closed UTC day exactly from bronze, proves it, and publishes it.

1. `bronze_complete` waits until the late-arrival grace period after the day
   (`ADCLICK_BATCH_GRACE_HOURS`, 2 h) has passed and bronze landing has caught up with Kafka,
   and until the day is in turn: the batch watermark is at the day before it or later (or no
   day is final yet), so a backfill and the scheduled or catch-up runs pass days in order.
2. `recompute_day` (in the one-slot pool `ADCLICK_BATCH_POOL`, `adclick_batch`: one day at a
   time across all runs, earliest logical date first): one `spark-submit` (one JVM, one Spark
   session) runs the day's five Spark steps in order, each a collapsible group in the task's
   log with its duration and one `ops.job_runs` row; a failed gate stops it there:
   - `silver`: exact dedup by `event_id` over the whole day (late arrivals included, earliest
     kept), enrichment, fraud rules + the fraud model -> `silver.events`;
   - `quality`: Great Expectations suites on the day's bronze and silver;
   - `gold`: hourly, daily, audience and experiment aggregates, with the gold suite;
   - `reconcile`: speed layer vs gold per ad -> `ops.reconciliation`; unexplained drift over
     `ADCLICK_RECONCILE_MAX_DRIFT` fails the run;
   - `watermark`: the batch watermark moves to the day (serving views then show it as final).
   On success the task emits an event on the asset `gold.ad_clicks_daily`
   (`adclick://gold/ad_clicks_daily`) with extra `{"day": "<day>"}`: the day is final.
   `monthly_rollup` is scheduled on that asset.
3. `register_tables`: tables and serving views registered in Trino.

One JVM per run instead of one per step: a JVM start, a Spark session and the Delta log replay of
every table cost about 30 s per step on a small machine, more than the steps' own work on a
small day (docs/batch.md, "Cost of a run").

Spark steps run through `spark-submit` with `ADCLICK_SPARK_MASTER`. Catch-up is on
(`ADCLICK_BATCH_CATCHUP`) from `ADCLICK_BATCH_START_DATE`; the DAG is paused when first
deployed: unpause it to run daily.
Backfill: the UI's "Backfill" button, or `airflow backfill create --dag-id daily_batch
--from-date 2026-11-01 --to-date 2026-11-03`. One chosen day through the scheduler: "Trigger"
with the param `day` (`airflow dags trigger daily_batch -c '{"day": "2026-11-02"}'`); a manual
run without it recomputes the day before it was triggered. Rerunning a day gives identical tables.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from batch_layer.dag_support import (
    DEFAULT_ARGS,
    GOLD_DAILY,
    as_of,
    batch_pool,
    catchup,
    on_run_failure,
    register_tables,
    spark_submit_on,
    start_date,
)


@dag(
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=start_date(),
    catchup=catchup(),
    max_active_runs=1,
    is_paused_upon_creation=True,
    default_args=DEFAULT_ARGS,
    on_failure_callback=on_run_failure,  # a failed run alerts (adclick.alerts)
    tags=["adclick", "batch"],
    doc_md=__doc__,
    params={
        "day": Param(
            None,
            type=["null", "string"],
            description="a manual run recomputes this day (YYYY-MM-DD); empty: the day its data "
            "interval starts on (a manual run: the day before it was triggered)",
        )
    },
)
def daily_batch():
    @task.sensor(poke_interval=120, timeout=12 * 3600, mode="reschedule")
    def bronze_complete(data_interval_start=None, params=None):
        from airflow.sdk import PokeReturnValue

        from adclick.contract import now_utc
        from adclick.settings import get_settings
        from batch_layer.pipeline import bronze_complete as check
        from batch_layer.pipeline import in_turn

        settings, day = get_settings(), as_of(params, data_interval_start)
        done, why = check(settings, day, now_utc())
        print(f"bronze complete: {done} ({why})")
        turn, order = in_turn(settings, day)
        print(f"in turn: {turn} ({order})")
        return PokeReturnValue(is_done=done and turn)

    @task.bash(outlets=[GOLD_DAILY], pool=batch_pool())
    def recompute_day(data_interval_start=None, params=None, outlet_events=None) -> str:
        # The event is emitted only if the task succeeds: the day passed every gate and the
        # watermark is at or past it (a rerun of an older day leaves it there), so every day up to
        # it is final.
        day = as_of(params, data_interval_start)
        outlet_events[GOLD_DAILY].extra = {"day": day.isoformat()}
        return spark_submit_on("day", day)

    (bronze_complete() >> recompute_day() >> register_tables())


daily_batch()
