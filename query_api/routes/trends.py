"""``GET /v1/trends``: one metric per hour or day, optionally beside the previous period.

Reads ``serving.ad_clicks_hourly`` or ``serving.ad_clicks_daily``; every bucket of the range is
listed (counts 0, ratios null where there is no data). With ``compare=previous_period`` both
periods are read in one statement and paired bucket by bucket.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from query_api.context import Ctx, cache_header
from query_api.errors import ERRORS
from query_api.formats import json_response
from query_api.params import TrendParams
from query_api.parsing import BadParameter, parse_filters
from query_api.queries import ADDITIVE_METRICS, CLICK_FILTERS, METRICS, trend_query
from query_api.timerange import Range, time_range

router = APIRouter()


@router.get(
    "/v1/trends",
    response_model=None,
    responses=ERRORS,
    summary="A metric per hour or day, optionally beside the previous period",
    description=f"metric: {', '.join(METRICS)}. Every bucket of the range is listed (counts 0, "
    "ratios null where there is no data). compare=previous_period adds, per bucket, the bucket at "
    "the same offset in the equally long period just before (previous_t, previous_value) and "
    "change = value / previous_value - 1.",
)
async def trends(params: Annotated[TrendParams, Query()], ctx: Ctx) -> Response:
    metric, granularity, compare = params.metric, params.granularity, params.compare
    if metric not in METRICS:
        raise BadParameter("metric", f"unknown metric; allowed: {', '.join(METRICS)}")
    default = timedelta(hours=24) if granularity == "hour" else timedelta(days=30)
    rng = time_range(granularity, ctx.now(), start=params.from_, end=params.to, default=default)
    filters = parse_filters(params.filters(), CLICK_FILTERS)
    queried = Range(rng.previous().start, rng.end, granularity) if compare else rng
    result, hit = await ctx.fetch(trend_query(ctx.views, metric, queried, filters))
    empty = 0 if metric in ADDITIVE_METRICS else None

    def key(moment: datetime) -> datetime | date:
        return moment.date() if granularity == "day" else moment

    found = {_bucket_key(row[0], granularity): (row[1], row[2]) for row in result.rows}
    series = []
    previous = rng.previous().bucket_starts() if compare else None
    for i, start in enumerate(rng.bucket_starts()):
        value, final = found.get(key(start), (empty, None))
        point: dict[str, Any] = {"t": key(start), "value": value, "is_final": final}
        if previous is not None:
            prev_value, _ = found.get(key(previous[i]), (empty, None))
            point["previous_t"] = key(previous[i])
            point["previous_value"] = prev_value
            point["change"] = (
                value / prev_value - 1.0 if value is not None and prev_value not in (None, 0) else None
            )
        series.append(point)
    body = {
        "metric": metric,
        "granularity": granularity,
        "from": key(rng.start),
        "to": key(rng.end),
        "compare": compare,
        "series": series,
    }
    return json_response(200, body, cache_header(hit))


def _bucket_key(value: Any, granularity: str) -> datetime | date:
    if granularity == "day":
        return value.date() if isinstance(value, datetime) else value
    return value.astimezone(UTC) if isinstance(value, datetime) else value
