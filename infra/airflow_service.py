"""Airflow standalone in the local stack (api-server, scheduler, DAG processor, triggerer): its
environment, admin login, the wired ``airflow`` CLI and health."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from adclick.settings import PROJECT_ROOT, Settings
from infra.errors import StackError
from infra.service import Service, http_ok

SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


def airflow_dir(s: Settings) -> Path:
    return s.path("airflow")


def airflow_env(s: Settings) -> dict[str, str]:
    """Environment every Airflow process (and the ``airflow`` CLI) runs with."""
    d = airflow_dir(s)
    secret = _airflow_secret(d)
    return {
        "AIRFLOW_HOME": str(d),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(s.airflow_parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(s.airflow_parallelism),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{s.airflow_admin_user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(d / "passwords.json"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{s.bind_host}:{s.airflow_port}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{d / 'airflow.db'}",
        "AIRFLOW__API__HOST": s.bind_host,
        "AIRFLOW__API__PORT": str(s.airflow_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secret,
        "AIRFLOW__API_AUTH__JWT_SECRET": secret,
        "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(d / "logs"),
        "AIRFLOW__TRIGGERER__DEFAULT_CAPACITY": "50",
        "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": s.bind_host,
        # The tasks read the same settings as the process that started the stack.
        **{k: v for k, v in os.environ.items() if k.startswith("ADCLICK_")},
        "ADCLICK_HOME": str(s.home),
        "ADCLICK_STACK_PROFILE": s.stack_profile,
        "ADCLICK_SPARK_MASTER": s.spark_master,
        "SPARK_LOCAL_IP": s.bind_host,
        "NO_PROXY": "*",
    }


def _airflow_secret(d: Path) -> str:
    """The API/JWT secret, made once per data directory (never a constant in code)."""
    secret_file = d / "secret_key"
    if not secret_file.exists():
        d.mkdir(parents=True, exist_ok=True)
        secret_file.write_text(secrets.token_urlsafe(32))
        secret_file.chmod(0o600)
    return secret_file.read_text().strip()


def _prepare_airflow(s: Settings) -> None:
    d = airflow_dir(s)
    (d / "logs").mkdir(parents=True, exist_ok=True)
    passwords = d / "passwords.json"
    passwords.write_text(json.dumps({s.airflow_admin_user: s.airflow_admin_password.get_secret_value()}))
    passwords.chmod(0o600)
    proc = airflow_cli(s, "db", "migrate")
    if proc.returncode != 0:
        raise StackError(f"airflow db migrate failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    # daily_batch's recompute_day runs in this one-slot pool: a backfill and the scheduled or
    # catch-up runs never recompute two days at once (docs/batch.md, "Backfill").
    proc = airflow_cli(s, "pools", "set", s.batch_pool, "1", "one daily_batch day of Spark work at a time")
    if proc.returncode != 0:
        raise StackError(f"airflow pools set failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    db = d / "airflow.db"
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


def _airflow_bin() -> str:
    return str(Path(sys.executable).parent / "airflow")


def airflow_cli(
    s: Settings,
    *args: str,
    extra_env: dict[str, str] | None = None,
    capture: bool = True,
    timeout: float | None = None,
) -> subprocess.CompletedProcess:
    """Run the airflow CLI against this stack (its environment, database and DAG folder)."""
    env = {**os.environ, **airflow_env(s), **(extra_env or {})}
    return subprocess.run(
        [_airflow_bin(), *args], env=env, capture_output=capture, text=True, check=False, timeout=timeout
    )


def airflow_json(stdout: str) -> Any:
    """The JSON of an airflow ``-o json`` command's output; log lines may precede it on stdout."""
    lines = [line for line in stdout.splitlines() if line.startswith(("[", "{"))]
    return json.loads(lines[-1]) if lines else []


def airflow_healthy(s: Settings) -> bool:
    def ok(r: httpx.Response) -> bool:
        if r.status_code != 200:
            return False
        body = r.json()
        return all(body.get(k, {}).get("status") == "healthy" for k in ("metadatabase", "scheduler"))

    return http_ok(f"{s.airflow_url}/api/v2/monitor/health", ok)


def airflow_services(s: Settings) -> list[Service]:
    """Airflow's standalone components, each its own supervised process."""
    env = airflow_env(s)
    base = [_airflow_bin()]
    api = Service(
        name="airflow-api-server",
        command=[*base, "api-server", "--host", s.bind_host, "--port", str(s.airflow_port), "--workers", "1"],
        env=env,
        port=s.airflow_port,
        url=f"{s.airflow_url}/",
        health=lambda: airflow_healthy(s),
        prepare=lambda: _prepare_airflow(s),
        start_timeout=180,
        note=f"login {s.airflow_admin_user} / {s.airflow_admin_password.get_secret_value()}",
    )
    # serve-logs binds every interface (hard-coded); on one machine the api-server reads task logs
    # from the shared log folder, so it is not started.
    others = [
        Service(name=f"airflow-{c}", command=[*base, c, *flags], env=env, port=0, health=lambda: True)
        for c, flags in (
            ("scheduler", ["--skip-serve-logs"]),
            ("dag-processor", []),
            ("triggerer", ["--skip-serve-logs"]),
        )
    ]
    return [api, *others]
