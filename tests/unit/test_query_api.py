"""Query API over a fake executor: the SQL it sends (and binds), the answers it shapes, what it refuses.

No Trino: :class:`FakeExecutor` records every (sql, params) and answers canned rows chosen by a
marker in the SQL (the view name). The clock is fixed at 2026-01-10 12:00:30 UTC.
"""

from __future__ import annotations

import csv
import io
import threading
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import orjson
import pyarrow.parquet as pq
import pytest

with warnings.catch_warnings():  # the test client's own deprecation notice about httpx
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from adclick.settings import Settings
from query_api import queries as q
from query_api.app import create_app
from query_api.cache import QueryCache
from query_api.executor import QueryUnavailable, Result
from query_api.stats import (
    normal_interval,
    two_proportion_z_test,
    wilson_interval,
    z_critical,
)

NOW = datetime(2026, 1, 10, 12, 0, 30, tzinfo=UTC)
INJECTION = "x'); DROP TABLE delta.gold.ad_clicks_daily; -- \" ?"


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class FakeExecutor:
    """Records statements; answers the first canned result whose marker is in the SQL (else empty)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Any]]] = []
        self.answers: list[tuple[str, Result]] = []
        self.watermark_value: Any = (date(2026, 1, 8), _t("2026-01-09 03:00:00"))
        self.watermark_calls = 0
        self.fail: Exception | None = None
        self.lock = threading.Lock()
        self.live_polls = 0
        self.polled = threading.Event()
        self.polls_wanted = 0

    def answer(self, marker: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        self.answers.insert(0, (marker, Result(columns, tuple(rows))))

    def run(self, sql: str, params: Any) -> Result:
        with self.lock:
            self.calls.append((sql, list(params)))
            if self.fail is not None:
                raise self.fail
            if "window_start >= ?" in sql and "day >= ? AND window_start" in sql:
                self.live_polls += 1
                if self.polls_wanted and self.live_polls >= self.polls_wanted:
                    self.polled.set()
            for marker, result in self.answers:
                if marker in sql:
                    return result
        return Result((), ())

    def watermark(self) -> Any:
        with self.lock:
            self.watermark_calls += 1
            if self.fail is not None:
                raise self.fail
            return self.watermark_value


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
    app = create_app(Settings(k_anonymity=5), fake, clock=lambda: NOW, monotonic=mono, live_interval=0.01)
    with TestClient(app) as c:
        yield c


def _sqls(fake: FakeExecutor) -> list[str]:
    return [sql for sql, _ in fake.calls]


# --- per-ad series ---------------------------------------------------------------------------------


def test_ad_clicks_per_minute_binds_the_ad_and_the_aligned_range(
    client: TestClient, fake: FakeExecutor
) -> None:
    fake.answer(
        "serving.ad_clicks_minute",
        ("t", "impressions", "clicks", "fraud_clicks", "conversions", "is_final"),
        [(_t("2026-01-10 11:59:00"), 10, 4, 1, 0, False), (_t("2026-01-10 12:00:00"), 3, 2, 0, 1, False)],
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
        _t("2026-01-10 11:45:00"),
        _t("2026-01-10 12:01:00"),
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
        _t("2026-01-10 11:55:00"),
        _t("2026-01-10 12:00:00"),
        "mobile",
        2,
    ]


# --- reports -----------------------------------------------------------------------------------------

REPORT_COLUMNS = ("day", "ad_id", "clicks", "ctr", "is_final")
REPORT_ROWS = [
    (date(2026, 1, 8), "a,1", 10, 0.25, True),
    (date(2026, 1, 9), 'b"2', 0, None, False),
]
EXPECTED_RECORDS = [
    {"day": "2026-01-08", "ad_id": "a,1", "clicks": 10, "ctr": 0.25, "is_final": True},
    {"day": "2026-01-09", "ad_id": 'b"2', "clicks": 0, "ctr": None, "is_final": False},
]


def test_report_json_reads_the_daily_view_and_returns_records(client: TestClient, fake: FakeExecutor) -> None:
    fake.answer("serving.ad_clicks_daily", REPORT_COLUMNS, REPORT_ROWS)
    r = client.get(
        "/v1/reports",
        params={"dimensions": "day,ad_id", "metrics": "clicks,ctr", "from": "2026-01-08", "to": "2026-01-10"},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["columns"] == list(REPORT_COLUMNS)
    assert body["rows"] == EXPECTED_RECORDS
    assert body["k_anonymity"] is None and body["truncated"] is False
    assert (body["from"], body["to"]) == ("2026-01-08", "2026-01-10")
    assert "x-k-anonymity-k" not in r.headers
    sql, params = fake.calls[-1]
    assert sql.startswith(
        "SELECT day, ad_id, sum(clicks) AS clicks, "
        "CAST(sum(clicks) AS double) / nullif(sum(impressions), 0) AS ctr, bool_and(is_final) AS is_final "
        "FROM delta.serving.ad_clicks_daily WHERE day >= ? AND day < ? GROUP BY 1, 2 ORDER BY 1, 2 LIMIT ?"
    )
    assert params == [date(2026, 1, 8), date(2026, 1, 10), 10_001]


def test_report_csv_parses_back_to_the_same_rows(client: TestClient, fake: FakeExecutor) -> None:
    fake.answer("serving.ad_clicks_daily", REPORT_COLUMNS, REPORT_ROWS)
    r = client.get(
        "/v1/reports", params={"dimensions": "day,ad_id", "metrics": "clicks,ctr", "format": "csv"}
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows == [
        {"day": "2026-01-08", "ad_id": "a,1", "clicks": "10", "ctr": "0.25", "is_final": "true"},
        {"day": "2026-01-09", "ad_id": 'b"2', "clicks": "0", "ctr": "", "is_final": "false"},
    ]


def test_report_parquet_parses_back_to_the_same_rows(client: TestClient, fake: FakeExecutor) -> None:
    fake.answer("serving.ad_clicks_daily", REPORT_COLUMNS, REPORT_ROWS)
    r = client.get(
        "/v1/reports", params={"dimensions": "day,ad_id", "metrics": "clicks,ctr", "format": "parquet"}
    )
    assert r.status_code == 200
    table = pq.read_table(io.BytesIO(r.content))
    assert table.column_names == list(REPORT_COLUMNS)
    assert table.to_pylist() == [dict(zip(REPORT_COLUMNS, row, strict=True)) for row in REPORT_ROWS]


def test_report_says_when_it_was_truncated(client: TestClient, fake: FakeExecutor) -> None:
    fake.answer(
        "serving.ad_clicks_daily",
        ("day", "clicks", "is_final"),
        [(date(2026, 1, d), d, True) for d in (1, 2, 3)],
    )
    r = client.get("/v1/reports", params={"limit": 2})
    assert r.headers["x-truncated"] == "true"
    assert [row["clicks"] for row in r.json()["rows"]] == [1, 2]
    assert fake.calls[-1][1][-1] == 3  # asks for one row more than it returns


def test_demographic_report_hides_groups_under_k(client: TestClient, fake: FakeExecutor) -> None:
    fake.answer(
        "serving.audience_daily",
        ("age_group", "clicks", "is_final", q.K_USERS_COLUMN),
        [("18-24", 40, True, 12), ("25-34", 3, True, 4), ("35-44", 9, True, 5), ("unknown", 1, True, None)],
    )
    r = client.get("/v1/reports", params={"dimensions": "age_group", "metrics": "clicks", "region": "eu"})
    assert r.status_code == 200
    body = r.json()
    assert body["columns"] == ["age_group", "clicks", "is_final"]  # the users column is not shown
    assert [row["age_group"] for row in body["rows"]] == ["18-24", "35-44"]  # 5 users is enough for k=5
    assert body["k_anonymity"] == {"k": 5, "suppressed_rows": 2}
    assert (r.headers["x-k-anonymity-k"], r.headers["x-k-anonymity-suppressed"]) == ("5", "2")
    sql, params = fake.calls[-1]
    assert f"max(unique_users) AS {q.K_USERS_COLUMN} FROM delta.serving.audience_daily" in sql
    assert "AND region = ?" in sql and "eu" in params

    csv_r = client.get(
        "/v1/reports", params={"dimensions": "age_group", "metrics": "clicks", "format": "csv"}
    )
    assert [row["age_group"] for row in csv.DictReader(io.StringIO(csv_r.text))] == ["18-24", "35-44"]
    assert csv_r.headers["x-k-anonymity-suppressed"] == "2"


def test_a_segment_filter_alone_makes_a_report_demographic(client: TestClient, fake: FakeExecutor) -> None:
    fake.answer(
        "serving.audience_daily",
        ("day", "clicks", "is_final", q.K_USERS_COLUMN),
        [(date(2026, 1, 9), 2, True, 1)],
    )
    r = client.get("/v1/reports", params={"segment": "gamers"})
    assert r.json()["rows"] == []
    assert r.json()["k_anonymity"] == {"k": 5, "suppressed_rows": 1}


# --- trends, funnel, experiments ------------------------------------------------------------------


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
        [(_t("2026-01-10 08:00:00"), 4, False), (_t("2026-01-10 10:00:00"), 6, False)],
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


def test_experiment_compares_each_variant_with_the_first(client: TestClient, fake: FakeExecutor) -> None:
    fake.answer(
        "serving.experiments_daily",
        ("variant", "impressions", "clicks", "conversions"),
        [("A", 1000, 200, 20), ("B", 1000, 250, 30)],
    )
    r = client.get("/v1/experiments/exp-1", params={"from": "2026-01-01"})
    assert r.status_code == 200
    body = r.json()
    assert body["control"] == "A"
    a, b = body["variants"]
    assert a["is_control"] and a["z"] is None and a["p_value"] is None
    assert a["ctr"] == 0.2
    assert a["ctr_ci"] == pytest.approx([0.176377, 0.225919], abs=1e-6)
    assert b["z"] == pytest.approx(2.6774, abs=1e-4)
    assert b["p_value"] == pytest.approx(0.007420, abs=1e-6)
    assert b["significant"] is True
    assert b["lift"] == pytest.approx(0.25)
    assert b["diff_ci"] == pytest.approx([0.013464, 0.086536], abs=1e-6)
    assert fake.calls[-1][1] == ["exp-1", date(2026, 1, 1), date(2026, 1, 11)]

    other = client.get("/v1/experiments/exp-1", params={"control": "B"}).json()
    assert other["control"] == "B"
    assert other["variants"][0]["z"] == pytest.approx(-2.6774, abs=1e-4)


def test_unknown_experiment_has_no_variants(client: TestClient) -> None:
    body = client.get("/v1/experiments/none").json()
    assert body["variants"] == [] and body["control"] is None


# --- health, dashboard, failures ------------------------------------------------------------------


def test_health_and_dashboard(client: TestClient, fake: FakeExecutor) -> None:
    r = client.get("/v1/health")
    assert r.status_code == 200
    assert r.json()["batch_watermark"] == {"day": "2026-01-08", "advanced_at": "2026-01-09T03:00:00Z"}
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/v1/live" in page.text and "/v1/ads/top" in page.text and "<script src" not in page.text
    assert client.get("/openapi.json").status_code == 200

    fake.fail = QueryUnavailable("Trino unreachable: refused")
    down = client.get("/v1/health")
    assert down.status_code == 503 and down.json()["status"] == "unavailable"
    r = client.get("/v1/ads/a/clicks")
    assert r.status_code == 503 and r.json()["parameter"] == "trino"


# --- refusals ----------------------------------------------------------------------------------------

BAD = [
    ("/v1/ads/a/clicks?granularity=week", "granularity"),
    ("/v1/ads/a/clicks?from=yesterday", "from"),
    ("/v1/ads/a/clicks?to=2026-13-01", "to"),
    ("/v1/ads/a/clicks?from=-1h&to=-2h", "from"),
    ("/v1/ads/a/clicks?minutes=0", "minutes"),
    ("/v1/ads/a/clicks?minutes=abc", "minutes"),
    ("/v1/ads/a/clicks?minutes=5&from=-1h", "minutes"),
    ("/v1/ads/a/clicks?from=-30d", "from"),  # 30 days of minutes is too many buckets
    ("/v1/ads/a/clicks?country=", "country"),
    ("/v1/ads/a/clicks?region=eu", "region"),  # not a filter of this endpoint: refused, not ignored
    ("/v1/reports?countyr=US", "countyr"),
    (f"/v1/ads/{'x' * 200}/clicks", "ad_id"),
    ("/v1/ads/top?window=2m", "window"),
    ("/v1/ads/top?n=0", "n"),
    ("/v1/ads/top?n=1001", "n"),
    ("/v1/reports?dimensions=day,password", "dimensions"),
    ("/v1/reports?dimensions=day,day", "dimensions"),
    ("/v1/reports?dimensions=", "dimensions"),
    ("/v1/reports?metrics=clicks,revenue", "metrics"),
    ("/v1/reports?dimensions=age_group,country", "dimensions"),
    ("/v1/reports?dimensions=age_group&device_type=mobile", "device_type"),
    ("/v1/reports?format=xml", "format"),
    ("/v1/reports?limit=0", "limit"),
    ("/v1/reports?from=2026-01-09&to=2026-01-01", "from"),
    ("/v1/trends?metric=bogus", "metric"),
    ("/v1/trends?granularity=minute", "granularity"),
    ("/v1/trends?compare=last_year", "compare"),
    ("/v1/funnel?to=soon", "to"),
    (f"/v1/funnel?ad_id={','.join(['a'] * 101)}", "ad_id"),
    (f"/v1/experiments/e?control={'v' * 200}", "control"),
]


@pytest.mark.parametrize(("url", "parameter"), BAD)
def test_bad_parameters_give_400_naming_them(
    client: TestClient, fake: FakeExecutor, url: str, parameter: str
) -> None:
    r = client.get(url)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["parameter"] == parameter
    assert body["error"].startswith(f"{parameter}: ")
    assert fake.calls == []  # refused before any SQL


def test_a_control_that_is_not_a_variant_is_refused(client: TestClient, fake: FakeExecutor) -> None:
    fake.answer(
        "serving.experiments_daily", ("variant", "impressions", "clicks", "conversions"), [("A", 10, 1, 0)]
    )
    r = client.get("/v1/experiments/e", params={"control": "Z"})
    assert r.status_code == 400 and r.json()["parameter"] == "control"


# --- injection -----------------------------------------------------------------------------------------

FILTERED = {
    "/v1/ads/a/clicks": ("country", "device_type", "campaign_id"),
    "/v1/ads/top": ("country", "device_type"),
    "/v1/reports": ("country", "device_type", "campaign_id", "ad_id", "advertiser_id", "region"),
    "/v1/reports?dimensions=age_group": (
        "ad_id",
        "campaign_id",
        "advertiser_id",
        "region",
        "age_group",
        "segment",
    ),
    "/v1/trends": ("country", "device_type", "campaign_id", "ad_id", "advertiser_id", "region"),
    "/v1/funnel": ("country", "device_type", "campaign_id", "ad_id", "advertiser_id", "region"),
}


@pytest.mark.parametrize(("path", "name"), [(p, n) for p, names in FILTERED.items() for n in names])
def test_injection_in_filters_is_only_ever_a_bound_value(
    client: TestClient, fake: FakeExecutor, path: str, name: str
) -> None:
    fake.answer("audience_daily", ("age_group", "clicks", "is_final", q.K_USERS_COLUMN), [])
    r = client.get(path, params={name: INJECTION})
    assert r.status_code == 200, r.text
    sql, params = fake.calls[-1]
    assert INJECTION in params
    assert "DROP" not in sql and "x')" not in sql
    assert f" {name} = ?" in sql


@pytest.mark.parametrize("path", ["/v1/ads/{}/clicks", "/v1/experiments/{}"])
def test_injection_in_path_ids_is_only_ever_a_bound_value(
    client: TestClient, fake: FakeExecutor, path: str
) -> None:
    r = client.get(path.format(quote(INJECTION, safe="")))
    assert r.status_code == 200, r.text
    sql, params = fake.calls[-1]
    assert params[0] == INJECTION
    assert "DROP" not in sql and "x')" not in sql


@pytest.mark.parametrize(
    "params",
    [
        {"dimensions": f"day,{INJECTION}"},
        {"metrics": INJECTION},
        {"format": INJECTION},
        {"from": INJECTION},
        {"to": INJECTION},
    ],
)
def test_injection_in_names_and_times_is_refused(
    client: TestClient, fake: FakeExecutor, params: dict[str, str]
) -> None:
    r = client.get("/v1/reports", params=params)
    assert r.status_code == 400
    assert r.json()["parameter"] == next(iter(params))
    assert fake.calls == []


def test_injection_in_trend_and_series_names_is_refused(client: TestClient, fake: FakeExecutor) -> None:
    for url, params, parameter in [
        ("/v1/trends", {"metric": INJECTION}, "metric"),
        ("/v1/trends", {"granularity": INJECTION}, "granularity"),
        ("/v1/trends", {"compare": INJECTION}, "compare"),
        ("/v1/ads/a/clicks", {"granularity": INJECTION}, "granularity"),
        ("/v1/ads/top", {"window": INJECTION}, "window"),
    ]:
        r = client.get(url, params=params)
        assert (r.status_code, r.json()["parameter"]) == (400, parameter)
    assert fake.calls == []


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

    fake.watermark_value = (date(2026, 1, 9), _t("2026-01-10 03:00:00"))
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


# --- live ----------------------------------------------------------------------------------------------


def test_live_sends_when_the_latest_minute_changes(fake: FakeExecutor) -> None:
    # the cache's real monotonic clock, so the live results (cached for live_interval) expire
    app = create_app(Settings(), fake, clock=lambda: NOW, live_interval=0.01)
    columns = ("window_start", "impressions", "clicks", "fraud_clicks", "is_final")
    first = [(_t("2026-01-10 11:59:00"), 5, 3, 0, False)]
    fake.answer("serving.ad_clicks_minute", columns, first)
    with TestClient(app) as client, client.websocket_connect("/v1/live?minutes=5&country=US") as ws:
        message = orjson.loads(ws.receive_text())
        assert message == {
            "type": "minutes",
            "minutes": [
                {"window_start": "2026-01-10T11:59:00Z", "impressions": 5, "clicks": 3, "fraud_clicks": 0,
                 "is_final": False}
            ],
        }  # fmt: skip
        sql, params = fake.calls[-1]
        assert "FROM delta.serving.ad_clicks_minute WHERE day >= ? AND window_start >= ?" in sql
        assert params == [date(2026, 1, 10), _t("2026-01-10 11:56:00"), "US"]
        # let it poll a few more times with nothing new: nothing may be sent for those
        with fake.lock:
            fake.polls_wanted = fake.live_polls + 3
        assert fake.polled.wait(timeout=30)
        fake.answer(
            "serving.ad_clicks_minute", columns, [*first, (_t("2026-01-10 12:00:00"), 1, 7, 2, False)]
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


# --- statistics and parameters ------------------------------------------------------------------------


def test_two_proportion_z_test_against_hand_computed_values() -> None:
    # pooled p = 450/2000 = 0.225; se = sqrt(0.225 * 0.775 * (2/1000)) = 0.0186748; z = 0.05 / se
    pooled = two_proportion_z_test(200, 1000, 250, 1000)
    assert pooled is not None
    assert pooled.z == pytest.approx(2.67740, abs=1e-5)
    assert pooled.p_value == pytest.approx(0.0074196, abs=1e-6)
    # unpooled se = sqrt(0.2*0.8/1000 + 0.25*0.75/1000) = 0.0186414: z ~ 2.68, p ~ 0.0073
    wald = two_proportion_z_test(200, 1000, 250, 1000, pooled=False)
    assert wald is not None
    assert wald.z == pytest.approx(2.68221, abs=1e-5)
    assert wald.p_value == pytest.approx(0.0073138, abs=1e-6)
    assert wald.diff_ci == pytest.approx((0.05 - 1.959964 * 0.0186414, 0.05 + 1.959964 * 0.0186414), abs=1e-6)
    same = two_proportion_z_test(0, 50, 0, 80)
    assert same is not None and (same.z, same.p_value, same.lift) == (0.0, 1.0, None)
    with pytest.raises(ValueError, match="exceed"):
        two_proportion_z_test(11, 10, 1, 10)
    assert two_proportion_z_test(0, 0, 1, 10) is None


def test_intervals_against_hand_computed_values() -> None:
    assert z_critical(0.95) == pytest.approx(1.959964, abs=1e-6)
    # Wilson: centre (0.2 + z²/2n)/(1 + z²/n), half z*sqrt(p(1-p)/n + z²/4n²)/(1 + z²/n)
    assert wilson_interval(200, 1000) == pytest.approx((0.176377, 0.225919), abs=1e-6)
    assert normal_interval(200, 1000) == pytest.approx((0.175208, 0.224792), abs=1e-6)
    low, high = wilson_interval(0, 20)  # type: ignore[misc]
    assert low == 0.0 and high == pytest.approx(0.161125, abs=1e-6)  # the Wald interval would be [0, 0]
    assert wilson_interval(0, 0) is None


def test_time_parsing_and_alignment() -> None:
    assert q.parse_when("from", "-15m", NOW) == NOW - timedelta(minutes=15)
    assert q.parse_when("from", "-1w", NOW) == NOW - timedelta(days=7)
    assert q.parse_when("to", "2026-01-02T03:04:05+02:00", NOW) == _t("2026-01-02 01:04:05")
    assert q.parse_when("to", "2026-01-02", NOW) == _t("2026-01-02 00:00:00")
    with pytest.raises(q.BadParameter) as err:
        q.parse_when("from", "-15 minutes", NOW)
    assert err.value.parameter == "from"
    rng = q.time_range("hour", NOW, start="2026-01-10T09:30:00Z", end=None, default=timedelta(hours=1))
    assert (rng.start, rng.end, rng.buckets) == (_t("2026-01-10 09:00:00"), _t("2026-01-10 13:00:00"), 4)
    day = q.time_range(
        "day", NOW, start="2026-01-08T00:00:00Z", end="2026-01-10T00:00:00Z", default=timedelta(1)
    )
    assert (day.first_day, day.end_day, day.last_day) == (
        date(2026, 1, 8),
        date(2026, 1, 10),
        date(2026, 1, 9),
    )
    assert day.previous().bucket_starts() == [_t("2026-01-06 00:00:00"), _t("2026-01-07 00:00:00")]


def test_identifiers_never_come_from_the_caller() -> None:
    views = q.Views("delta")
    with pytest.raises(q.BadParameter):
        q.report_query(
            views, ["day; DROP"], ["clicks"], q.Range(NOW, NOW + timedelta(days=1), "day"), {}, limit=1
        )
    with pytest.raises(q.BadParameter):
        q.trend_query(views, "clicks) --", q.Range(NOW, NOW + timedelta(days=1), "day"), {})
    with pytest.raises(q.BadParameter):
        q.funnel_query(views, q.Range(NOW, NOW + timedelta(days=1), "day"), {"1=1 OR country": ["x"]})
    with pytest.raises(ValueError):
        q.Views("delta; DROP")


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
