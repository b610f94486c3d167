"""``GET /v1/health`` (is Trino reachable, the batch watermark, cache counters) and ``GET /`` (the
live dashboard page, ``query_api/dashboard.html``, read once when the app is built).

Health reads ``serving.batch_watermark`` through the executor (never cached); 503 when Trino does
not answer. Neither route refuses unknown query parameters.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from query_api.context import Ctx
from query_api.executor import QueryFailed, QueryUnavailable
from query_api.formats import json_response

router = APIRouter()


@router.get("/v1/health", response_model=None, summary="Is Trino reachable? The batch watermark.")
async def health(ctx: Ctx) -> Response:
    try:
        token = await run_in_threadpool(ctx.executor.watermark)
    except (QueryUnavailable, QueryFailed) as exc:
        return json_response(503, {"status": "unavailable", "trino": {"reachable": False, "error": str(exc)}})
    day, advanced_at = token if isinstance(token, tuple) and len(token) == 2 else (None, None)
    stats = ctx.cache.stats
    return json_response(
        200,
        {
            "status": "ok",
            "trino": {"reachable": True},
            "batch_watermark": {"day": day, "advanced_at": advanced_at},
            "cache": {"hits": stats.hits, "misses": stats.misses, "invalidations": stats.invalidations},
        },
    )


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def index(ctx: Ctx) -> HTMLResponse:
    return HTMLResponse(ctx.dashboard)
