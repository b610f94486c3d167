"""The query HTTP API (FastAPI): real-time and historical ad-click metrics over Trino.

Reads the ``serving`` views (``ad_clicks_minute|hourly|daily``, ``audience_daily``,
``experiments_daily``, ``batch_watermark``, ``reconciliation_latest``, ``job_runs_latest``) through
an :class:`query_api.executor.Executor`, as Trino's analyst user; writes nothing. Rows are the
views' lambda merge: ``is_final`` true for days up to the batch watermark (exact, gold), false
after it (the speed layer's running counts). It also serves the dashboard page with its files
(:mod:`query_api.routes.static`) and reports pipeline health from the stream heartbeat and
Airflow (:mod:`query_api.pipeline_probes`).

:func:`create_app` builds the shared :class:`query_api.context.Context`, installs the error
handlers (:mod:`query_api.errors`), includes the routes (:mod:`query_api.routes`, one module per
resource) and the Prometheus metrics (:mod:`query_api.metrics`). Each endpoint takes its query
parameters as one model (:mod:`query_api.params`, unknown names refused), runs one statement
(:mod:`query_api.queries`: values bound as parameters) through the
:class:`query_api.cache.QueryCache` (the ``X-Cache: hit|miss`` header says which) in a worker
thread, and shapes the answer (:mod:`query_api.formats`). Errors: 400 ``{"error", "parameter",
"reason"}`` for a bad parameter, 503 when Trino or a view is not there (yet), 500 when Trino fails
the statement. An unknown ad or experiment is an empty answer, not 404.

Privacy: a report that groups or filters by ``age_group`` or ``segment`` hides the groups with
fewer than ``settings.k_anonymity`` distinct users and says how many it hid (``k_anonymity`` in
JSON, ``X-K-Anonymity-*`` headers in every format).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from adclick.settings import Settings
from query_api import queries as q
from query_api.cache import QueryCache
from query_api.context import Context
from query_api.errors import install_error_handlers
from query_api.executor import Executor, Result, TrinoExecutor
from query_api.metrics import QueryMetrics
from query_api.metrics import install as install_metrics
from query_api.params import TIME_DOC
from query_api.pipeline_probes import Probes, default_probes
from query_api.routes import ROUTERS
from query_api.routes.static import mount_static


def create_app(
    settings: Settings,
    executor: Executor | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    monotonic: Callable[[], float] | None = None,
    live_interval: float = 2.0,
    probes: Probes | None = None,
) -> FastAPI:
    """The query API. ``executor`` defaults to :class:`query_api.executor.TrinoExecutor`; ``clock``
    (aware UTC now) to the wall clock; ``monotonic`` (the cache's clock) to ``time.monotonic``.
    ``live_interval``: seconds between two looks at the latest minutes (WebSocket, and the cache
    lifetime of per-minute results). ``probes``: the stream heartbeat and Airflow for
    ``/v1/pipeline`` (default: the real ones, :func:`query_api.pipeline_probes.default_probes`).
    ``app.state.cache`` holds the result cache, ``app.state.executor`` the executor,
    ``app.state.settings`` the settings, ``app.state.context`` all that the routes share (its
    executor times each statement) and ``app.state.metrics`` the Prometheus registry served at
    ``/metrics`` (:mod:`query_api.metrics`).
    """
    executor = executor if executor is not None else TrinoExecutor(settings)
    metrics = QueryMetrics(CollectorRegistry())
    timed = metrics.timed(executor)  # what the routes and the cache run statements through
    cache: QueryCache[Result] = QueryCache(
        settings.query_cache_ttl_seconds, timed.watermark, clock=monotonic or time.monotonic
    )
    context = Context(
        settings=settings,
        executor=timed,
        cache=cache,
        views=q.Views(settings.trino_catalog),
        now=clock or (lambda: datetime.now(tz=UTC)),
        live_interval=live_interval,
        dashboard=resources.files("query_api").joinpath("dashboard.html").read_text(encoding="utf-8"),
        probes=probes if probes is not None else default_probes(settings),
    )
    app = FastAPI(
        title="adclick query API",
        version="1",
        description="Ad-click metrics over Trino's serving views: per-ad series, top ads, reports "
        "(JSON, CSV, Parquet), trends, funnel, A/B tests, live minutes over a WebSocket, pipeline "
        "health. Rows up to the batch watermark are exact (is_final true); later rows are the speed "
        "layer's running counts. "
        f"Times: {TIME_DOC} A bucket is served when it overlaps [from, to).",
        redirect_slashes=False,
    )
    app.state.context = context
    app.state.settings = settings
    app.state.executor = executor
    app.state.cache = cache
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    install_metrics(app, metrics, cache)
    mount_static(app, settings)
    return app
