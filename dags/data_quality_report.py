"""
### data_quality_report

Daily summary of the data-quality gates: for the week ending on the run's day, every table and
day with the number of expectations checked and the names of those that failed, from
`ops.dq_results`. Written to `var/dq/reports/<day>.json`; the Great Expectations Data Docs (HTML,
one page per validation) are under `var/dq/data_docs/index.html`, also printed by `adclick status`.
"""

from __future__ import annotations

from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from batch_layer.dag_support import DEFAULT_ARGS, on_run_failure, spark_submit, start_date


@dag(
    schedule=CronDataIntervalTimetable("0 7 * * *", timezone="UTC"),
    start_date=start_date(),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=True,
    default_args=DEFAULT_ARGS,
    on_failure_callback=on_run_failure,  # a failed run alerts (adclick.alerts)
    tags=["adclick", "quality"],
    doc_md=__doc__,
)
def data_quality_report():
    @task.bash
    def report(data_interval_start=None) -> str:
        return spark_submit("dq-report", data_interval_start)

    report()


data_quality_report()
