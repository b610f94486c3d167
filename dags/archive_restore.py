"""
### archive_restore

Makes archived days queryable again (docs/lifecycle.md, "Restore"). Trigger it with `from` and
`to` (days, `YYYY-MM-DD`): one `spark-submit` of `batch_layer/submit.py restore` asks the S3
store to restore each cold object (`RestoreObject`; a store without that API serves them at
once), waits until they are readable (`ADCLICK_ARCHIVE_RESTORE_TIMEOUT_S`), checks every
object's SHA-256 and each day's rows and content hash against `ops.archive_manifest`, and writes
the days to `restored.bronze_events`, `restored.bronze_rejects` and `restored.silver_events`.
`register_tables` then makes them visible in Trino as `delta.restored.*`. The `retention` DAG
expires them again after `ADCLICK_RETENTION_RESTORED_DAYS`. Same as
`adclick archive restore --from D1 --to D2`.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from batch_layer.dag_support import DEFAULT_ARGS, on_run_failure, register_tables, spark_submit_on


@dag(
    schedule=None,
    start_date=None,
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    default_args=DEFAULT_ARGS,
    params={
        "from": Param(type="string", format="date", description="first archived day to restore"),
        "to": Param(None, type=["null", "string"], description="last day (default: from)"),
    },
    on_failure_callback=on_run_failure,
    tags=["adclick", "lifecycle"],
    doc_md=__doc__,
)
def archive_restore():
    @task.bash
    def restore(params=None) -> str:
        from datetime import date

        first = date.fromisoformat(params["from"])
        extra = ["--to", params["to"]] if params.get("to") else []
        return spark_submit_on("restore", first, extra)

    restore() >> register_tables()


archive_restore()
