"""What the DAGs share, kept light: importing this module imports no Spark, GX or Trino, so the
DAG files parse in milliseconds. Heavy imports happen inside the task bodies, at run time.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

log = logging.getLogger("adclick.dags")


def on_failure(context: dict[str, Any]) -> None:
    """Failure callback: one clear line naming the DAG, task, day and error (and the log's URL)."""
    ti = context.get("task_instance") or context.get("ti")
    interval = context.get("data_interval_start")
    log.error(
        "adclick: %s.%s failed for %s (try %s): %s; log: %s",
        getattr(ti, "dag_id", "?"),
        getattr(ti, "task_id", "?"),
        interval.date().isoformat() if interval else "?",
        getattr(ti, "try_number", "?"),
        context.get("exception"),
        getattr(ti, "log_url", "-"),
    )


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
    from adclick.settings import get_settings
    from batch_layer.submit import command

    return command(get_settings(), step, the_day(data_interval_start))


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
