"""Serving layer on the running stack: the lambda views, Trino's access rules and the query API.

The data comes from ``serving_data`` (tests/integration/serving_data.py): two days of generated
traffic and a few marker clicks through Kafka into the stack's own lake, the batch layer run up to
D1 = today - 2, the tables and views registered. W is the batch watermark read back from Trino.

The views are checked against the tables they merge, in one Trino statement each (one snapshot):
rows up to W must be gold's (final), rows after it speed's (live), so no day, hour or minute is
served twice or missed. The query API runs in-process (FastAPI TestClient) on the real Trino, as
the analyst user.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from trino.exceptions import TrinoUserError

from adclick.settings import Settings

if TYPE_CHECKING:
    from serving_data import ServingData

pytestmark = pytest.mark.integration
# The shared data fixture, registered as a plugin (not imported here, so pytest can still rewrite
# its asserts): tests/integration is on sys.path as the directory of this module and its conftest.
pytest_plugins = ("serving_data",)

KEYS = ("ad_id", "campaign_id", "country", "device_type")
MEASURES = ("impressions", "clicks", "fraud_clicks", "conversions", "cost_micros", "revenue_micros")
LIVE_CLICKS = 4
INJECTIONS = (
    "x' OR '1'='1",
    "1; DROP TABLE delta.gold.ad_clicks_daily --",
    "') UNION SELECT event_id FROM delta.silver.events --",
)


def trino_rows(
    settings: Settings, sql: str, params: Sequence[Any] | None = None, *, user: str | None = None
) -> list[list[Any]]:
    """The rows of one statement (``?`` parameters bound), as ``user`` (default: the admin user)."""
    from serving.trino_client import query

    return query(settings, sql, list(params) if params else None, user=user)[1]


def _t(settings: Settings, name: str) -> str:
    """``layer.name`` in the configured catalog."""
    return f"{settings.trino_catalog}.{name}"


def _grouped(source: str, bucket: str, where: str) -> str:
    """Per (bucket, ad, campaign, country, device): the summed measures (null keys as '')."""
    keys = ", ".join(f"coalesce({k}, '') AS {k}" for k in KEYS)
    sums = ", ".join(f"coalesce(sum({m}), 0) AS {m}" for m in MEASURES)
    return f"SELECT {bucket} AS bucket, {keys}, {sums} FROM {source} WHERE {where} GROUP BY 1, 2, 3, 4, 5"


def _compare(settings: Settings, left: str, right: str, params: Sequence[Any]) -> dict[str, Any]:
    """Full outer join of two ``_grouped`` results in one statement: how many keys, how many on one
    side only, how many with different measures, and a few examples when anything differs."""
    on = " AND ".join(f"l.{k} = r.{k}" for k in ("bucket", *KEYS))
    differ = " OR ".join(f"l.{m} IS DISTINCT FROM r.{m}" for m in MEASURES)
    both = "l.bucket IS NOT NULL AND r.bucket IS NOT NULL"
    head = f"WITH l AS ({left}), r AS ({right}) "
    joined = f" FROM l FULL OUTER JOIN r ON {on}"
    counts = (
        head + "SELECT count(*), count(*) FILTER (WHERE r.bucket IS NULL), "
        f"count(*) FILTER (WHERE l.bucket IS NULL), count(*) FILTER (WHERE {both} AND ({differ}))" + joined
    )
    keys, only_left, only_right, different = trino_rows(settings, counts, params)[0]
    result = {"keys": keys, "only_left": only_left, "only_right": only_right, "different": different}
    if only_left or only_right or different:
        sample = (
            head
            + "SELECT l.*, r.*"
            + joined
            + f" WHERE r.bucket IS NULL OR l.bucket IS NULL OR {differ} LIMIT 5"
        )
        result["examples"] = trino_rows(settings, sample, params)
    return result


def _boundary(watermark: date) -> datetime:
    """The first instant after the watermark's day (UTC): live rows start here."""
    after = watermark + timedelta(days=1)
    return datetime(after.year, after.month, after.day, tzinfo=UTC)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@contextlib.contextmanager
