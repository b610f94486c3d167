"""adclick's own applications in the local stack: ingestion API, query API, stream application."""

from __future__ import annotations

import sys
from pathlib import Path

from adclick.settings import Settings
from infra.service import Service, http_ok


def _adclick_bin() -> str:
    return str(Path(sys.executable).parent / "adclick")


def app_env(s: Settings) -> dict[str, str]:
    """The applications read the same settings as the process that started them: its environment,
    and the wiring stated here (which a caller's settings object may hold without the environment)."""
    return {
        "ADCLICK_HOME": str(s.home),
        "ADCLICK_ENV": s.env,
        "ADCLICK_STACK_PROFILE": s.stack_profile,
        "ADCLICK_SPARK_MASTER": s.spark_master,
        "ADCLICK_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
        "ADCLICK_TOPIC_EVENTS": s.topic_events,
        "ADCLICK_TOPIC_DLQ": s.topic_dlq,
        "ADCLICK_LAKE_ROOT": s.lake_root,
        "SPARK_LOCAL_IP": s.bind_host,
        "PYTHONUNBUFFERED": "1",
    }


def ingest_api_healthy(s: Settings) -> bool:
    return http_ok(f"http://{s.bind_host}:{s.ingest_port}/v1/health", lambda r: r.status_code == 200)


def ingest_api_service(s: Settings) -> Service:
    return Service(
        name="ingest-api",
        command=[_adclick_bin(), "ingest-api"],
        env=app_env(s),
        port=s.ingest_port,
        url=f"http://{s.bind_host}:{s.ingest_port}/docs",
        health=lambda: ingest_api_healthy(s),
        start_timeout=60,
    )


def query_api_service(s: Settings) -> Service:
    return Service(
        name="query-api",
        command=[_adclick_bin(), "query-api"],
        env=app_env(s),
        port=s.query_port,
        url=f"http://{s.bind_host}:{s.query_port}/",
        note="dashboard; API docs at /docs",
        # 503 is healthy here: the API is up and says that Trino is not (yet).
        health=lambda: http_ok(
            f"http://{s.bind_host}:{s.query_port}/v1/health", lambda r: r.status_code in (200, 503)
        ),
        start_timeout=60,
    )


def stream_healthy(s: Settings) -> bool:
    from adclick.stream_status import is_fresh

    return is_fresh(s)


def stream_service(s: Settings) -> Service:
    return Service(
        name="stream",
        # Below the APIs in CPU priority (nice execs the app: supervisord still signals its PID).
        command=[*(["nice", "-n", str(s.spark_nice)] if s.spark_nice else []), _adclick_bin(), "stream"],
        env=app_env(s),
        port=s.stream_metrics_port,  # its Prometheus endpoint (0: off); the Spark UI is on 4040 when enabled
        url=f"http://{s.bind_host}:{s.stream_metrics_port}/metrics" if s.stream_metrics_port else "",
        note=f"Spark UI http://{s.bind_host}:4040" if s.spark_ui else "Spark UI off (ADCLICK_SPARK_UI=true)",
        health=lambda: stream_healthy(s),
        start_timeout=180,
        stop_wait=60,
    )
