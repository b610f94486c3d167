"""Failure alerts (adclick.alerts) against a local webhook receiver (http.server on 127.0.0.1, port 0),
and their hook points: the DAG task and run failure callbacks and the data-quality gate."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import SecretStr

import adclick.settings
from adclick import alerts
from adclick.settings import Settings

AT = datetime(2026, 11, 4, 3, 15, 7, tzinfo=UTC)


class Receiver:
    """A webhook on 127.0.0.1 that records each POST and answers ``status`` after ``delay_s``."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], dict]] = []
        self.status = 204
        self.delay_s = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((self.path, dict(self.headers), json.loads(body)))
                time.sleep(receiver.delay_s)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:  # keep the test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret-token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def bodies(self) -> list[dict]:
        return [body for _, _, body in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _settings(url: str, timeout_s: float = 3.0) -> Settings:
    return Settings(alert_webhook_url=SecretStr(url), alert_webhook_timeout_s=timeout_s)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_alert_posts_the_json_body(receiver: Receiver) -> None:
    sent = alerts.alert(
        _settings(receiver.url),
        "airflow",
        dag_id="daily_batch",
        task_id="gold",
        day=date(2026, 11, 3),
        error="gold check failed",
        log_url="http://127.0.0.1:8080/dags/daily_batch/runs/r1/tasks/gold?try_number=3",
        at=AT,
    )
    assert sent is True
    ((path, headers, body),) = receiver.received
    assert path == "/hooks/secret-token"
    assert headers["Content-Type"] == "application/json"
    assert body == {
        "source": "airflow",
        "dag_id": "daily_batch",
        "task_id": "gold",
        "day": "2026-11-03",
        "error": "gold check failed",
        "log_url": "http://127.0.0.1:8080/dags/daily_batch/runs/r1/tasks/gold?try_number=3",
        "at": "2026-11-04T03:15:07Z",
    }


def test_every_key_is_there_unknown_ones_null_and_a_huge_error_is_cut() -> None:
    body = alerts.payload("quality", error="x" * 10_000, at=AT)
    assert set(body) == {"source", "dag_id", "task_id", "day", "error", "log_url", "at"}
    assert (body["dag_id"], body["task_id"], body["day"], body["log_url"]) == (None, None, None, None)
    assert len(body["error"]) == alerts.MAX_ERROR_CHARS and body["error"].endswith("…")


def test_no_url_means_no_alert(receiver: Receiver) -> None:
    assert Settings().alert_webhook_url.get_secret_value() == ""  # off by default
    assert alerts.alert(Settings(), "quality", error="x") is False
    assert receiver.received == []


def test_a_webhook_that_is_down_is_logged_not_raised(caplog) -> None:
    port = _closed_port()
    url = f"http://127.0.0.1:{port}/hooks/secret-token"
    with caplog.at_level(logging.WARNING, logger="adclick.alerts"):
        assert alerts.alert(_settings(url), "airflow", error="boom") is False
    assert f"alert webhook http://127.0.0.1:{port} failed" in caplog.text
    assert "secret-token" not in caplog.text  # the token in the path stays out of the logs


def test_a_slow_webhook_is_abandoned_after_the_timeout(receiver: Receiver) -> None:
    receiver.delay_s = 2.0
    started = time.monotonic()
    assert alerts.alert(_settings(receiver.url, timeout_s=0.3), "airflow", error="boom") is False
    assert time.monotonic() - started < 1.5
    assert len(receiver.received) == 1  # it was sent; the answer never came in time


@pytest.mark.parametrize("url", ["file:///etc/passwd", "not a url", "http://127.0.0.1:99999/x"])
def test_an_error_status_or_a_bad_url_is_not_fatal(receiver: Receiver, url: str) -> None:
    receiver.status = 500
    assert alerts.alert(_settings(receiver.url), "quality", error="x") is False
    assert alerts.alert(_settings(url), "quality", error="x") is False


# --- hook points ------------------------------------------------------------------------------


@pytest.fixture
def configured(monkeypatch, receiver: Receiver) -> Receiver:
    """The process settings point at the receiver (the hooks read ``get_settings()``)."""
    settings = _settings(receiver.url)
    monkeypatch.setattr(adclick.settings, "get_settings", lambda: settings)
    return receiver


def test_a_failed_task_alerts_with_its_dag_task_day_and_log(configured: Receiver) -> None:
    import pendulum

    from batch_layer.dag_support import on_failure

    ti = SimpleNamespace(dag_id="daily_batch", task_id="silver", try_number=3, log_url="http://af/log")
    on_failure(
        {
            "ti": ti,
            "data_interval_start": pendulum.datetime(2026, 11, 3, tz="UTC"),
            "exception": RuntimeError("spark-submit exited 1"),
        }
    )
    (body,) = configured.bodies()
    assert {k: body[k] for k in ("source", "dag_id", "task_id", "day", "error", "log_url")} == {
        "source": "airflow",
        "dag_id": "daily_batch",
        "task_id": "silver",
        "day": "2026-11-03",
        "error": "spark-submit exited 1",
        "log_url": "http://af/log",
    }
    # A manual daily_batch run given the param `day` worked on that day, not on its interval's.
    on_failure(
        {
            "ti": ti,
            "data_interval_start": pendulum.datetime(2026, 12, 7, tz="UTC"),
            "params": {"day": "2026-11-20"},
            "exception": RuntimeError("gate"),
        }
    )
    assert configured.bodies()[-1]["day"] == "2026-11-20"


def test_a_failed_run_alerts_even_with_the_minimal_context(configured: Receiver) -> None:
    from batch_layer.dag_support import on_run_failure

    on_run_failure(
        {"dag": SimpleNamespace(dag_id="monthly_rollup"), "run_id": "asset_run_1", "reason": "task_failure"}
    )
    (body,) = configured.bodies()
    assert (body["source"], body["dag_id"], body["task_id"], body["day"]) == (
        "airflow",
        "monthly_rollup",
        None,
        None,
    )
    assert body["error"] == "DAG run asset_run_1 failed: task_failure"


def test_the_callbacks_survive_a_webhook_that_is_down(monkeypatch) -> None:
    from batch_layer.dag_support import on_failure, on_run_failure

    settings = _settings(f"http://127.0.0.1:{_closed_port()}/x")
    monkeypatch.setattr(adclick.settings, "get_settings", lambda: settings)
    on_failure({"ti": None, "exception": ValueError("x")})
    on_run_failure({})


def _failed_result():
    from batch_layer.quality import FailedExpectation, QualityResult

    return QualityResult(
        table="silver.events",
        suite="silver.events",
        day=date(2026, 11, 3),
        run_id="r-7",
        success=False,
        checked=9,
        failed=(FailedExpectation("event_id_unique", {"unexpected_count": 2}),),
        report=Path("/var/dq/report.html"),
    )


def test_a_failed_quality_gate_alerts_then_raises(configured: Receiver, monkeypatch) -> None:
    from batch_layer.quality import QualityGateFailed, gate

    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "daily_batch")  # as a bash task exports it
    monkeypatch.setenv("AIRFLOW_CTX_TASK_ID", "quality")
    with pytest.raises(QualityGateFailed, match="event_id_unique") as raised:
        gate(_failed_result())
    (body,) = configured.bodies()
    assert (body["source"], body["dag_id"], body["task_id"], body["day"]) == (
        "quality",
        "daily_batch",
        "quality",
        "2026-11-03",
    )
    assert body["error"] == str(raised.value)
    assert "event_id_unique" in body["error"] and "report: /var/dq/report.html" in body["error"]


def test_a_passing_gate_sends_nothing_and_a_down_webhook_keeps_the_gate_error(
    configured: Receiver, monkeypatch
) -> None:
    from dataclasses import replace

    from batch_layer.quality import QualityGateFailed, gate

    gate(replace(_failed_result(), success=True, failed=()))
    assert configured.received == []
    monkeypatch.delenv("AIRFLOW_CTX_DAG_ID", raising=False)
    down = _settings(f"http://127.0.0.1:{_closed_port()}/x")
    with pytest.raises(QualityGateFailed):
        gate(_failed_result(), settings=down)
