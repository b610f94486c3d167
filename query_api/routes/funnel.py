"""``GET /v1/funnel``: impressions -> clicks -> conversions over days, with the step rates.

Reads ``serving.ad_clicks_daily`` (one aggregate row over the range). Clicks are non-fraud clicks;
the fraud clicks are given beside the steps.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from query_api.context import Ctx, cache_header
from query_api.errors import ERRORS
from query_api.formats import json_response
from query_api.params import FunnelParams
from query_api.parsing import parse_filters
from query_api.queries import CLICK_FILTERS, funnel_query
from query_api.timerange import time_range

router = APIRouter()


@router.get(
    "/v1/funnel",
    response_model=None,
    responses=ERRORS,
    summary="Impressions -> clicks -> conversions over days, with step rates",
    description="Clicks are non-fraud clicks. rate_from_previous = step / previous step, "
    "rate_from_first = step / impressions (null when the denominator is 0). Default range: -7d.",
)
async def funnel(params: Annotated[FunnelParams, Query()], ctx: Ctx) -> Response:
    rng = time_range("day", ctx.now(), start=params.from_, end=params.to, default=timedelta(days=7))
    filters = parse_filters(params.filters(), CLICK_FILTERS)
    result, hit = await ctx.fetch(funnel_query(ctx.views, rng, filters))
    row = result.records()[0] if result.rows else {}
    counts = [(name, int(row.get(name) or 0)) for name in ("impressions", "clicks", "conversions")]
    steps = []
    for i, (name, count) in enumerate(counts):
        prev = counts[i - 1][1] if i else None
        first = counts[0][1]
        steps.append(
            {
                "step": name,
                "count": count,
                "rate_from_previous": (count / prev) if prev else None,
                "rate_from_first": (count / first) if first else None,
            }
        )
    body = {
        "from": rng.first_day,
        "to": rng.end_day,
        "is_final": row.get("is_final"),
        "fraud_clicks": int(row.get("fraud_clicks") or 0),
        "steps": steps,
    }
    return json_response(200, body, cache_header(hit))
