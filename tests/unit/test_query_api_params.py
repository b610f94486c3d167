"""Query API parameters: every refusal names its parameter, injection is only ever a bound value.

Unknown parameters are refused by the endpoints' parameter models (:mod:`query_api.params`);
times, ranges and identifiers are checked by :mod:`query_api.timerange` and
:mod:`query_api.queries`.
"""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import quote

import pytest
from pydantic import ValidationError
from query_api_fakes import INJECTION, NOW, FakeExecutor, TestClient, ts

from query_api import queries as q
from query_api.params import Filters, FunnelParams, ReportParams, TrendParams
from query_api.parsing import BadParameter
from query_api.timerange import Range, parse_when, time_range

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


# --- unknown parameters --------------------------------------------------------------------------------

KNOWN = {
    "/v1/ads/a/clicks": "campaign_id, country, device_type, from, granularity, minutes, to",
    "/v1/ads/top": "country, device_type, fallback, n, window",
    "/v1/pipeline": "days",
    "/v1/reports": "ad_id, advertiser_id, age_group, campaign_id, country, device_type, dimensions, format, "
    "from, limit, metrics, region, segment, to",
    "/v1/trends": "ad_id, advertiser_id, campaign_id, compare, country, device_type, from, granularity, "
    "metric, region, to",
    "/v1/funnel": "ad_id, advertiser_id, campaign_id, country, device_type, from, region, to",
    "/v1/experiments/e": "control, from, to",
}


@pytest.mark.parametrize(("path", "known"), KNOWN.items())
@pytest.mark.parametrize("name", ["countyr", "from_", "Country", "x" * 60])
def test_an_unknown_parameter_is_refused_naming_it_and_the_known_ones(
    client: TestClient, fake: FakeExecutor, path: str, known: str, name: str
) -> None:
    r = client.get(path, params={name: "US"})
    assert r.status_code == 400, r.text
    shown = name if len(name) <= 40 else "x" * 40 + "..."
    reason = f"unknown parameter; known: {known}"
    assert r.json() == {"error": f"{shown}: {reason}", "parameter": shown, "reason": reason}
    assert fake.calls == []


@pytest.mark.parametrize(
    ("url", "parameter"),
    [
        ("/v1/ads/a/clicks?granularity=week&foo=1", "foo"),
        ("/v1/ads/top?n=0&window=9m&region=eu", "region"),
        ("/v1/reports?format=xml&limit=0&countyr=US", "countyr"),
        ("/v1/trends?age_group=x&metric=bogus", "age_group"),  # not a filter of trends: unknown here
        ("/v1/funnel?bar=2&foo=1", "bar"),  # the first unknown one in the query string
    ],
)
def test_an_unknown_parameter_is_named_before_bad_values(
    client: TestClient, url: str, parameter: str
) -> None:
    r = client.get(url)
    assert r.status_code == 400
    assert r.json()["parameter"] == parameter
    assert r.json()["reason"].startswith("unknown parameter; known: ")


def test_the_parameter_models_forbid_extra_fields() -> None:
    with pytest.raises(ValidationError) as err:
        Filters.model_validate({"country": "US", "countyr": "DE"})
    assert [(e["type"], e["loc"]) for e in err.value.errors()] == [("extra_forbidden", ("countyr",))]
    # the report-like endpoints share the click filters; reports add the audience ones
    click = {"country", "device_type", "campaign_id", "ad_id", "advertiser_id", "region"}
    assert set(Filters.model_fields) == click
    for model in (ReportParams, TrendParams, FunnelParams):
        assert issubclass(model, Filters)
    assert set(ReportParams.known()) - set(TrendParams.known()) >= {"age_group", "segment"}
    # the Python name of `from` is not a parameter
    assert "from" in FunnelParams.known() and "from_" not in FunnelParams.known()
    params = ReportParams.model_validate({"segment": "s", "country": "US", "from": "-1d"})
    assert params.filters() == {
        "country": "US",
        "device_type": None,
        "campaign_id": None,
        "ad_id": None,
        "advertiser_id": None,
        "region": None,
        "age_group": None,
        "segment": "s",
    }
    assert params.from_ == "-1d"


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


def test_time_parsing_and_alignment() -> None:
    assert parse_when("from", "-15m", NOW) == NOW - timedelta(minutes=15)
    assert parse_when("from", "-1w", NOW) == NOW - timedelta(days=7)
    assert parse_when("to", "2026-01-02T03:04:05+02:00", NOW) == ts("2026-01-02 01:04:05")
    assert parse_when("to", "2026-01-02", NOW) == ts("2026-01-02 00:00:00")
    with pytest.raises(BadParameter) as err:
        parse_when("from", "-15 minutes", NOW)
    assert err.value.parameter == "from"
    rng = time_range("hour", NOW, start="2026-01-10T09:30:00Z", end=None, default=timedelta(hours=1))
    assert (rng.start, rng.end, rng.buckets) == (ts("2026-01-10 09:00:00"), ts("2026-01-10 13:00:00"), 4)
    day = time_range(
        "day", NOW, start="2026-01-08T00:00:00Z", end="2026-01-10T00:00:00Z", default=timedelta(1)
    )
    assert (day.first_day, day.end_day, day.last_day) == (
        date(2026, 1, 8),
        date(2026, 1, 10),
        date(2026, 1, 9),
    )
    assert day.previous().bucket_starts() == [ts("2026-01-06 00:00:00"), ts("2026-01-07 00:00:00")]


def test_identifiers_never_come_from_the_caller() -> None:
    views = q.Views("delta")
    with pytest.raises(BadParameter):
        q.report_query(
            views, ["day; DROP"], ["clicks"], Range(NOW, NOW + timedelta(days=1), "day"), {}, limit=1
        )
    with pytest.raises(BadParameter):
        q.trend_query(views, "clicks) --", Range(NOW, NOW + timedelta(days=1), "day"), {})
    with pytest.raises(BadParameter):
        q.funnel_query(views, Range(NOW, NOW + timedelta(days=1), "day"), {"1=1 OR country": ["x"]})
    with pytest.raises(ValueError):
        q.Views("delta; DROP")


def test_the_moved_names_are_still_importable_from_queries() -> None:
    from query_api import parsing, timerange

    assert (q.Range, q.BadParameter, q.time_range, q.parse_when) == (
        Range,
        BadParameter,
        time_range,
        parse_when,
    )
    assert (q.parse_filters, q.check_value, q.floor_to, q.MAX_VALUE_CHARS, q.MAX_BUCKETS) == (
        parsing.parse_filters,
        parsing.check_value,
        timerange.floor_to,
        parsing.MAX_VALUE_CHARS,
        timerange.MAX_BUCKETS,
    )