def _api(settings: Settings, **kwargs: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from query_api.app import create_app

    with TestClient(create_app(settings, **kwargs)) as client:
        yield client


def _analyst(data: ServingData) -> str:
    return data.settings.trino_analyst_user


# --- the lambda views --------------------------------------------------------------------------


def test_daily_rows_up_to_the_watermark_are_final_and_equal_gold(serving_data: ServingData) -> None:
    s, w = serving_data.settings, serving_data.watermark
    served = _grouped(_t(s, "serving.ad_clicks_daily"), "day", "day <= ?")
    gold = _grouped(_t(s, "gold.ad_clicks_daily"), "day", "day <= ?")
    result = _compare(s, served, gold, [w, w])
    assert result["keys"] > 0
    assert (result["only_left"], result["only_right"], result["different"]) == (0, 0, 0), result

    sql = (
        f"SELECT count(*) FILTER (WHERE NOT is_final), count(*) FILTER (WHERE day = ?) "
        f"FROM {_t(s, 'serving.ad_clicks_daily')} WHERE day <= ?"
    )
    not_final, d1_rows = trino_rows(s, sql, [serving_data.d1, w])[0]
    assert not_final == 0
    assert d1_rows > 0  # the fixture's D1 traffic is served final


def test_daily_rows_after_the_watermark_are_live_and_equal_speed(serving_data: ServingData) -> None:
    s, w = serving_data.settings, serving_data.watermark
    served = _grouped(_t(s, "serving.ad_clicks_daily"), "day", "day > ?")
    speed = _grouped(_t(s, "speed.ad_clicks_minute"), "window_date", "window_date > ?")
    result = _compare(s, served, speed, [w, w])
    assert (result["only_left"], result["only_right"], result["different"]) == (0, 0, 0), result

    sql = (
        "SELECT count(*) FILTER (WHERE is_final), coalesce(sum(clicks) FILTER (WHERE ad_id = ?), 0) "
        f"FROM {_t(s, 'serving.ad_clicks_daily')} WHERE day > ?"
    )
    final, marker = trino_rows(s, sql, [serving_data.marker_ad, w])[0]
    assert final == 0
    assert marker == serving_data.marker_clicks  # today's clicks are served before any batch


def test_daily_view_switches_from_final_to_live_after_the_watermark_without_a_gap(
    serving_data: ServingData,
) -> None:
    s, w = serving_data.settings, serving_data.watermark
    daily = _t(s, "serving.ad_clicks_daily")
    both = trino_rows(
        s,
        f"SELECT count(*) FROM (SELECT day, ad_id, campaign_id, country, device_type FROM {daily} "
        "GROUP BY 1, 2, 3, 4, 5 HAVING count(DISTINCT is_final) > 1)",
    )[0][0]
    assert both == 0  # no (day, ad, campaign, country, device) is served both final and live

    per_day = trino_rows(s, f"SELECT day, bool_and(is_final), bool_or(is_final) FROM {daily} GROUP BY day")
    assert all(all_final == any_final for _, all_final, any_final in per_day)  # a day is one or the other
    final_days = {d for d, all_final, _ in per_day if all_final}
    live_days = {d for d, all_final, _ in per_day if not all_final}
    assert max(final_days) <= w < min(live_days)

    gold_days = trino_rows(s, f"SELECT DISTINCT day FROM {_t(s, 'gold.ad_clicks_daily')} WHERE day <= ?", [w])
    speed_days = trino_rows(
        s,
        f"SELECT DISTINCT window_date FROM {_t(s, 'speed.ad_clicks_minute')} WHERE window_date > ?",
        [w],
    )
    assert final_days == {r[0] for r in gold_days}  # every batched day up to W is served ...
    assert live_days == {r[0] for r in speed_days}  # ... and every streamed day after it
    assert serving_data.d1 in final_days
    assert serving_data.today in live_days
    if serving_data.d2 > w:
        assert serving_data.d2 not in final_days


@pytest.mark.parametrize(
    ("view", "bucket"),
    [("ad_clicks_minute", "window_start"), ("ad_clicks_hourly", "date_trunc('hour', window_start)")],
)
def test_minute_and_hourly_views_switch_to_live_at_the_start_of_the_day_after_the_watermark(
    serving_data: ServingData, view: str, bucket: str
) -> None:
    s, w = serving_data.settings, serving_data.watermark
    served = _t(s, f"serving.{view}")
    boundary = _boundary(w)

    sides = {
        final: (first, last, first_day, last_day, n)
        for final, first, last, first_day, last_day, n in trino_rows(
            s,
            f"SELECT is_final, min(window_start), max(window_start), min(day), max(day), count(*) "
            f"FROM {served} GROUP BY is_final",
        )
    }
    assert set(sides) == {True, False}, sides
    assert sides[True][1] < boundary <= sides[False][0]  # final before the start of W + 1, live from it
    assert sides[True][3] <= w < sides[False][2]

    per_day = f"SELECT day, min(window_start), max(window_start) FROM {served} GROUP BY day"
    for day, first, last in trino_rows(s, per_day):
        assert first.astimezone(UTC).date() == day == last.astimezone(UTC).date()  # day = the UTC date

    live = _grouped(served, "window_start", "day > ?")
    speed = _grouped(_t(s, "speed.ad_clicks_minute"), bucket, "window_date > ?")
    result = _compare(s, live, speed, [w, w])
    assert result["keys"] > 0
    assert (result["only_left"], result["only_right"], result["different"]) == (0, 0, 0), result

    if view == "ad_clicks_hourly":
        final = _grouped(served, "window_start", "day <= ?")
        gold = _grouped(_t(s, "gold.ad_clicks_hourly"), "window_start", "day <= ?")
        result = _compare(s, final, gold, [w, w])
        assert (result["only_left"], result["only_right"], result["different"]) == (0, 0, 0), result


def test_final_minutes_of_d1_roll_up_to_gold_hourly(serving_data: ServingData) -> None:
    """The final minutes are counted from silver by the view itself: summed per hour they must be
    gold's hourly rows of the same day (same rows, same rules)."""
    s, d1 = serving_data.settings, serving_data.d1
    minutes = _grouped(_t(s, "serving.ad_clicks_minute"), "date_trunc('hour', window_start)", "day = ?")
    hours = _grouped(_t(s, "gold.ad_clicks_hourly"), "window_start", "day = ?")
    result = _compare(s, minutes, hours, [d1, d1])
    assert result["keys"] > 0
    assert (result["only_left"], result["only_right"], result["different"]) == (0, 0, 0), result


def test_top_ads_minute_ranks_todays_minutes(serving_data: ServingData) -> None:
    s = serving_data.settings
    rows = trino_rows(
        s,
        f"SELECT window_start, rank, ad_id, clicks FROM {_t(s, 'serving.top_ads_minute')} "
        "WHERE day = ? ORDER BY window_start, rank, ad_id",
        [serving_data.today],
    )
    minutes: dict[datetime, list[tuple[int, str, int]]] = {}
    for window_start, rank, ad_id, clicks in rows:
        minutes.setdefault(window_start, []).append((rank, ad_id, clicks))
    assert minutes
    for window_start, ranked in minutes.items():
        top = max(clicks for _, _, clicks in ranked)
        tied_at_top = sum(1 for _, _, clicks in ranked if clicks == top)
        assert [(r, c) for r, _, c in ranked if r == 1] == [(1, top)] * tied_at_top  # RANK(): ties share 1
        clicks_in_rank_order = [c for _, _, c in ranked]
        assert clicks_in_rank_order == sorted(clicks_in_rank_order, reverse=True), window_start
    marker = serving_data.marker_minute
    assert (1, serving_data.marker_ad, serving_data.marker_clicks) in minutes[marker]


# --- access control ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["serving.ad_clicks_daily", "serving.ad_clicks_minute", "serving.top_ads_minute", "gold.ad_clicks_daily"],
)
def test_analyst_reads_serving_and_gold(serving_data: ServingData, name: str) -> None:
    s = serving_data.settings
    count = trino_rows(s, f"SELECT count(*) FROM {_t(s, name)}", user=_analyst(serving_data))[0][0]
    assert count > 0


