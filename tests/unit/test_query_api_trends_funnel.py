"""Query API, ``/v1/trends`` and ``/v1/funnel``: buckets filled and paired, the funnel's step rates.

Over :class:`query_api_fakes.FakeExecutor`: the statements' bound parameters and the shaped answers.
"""

from __future__ import annotations

from datetime import date

from query_api_fakes import FakeExecutor, TestClient, ts


def test_trends_align_the_previous_period(client: TestClient, fake: FakeExecutor) -> None:
    fake.answer(
        "serving.ad_clicks_daily",
        ("t", "value", "is_final"),
        [(date(2026, 1, 5), 10, True), (date(2026, 1, 8), 30, True), (date(2026, 1, 9), 20, False)],
    )
    r = client.get(
        "/v1/trends",
        params={"metric": "clicks", "granularity": "day", "from": "2026-01-08", "to": "2026-01-10",
                "compare": "previous_period", "ad_id": "a"},
    )  # fmt: skip
    assert r.status_code == 200
    body = r.json()
    assert body["series"] == [
        {"t": "2026-01-08", "value": 30, "is_final": True, "previous_t": "2026-01-06", "previous_value": 0,
         "change": None},
        {"t": "2026-01-09", "value": 20, "is_final": False, "previous_t": "2026-01-07", "previous_value": 0,
         "change": None},
    ]  # fmt: skip
    assert fake.calls[-1][1] == [date(2026, 1, 6), date(2026, 1, 10), "a"]  # both periods in one statement


def test_trends_per_hour_fill_missing_buckets_and_compute_change(
    client: TestClient, fake: FakeExecutor
) -> None:
    fake.answer(
        "serving.ad_clicks_hourly",
        ("t", "value", "is_final"),
        [(ts("2026-01-10 08:00:00"), 4, False), (ts("2026-01-10 10:00:00"), 6, False)],
    )
    r = client.get(
        "/v1/trends",
        params={"granularity": "hour", "from": "2026-01-10T10:00:00Z", "to": "2026-01-10T12:00:00Z",
                "compare": "previous_period"},
    )  # fmt: skip
    series = r.json()["series"]
    assert [(p["t"], p["value"], p["previous_value"], p["change"]) for p in series] == [
        ("2026-01-10T10:00:00Z", 6, 4, 0.5),
        ("2026-01-10T11:00:00Z", 0, 0, None),
    ]


def test_trends_ratio_metric_is_null_where_there_is_no_data(client: TestClient, fake: FakeExecutor) -> None:
    fake.answer("serving.ad_clicks_daily", ("t", "value", "is_final"), [(date(2026, 1, 9), 0.1, False)])
    r = client.get("/v1/trends", params={"metric": "ctr", "from": "2026-01-08", "to": "2026-01-10"})
    assert [p["value"] for p in r.json()["series"]] == [None, 0.1]
    assert "CAST(sum(clicks) AS double) / nullif(sum(impressions), 0) AS value" in fake.calls[-1][0]


def test_funnel_rates(client: TestClient, fake: FakeExecutor) -> None:
    fake.answer(
        "serving.ad_clicks_daily",
        ("impressions", "clicks", "conversions", "fraud_clicks", "is_final"),
        [(1000, 50, 5, 7, False)],
    )
    r = client.get("/v1/funnel", params={"campaign_id": "c1"})
    body = r.json()
    assert body["steps"] == [
        {"step": "impressions", "count": 1000, "rate_from_previous": None, "rate_from_first": 1.0},
        {"step": "clicks", "count": 50, "rate_from_previous": 0.05, "rate_from_first": 0.05},
        {"step": "conversions", "count": 5, "rate_from_previous": 0.1, "rate_from_first": 0.005},
    ]
    assert body["fraud_clicks"] == 7 and body["is_final"] is False
    assert fake.calls[-1][1] == [date(2026, 1, 3), date(2026, 1, 11), "c1"]
