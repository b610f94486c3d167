"""
### gdpr_erasure

Erases one user (GDPR art. 17 / CCPA) and proves it (docs/lifecycle.md, "Erasure"). Trigger it
with `user_key`: the pseudonymised user id (`adclick erase --user-id ID` computes it with
`ADCLICK_HASH_KEY` and triggers this DAG, so the raw id never reaches Airflow), `by` and `reason`.
One `spark-submit` of `batch_layer/submit.py erase`:

- deletes the key's rows from `bronze.events`, `silver.events`, `restored.*`, `dims.users` (and
  rejected payloads and data-quality examples holding it), rewriting the files that held them;
- rewrites the archived days holding it (verified, new manifest run, old objects deleted);
- recomputes the gold days (and months) it touched; drops or recomputes the touched speed days;
- drops its records from the ingestion spool; VACUUMs what it rewrote
  (`ADCLICK_ERASURE_VACUUM_HOURS`); logs how long Kafka's retention may still hold its records;
- **verifies**: reads every Parquet file of those tables and every archived object, and fails
  the run if any row of the key is left outside a legal hold.

A legal hold on the user refuses the request (the run fails, nothing is erased); date and
advertiser holds keep the rows they cover. Every request is a row of `ops.erasure_log` (the
key's SHA-256 only). Safe to trigger again.
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
        "user_key": Param(
            type="string",
            pattern="^[0-9a-fA-F]{32}$",
            description="the pseudonymised user id (32 hex); `adclick erase --user-id` computes it",
        ),
        "by": Param(type="string", minLength=1, description="who asks (recorded in ops.erasure_log)"),
        "reason": Param(type="string", minLength=1, description="the request's reference"),
    },
    on_failure_callback=on_run_failure,
    tags=["adclick", "lifecycle", "privacy"],
    doc_md=__doc__,
)
def gdpr_erasure():
    @task.bash
    def erase_and_verify(params=None, run_id=None) -> str:
        from adclick.contract import now_utc

        extra = ["--user-key", params["user_key"], "--by", params["by"], "--reason", params["reason"]]
        if run_id:
            extra += ["--request-id", f"erasure-{run_id}"]
        return spark_submit_on("erase", now_utc().date(), extra)

    erase_and_verify() >> register_tables()


gdpr_erasure()
