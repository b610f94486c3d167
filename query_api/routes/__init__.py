"""The query API's routes, one module per resource; :data:`ROUTERS` is what the app includes.

:mod:`~query_api.routes.ads` (one ad's clicks per minute, hour or day), :mod:`~query_api.routes.top`
(top ads), :mod:`~query_api.routes.reports` (grouped metrics as JSON, CSV or Parquet),
:mod:`~query_api.routes.trends`, :mod:`~query_api.routes.funnel`,
:mod:`~query_api.routes.experiments` (A/B tests), :mod:`~query_api.routes.live` (the WebSocket of
the latest minutes), :mod:`~query_api.routes.pipeline` (pipeline health) and
:mod:`~query_api.routes.health` (health and the dashboard page). Each route reads the serving views
through the shared :class:`query_api.context.Context`. :mod:`~query_api.routes.static` mounts the
dashboard's own files and its installed chart library (mounts, not a router).
"""

from __future__ import annotations

from fastapi import APIRouter

from query_api.routes import ads, experiments, funnel, health, live, pipeline, reports, top, trends

# The order of the OpenAPI page.
ROUTERS: tuple[APIRouter, ...] = (
    ads.router,
    top.router,
    reports.router,
    trends.router,
    funnel.router,
    experiments.router,
    live.router,
    pipeline.router,
    health.router,
)
