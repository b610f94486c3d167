"""``GET /v1/ads/top``: the top ads by non-fraud clicks over the last complete minute(s).

Reads ``serving.ad_clicks_minute`` over 1, 5 or 60 complete minutes ending at the current minute's
start; ranked with SQL RANK() (ties share a rank). Live: cached ``live_interval`` seconds only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from query_api.context import Ctx, cache_header
from query_api.errors import ERRORS
from query_api.formats import json_response
from query_api.params import TopParams
from query_api.parsing import parse_filters
from query_api.queries import TOP_FILTERS, top_ads_query
from query_api.timerange import Range, floor_to

router = APIRouter()

_WINDOWS = {"1m": timedelta(minutes=1), "5m": timedelta(minutes=5), "1h": timedelta(hours=1)}


@router.get(
    "/v1/ads/top",
    response_model=None,
    responses=ERRORS,
    summary="Top ads by non-fraud clicks over the last complete minute(s)",
    description="window=1m|5m|1h of complete minutes ending at the current minute's start. Ranked "
    "with SQL RANK(): tied ads share a rank and every ad ranked <= n is listed (so possibly more "
    "than n).",
)
async def top_ads(params: Annotated[TopParams, Query()], ctx: Ctx) -> Response:
    end = floor_to(ctx.now(), "minute")
    rng = Range(end - _WINDOWS[params.window], end, "minute")
    filters = parse_filters(params.filters(), TOP_FILTERS)
    result, hit = await ctx.fetch(top_ads_query(ctx.views, rng, params.n, filters), live=True)
    body = {"window": params.window, "from": rng.start, "to": rng.end, "n": params.n, "ads": result.records()}
    return json_response(200, body, cache_header(hit))
