"""``GET /v1/reports``: metrics grouped by dimensions over days, as JSON, CSV or Parquet (streamed).

Reads ``serving.ad_clicks_daily``, or ``serving.audience_daily`` when the report groups or filters
by ``age_group`` or ``segment``; then the groups with fewer than ``settings.k_anonymity`` distinct
users are hidden, and how many were is said (``k_anonymity`` in JSON, ``X-K-Anonymity-*`` headers
in every format). At most ``limit`` rows; ``X-Truncated: true`` when more matched.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from query_api.context import Ctx, cache_header
from query_api.errors import ERRORS
from query_api.formats import CSV, JSON, PARQUET, iter_bytes, iter_csv, iter_json, parquet_bytes
from query_api.params import ReportParams
from query_api.parsing import parse_filters, parse_names
from query_api.queries import (
    AUDIENCE_DIMENSIONS,
    AUDIENCE_FILTERS,
    CLICK_DIMENSIONS,
    CLICK_FILTERS,
    K_USERS_COLUMN,
    METRICS,
    report_query,
)
from query_api.timerange import time_range

router = APIRouter()

_DIMENSIONS = tuple(dict.fromkeys(CLICK_DIMENSIONS + AUDIENCE_DIMENSIONS))
_FILTERS = tuple(dict.fromkeys(CLICK_FILTERS + AUDIENCE_FILTERS))


@router.get(
    "/v1/reports",
    response_model=None,
    responses={
        **ERRORS,
        200: {
            "description": "JSON {columns, rows, row_count, truncated, k_anonymity}, CSV or Parquet.",
            "content": {JSON: {}, "text/csv": {}, PARQUET: {}},
        },
    },
    summary="Metrics grouped by dimensions over days (JSON, CSV or Parquet)",
    description=f"dimensions: {', '.join(_DIMENSIONS)}. "
    f"metrics: {', '.join(METRICS)}. Ratios are recomputed from the summed counts; unique_users "
    "is the largest single row's count (a lower bound for a group of several rows). Every row "
    "carries is_final (all its days final). With age_group or segment (as a dimension or filter) "
    "the report reads serving.audience_daily (no country/device_type) and hides the groups with "
    "fewer than k distinct users (k_anonymity in JSON; X-K-Anonymity-K and "
    "X-K-Anonymity-Suppressed headers). X-Truncated: true when more than `limit` rows matched.",
)
async def report(params: Annotated[ReportParams, Query()], ctx: Ctx) -> Response:
    dims = parse_names("dimensions", params.dimensions, _DIMENSIONS, default="day")
    mets = parse_names("metrics", params.metrics, tuple(METRICS), default="clicks")
    filters = parse_filters(params.filters(), _FILTERS)
    rng = time_range("day", ctx.now(), start=params.from_, end=params.to, default=timedelta(days=7))
    limit = params.limit
    plan = report_query(ctx.views, dims, mets, rng, filters, limit=limit + 1)
    result, hit = await ctx.fetch(plan.query)
    columns = list(result.columns)
    rows = list(result.rows)
    truncated = len(rows) > limit
    rows = rows[:limit]
    headers = cache_header(hit)
    k_info: dict[str, Any] | None = None
    if plan.demographic:
        k = ctx.settings.k_anonymity
        at = columns.index(K_USERS_COLUMN)
        kept = [r for r in rows if r[at] is not None and r[at] >= k]
        k_info = {"k": k, "suppressed_rows": len(rows) - len(kept)}
        rows = [tuple(v for i, v in enumerate(r) if i != at) for r in kept]
        columns.pop(at)
        headers["X-K-Anonymity-K"] = str(k)
        headers["X-K-Anonymity-Suppressed"] = str(k_info["suppressed_rows"])
    if truncated:
        headers["X-Truncated"] = "true"
    if params.format == "csv":
        headers["Content-Disposition"] = 'attachment; filename="report.csv"'
        return StreamingResponse(iter_csv(columns, rows), media_type=CSV, headers=headers)
    if params.format == "parquet":
        headers["Content-Disposition"] = 'attachment; filename="report.parquet"'
        data = await run_in_threadpool(parquet_bytes, columns, rows)
        return StreamingResponse(iter_bytes(data), media_type=PARQUET, headers=headers)
    meta = {
        "source": f"serving.{plan.source}",
        "from": rng.first_day,
        "to": rng.end_day,
        "row_count": len(rows),
        "truncated": truncated,
        "k_anonymity": k_info,
    }
    return StreamingResponse(iter_json(meta, columns, rows), media_type=JSON, headers=headers)
