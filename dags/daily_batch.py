"""
### daily_batch

Recomputes one closed UTC day exactly from bronze, proves it, and publishes it.

1. `bronze_complete` waits until the late-arrival grace period after the day
   (`ADCLICK_BATCH_GRACE_HOURS`, 2 h) has passed and bronze landing has caught up with Kafka.
2. `silver`: exact dedup by `event_id` over the whole day (late arrivals included, earliest kept),
   enrichment, fraud rules + the latest trained fraud model -> `silver.events`.
3. `quality`: Great Expectations suites on the day's bronze and silver; a failure stops the run.
4. `gold`: hourly, daily, audience and experiment aggregates, checked against silver.
5. `reconcile`: speed layer vs gold per ad -> `ops.reconciliation`; unexplained drift over
   `ADCLICK_RECONCILE_MAX_DRIFT` fails the run.
6. `advance_watermark`: the batch watermark moves to the day (serving views then show it as final)
   and, on success, an event on the asset `gold.ad_clicks_daily` (`adclick://gold/ad_clicks_daily`)
   with extra `{"day": "<day>"}`: the day is final. `monthly_rollup` is scheduled on that asset.
7. `register_tables`: tables and serving views registered in Trino.

Spark steps run through `spark-submit` with `ADCLICK_SPARK_MASTER`. Catch-up is on
(`ADCLICK_BATCH_CATCHUP`) from `ADCLICK_BATCH_START_DATE`; the DAG is paused when first
deployed: unpause it to run daily.
Backfill: the UI's "Backfill" button, or `airflow backfill create --dag-id daily_batch
--from-date 2026-11-01 --to-date 2026-11-03`. Rerunning a day gives identical tables.
"""

from __future__ import annotations

from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from batch_layer.dag_support import (
    DEFAULT_ARGS,
    GOLD_DAILY,
    catchup,
    on_run_failure,
    register_tables,
    spark_submit,
    start_date,
    the_day,
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
)
def daily_batch():
    @task.sensor(poke_interval=120, timeout=12 * 3600, mode="reschedule")
    def bronze_complete(data_interval_start=None):
        from airflow.sdk import PokeReturnValue

        from adclick.contract import now_utc
        from adclick.settings import get_settings
        from batch_layer.pipeline import bronze_complete as check

        done, why = check(get_settings(), the_day(data_interval_start), now_utc())
        print(f"bronze complete: {done} ({why})")
        return PokeReturnValue(is_done=done)

    @task.bash
    def silver(data_interval_start=None) -> str:
        return spark_submit("silver", data_interval_start)

    @task.bash
    def quality(data_interval_start=None) -> str:
        return spark_submit("quality", data_interval_start)

    @task.bash
    def gold(data_interval_start=None) -> str:
        return spark_submit("gold", data_interval_start)

    @task.bash
    def reconcile(data_interval_start=None) -> str:
        return spark_submit("reconcile", data_interval_start)

    @task.bash(outlets=[GOLD_DAILY])
    def advance_watermark(data_interval_start=None, outlet_events=None) -> str:
        # Emitted only if the step succeeds: the day passed every gate and the watermark is at or
        # past it (a rerun of an older day leaves it there), so every day up to it is final.
        outlet_events[GOLD_DAILY].extra = {"day": the_day(data_interval_start).isoformat()}
        return spark_submit("watermark", data_interval_start)

    (
        bronze_complete()
        >> silver()
        >> quality()
        >> gold()
        >> reconcile()
        >> advance_watermark()
        >> register_tables()
    )


daily_batch()
