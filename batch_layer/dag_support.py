"""What the DAGs share, kept light: importing this module imports no Spark, GX or Trino, so the
DAG files parse in milliseconds. Heavy imports happen inside the task bodies, at run time.

The DAGs are wired by Airflow Assets: ``daily_batch``'s ``advance_watermark`` emits an event on
:data:`GOLD_DAILY` (extra ``{"day": ...}``) each time a day passes every gate and is final;
``monthly_rollup`` is scheduled on that asset and rolls up the months the event days completed
(:func:`rollup_plan`), emitting :data:`GOLD_MONTHLY`.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from airflow.sdk import Asset, task

log = logging.getLogger("adclick.dags")

# Logical URIs (the lake root differs per machine; the table names do not).
GOLD_DAILY = Asset(name="gold.ad_clicks_daily", uri="adclick://gold/ad_clicks_daily", group="adclick")
GOLD_MONTHLY = Asset(name="gold.ad_clicks_monthly", uri="adclick://gold/ad_clicks_monthly", group="adclick")


def _day(context: dict[str, Any]) -> str | None:
    """The day a failed run worked on: the param ``day`` of a manual run, else its interval's."""
    requested = (context.get("params") or {}).get("day")
    if requested:
        return str(requested)
    interval = context.get("data_interval_start")
    if interval is None:
        interval = getattr(context.get("dag_run"), "data_interval_start", None)
    return the_day(interval).isoformat() if interval else None


def _alert(context: dict[str, Any], error: str) -> None:
    """The failure to the alert webhook (``ADCLICK_ALERT_WEBHOOK_URL``); never raises."""
    try:
        from adclick.alerts import alert
        from adclick.settings import get_settings

        ti = context.get("task_instance") or context.get("ti")
        dag = context.get("dag")
        alert(
            get_settings(),
            "airflow",
            dag_id=getattr(ti, "dag_id", None) or getattr(dag, "dag_id", None),
            task_id=getattr(ti, "task_id", None),
            day=_day(context),
            error=error,
            log_url=getattr(ti, "log_url", None),
        )
    except Exception:  # the callback reports a failure; it must not add one
        log.exception("adclick: could not send the failure alert")


def on_failure(context: dict[str, Any]) -> None:
    """Task failure callback: one clear line naming the DAG, task, day and error (and the log's
    URL), and the same to the alert webhook."""
    ti = context.get("task_instance") or context.get("ti")
    log.error(
        "adclick: %s.%s failed for %s (try %s): %s; log: %s",
        getattr(ti, "dag_id", "?"),
        getattr(ti, "task_id", "?"),
        _day(context) or "?",
        getattr(ti, "try_number", "?"),
        context.get("exception"),
        getattr(ti, "log_url", "-"),
    )
    _alert(context, str(context.get("exception")))


def on_run_failure(context: dict[str, Any]) -> None:
    """DAG-level failure callback (Airflow 3 runs it in the DAG processor when a run fails, with
    the last task instance's context, or only ``dag``, ``run_id`` and ``reason``)."""
    dag_id = getattr(context.get("dag"), "dag_id", "?")
    error = f"DAG run {context.get('run_id') or '?'} failed: {context.get('reason') or 'unknown reason'}"
    log.error("adclick: %s: %s", dag_id, error)
    _alert(context, error)


def batch_pool() -> str:
    """The one-slot Airflow pool daily_batch's recompute_day runs in (``ADCLICK_BATCH_POOL``; the
    stack creates it when Airflow starts)."""
    from adclick.settings import get_settings

    return get_settings().batch_pool


DEFAULT_ARGS: dict[str, Any] = {
    "owner": "adclick",
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "on_failure_callback": on_failure,
}


def the_day(data_interval_start: Any) -> date:
    """The UTC day a daily run works on: its data interval's start."""
    return (
        data_interval_start.in_timezone("UTC").date()
        if hasattr(data_interval_start, "in_timezone")
        else (data_interval_start.date())
    )


