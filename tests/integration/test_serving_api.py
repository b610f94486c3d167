"""The query API on the running stack (in-process FastAPI TestClient on the real Trino, as the
analyst user): answers equal direct SQL, bad parameters and SQL injection are refused or inert,
k-anonymity, the live WebSocket. Data: ``serving_data`` (tests/integration/serving_data.py).
"""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest

from adclick.settings import Settings

if TYPE_CHECKING:
    from serving_data import ServingData

from serving_checks import (
    INJECTIONS,
    LIVE_CLICKS,
    analyst,
    api_client,
    instant,
    tbl,
    trino_rows,
)

pytestmark = pytest.mark.integration
# The shared data fixture, registered as a plugin (not imported here, so pytest can still rewrite
# its asserts): tests/integration is on sys.path as the directory of this module and its conftest.
pytest_plugins = ("serving_data",)

# --- the query API -----------------------------------------------------------------------------


def test_api_report_by_ad_equals_direct_sql(serving_data: ServingData) -> None:
    s, d1 = serving_data.settings, serving_data.d1
    with api_client(s) as client:
        r = client.get(
            "/v1/reports",
            params={
                "dimensions": "ad_id",
                "metrics": "clicks",
                "from": d1.isoformat(),
                "to": (d1 + timedelta(days=1)).isoformat(),
            },
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "serving.ad_clicks_daily"
    assert body["columns"] == ["ad_id", "clicks", "is_final"]
    assert (body["from"], body["truncated"], body["k_anonymity"]) == (d1.isoformat(), False, None)
    want = trino_rows(
        s,
        f"SELECT ad_id, sum(clicks) FROM {tbl(s, 'serving.ad_clicks_daily')} WHERE day = ? GROUP BY ad_id",
        [d1],
        user=analyst(serving_data),
    )
    assert {row["ad_id"]: row["clicks"] for row in body["rows"]} == dict(map(tuple, want))
    assert body["row_count"] == len(want) > 0
    assert all(row["is_final"] is True for row in body["rows"])


def test_api_ad_series_equals_gold_hourly_and_the_daily_view(serving_data: ServingData) -> None:
    s, d1, w = serving_data.settings, serving_data.d1, serving_data.watermark
    daily = tbl(s, "serving.ad_clicks_daily")
    ad = trino_rows(
        s,
        f"SELECT ad_id FROM {daily} WHERE day = ? GROUP BY ad_id ORDER BY sum(clicks) DESC, ad_id LIMIT 1",
        [d1],
        user=analyst(serving_data),
    )[0][0]
    path = f"/v1/ads/{quote(ad, safe='')}/clicks"
    with api_client(s) as client:
        hourly = client.get(
            path,
            params={
                "granularity": "hour",
                "from": f"{d1}T00:00:00Z",
                "to": f"{d1 + timedelta(days=1)}T00:00:00Z",
            },
        )
        days = client.get(
            path,
            params={
                "granularity": "day",
                "from": d1.isoformat(),
                "to": (serving_data.today + timedelta(days=1)).isoformat(),
            },
        )
    assert hourly.status_code == 200, hourly.text
    assert days.status_code == 200, days.text

    gold = trino_rows(
        s,
        "SELECT window_start, sum(impressions), sum(clicks), sum(fraud_clicks), sum(conversions) "
        f"FROM {tbl(s, 'gold.ad_clicks_hourly')} WHERE ad_id = ? AND day = ? "
        "GROUP BY window_start ORDER BY window_start",
        [ad, d1],
    )
    got = [
        (instant(p["t"]), p["impressions"], p["clicks"], p["fraud_clicks"], p["conversions"], p["is_final"])
        for p in hourly.json()["series"]
    ]
    assert got == [(*row, True) for row in gold]
    assert sum(p[2] for p in got) > 0

    served = trino_rows(
        s,
        "SELECT day, sum(impressions), sum(clicks), sum(fraud_clicks), sum(conversions), bool_and(is_final) "
        f"FROM {daily} WHERE ad_id = ? AND day >= ? AND day < ? GROUP BY day ORDER BY day",
        [ad, d1, serving_data.today + timedelta(days=1)],
        user=analyst(serving_data),
    )
    got_days = [
        (
            date.fromisoformat(p["t"]),
            p["impressions"],
            p["clicks"],
            p["fraud_clicks"],
            p["conversions"],
            p["is_final"],
        )
        for p in days.json()["series"]
    ]
    assert got_days == [tuple(row) for row in served]
    assert all(final == (day <= w) for day, *_, final in got_days)


def test_api_top_ads_match_top_ads_minute(serving_data: ServingData) -> None:
    s, minute = serving_data.settings, serving_data.marker_minute
    # The endpoint ranks the last complete minute(s) before now: a clock in the minute after the
    # marker's makes window=1m exactly the marker's minute.
    with api_client(s, clock=lambda: minute + timedelta(minutes=1, seconds=30)) as client:
        r = client.get("/v1/ads/top", params={"window": "1m", "n": 100})
    assert r.status_code == 200, r.text
    body = r.json()
    assert instant(body["from"]) == minute
    got = [(a["rank"], a["ad_id"], a["clicks"]) for a in body["ads"]]
    top = trino_rows(
        s,
        f"SELECT window_start, rank, ad_id, clicks FROM {tbl(s, 'serving.top_ads_minute')} WHERE day = ?",
        [minute.date()],
        user=analyst(serving_data),
    )
    assert got == sorted((rank, ad_id, clicks) for at, rank, ad_id, clicks in top if at == minute)
    assert (1, serving_data.marker_ad, serving_data.marker_clicks) in got


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/v1/reports", {"dimensions": "nope"}, "dimensions"),
        ("/v1/reports", {"metrics": "clicks,nope"}, "metrics"),
        ("/v1/reports", {"from": "last tuesday"}, "from"),
        ("/v1/reports", {"from": "2026-01-02", "to": "2026-01-01"}, "from"),
        ("/v1/reports", {"limit": "0"}, "limit"),
        ("/v1/reports", {"format": "xlsx"}, "format"),
        ("/v1/reports", {"dimension": "ad_id"}, "dimension"),  # misspelt: refused, never ignored
        ("/v1/reports", {"dimensions": "age_group,country"}, "dimensions"),
        ("/v1/ads/top", {"window": "2m"}, "window"),
        ("/v1/ads/top", {"n": "0"}, "n"),
        ("/v1/ads/ad-00001/clicks", {"granularity": "week"}, "granularity"),
        ("/v1/ads/ad-00001/clicks", {"minutes": "5", "from": "-1h"}, "minutes"),
        ("/v1/trends", {"metric": "nope"}, "metric"),
    ],
)
def test_api_bad_parameters_are_400_naming_the_parameter(
    stack: Settings, path: str, params: dict[str, str], parameter: str
) -> None:
    with api_client(stack) as client:
        r = client.get(path, params=params)
    assert r.status_code == 400, r.text
    assert r.json()["parameter"] == parameter


