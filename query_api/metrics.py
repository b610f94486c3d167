"""The query API's Prometheus metrics, served at ``GET /metrics`` (not in the OpenAPI schema).

Records per request the HTTP series of :mod:`adclick.http_metrics` (and the WebSocket clients of
``/v1/live``); per Trino statement its time and, when it fails, why (:class:`TimedExecutor` wraps the
app's executor); reads at scrape time the result cache's hit, miss and invalidation counters
(:class:`query_api.cache.QueryCache`). Writes into the app's own registry (``app.state.metrics``).
The names, types and labels are listed in docs/operations.md ("Metrics").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any, TypeVar

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from adclick.http_metrics import HttpMetrics, HttpMetricsMiddleware, metrics_router
from query_api.cache import QueryCache
from query_api.executor import Executor, QueryFailed, QueryUnavailable, Result

PREFIX = "adclick_query"
# Cached answers take milliseconds, Trino statements tens of milliseconds to seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

T = TypeVar("T")


class QueryMetrics:
    """The query API's own series (the HTTP ones are in :attr:`http`), in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.http = HttpMetrics(registry, PREFIX, BUCKETS)
        self.statement_seconds = Histogram(
            f"{PREFIX}_trino_statement_seconds",
            "Time of one Trino statement, failed ones included, by kind: query (an endpoint's "
            "statement, on a cache miss) or watermark (the batch watermark: cache check, health).",
            ("kind",),
            buckets=BUCKETS,
            registry=registry,
        )
        self.statement_failures = Counter(
            f"{PREFIX}_trino_statement_failures",
            "Trino statements that failed, by kind and reason: unavailable (Trino unreachable or a "
            "serving view missing: 503), failed (Trino refused the statement: 500), error (anything else).",
            ("kind", "reason"),
            registry=registry,
        )

    def timed(self, executor: Executor) -> TimedExecutor:
        return TimedExecutor(executor, self)


class TimedExecutor:
    """An :class:`query_api.executor.Executor` that times every statement of the one it wraps."""

    def __init__(self, inner: Executor, metrics: QueryMetrics) -> None:
        self.inner = inner
        self.metrics = metrics

    def _timed(self, kind: str, call: Callable[..., T], *args: Any) -> T:
        started = time.perf_counter()
        try:
            return call(*args)
        except QueryUnavailable:
            self.metrics.statement_failures.labels(kind, "unavailable").inc()
            raise
        except QueryFailed:
            self.metrics.statement_failures.labels(kind, "failed").inc()
            raise
        except Exception:
            self.metrics.statement_failures.labels(kind, "error").inc()
            raise
        finally:
            self.metrics.statement_seconds.labels(kind).observe(time.perf_counter() - started)

    def run(self, sql: str, params: Sequence[Any]) -> Result:
        return self._timed("query", self.inner.run, sql, params)

    def watermark(self) -> Hashable:
        return self._timed("watermark", self.inner.watermark)


class CacheCollector(Collector):
    """The result cache's counters, read when Prometheus scrapes."""

    def __init__(self, cache: QueryCache[Any]) -> None:
        self.cache = cache

    def collect(self) -> Iterator[Metric]:
        stats = self.cache.stats
        yield CounterMetricFamily(
            f"{PREFIX}_cache_hits", "Statements answered from the result cache.", value=stats.hits
        )
        yield CounterMetricFamily(
            f"{PREFIX}_cache_misses",
            "Statements the result cache did not hold (run on Trino).",
            value=stats.misses,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_cache_invalidations",
            "Times the result cache was emptied because the batch watermark moved.",
            value=stats.invalidations,
        )


def install(app: FastAPI, metrics: QueryMetrics, cache: QueryCache[Any]) -> None:
    """Add ``/metrics``, the request instrumentation and ``cache``'s counters to ``app``."""
    metrics.registry.register(CacheCollector(cache))
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics.http)
    app.include_router(metrics_router(metrics.registry))
    app.state.metrics = metrics.registry
