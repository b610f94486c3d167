"""The ingestion API's Prometheus metrics, served at ``GET /metrics`` (no API key, no rate limit).

Reads, at scrape time, the counters the :class:`ingestion.ingestor.Ingestor` keeps for
``/v1/health`` (events accepted, duplicate, rejected, spooled; 503 answers), its spool's depth and
its Kafka circuit breaker, so the hot path gains no instrumentation of its own; per request it
records the HTTP series of :mod:`adclick.http_metrics` and the time :func:`ingestion.producer.deliver`
waited for Kafka's acknowledgements. Writes into the app's own registry (``app.state.metrics``).
The names, types and labels are listed in docs/operations.md ("Metrics").
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Receive, Scope, Send

from adclick.http_metrics import HttpMetrics, HttpMetricsMiddleware, metrics_router
from ingestion.ingestor import Ingestor
from ingestion.producer import DELIVERY_OBSERVER

PREFIX = "adclick_ingest"
# The API promises 202 in well under 100 ms: fine buckets up to there, coarse ones up to 1 s.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0)
# Acks take milliseconds when Kafka is healthy and up to produce_timeout_seconds (5 s) when not.
DELIVERY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# ingestor.stats key -> (metric name without _total, help)
_COUNTERS = {
    "accepted": ("events_accepted", "Events made durable (acknowledged by Kafka or spooled)."),
    "duplicates": ("events_duplicate", "Events answered 'duplicate' by the duplicate hint (not stored)."),
    "rejected": ("events_rejected", "Events refused one by one (the contract; a batch's unparseable line)."),
    "spooled": ("events_spooled", "Accepted events written to the local spool because Kafka did not ack."),
    "unavailable": ("unavailable_responses", "Requests answered 503: neither Kafka nor the spool took them."),
}


class IngestorCollector(Collector):
    """The ingestor's own counters and state, read when Prometheus scrapes."""

    def __init__(self, ingestor: Ingestor) -> None:
        self.ingestor = ingestor

    def collect(self) -> Iterator[Metric]:
        stats = dict(self.ingestor.stats)  # a copy: requests go on updating it meanwhile
        for key, (name, doc) in _COUNTERS.items():
            yield CounterMetricFamily(f"{PREFIX}_{name}", doc, value=stats.get(key, 0))
        depth = self.ingestor.spool.depth()
        yield GaugeMetricFamily(f"{PREFIX}_spool_events", "Events waiting in the spool.", value=depth.events)
        yield GaugeMetricFamily(
            f"{PREFIX}_spool_bytes", "Bytes the spool's segments hold.", value=depth.bytes
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_spool_max_bytes", "The spool's cap (full: 503).", value=depth.max_bytes
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_kafka_up",
            "1 while requests produce to Kafka, 0 while they spool (the circuit breaker is open).",
            value=1 if self.ingestor.state.up else 0,
        )


class _DeliveryTimer:
    """Points :data:`ingestion.producer.DELIVERY_OBSERVER` at this app's histogram for each request."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    def observe(self, seconds: float, acknowledged: bool) -> None:
        self.histogram.labels("acked" if acknowledged else "failed").observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = DELIVERY_OBSERVER.set(self.observe)
        try:
            await self.app(scope, receive, send)
        finally:
            DELIVERY_OBSERVER.reset(token)


def install(app: FastAPI, ingestor: Ingestor) -> CollectorRegistry:
    """Add ``/metrics`` and the request instrumentation to ``app``; the app's registry."""
    registry = CollectorRegistry()
    registry.register(IngestorCollector(ingestor))
    delivery = Histogram(
        f"{PREFIX}_kafka_delivery_seconds",
        "Time a request waited for Kafka to acknowledge its records (all of them, or the timeout), "
        "by outcome: acked (every record) or failed (some were not, and went to the spool).",
        ("outcome",),
        buckets=DELIVERY_BUCKETS,
        registry=registry,
    )
    app.add_middleware(_DeliveryTimer, histogram=delivery)
    app.add_middleware(HttpMetricsMiddleware, metrics=HttpMetrics(registry, PREFIX, REQUEST_BUCKETS))
    app.include_router(metrics_router(registry))
    app.state.metrics = registry
    return registry