@pytest.mark.parametrize(
    "name", ["bronze.events", "silver.events", "speed.ad_clicks_minute", "ops.batch_watermark"]
)
def test_analyst_is_refused_the_layers_below(serving_data: ServingData, name: str) -> None:
    s = serving_data.settings
    with pytest.raises(TrinoUserError) as refused:
        trino_rows(s, f"SELECT count(*) FROM {_t(s, name)}", user=_analyst(serving_data))
    assert refused.value.error_name == "PERMISSION_DENIED"
    assert "Access Denied" in refused.value.message


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "SELECT count(*) FROM {catalog}.serving.ad_clicks_daily",
        "SELECT count(*) FROM {catalog}.gold.ad_clicks_daily",
        "SHOW SCHEMAS FROM {catalog}",
    ],
)
def test_ingest_user_is_refused_everything(serving_data: ServingData, sql: str) -> None:
    s = serving_data.settings
    with pytest.raises(TrinoUserError) as refused:
        trino_rows(s, sql.format(catalog=s.trino_catalog), user=s.trino_ingest_user)
    assert refused.value.error_name == "PERMISSION_DENIED"


# --- the query API -----------------------------------------------------------------------------


def test_api_report_by_ad_equals_direct_sql(serving_data: ServingData) -> None:
    s, d1 = serving_data.settings, serving_data.d1
    with _api(s) as client:
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
        f"SELECT ad_id, sum(clicks) FROM {_t(s, 'serving.ad_clicks_daily')} WHERE day = ? GROUP BY ad_id",
        [d1],
        user=_analyst(serving_data),
    )
    assert {row["ad_id"]: row["clicks"] for row in body["rows"]} == dict(map(tuple, want))
    assert body["row_count"] == len(want) > 0
    assert all(row["is_final"] is True for row in body["rows"])


