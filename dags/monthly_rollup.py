"""
### monthly_rollup

Builds `gold.ad_clicks_monthly` for a month once its last day is final: counts summed from the
month's `gold.ad_clicks_daily` rows, unique users recomputed exactly from the month's
`silver.events` (never summed from days).

Scheduled on the asset `gold.ad_clicks_daily` (`adclick://gold/ad_clicks_daily`), not on a
calendar: `daily_batch`'s `advance_watermark` emits an event on it, with extra
`{"day": "<day>"}`, each time a day passes every gate. `plan` reads the events that triggered the
run: a month whose last day is among them (or between the earliest and the latest, when one run
consumes several) is complete and rolled up by `monthly` (one mapped task per month, each emitting
`gold.ad_clicks_monthly`); for any other day `plan` logs why and the run ends with `monthly`
skipped.

By hand: trigger the DAG with the param `day` (`YYYY-MM-DD`) to roll up that day's month, e.g.
after backfilling days of a month already closed (`adclick batch monthly --date` does the same).
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from batch_layer.dag_support import (
    DEFAULT_ARGS,
    GOLD_DAILY,
    GOLD_MONTHLY,
    on_run_failure,
    spark_submit_on,
    start_date,
)


@dag(
    schedule=[GOLD_DAILY],
    start_date=start_date(),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=True,
    default_args=DEFAULT_ARGS,
    params={"day": Param(None, type=["null", "string"], description="roll up this day's month (YYYY-MM-DD)")},
    on_failure_callback=on_run_failure,  # a failed run alerts (adclick.alerts)
    tags=["adclick", "batch"],
    doc_md=__doc__,
)
def monthly_rollup():
    @task
    def plan(triggering_asset_events=None, params=None) -> list[str]:
        from batch_layer.dag_support import event_days, rollup_plan

        events = triggering_asset_events.get(GOLD_DAILY, []) if triggering_asset_events else []
        months, why = rollup_plan(event_days(e.extra for e in events), (params or {}).get("day"))
        print(f"monthly rollup: {why}")
        return [m.isoformat() for m in months]  # none: `monthly` expands to nothing and is skipped

    @task.bash(outlets=[GOLD_MONTHLY], max_active_tis_per_dagrun=1)
    def monthly(month: str, outlet_events=None) -> str:
        from datetime import date

        outlet_events[GOLD_MONTHLY].extra = {"month": month}
        return spark_submit_on("monthly", date.fromisoformat(month))

    monthly.expand(month=plan())


monthly_rollup()
