"""``GET /v1/ads/{ad_id}/clicks``: one ad's clicks per minute, hour or day.

Reads ``serving.ad_clicks_minute|hourly|daily`` (by granularity); one row per bucket that has data,
oldest first. Per-minute results are live (cached ``live_interval`` seconds only).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from query_api.context import Ctx, cache_header
from query_api.errors import ERRORS
from query_api.formats import json_response
from query_api.params import SeriesParams
from query_api.parsing import check_value, parse_filters
from query_api.queries import SERIES_FILTERS, ad_clicks_query
from query_api.timerange import time_range

router = APIRouter()

_DEFAULT_RANGE = {"minute": timedelta(minutes=60), "hour": timedelta(hours=24), "day": timedelta(days=30)}


@router.get(
    "/v1/ads/{ad_id}/clicks",
    response_model=None,
    responses=ERRORS,
    summary="One ad's clicks per minute, hour or day",
    description="Series of buckets that have data, oldest first: impressions, clicks (non-fraud), "
    "fraud_clicks, conversions, is_final. Default range: the last 60 minutes / 24 hours / 30 days. "
    "`minutes` is an alternative to `from` (from = to - minutes). An unknown ad gives an empty series.",
)
async def ad_clicks(ad_id: str, params: Annotated[SeriesParams, Query()], ctx: Ctx) -> Response:
    check_value("ad_id", ad_id)
    granularity = params.granularity
    rng = time_range(
        granularity,
        ctx.now(),
        start=params.from_,
        end=params.to,
        default=_DEFAULT_RANGE[granularity],
        minutes=params.minutes,
    )
    filters = parse_filters(params.filters(), SERIES_FILTERS)
    result, hit = await ctx.fetch(
        ad_clicks_query(ctx.views, ad_id, rng, filters), live=granularity == "minute"
    )
    body = {
        "ad_id": ad_id,
        "granularity": granularity,
        "from": rng.start,
        "to": rng.end,
        "series": result.records(),
    }
    return json_response(200, body, cache_header(hit))