def _empty(path: str, body: dict[str, Any]) -> bool:
    """Whether a 200 answer carries no data (the shape differs per endpoint)."""
    if path == "/v1/reports":
        return body["rows"] == []
    if path == "/v1/ads/top":
        return body["ads"] == []
    if path == "/v1/trends":
        return all(point["value"] in (0, None) for point in body["series"])
    if path == "/v1/funnel":
        return all(step["count"] == 0 for step in body["steps"])
    if path.startswith("/v1/experiments/"):
        return body["variants"] == []
    return body["series"] == []  # /v1/ads/{ad}/clicks


def _injection_requests(text: str, d1: date) -> list[tuple[str, dict[str, str]]]:
    days = {"from": d1.isoformat(), "to": (d1 + timedelta(days=1)).isoformat()}
    filters = (
        "country",
        "device_type",
        "campaign_id",
        "ad_id",
        "advertiser_id",
        "region",
        "age_group",
        "segment",
    )
    requests: list[tuple[str, dict[str, str]]] = [("/v1/reports", {**days, name: text}) for name in filters]
    requests += [
        ("/v1/reports", {**days, "dimensions": text}),
        ("/v1/reports", {**days, "metrics": text}),
        ("/v1/reports", {"from": text}),
        ("/v1/reports", {**days, "format": text}),
        (f"/v1/ads/{quote(text, safe='')}/clicks", {"granularity": "day", **days}),
        ("/v1/ads/ad-00001/clicks", {"granularity": "day", **days, "country": text}),
        ("/v1/ads/ad-00001/clicks", {"granularity": text}),
        ("/v1/ads/top", {"country": text}),
        ("/v1/ads/top", {"window": text}),
        ("/v1/trends", {**days, "ad_id": text}),
        ("/v1/trends", {**days, "metric": text}),
        ("/v1/funnel", {**days, "campaign_id": text}),
        (f"/v1/experiments/{quote(text, safe='')}", days),
        ("/v1/experiments/exp-01", {**days, "control": text}),
    ]
    return requests


