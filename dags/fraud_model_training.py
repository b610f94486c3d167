"""
### fraud_model_training

Trains the fraud model weekly on the last 7 days of `silver.events` (Spark MLlib gradient-boosted
trees; labels are the fraud rules' verdicts, so the model generalises their signals into a score).
Each model is versioned under `var/models/fraud/<version>` with its evaluation metrics (AUC-ROC,
AUC-PR, precision, recall, F1 on a held-out split) in `ops.fraud_models`; the silver job uses the
latest and records its version on every row and in `ops.job_runs`.
"""

from __future__ import annotations

from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from batch_layer.dag_support import DEFAULT_ARGS, on_run_failure, spark_submit, start_date


@dag(
    schedule=CronDataIntervalTimetable("0 4 * * 1", timezone="UTC"),
    start_date=start_date(),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=True,
    default_args=DEFAULT_ARGS,
    on_failure_callback=on_run_failure,  # a failed run alerts (adclick.alerts)
    tags=["adclick", "batch", "fraud"],
    doc_md=__doc__,
)
def fraud_model_training():
    @task.bash
    def train(data_interval_start=None) -> str:
        return spark_submit("train-fraud-model", data_interval_start)

    train()


fraud_model_training()
