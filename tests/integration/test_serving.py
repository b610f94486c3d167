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

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from trino.exceptions import TrinoUserError

if TYPE_CHECKING:
    from serving_data import ServingData

from serving_checks import (
    analyst,
    compare,
    grouped,
    live_from,
    tbl,
    trino_rows,
)

pytestmark = pytest.mark.integration
# The shared data fixture, registered as a plugin (not imported here, so pytest can still rewrite
# its asserts): tests/integration is on sys.path as the directory of this module and its conftest.
pytest_plugins = ("serving_data",)

# --- the lambda views --------------------------------------------------------------------------


def test_daily_rows_up_to_the_watermark_are_final_and_equal_gold(serving_data: ServingData) -> None:
    s, w = serving_data.settings, serving_data.watermark
    served = grouped(tbl(s, "serving.ad_clicks_daily"), "day", "day <= ?")
    gold = grouped(tbl(s, "gold.ad_clicks_daily"), "day", "day <= ?")
    result = compare(s, served, gold, [w, w])
    assert result["keys"] > 0
    assert (result["only_left"], result["only_right"], result["different"]) == (0, 0, 0), result

    sql = (
        f"SELECT count(*) FILTER (WHERE NOT is_final), count(*) FILTER (WHERE day = ?) "
        f"FROM {tbl(s, 'serving.ad_clicks_daily')} WHERE day <= ?"
    )
    not_final, d1_rows = trino_rows(s, sql, [serving_data.d1, w])[0]
    assert not_final == 0
    assert d1_rows > 0  # the fixture's D1 traffic is served final


def test_daily_rows_after_the_watermark_are_live_and_equal_speed(serving_data: ServingData) -> None:
    s, w = serving_data.settings, serving_data.watermark
    served = grouped(tbl(s, "serving.ad_clicks_daily"), "day", "day > ?")
    speed = grouped(tbl(s, "speed.ad_clicks_minute"), "window_date", "window_date > ?")
    result = compare(s, served, speed, [w, w])
    assert (result["only_left"], result["only_right"], result["different"]) == (0, 0, 0), result

    sql = (
        "SELECT count(*) FILTER (WHERE is_final), coalesce(sum(clicks) FILTER (WHERE ad_id = ?), 0) "
        f"FROM {tbl(s, 'serving.ad_clicks_daily')} WHERE day > ?"
    )
    final, marker = trino_rows(s, sql, [serving_data.marker_ad, w])[0]
    assert final == 0
    assert marker == serving_data.marker_clicks  # today's clicks are served before any batch


def test_daily_view_switches_from_final_to_live_after_the_watermark_without_a_gap(
    serving_data: ServingData,
) -> None:
    s, w = serving_data.settings, serving_data.watermark
    daily = tbl(s, "serving.ad_clicks_daily")
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

    gold_days = trino_rows(
        s, f"SELECT DISTINCT day FROM {tbl(s, 'gold.ad_clicks_daily')} WHERE day <= ?", [w]
    )
    speed_days = trino_rows(
        s,
        f"SELECT DISTINCT window_date FROM {tbl(s, 'speed.ad_clicks_minute')} WHERE window_date > ?",
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
    served = tbl(s, f"serving.{view}")
    boundary = live_from(w)

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

    live = grouped(served, "window_start", "day > ?")
    speed = grouped(tbl(s, "speed.ad_clicks_minute"), bucket, "window_date > ?")
    result = compare(s, live, speed, [w, w])
    assert result["keys"] > 0
    assert (result["only_left"], result["only_right"], result["different"]) == (0, 0, 0), result

    if view == "ad_clicks_hourly":
        final = grouped(served, "window_start", "day <= ?")
        gold = grouped(tbl(s, "gold.ad_clicks_hourly"), "window_start", "day <= ?")
        result = compare(s, final, gold, [w, w])
        assert (result["only_left"], result["only_right"], result["different"]) == (0, 0, 0), result


def test_final_minutes_of_d1_roll_up_to_gold_hourly(serving_data: ServingData) -> None:
    """The final minutes are counted from silver by the view itself: summed per hour they must be
    gold's hourly rows of the same day (same rows, same rules)."""
    s, d1 = serving_data.settings, serving_data.d1
    minutes = grouped(tbl(s, "serving.ad_clicks_minute"), "date_trunc('hour', window_start)", "day = ?")
    hours = grouped(tbl(s, "gold.ad_clicks_hourly"), "window_start", "day = ?")
    result = compare(s, minutes, hours, [d1, d1])
    assert result["keys"] > 0
    assert (result["only_left"], result["only_right"], result["different"]) == (0, 0, 0), result


def test_top_ads_minute_ranks_todays_minutes(serving_data: ServingData) -> None:
    s = serving_data.settings
    rows = trino_rows(
        s,
        f"SELECT window_start, rank, ad_id, clicks FROM {tbl(s, 'serving.top_ads_minute')} "
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
    count = trino_rows(s, f"SELECT count(*) FROM {tbl(s, name)}", user=analyst(serving_data))[0][0]
    assert count > 0


@pytest.mark.parametrize(
    "name", ["bronze.events", "silver.events", "speed.ad_clicks_minute", "ops.batch_watermark"]
)
def test_analyst_is_refused_the_layers_below(serving_data: ServingData, name: str) -> None:
    s = serving_data.settings
    with pytest.raises(TrinoUserError) as refused:
        trino_rows(s, f"SELECT count(*) FROM {tbl(s, name)}", user=analyst(serving_data))
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
