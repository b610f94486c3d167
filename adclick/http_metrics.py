"""HTTP metrics shared by the two APIs, and their ``GET /metrics`` answer (Prometheus text format).

Writes into the app's own :class:`prometheus_client.CollectorRegistry` (one per app, never the
process-wide default, so two apps in one process, as in the tests, keep separate series):

* ``<prefix>_http_requests_total{route, method, status}``: requests answered;
* ``<prefix>_http_request_duration_seconds{route, method}``: from the request's arrival at the app
  until its last body byte was handed to the server;
* ``<prefix>_websocket_clients{route}``: WebSockets accepted and not closed yet.

``route`` is the matched route's template (``/v1/c/{token}``, never the raw path, so the label has
a bounded set of values); a request no route matches is ``unmatched``. Scrapes of ``/metrics`` are
not counted: the series describe the traffic, and Prometheus' own ``up`` says whether scrapes work.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import choose_encoder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METRICS_PATH = "/metrics"
UNMATCHED = "unmatched"


class HttpMetrics:
    """The request and WebSocket series of one app, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry, prefix: str, buckets: Sequence[float]) -> None:
        # No ``*_created`` sample per series: Prometheus would store each as one more series.
        disable_created_metrics()
        self.requests = Counter(
            f"{prefix}_http_requests",
            "HTTP requests answered, by route template, method and status code.",
            ("route", "method", "status"),
            registry=registry,
        )
        self.duration = Histogram(
            f"{prefix}_http_request_duration_seconds",
            "Time from a request's arrival until its response was sent, by route template and method.",
            ("route", "method"),
            buckets=tuple(buckets),
            registry=registry,
        )
        self.websockets = Gauge(
            f"{prefix}_websocket_clients",
            "WebSocket clients connected (accepted, not closed yet), by route template.",
            ("route",),
            registry=registry,
        )


def _route(scope: Scope) -> str:
    # The router writes the matched route into the (shared) scope before calling the endpoint.
    return getattr(scope.get("route"), "path", None) or UNMATCHED


class HttpMetricsMiddleware:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer streamed bodies and cost more)."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != METRICS_PATH:
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500  # an exception no handler answered becomes a 500 outside this middleware

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route, method = _route(scope), scope["method"]
            self.metrics.duration.labels(route, method).observe(time.perf_counter() - started)
            self.metrics.requests.labels(route, method, str(status)).inc()

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        gauge = None

        async def send_accept(message: Message) -> None:
            nonlocal gauge
            await send(message)
            if message["type"] == "websocket.accept" and gauge is None:
                gauge = self.metrics.websockets.labels(_route(scope))
                gauge.inc()

        try:
            await self.app(scope, receive, send_accept)
        finally:
            if gauge is not None:
                gauge.dec()


def metrics_router(registry: CollectorRegistry) -> APIRouter:
    """``GET /metrics``: ``registry`` in the format the scraper asks for (Prometheus text by
    default, OpenMetrics when its ``Accept`` header prefers it). Not in the OpenAPI schema."""
    router = APIRouter()

    @router.get(METRICS_PATH, include_in_schema=False)
    async def metrics(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept"))
        return Response(encoder(registry), media_type=content_type)

    return router
