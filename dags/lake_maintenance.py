"""
### lake_maintenance

Small-file compaction of the tables the stream writes, once a night at 01:30 UTC (docs/lake.md,
"Lake maintenance"). The stream commits to `bronze.events` every 10 s, so a day ends as hundreds
of small files per partition; the speed tables keep the small files of their MERGEs since their
last auto compaction. One `spark-submit` of
`batch_layer/submit.py maintenance --date <day>` does, for `bronze.events`, `bronze.rejects`,
`speed.ad_clicks_minute` and `speed.ad_clicks_5min`:

- **OPTIMIZE** (bin-packing, no Z-order) of each *closed* partition date (strictly before the
  run's day, UTC; today's partition is never touched, the stream still writes it) that has a
  partition of at least `ADCLICK_MAINTENANCE_MIN_FILES` (4) active files; dates compacted already
  are skipped, so a rerun does nothing;
- **VACUUM** of each table it compacted, keeping removed files `ADCLICK_MAINTENANCE_VACUUM_HOURS`
  (168 h): Delta time travel, and a batch job reading a pinned version, reach back that far.

The task log has one line per partition and per table (dates compacted and skipped, files before
-> after) and ends with a JSON summary; `ops.lifecycle_log` gets a `compact` row per date and a
`vacuum` row per table (run id `maintenance-<day>-...`). Trigger it by hand with `day` (as of
that day) and `dry_run` (log the plan only), or run `adclick maintain [--date D] [--dry-run]`.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from batch_layer.dag_support import DEFAULT_ARGS, on_run_failure, spark_submit_on


@dag(
    schedule="30 1 * * *",
    start_date=None,
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=True,
    default_args=DEFAULT_ARGS,
    params={
        "day": Param(
            None, type=["null", "string"], description="run as of this day (YYYY-MM-DD); default: today"
        ),
        "dry_run": Param(False, type="boolean", description="log what would be done, change nothing"),
    },
    on_failure_callback=on_run_failure,
    tags=["adclick", "lifecycle"],
    doc_md=__doc__,
)
def lake_maintenance():
    @task.bash
    def compact_and_vacuum(params=None, logical_date=None, run_after=None) -> str:
        from batch_layer.dag_support import as_of

        extra = ["--dry-run"] if (params or {}).get("dry_run") else []
        return spark_submit_on("maintenance", as_of(params, logical_date or run_after), extra)

    compact_and_vacuum()


lake_maintenance()
