"""What ``GET /v1/pipeline`` knows from outside Trino: the stream app's heartbeat (with Kafka lag)
and Airflow's last DAG runs.

Reads the stream status file (:mod:`adclick.stream_status`, ``<home>/stream/status.json``: the
query API must run on the stream app's host to see it), Kafka's end offsets for the lag, and
Airflow's REST API (:mod:`query_api.airflow_runs`). Writes nothing. Each probe answers a dict whose
``status`` says how much it knows (``unknown`` when its source is not there) and never raises.
Both are looked at most every few seconds (:class:`Memo`), however many dashboards poll: a lag
is a Kafka round trip, the Airflow answer one request per DAG.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adclick import stream_status
from adclick.settings import Settings
from query_api.airflow_runs import AirflowRuns

STREAM_TTL_S = 5.0
AIRFLOW_TTL_S = 15.0
_QUERY_FIELDS = ("active", "batch_id", "input_rows", "rows_per_s", "duration_ms", "late_rows_dropped")

Probe = Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class Probes:
    stream: Probe
    airflow: Probe


class Memo:
    """``probe()``'s answer, recomputed at most every ``ttl`` seconds (one caller at a time)."""

    def __init__(self, ttl: float, probe: Probe, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl, self._probe, self._clock = ttl, probe, clock
        self._lock = threading.Lock()
        self._value: dict[str, Any] | None = None
        self._at = float("-inf")

    def __call__(self) -> dict[str, Any]:
        with self._lock:
            if self._value is None or self._clock() - self._at >= self._ttl:
                self._value, self._at = self._probe(), self._clock()
            return self._value


def stream_health(
    settings: Settings,
    *,
    read: Callable[[Settings], dict[str, Any] | None] = stream_status.read,
    lag: Callable[[Settings, str], int | None] = stream_status.lag,
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """The heartbeat's queries with their Kafka lag; ``status``: ok (fresh, every query active),
    stale (older than ``stream_status.STALE_AFTER_S`` or a query stopped), unknown (no heartbeat)."""
    beat = read(settings)
    if not beat:
        return {
            "status": "unknown",
            "error": f"no stream heartbeat at {stream_status.path(settings)}",
            "updated_at": None,
            "age_seconds": None,
            "queries": [],
        }
    updated_at = float(beat.get("updated_at") or 0)
    age = max(0.0, now() - updated_at)
    queries = []
    for name, info in sorted((beat.get("queries") or {}).items()):
        entry: dict[str, Any] = {"query": name, **{k: info.get(k) for k in _QUERY_FIELDS}}
        try:
            entry["lag"], entry["lag_error"] = lag(settings, name), None
        except Exception as exc:  # Kafka down or refusing: the lag is unknown, the rest stands
            entry["lag"], entry["lag_error"] = None, f"{type(exc).__name__}: {exc}"[:200]
        queries.append(entry)
    fresh = age < stream_status.STALE_AFTER_S and bool(queries)
    return {
        "status": "ok" if fresh and all(q["active"] for q in queries) else "stale",
        "error": None,
        "updated_at": datetime.fromtimestamp(updated_at, UTC),
        "age_seconds": round(age, 1),
        "queries": queries,
    }


def default_probes(settings: Settings) -> Probes:
    return Probes(
        stream=Memo(STREAM_TTL_S, lambda: stream_health(settings)),
        airflow=Memo(AIRFLOW_TTL_S, AirflowRuns(settings)),
    )
