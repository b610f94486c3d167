"""Fakes and fixtures of the query API's unit tests (no Trino): an executor, a clock, a client.

:class:`FakeExecutor` records every (sql, params) and answers canned rows chosen by a marker in
the SQL (the view name), and optionally by a bound value. The app's clock is fixed at ``NOW``,
2026-01-10 12:00:30 UTC; the cache's monotonic clock is :class:`FakeClock` (moved by hand); the
pipeline probes are :func:`fake_probes` (never the real heartbeat or Airflow). The fixtures
(``fake``, ``mono``, ``client``) are made visible to every unit test module by
``tests/unit/conftest.py``.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

with warnings.catch_warnings():  # the test client's own deprecation notice about httpx
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from adclick.settings import Settings
from query_api.app import create_app
from query_api.executor import Result
from query_api.pipeline_probes import Probes

NOW = datetime(2026, 1, 10, 12, 0, 30, tzinfo=UTC)
_ANY = object()
# What the pipeline probes answer in the unit tests: no heartbeat, no Airflow (never the real ones).
STREAM_UNKNOWN = {
    "status": "unknown",
    "error": "no heartbeat",
    "updated_at": None,
    "age_seconds": None,
    "queries": [],
}
AIRFLOW_UNKNOWN = {"status": "unknown", "url": "http://airflow.invalid", "error": "unreachable", "dags": []}
INJECTION = "x'); DROP TABLE delta.gold.ad_clicks_daily; -- \" ?"


def ts(text: str) -> datetime:
    """An ISO time without zone, as aware UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class FakeExecutor:
    """Records statements; answers the first canned result whose marker is in the SQL (else empty)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Any]]] = []
        self.answers: list[tuple[str, Result]] = []
        self.watermark_value: Any = (date(2026, 1, 8), ts("2026-01-09 03:00:00"))
        self.watermark_calls = 0
        self.fail: Exception | None = None
        self.lock = threading.Lock()
        self.live_polls = 0
        self.polled = threading.Event()
        self.polls_wanted = 0

    def answer(
        self, marker: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]], *, param: Any = _ANY
    ) -> None:
        """Answer statements containing ``marker`` (and, if given, binding ``param``); the latest
        answer given wins."""
        self.answers.insert(0, (marker, param, Result(columns, tuple(rows))))

    def run(self, sql: str, params: Any) -> Result:
        with self.lock:
            self.calls.append((sql, list(params)))
            if self.fail is not None:
                raise self.fail
            if "window_start >= ?" in sql and "day >= ? AND window_start" in sql:
                self.live_polls += 1
                if self.polls_wanted and self.live_polls >= self.polls_wanted:
                    self.polled.set()
            for marker, param, result in self.answers:
                if marker in sql and (param is _ANY or param in params):
                    return result
        return Result((), ())

    def watermark(self) -> Any:
        with self.lock:
            self.watermark_calls += 1
            if self.fail is not None:
                raise self.fail
            return self.watermark_value


def fake_probes(stream: dict[str, Any] | None = None, airflow: dict[str, Any] | None = None) -> Probes:
    """Probes answering fixed dicts (default: the stream and Airflow unknown)."""
    return Probes(stream=lambda: stream or STREAM_UNKNOWN, airflow=lambda: airflow or AIRFLOW_UNKNOWN)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> FakeExecutor:
    return FakeExecutor()


@pytest.fixture
def mono() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(fake: FakeExecutor, mono: FakeClock) -> Iterator[TestClient]:
    app = create_app(
        Settings(k_anonymity=5),
        fake,
        clock=lambda: NOW,
        monotonic=mono,
        live_interval=0.01,
        probes=fake_probes(),
    )
    with TestClient(app) as c:
        yield c
