"""
### retention

The data lifecycle, once a day (docs/lifecycle.md). One `spark-submit` of
`batch_layer/submit.py retention --date <day>` does, as of the run's day:

- **hot -> warm**: partitions older than `hot_days` (30) are compacted once (OPTIMIZE, Z-order by
  `ad_id`);
- **warm -> cold**: bronze and silver partitions older than `warm_days` (365) are exported as zstd
  Parquet to the S3 store (`ADCLICK_S3_BUCKET`, storage class `GLACIER` by default), read back and
  checked (SHA-256 per object, rows and content hash per day), moved to the storage class,
  listed in `ops.archive_manifest`, and only then deleted from the lake;
- **expiry**: speed partitions once the batch watermark has passed them (and 7 days old), and
  restored days `ADCLICK_RETENTION_RESTORED_DAYS` after their restore;
- **legal holds** (`adclick hold add`): a held day is never archived away or deleted; each skip
  is a line of the task log and a `skip_held` row of `ops.lifecycle_log`;
- VACUUM of every table it changed (`ADCLICK_RETENTION_VACUUM_HOURS`).

Idempotent and resumable: rerun it, or let the next day's run finish a killed one. Trigger it
by hand with `day` (as of that day) and `dry_run` (log the plan only). The policy, per table:
`ADCLICK_RETENTION_*` and `ADCLICK_RETENTION_OVERRIDES`. Restores: the `archive_restore` DAG.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from batch_layer.dag_support import DEFAULT_ARGS, on_run_failure, register_tables, spark_submit_on


@dag(
    schedule="0 4 * * *",
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
def retention():
    @task.bash
    def apply_policy(params=None, logical_date=None, run_after=None) -> str:
        from batch_layer.dag_support import as_of

        extra = ["--dry-run"] if (params or {}).get("dry_run") else []
        return spark_submit_on("retention", as_of(params, logical_date or run_after), extra)

    apply_policy() >> register_tables()


retention()
