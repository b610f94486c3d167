"""``GET /v1/ads/top``: the top ads by non-fraud clicks over the last complete minute(s).

Reads ``serving.ad_clicks_minute`` over 1, 5 or 60 complete minutes ending at the current minute's
start; ranked with SQL RANK() (ties share a rank). Live: cached ``live_interval`` seconds only.
With ``fallback=latest_minute`` and no clicks in the window, it also finds the latest minute with
clicks in the ``FALLBACK_LOOKBACK`` before the window and ranks that minute (``fallback``), so a
quiet spell shows the last real ranking, labelled, instead of nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from query_api.context import Context, Ctx, cache_header
from query_api.errors import ERRORS
from query_api.formats import json_response
from query_api.params import TopParams
from query_api.parsing import parse_filters
from query_api.queries import TOP_FILTERS, latest_click_minute_query, top_ads_query
from query_api.timerange import Range, floor_to

router = APIRouter()

_WINDOWS = {"1m": timedelta(minutes=1), "5m": timedelta(minutes=5), "1h": timedelta(hours=1)}
FALLBACK_LOOKBACK = timedelta(hours=24)


@router.get(
    "/v1/ads/top",
    response_model=None,
    responses=ERRORS,
    summary="Top ads by non-fraud clicks over the last complete minute(s)",
    description="window=1m|5m|1h of complete minutes ending at the current minute's start. Ranked "
    "with SQL RANK(): tied ads share a rank and every ad ranked <= n is listed (so possibly more "
    "than n). fallback=latest_minute: when the window has no clicks, 'fallback' ranks the latest "
    "minute with clicks in the 24 hours before the window ({from, to, ads}; null when none).",
)
async def top_ads(params: Annotated[TopParams, Query()], ctx: Ctx) -> Response:
    end = floor_to(ctx.now(), "minute")
    rng = Range(end - _WINDOWS[params.window], end, "minute")
    filters = parse_filters(params.filters(), TOP_FILTERS)
    result, hit = await ctx.fetch(top_ads_query(ctx.views, rng, params.n, filters), live=True)
    ads = result.records()
    body: dict[str, Any] = {
        "window": params.window,
        "from": rng.start,
        "to": rng.end,
        "n": params.n,
        "ads": ads,
    }
    if params.fallback is not None:
        body["fallback"] = None if ads else await _latest_minute(ctx, rng, params.n, filters)
    return json_response(200, body, cache_header(hit))


async def _latest_minute(
    ctx: Context, rng: Range, n: int, filters: dict[str, list[str]]
) -> dict[str, Any] | None:
    """The ranking of the latest minute with clicks before ``rng`` (within the lookback), or None."""
    before = Range(rng.start - FALLBACK_LOOKBACK, rng.start, "minute")
    # Not live: a newer minute with clicks would fall in the window itself, so this answer keeps
    # until the window's end moves (a new cache key) or the normal TTL runs out.
    found, _ = await ctx.fetch(latest_click_minute_query(ctx.views, before, filters))
    minute = found.rows[0][0] if found.rows else None
    if minute is None:
        return None
    if isinstance(minute, datetime):
        minute = minute.astimezone(UTC)
    one = Range(minute, minute + timedelta(minutes=1), "minute")
    result, _ = await ctx.fetch(top_ads_query(ctx.views, one, n, filters))
    return {"from": one.start, "to": one.end, "ads": result.records()}