def test_api_sql_injection_is_inert(serving_data: ServingData) -> None:
    """Every string parameter with SQL in it: 200 with no data, or 400; never 500 (no statement
    ever fails), and the tables are all still there with the same rows afterwards."""
    s = serving_data.settings
    gold = tbl(s, "gold.ad_clicks_daily")
    tables = f"SELECT table_schema, table_name FROM {s.trino_catalog}.information_schema.tables ORDER BY 1, 2"
    before = (trino_rows(s, f"SELECT count(*) FROM {gold}"), trino_rows(s, tables))

    answers = []
    with api_client(s) as client:
        for text in INJECTIONS:
            for path, params in _injection_requests(text, serving_data.d1):
                r = client.get(path, params=params)
                answers.append((r.status_code, path, params, r.text[:300]))
                if r.status_code == 200:
                    assert _empty(path, r.json()), (path, params, r.text[:500])
    assert all(status in (200, 400) for status, *_ in answers), [a for a in answers if a[0] not in (200, 400)]
    assert any(status == 200 for status, *_ in answers)  # filters were bound and run, not only refused

    after = (trino_rows(s, f"SELECT count(*) FROM {gold}"), trino_rows(s, tables))
    assert after == before


def test_api_k_anonymity_hides_small_demographic_groups(serving_data: ServingData) -> None:
    s, d1 = serving_data.settings, serving_data.d1
    params = {
        "dimensions": "age_group",
        "metrics": "clicks",
        "from": d1.isoformat(),
        "to": (d1 + timedelta(days=1)).isoformat(),
    }
    groups = dict(
        map(
            tuple,
            trino_rows(
                s,
                f"SELECT age_group, max(unique_users) FROM {tbl(s, 'serving.audience_daily')} "
                "WHERE day = ? GROUP BY age_group",
                [d1],
                user=analyst(serving_data),
            ),
        )
    )
    assert len(groups) >= 2, groups  # the users dimension was loaded: several age groups

    above_all = max(groups.values()) + 1
    with api_client(s.model_copy(update={"k_anonymity": above_all})) as client:
        r = client.get("/v1/reports", params=params)
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == []
    assert r.json()["k_anonymity"] == {"k": above_all, "suppressed_rows": len(groups)}
    assert (r.headers["X-K-Anonymity-K"], r.headers["X-K-Anonymity-Suppressed"]) == (
        str(above_all),
        str(len(groups)),
    )

    k = max(groups.values())
    kept = {group for group, users in groups.items() if users >= k}
    with api_client(s.model_copy(update={"k_anonymity": k})) as client:
        r = client.get("/v1/reports", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {row["age_group"] for row in body["rows"]} == kept
    assert body["k_anonymity"] == {"k": k, "suppressed_rows": len(groups) - len(kept)}
    assert body["columns"] == ["age_group", "clicks", "is_final"]  # the users column stays hidden


def _next_minutes(ws: Any, errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The next ``minutes`` message of the live socket (a passing Trino error is noted and skipped)."""
    while True:
        message = json.loads(ws.receive_text())  # the server sends only when its answer changes
        if message.get("type") == "minutes":
            return message
        errors.append(message)
        assert len(errors) < 5, errors


@pytest.mark.timeout(900)
def test_api_live_websocket_pushes_new_clicks(serving_data: ServingData) -> None:
    """A client watching one ad sees its clicks within a few micro-batches of them being sent."""
    from serving_data import send_clicks

    s = serving_data.settings
    ad = f"ad-live-{uuid.uuid4().hex[:8]}"
    errors: list[dict[str, Any]] = []
    url = f"/v1/live?minutes=10&ad_id={ad}"
    with api_client(s, live_interval=1.0) as client, client.websocket_connect(url) as ws:
        assert _next_minutes(ws, errors)["minutes"] == []  # a new ad: nothing yet
        minute, _ = send_clicks(s, ad, LIVE_CLICKS)
        seen = 0
        while seen < LIVE_CLICKS:
            message = _next_minutes(ws, errors)
            seen = sum(m["clicks"] + m["fraud_clicks"] for m in message["minutes"])
    assert seen == LIVE_CLICKS
    assert [(instant(m["window_start"]), m["is_final"]) for m in message["minutes"]] == [(minute, False)]
