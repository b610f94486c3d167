"""Airflow's last DAG runs, from its REST API (``/api/v2``), for ``GET /v1/pipeline``.

Reads ``settings.airflow_url``: ``POST /auth/token`` (the simple auth manager's login, as
``settings.airflow_admin_user``; the token is kept and renewed on a 401), ``GET /api/v2/dags`` and,
per DAG, ``GET /api/v2/dags/{dag_id}/dagRuns`` newest first. Writes nothing. Airflow not answering,
refusing the login or answering something unexpected is ``{"status": "unknown", "error": ...}``,
never an exception: the pipeline panel says "unknown" and the rest of the answer stands.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import quote

import httpx

from adclick.settings import Settings

TIMEOUT_S = 3.0
RUNS_PER_DAG = 3
_RUN_FIELDS = ("state", "run_type", "run_after", "logical_date", "start_date", "end_date")


class AirflowRuns:
    """Callable: ``{"status": "ok"|"unknown", "url", "error", "dags": [{dag_id, is_paused, runs}]}``."""

    def __init__(
        self, settings: Settings, *, client: httpx.Client | None = None, runs_per_dag: int = RUNS_PER_DAG
    ) -> None:
        self.base = settings.airflow_url
        self._user = settings.airflow_admin_user
        self._password = settings.airflow_admin_password
        self._client = client or httpx.Client(timeout=TIMEOUT_S)
        self._runs = runs_per_dag
        self._token: str | None = None
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, Any]:
        with self._lock:  # one look at a time; the token is shared
            try:
                return {"status": "ok", "url": self.base, "error": None, "dags": self._dags()}
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                return {"status": "unknown", "url": self.base, "error": _describe(exc), "dags": []}

    def _dags(self) -> list[dict[str, Any]]:
        dags = self._get("/api/v2/dags", {"limit": 100})["dags"]
        out = []
        for dag in sorted(dags, key=lambda d: d["dag_id"]):
            dag_id = dag["dag_id"]
            runs = self._get(
                f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns",
                {"order_by": "-run_after", "limit": self._runs},
            )["dag_runs"]
            out.append(
                {
                    "dag_id": dag_id,
                    "is_paused": dag.get("is_paused"),
                    "runs": [{"run_id": r["dag_run_id"], **{k: r.get(k) for k in _RUN_FIELDS}} for r in runs],
                }
            )
        return out

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        for attempt in (1, 2):
            if self._token is None:
                self._login()
            response = self._client.get(
                self.base + path, params=params, headers={"Authorization": f"Bearer {self._token}"}
            )
            if response.status_code == 401 and attempt == 1:  # the token expired: log in again
                self._token = None
                continue
            response.raise_for_status()
            return response.json()
        raise ValueError("unreachable")  # pragma: no cover (the loop returns or raises)

    def _login(self) -> None:
        response = self._client.post(
            self.base + "/auth/token",
            json={"username": self._user, "password": self._password.get_secret_value()},
        )
        response.raise_for_status()
        self._token = response.json()["access_token"]


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"Airflow answered HTTP {exc.response.status_code} for {exc.request.url.path}"
    if isinstance(exc, httpx.HTTPError):
        return f"Airflow unreachable: {type(exc).__name__}: {exc}"[:300]
    return f"unexpected answer from Airflow: {type(exc).__name__}: {exc}"[:300]