def test_api_ad_series_equals_gold_hourly_and_the_daily_view(serving_data: ServingData) -> None:
    s, d1, w = serving_data.settings, serving_data.d1, serving_data.watermark
    daily = _t(s, "serving.ad_clicks_daily")
    ad = trino_rows(
        s,
        f"SELECT ad_id FROM {daily} WHERE day = ? GROUP BY ad_id ORDER BY sum(clicks) DESC, ad_id LIMIT 1",
        [d1],
        user=_analyst(serving_data),
    )[0][0]
    path = f"/v1/ads/{quote(ad, safe='')}/clicks"
    with _api(s) as client:
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
        f"FROM {_t(s, 'gold.ad_clicks_hourly')} WHERE ad_id = ? AND day = ? "
        "GROUP BY window_start ORDER BY window_start",
        [ad, d1],
    )
    got = [
        (_instant(p["t"]), p["impressions"], p["clicks"], p["fraud_clicks"], p["conversions"], p["is_final"])
        for p in hourly.json()["series"]
    ]
    assert got == [(*row, True) for row in gold]
    assert sum(p[2] for p in got) > 0

    served = trino_rows(
        s,
        "SELECT day, sum(impressions), sum(clicks), sum(fraud_clicks), sum(conversions), bool_and(is_final) "
        f"FROM {daily} WHERE ad_id = ? AND day >= ? AND day < ? GROUP BY day ORDER BY day",
        [ad, d1, serving_data.today + timedelta(days=1)],
        user=_analyst(serving_data),
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
    with _api(s, clock=lambda: minute + timedelta(minutes=1, seconds=30)) as client:
        r = client.get("/v1/ads/top", params={"window": "1m", "n": 100})
    assert r.status_code == 200, r.text
    body = r.json()
    assert _instant(body["from"]) == minute
    got = [(a["rank"], a["ad_id"], a["clicks"]) for a in body["ads"]]
    top = trino_rows(
        s,
        f"SELECT window_start, rank, ad_id, clicks FROM {_t(s, 'serving.top_ads_minute')} WHERE day = ?",
        [minute.date()],
        user=_analyst(serving_data),
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
    with _api(stack) as client:
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
    gold = _t(s, "gold.ad_clicks_daily")
    tables = f"SELECT table_schema, table_name FROM {s.trino_catalog}.information_schema.tables ORDER BY 1, 2"
    before = (trino_rows(s, f"SELECT count(*) FROM {gold}"), trino_rows(s, tables))

    answers = []
    with _api(s) as client:
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
                f"SELECT age_group, max(unique_users) FROM {_t(s, 'serving.audience_daily')} "
                "WHERE day = ? GROUP BY age_group",
                [d1],
                user=_analyst(serving_data),
            ),
        )
    )
    assert len(groups) >= 2, groups  # the users dimension was loaded: several age groups

    above_all = max(groups.values()) + 1
    with _api(s.model_copy(update={"k_anonymity": above_all})) as client:
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
    with _api(s.model_copy(update={"k_anonymity": k})) as client:
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
    with _api(s, live_interval=1.0) as client, client.websocket_connect(url) as ws:
        assert _next_minutes(ws, errors)["minutes"] == []  # a new ad: nothing yet
        minute, _ = send_clicks(s, ad, LIVE_CLICKS)
        seen = 0
        while seen < LIVE_CLICKS:
            message = _next_minutes(ws, errors)
            seen = sum(m["clicks"] + m["fraud_clicks"] for m in message["minutes"])
    assert seen == LIVE_CLICKS
    assert [(_instant(m["window_start"]), m["is_final"]) for m in message["minutes"]] == [(minute, False)]
