"""
### trino_catalog

Registers every Delta table of the lake in Trino's `delta` catalog and (re)creates the
`serving` views, so SQL users and BI tools see new tables without a manual step. Idempotent: a
registered table is left alone, a table whose Delta log does not exist yet is reported as
`absent`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag

from batch_layer.dag_support import on_run_failure, register_tables


@dag(
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 2},
    on_failure_callback=on_run_failure,  # a failed run alerts (adclick.alerts)
    tags=["adclick", "serving"],
    doc_md=__doc__,
)
def trino_catalog():
    register_tables()


trino_catalog()
