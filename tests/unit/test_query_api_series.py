"""Query API, the speed-grain endpoints: one ad's series, the top ads, the live WebSocket.

Over :class:`query_api_fakes.FakeExecutor`: the SQL each sends (and binds) and the answers it shapes.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
import pytest
from query_api_fakes import NOW, FakeExecutor, TestClient, ts

from adclick.settings import Settings
from query_api.app import create_app

# --- per-ad series ---------------------------------------------------------------------------------


def test_ad_clicks_per_minute_binds_the_ad_and_the_aligned_range(
    client: TestClient, fake: FakeExecutor
) -> None:
    fake.answer(
        "serving.ad_clicks_minute",
        ("t", "impressions", "clicks", "fraud_clicks", "conversions", "is_final"),
        [(ts("2026-01-10 11:59:00"), 10, 4, 1, 0, False), (ts("2026-01-10 12:00:00"), 3, 2, 0, 1, False)],
    )
    r = client.get("/v1/ads/ad-7/clicks", params={"minutes": 15})
    assert r.status_code == 200
    body = r.json()
    # to = now (12:00:30) ceiled to 12:01; from = 11:45:30 floored to 11:45
    assert body["from"] == "2026-01-10T11:45:00Z"
    assert body["to"] == "2026-01-10T12:01:00Z"
    assert body["series"] == [
        {"t": "2026-01-10T11:59:00Z", "impressions": 10, "clicks": 4, "fraud_clicks": 1, "conversions": 0,
         "is_final": False},
        {"t": "2026-01-10T12:00:00Z", "impressions": 3, "clicks": 2, "fraud_clicks": 0, "conversions": 1,
         "is_final": False},
    ]  # fmt: skip
    sql, params = fake.calls[-1]
    assert "FROM delta.serving.ad_clicks_minute WHERE ad_id = ?" in sql
    assert params == [
        "ad-7",
        date(2026, 1, 10),
        date(2026, 1, 10),
        ts("2026-01-10 11:45:00"),
        ts("2026-01-10 12:01:00"),
    ]


@pytest.mark.parametrize(
    ("granularity", "view", "first_params"),
    [
        ("hour", "serving.ad_clicks_hourly", ["a", date(2026, 1, 9), date(2026, 1, 10)]),
        ("day", "serving.ad_clicks_daily", ["a", date(2025, 12, 11), date(2026, 1, 11)]),
    ],
)
def test_ad_clicks_per_hour_and_day_read_their_views(
    client: TestClient, fake: FakeExecutor, granularity: str, view: str, first_params: list[Any]
) -> None:
    r = client.get("/v1/ads/a/clicks", params={"granularity": granularity, "country": "US,DE"})
    assert r.status_code == 200
    sql, params = fake.calls[-1]
    assert f"FROM delta.{view} " in sql
    assert "AND country IN (?, ?)" in sql
    assert params[:3] == first_params
    assert params[-2:] == ["US", "DE"]


def test_unknown_ad_is_an_empty_series_not_404(client: TestClient) -> None:
    r = client.get("/v1/ads/nobody/clicks", params={"from": "-2h", "to": "-1h"})
    assert r.status_code == 200
    assert r.json()["series"] == []
    assert r.json()["from"] == "2026-01-10T10:00:00Z"


# --- top ads -----------------------------------------------------------------------------------------


def test_top_ads_over_the_last_complete_minutes(client: TestClient, fake: FakeExecutor) -> None:
    fake.answer("rank()", ("rank", "ad_id", "clicks"), [(1, "a", 9), (2, "b", 5), (2, "c", 5)])
    r = client.get("/v1/ads/top", params={"window": "5m", "n": 2, "device_type": "mobile"})
    assert r.status_code == 200
    body = r.json()
    assert (body["from"], body["to"]) == ("2026-01-10T11:55:00Z", "2026-01-10T12:00:00Z")
    assert body["ads"] == [
        {"rank": 1, "ad_id": "a", "clicks": 9},
        {"rank": 2, "ad_id": "b", "clicks": 5},
        {"rank": 2, "ad_id": "c", "clicks": 5},
    ]
    sql, params = fake.calls[-1]
    assert "FROM delta.serving.ad_clicks_minute" in sql and "WHERE rank <= ?" in sql
    assert params == [
        date(2026, 1, 10),
        date(2026, 1, 10),
        ts("2026-01-10 11:55:00"),
        ts("2026-01-10 12:00:00"),
        "mobile",
        2,
    ]


# --- live ----------------------------------------------------------------------------------------------


def test_live_sends_when_the_latest_minute_changes(fake: FakeExecutor) -> None:
    # the cache's real monotonic clock, so the live results (cached for live_interval) expire
    app = create_app(Settings(), fake, clock=lambda: NOW, live_interval=0.01)
    columns = ("window_start", "impressions", "clicks", "fraud_clicks", "is_final")
    first = [(ts("2026-01-10 11:59:00"), 5, 3, 0, False)]
    fake.answer("serving.ad_clicks_minute", columns, first)
    with TestClient(app) as client, client.websocket_connect("/v1/live?minutes=5&country=US") as ws:
        message = orjson.loads(ws.receive_text())
        assert message == {
            "type": "minutes",
            "from": "2026-01-10T11:56:00Z",  # the 5 whole minutes asked for, the current one last
            "to": "2026-01-10T12:01:00Z",
            "minutes": [
                {"window_start": "2026-01-10T11:59:00Z", "impressions": 5, "clicks": 3, "fraud_clicks": 0,
                 "is_final": False}
            ],
        }  # fmt: skip
        sql, params = fake.calls[-1]
        assert "FROM delta.serving.ad_clicks_minute WHERE day >= ? AND window_start >= ?" in sql
        assert params == [date(2026, 1, 10), ts("2026-01-10 11:56:00"), "US"]
        # let it poll a few more times with nothing new: nothing may be sent for those
        with fake.lock:
            fake.polls_wanted = fake.live_polls + 3
        assert fake.polled.wait(timeout=30)
        fake.answer(
            "serving.ad_clicks_minute", columns, [*first, (ts("2026-01-10 12:00:00"), 1, 7, 2, False)]
        )
        message = orjson.loads(ws.receive_text())
        assert [m["window_start"] for m in message["minutes"]] == [
            "2026-01-10T11:59:00Z",
            "2026-01-10T12:00:00Z",
        ]
        assert message["minutes"][-1]["clicks"] == 7


@pytest.mark.parametrize(("query", "parameter"), [("minutes=0", "minutes"), ("region=eu", "region")])
def test_live_refuses_a_bad_parameter(
    client: TestClient, fake: FakeExecutor, query: str, parameter: str
) -> None:
    with client.websocket_connect(f"/v1/live?{query}") as ws:
        message = orjson.loads(ws.receive_text())
    assert message["type"] == "error" and message["parameter"] == parameter
    assert fake.calls == []


# --- top ads: the quiet-window fallback ----------------------------------------------------------------


def test_top_ads_fallback_ranks_the_latest_minute_with_clicks(client: TestClient, fake: FakeExecutor) -> None:
    columns = ("rank", "ad_id", "clicks")
    fake.answer("rank()", columns, [])  # the last 5 minutes: no clicks
    fake.answer("max(window_start) AS minute", ("minute",), [(ts("2026-01-10 11:42:00"),)])
    fake.answer("rank()", columns, [(1, "b", 4), (2, "a", 1)], param=ts("2026-01-10 11:43:00"))
    body = client.get("/v1/ads/top", params={"window": "5m", "n": 3, "fallback": "latest_minute"}).json()
    assert body["ads"] == []
    assert body["fallback"] == {
        "from": "2026-01-10T11:42:00Z",
        "to": "2026-01-10T11:43:00Z",
        "ads": [{"rank": 1, "ad_id": "b", "clicks": 4}, {"rank": 2, "ad_id": "a", "clicks": 1}],
    }
    window, latest, minute = fake.calls
    assert window[1][2:4] == [ts("2026-01-10 11:55:00"), ts("2026-01-10 12:00:00")]
    # the search: the day before the window (both days' partitions), clicks only
    assert "clicks > 0" in latest[0]
    assert latest[1] == [
        date(2026, 1, 9),
        date(2026, 1, 10),
        ts("2026-01-09 11:55:00"),
        ts("2026-01-10 11:55:00"),
    ]
    assert minute[1] == [
        date(2026, 1, 10),
        date(2026, 1, 10),
        ts("2026-01-10 11:42:00"),
        ts("2026-01-10 11:43:00"),
        3,
    ]


def test_top_ads_fallback_only_when_asked_and_needed(client: TestClient, fake: FakeExecutor) -> None:
    assert "fallback" not in client.get("/v1/ads/top").json()  # the answer without it is unchanged
    nothing = client.get("/v1/ads/top", params={"fallback": "latest_minute"}).json()
    assert nothing["ads"] == [] and nothing["fallback"] is None  # no minute with clicks in a day
    assert sum("max(window_start)" in sql for sql, _ in fake.calls) == 1  # searched once, found none
    fake.answer("rank()", ("rank", "ad_id", "clicks"), [(1, "a", 2)])
    before = len(fake.calls)
    busy = client.get("/v1/ads/top", params={"window": "1m", "fallback": "latest_minute"}).json()
    assert busy["ads"] == [{"rank": 1, "ad_id": "a", "clicks": 2}] and busy["fallback"] is None
    assert len(fake.calls) == before + 1  # the window's ranking only: no search when not needed
    bad = client.get("/v1/ads/top", params={"fallback": "yesterday"})
    assert bad.status_code == 400 and bad.json()["parameter"] == "fallback"
