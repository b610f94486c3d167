"""Query API over its back end: health and the dashboard, the result cache, the Trino executor.

The cache runs on :class:`query_api_fakes.FakeClock` (moved by hand); the executor over a fake
connection standing in for :func:`serving.trino_client.connect`.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from query_api_fakes import FakeClock, FakeExecutor, TestClient, ts

from adclick.settings import Settings
from query_api.cache import QueryCache
from query_api.executor import QueryUnavailable

# --- health, dashboard, failures ------------------------------------------------------------------


def test_health_and_dashboard(client: TestClient, fake: FakeExecutor) -> None:
    r = client.get("/v1/health")
    assert r.status_code == 200
    assert r.json()["batch_watermark"] == {"day": "2026-01-08", "advanced_at": "2026-01-09T03:00:00Z"}
    assert r.json()["now"] == "2026-01-10T12:00:30Z"  # the server's clock, which the dashboard follows
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    # every script and style is served by the API itself (none from another host)
    loaded = re.findall(r'<(?:script src|link rel="stylesheet" href)="([^"]+)"', page.text)
    assert loaded == [
        "/assets/uplot/uPlot.min.css",
        "/static/dashboard.css",
        "/assets/uplot/uPlot.iife.min.js",
        "/static/dashboard.js",
    ]
    script = client.get("/static/dashboard.js")
    assert script.status_code == 200
    assert all(url in script.text for url in ("/v1/live", "/v1/ads/top", "/v1/reports", "/v1/pipeline"))
    assert client.get("/openapi.json").status_code == 200

    fake.fail = QueryUnavailable("Trino unreachable: refused")
    down = client.get("/v1/health")
    assert down.status_code == 503 and down.json()["status"] == "unavailable"
    r = client.get("/v1/ads/a/clicks")
    assert r.status_code == 503 and r.json()["parameter"] == "trino"


# --- cache ---------------------------------------------------------------------------------------------


def test_cache_hits_on_repeat_and_empties_when_the_watermark_moves(
    client: TestClient, fake: FakeExecutor, mono: FakeClock
) -> None:
    url = "/v1/funnel?from=2026-01-01&to=2026-01-05"
    assert client.get(url).headers["x-cache"] == "miss"
    assert client.get(url).headers["x-cache"] == "hit"
    assert len(fake.calls) == 1

    mono.now += 3  # past the watermark check interval, within the 30 s result TTL
    assert client.get(url).headers["x-cache"] == "hit"  # watermark unchanged
    assert len(fake.calls) == 1

    fake.watermark_value = (date(2026, 1, 9), ts("2026-01-10 03:00:00"))
    assert client.get(url).headers["x-cache"] == "hit"  # the watermark is re-read at most every 2 s
    mono.now += 3
    assert client.get(url).headers["x-cache"] == "miss"
    assert len(fake.calls) == 2
    assert client.get(url).headers["x-cache"] == "hit"

    mono.now += 31  # the TTL bounds staleness even without a watermark change
    assert client.get(url).headers["x-cache"] == "miss"
    assert client.get("/v1/health").json()["cache"]["invalidations"] == 1


def test_cache_keys_on_the_bound_parameters(client: TestClient, fake: FakeExecutor) -> None:
    client.get("/v1/funnel", params={"country": "US"})
    r = client.get("/v1/funnel", params={"country": "DE"})
    assert r.headers["x-cache"] == "miss"
    assert [p[-1] for _, p in fake.calls] == ["US", "DE"]


def test_a_result_computed_across_a_watermark_change_is_not_kept() -> None:
    marks = iter([1, 2, 2, 2])
    clock = FakeClock()
    cache: QueryCache[str] = QueryCache(30, lambda: next(marks), watermark_ttl=0, clock=clock)

    def run() -> str:
        cache.check_watermark()  # another request sees the watermark move meanwhile
        return "mixed"

    assert cache.get("s", [1], run) == ("mixed", False)
    assert cache.get("s", [1], lambda: "fresh") == ("fresh", False)
    assert cache.get("s", [1], lambda: "unused") == ("fresh", True)


# --- the Trino executor's error mapping ----------------------------------------------------------------


class _Conn:
    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.executed: list[tuple[str, Any]] = []
        self.description = [("day",), ("advanced_at",)]

    def __enter__(self) -> _Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def cursor(self) -> _Conn:
        return self

    def execute(self, sql: str, params: Any) -> None:
        self.executed.append((sql, params))
        if self.error is not None:
            raise self.error

    def fetchall(self) -> list[list[Any]]:
        return [[date(2026, 1, 8), None]]


def test_trino_executor_maps_errors_and_binds_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    import requests
    from trino.exceptions import TrinoUserError

    import serving.trino_client
    from query_api.executor import QueryFailed, TrinoExecutor

    settings = Settings(trino_analyst_user="reader")
    seen: dict[str, Any] = {}

    def connect(conn: _Conn) -> Any:
        def _connect(s: Settings, *, user: str | None = None, schema: str | None = None) -> _Conn:
            seen["user"] = user
            seen["conn"] = conn
            return conn

        return _connect

    monkeypatch.setattr(serving.trino_client, "connect", connect(_Conn(None)))
    executor = TrinoExecutor(settings)
    assert executor.watermark() == (date(2026, 1, 8), None)
    assert seen["user"] == "reader"
    assert seen["conn"].executed == [("SELECT day, advanced_at FROM delta.serving.batch_watermark", None)]
    result = executor.run("SELECT ?", ["v"])
    assert result.columns == ("day", "advanced_at") and seen["conn"].executed[-1] == ("SELECT ?", ["v"])

    missing = TrinoUserError({"errorName": "TABLE_NOT_FOUND", "message": "Table 'x' does not exist"})
    monkeypatch.setattr(serving.trino_client, "connect", connect(_Conn(missing)))
    with pytest.raises(QueryUnavailable, match="not available yet"):
        executor.run("SELECT 1", [])
    broken = TrinoUserError({"errorName": "COLUMN_NOT_FOUND", "message": "Column 'y' cannot be resolved"})
    monkeypatch.setattr(serving.trino_client, "connect", connect(_Conn(broken)))
    with pytest.raises(QueryFailed, match="Column 'y'"):
        executor.run("SELECT 1", [])
    monkeypatch.setattr(serving.trino_client, "connect", connect(_Conn(requests.ConnectionError("refused"))))
    with pytest.raises(QueryUnavailable, match="unreachable"):
        executor.run("SELECT 1", [])
