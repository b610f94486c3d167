"""
### monthly_rollup

Builds `gold.ad_clicks_monthly` for the month that just closed: counts summed from the month's
`gold.ad_clicks_daily` rows, unique users recomputed exactly from the month's `silver.events`
(never summed from days). Runs on the 2nd of each month at 06:00 UTC, after the last day of the
month has been through `daily_batch`. Backfill a month with
`airflow backfill create --dag-id monthly_rollup --from-date 2026-10-01 --to-date 2026-10-31`.
"""

from __future__ import annotations

from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from batch_layer.dag_support import DEFAULT_ARGS, spark_submit, start_date


@dag(
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
    start_date=start_date(),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=True,
    default_args=DEFAULT_ARGS,
    tags=["adclick", "batch"],
    doc_md=__doc__,
)
def monthly_rollup():
    @task.bash
    def monthly(data_interval_start=None) -> str:
        return spark_submit("monthly", data_interval_start)

    monthly()


monthly_rollup()
