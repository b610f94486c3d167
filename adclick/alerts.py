"""Failure alerts: one JSON POST to the operator's webhook (``ADCLICK_ALERT_WEBHOOK_URL``).

Sent when an Airflow task or DAG run fails (``batch_layer/dag_support.py``, source ``airflow``)
and when a data-quality gate fails (``batch_layer/quality.py``, source ``quality``). Off when the
URL is empty. The body (:func:`payload`), every key always present, null when unknown:

    {"source": "airflow" | "quality", "dag_id": ..., "task_id": ..., "day": "YYYY-MM-DD",
     "error": "...", "log_url": ..., "at": "<RFC 3339 UTC, when the alert was sent>"}

Never raises into the caller: a webhook that is down, slow (``ADCLICK_ALERT_WEBHOOK_TIMEOUT_S``,
3 s) or answers an error status is logged as a warning and the failing job goes on failing for
its own reason. The URL may hold a token (Slack, Teams...): logs name only its scheme and host.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, date, datetime
from typing import Any, Literal

from adclick.settings import Settings

log = logging.getLogger("adclick.alerts")

Source = Literal["airflow", "quality"]
MAX_ERROR_CHARS = 4_000  # a Spark stack trace can be megabytes; chat webhooks refuse those


def payload(
    source: Source,
    *,
    error: str,
    dag_id: str | None = None,
    task_id: str | None = None,
    day: date | str | None = None,
    log_url: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """The alert body; ``at`` defaults to now (UTC)."""
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    text = str(error)
    return {
        "source": source,
        "dag_id": dag_id,
        "task_id": task_id,
        "day": day.isoformat() if isinstance(day, date) else day,
        "error": text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…",
        "log_url": log_url,
        "at": moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def _where(url: str) -> str:
    """The URL without path, query or credentials, for logs."""
    try:
        parts = urllib.parse.urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")
    except ValueError:  # a malformed port
        return "<malformed URL>"


def send(settings: Settings, body: dict[str, Any]) -> bool:
    """POST ``body`` to the webhook; True when it answered 2xx. Never raises."""
    url = settings.alert_webhook_url.get_secret_value().strip()
    if not url:
        return False
    try:
        request = urllib.request.Request(  # noqa: S310 - the operator's own URL, http(s) checked
            url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "adclick-alerts"},
            method="POST",
        )
        if request.type not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {request.type}")
        with urllib.request.urlopen(request, timeout=settings.alert_webhook_timeout_s) as response:  # noqa: S310
            return 200 <= response.status < 300
    except Exception as exc:  # a failing webhook must never fail the job it reports on
        log.warning("adclick: alert webhook %s failed (%s): %s", _where(url), type(exc).__name__, exc)
        return False


def alert(settings: Settings, source: Source, **fields: Any) -> bool:
    """Build and send one alert (``fields``: those of :func:`payload`); never raises."""
    try:
        body = payload(source, **fields)
    except Exception as exc:  # a bad field is a bug here, not a reason to hide the failure
        log.warning("adclick: could not build an alert (%s); sending a bare one", exc)
        body = payload(source, error=str(fields.get("error")))
    return send(settings, body)


def airflow_task() -> dict[str, str | None]:
    """``dag_id`` and ``task_id`` of the Airflow task this process runs under (the bash tasks
    export ``AIRFLOW_CTX_*`` to ``spark-submit``), or None each outside Airflow."""
    return {"dag_id": os.environ.get("AIRFLOW_CTX_DAG_ID"), "task_id": os.environ.get("AIRFLOW_CTX_TASK_ID")}
