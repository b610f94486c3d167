"""``GET /v1/health`` (is Trino reachable, the batch watermark, cache counters, the server's clock,
whether the dashboard's chart library is installed) and ``GET /`` (the live dashboard page,
``query_api/dashboard.html``, read once when the app is built; its script and style are under
``/static/``, its chart library under ``/assets/``).

Health reads ``serving.batch_watermark`` through the executor (never cached); 503 when Trino does
not answer. The page carries a visible note when the chart library is not installed (checked per
request, so installing needs no restart). Neither route refuses unknown query parameters.
"""

from __future__ import annotations

import html

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from query_api import web_assets
from query_api.context import Ctx
from query_api.executor import QueryFailed, QueryUnavailable
from query_api.formats import json_response

router = APIRouter()

ASSETS_NOTE_MARK = "<!--assets-note-->"


@router.get("/v1/health", response_model=None, summary="Is Trino reachable? The batch watermark.")
async def health(ctx: Ctx) -> Response:
    assets = {"installed": web_assets.is_installed(ctx.settings)}
    try:
        token = await run_in_threadpool(ctx.executor.watermark)
    except (QueryUnavailable, QueryFailed) as exc:
        return json_response(
            503,
            {
                "status": "unavailable",
                "now": ctx.now(),
                "trino": {"reachable": False, "error": str(exc)},
                "dashboard_assets": assets,
            },
        )
    day, advanced_at = token if isinstance(token, tuple) and len(token) == 2 else (None, None)
    stats = ctx.cache.stats
    return json_response(
        200,
        {
            "status": "ok",
            "now": ctx.now(),
            "trino": {"reachable": True},
            "batch_watermark": {"day": day, "advanced_at": advanced_at},
            "cache": {"hits": stats.hits, "misses": stats.misses, "invalidations": stats.invalidations},
            "dashboard_assets": assets,
        },
    )


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def index(ctx: Ctx) -> HTMLResponse:
    page = ctx.dashboard
    if not web_assets.is_installed(ctx.settings):
        where = html.escape(str(web_assets.install_dir(ctx.settings)))
        note = (
            '<p class="note" id="assets-note" role="alert">Charts unavailable: the chart library '
            f"(uPlot) is not installed in {where}; {html.escape(web_assets.INSTALL_HINT)}. "
            "The numbers below still update.</p>"
        )
        page = page.replace(ASSETS_NOTE_MARK, note)
    return HTMLResponse(page)