def spark_submit(step: str, data_interval_start: Any) -> str:
    """The spark-submit command of a batch step for the run's day (master from settings)."""
    return spark_submit_on(step, the_day(data_interval_start))


def spark_submit_on(step: str, day: date, extra: list[str] | None = None) -> str:
    """The spark-submit command of a batch step for ``day`` (master from settings)."""
    from adclick.settings import get_settings
    from batch_layer.submit import command

    return command(get_settings(), step, day, extra or [])


def as_of(params: dict[str, Any] | None, when: Any) -> date:
    """The day a lifecycle run works as of: the ``day`` param of a manual trigger, else the UTC
    date of the run (its logical date, or when it was due to run)."""
    requested = (params or {}).get("day")
    if requested:
        return date.fromisoformat(requested)
    if when is None:
        from adclick.contract import now_utc

        return now_utc().date()
    return the_day(when)


@task
def register_tables() -> dict[str, Any]:
    """Every lake table registered in Trino's catalog and the serving views (re)created."""
    from adclick.settings import get_settings
    from batch_layer.pipeline import register

    return register(get_settings())


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def months_completed(before: date | None, after: date) -> list[date]:
    """The months (as their first days) made final by the batch watermark moving from ``before``
    to ``after``: those whose last day is in (``before``, ``after``]. ``before`` None (the first
    advance) is the day before ``after``."""
    if before is None:
        before = after - timedelta(days=1)
    months = []
    end = month_end(before + timedelta(days=1))
    while end <= after:
        months.append(end.replace(day=1))
        end = month_end(end + timedelta(days=1))
    return months


def event_days(extras: Iterable[dict[str, Any]]) -> list[date]:
    """The days named by gold asset events' extras; an event without one (say, created by hand in
    the Assets view with another extra) names none."""
    days = []
    for extra in extras:
        value = (extra or {}).get("day")
        if isinstance(value, str):
            try:
                days.append(date.fromisoformat(value))
            except ValueError:
                log.warning("adclick: ignoring a gold asset event with day %r", value)
    return days


def rollup_plan(days: Iterable[date], requested: str | None = None) -> tuple[list[date], str]:
    """Which months ``monthly_rollup`` rolls up, and why (a line for the task log).

    ``days``: the days of the gold asset events that triggered the run. Each is final (the
    watermark is at or past it, and days up to it are final too), so every month whose last day
    lies between the earliest and the latest is complete: a single event on a month's last day
    gives that month, one on any other day gives none, events coalesced over a month end (the
    rollup was busy while daily_batch caught up) give that month. ``requested`` (a day, from a
    manual trigger's ``day`` param) rolls up that day's month, complete or not.
    """
    if requested:
        month = date.fromisoformat(requested).replace(day=1)
        return [month], f"requested by hand: {month:%Y-%m}"
    days = sorted(days)
    if not days:
        return [], "no gold asset event with a day: nothing to roll up"
    months = months_completed(days[0] - timedelta(days=1), days[-1])
    span = days[0].isoformat() if len(days) == 1 else f"{days[0]} .. {days[-1]}"
    if not months:
        return [], f"gold is final up to {span}: no month ended there, nothing to roll up"
    return months, f"gold is final up to {span}: {', '.join(f'{m:%Y-%m}' for m in months)} complete"


def start_date() -> Any:
    """daily_batch's first day, from settings (``ADCLICK_BATCH_START_DATE``), as a UTC pendulum date."""
    import pendulum

    from adclick.settings import get_settings

    first = get_settings().batch_start_date
    return pendulum.datetime(first.year, first.month, first.day, tz="UTC")


def catchup() -> bool:
    """daily_batch's catch-up switch (``ADCLICK_BATCH_CATCHUP``, on by default)."""
    from adclick.settings import get_settings

    return get_settings().batch_catchup
