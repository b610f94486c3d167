"""The stream application's Prometheus metrics, one series per streaming query (label ``query``).

Reads each query's latest ``StreamingQueryProgress`` (as a dict), handed over by the watcher in
:mod:`speed_layer.app` that already polls it for the heartbeat, and, when Prometheus scrapes, the
events topic's end offsets from Kafka (for the lag: records the query has not read yet, as
:func:`adclick.stream_status.lag` counts them). Serves ``/metrics`` with prometheus_client's own
HTTP server on ``settings.bind_host:settings.stream_metrics_port`` (a daemon thread; 0 = off).
The names, types and labels are listed in docs/operations.md ("Metrics").

The per-batch figures are gauges of the latest batch (what Spark reports); the rows dropped by
the watermark are also kept as a counter over every batch since the application started.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from adclick.settings import Settings

log = logging.getLogger(__name__)

PREFIX = "adclick_stream"
_LAG_TIMEOUT_MS = 5_000  # a scrape must not hang on an unreachable broker

# value name (as progress_values returns it) -> help
GAUGES: dict[str, str] = {
    "batch_id": "Id of the latest micro-batch.",
    "last_progress_timestamp_seconds": "When the latest micro-batch started (Unix time).",
    "batch_input_rows": "Rows the latest micro-batch read.",
    "input_rows_per_second": "Rate at which rows arrived, over the latest micro-batch.",
    "processed_rows_per_second": "Rate at which the latest micro-batch processed rows.",
    "batch_duration_seconds": "Time the latest micro-batch took (triggerExecution).",
    "state_rows": "Rows held in state after the latest micro-batch (numRowsTotal over state operators).",
    "batch_rows_dropped_by_watermark": "Rows the latest micro-batch dropped as behind the watermark.",
}


def _epoch_seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def progress_values(progress: Mapping[str, Any]) -> dict[str, float]:
    """The :data:`GAUGES` of one query from its ``StreamingQueryProgress`` (as a dict). A figure
    the progress lacks is left out (state figures exist only for queries with state operators)."""
    values: dict[str, float] = {}
    if progress.get("batchId") is not None:
        values["batch_id"] = float(progress["batchId"])
    if progress.get("timestamp"):
        values["last_progress_timestamp_seconds"] = _epoch_seconds(progress["timestamp"])
    for name, key in (
        ("batch_input_rows", "numInputRows"),
        ("input_rows_per_second", "inputRowsPerSecond"),
        ("processed_rows_per_second", "processedRowsPerSecond"),
    ):
        if progress.get(key) is not None:
            values[name] = float(progress[key])
    trigger_ms = (progress.get("durationMs") or {}).get("triggerExecution")
    if trigger_ms is not None:
        values["batch_duration_seconds"] = trigger_ms / 1000.0
    operators = progress.get("stateOperators") or []
    if operators:
        values["state_rows"] = float(sum(op.get("numRowsTotal") or 0 for op in operators))
        values["batch_rows_dropped_by_watermark"] = float(
            sum(op.get("numRowsDroppedByWatermark") or 0 for op in operators)
        )
    return values


def source_end_offsets(progress: Mapping[str, Any], topic: str) -> dict[str, int] | None:
    """Partition (as text) -> the offset the latest batch read ``topic`` up to; None if no source
    of the progress reads it. Spark gives a Kafka source's ``endOffset`` as JSON text (or a dict)."""
    for source in progress.get("sources") or []:
        end = source.get("endOffset")
        if isinstance(end, str):
            try:
                end = json.loads(end)
            except ValueError:
                continue
        if isinstance(end, dict) and isinstance(end.get(topic), dict):
            return {str(p): int(o) for p, o in end[topic].items()}
    return None


def records_behind(done: Mapping[str, int], topic_ends: Mapping[int, int]) -> int:
    """Records in the topic past what the query read (a partition it never read counts whole)."""
    return sum(max(0, end - int(done.get(str(p), 0))) for p, end in topic_ends.items())


class TopicEnds:
    """The topic's end offset per partition, through one reused consumer with short timeouts."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.settings = settings
        self.topic = topic
        self._consumer: Any = None
        self._lock = threading.Lock()  # a consumer is not thread-safe; scrapes may overlap

    def __call__(self) -> dict[int, int]:
        from kafka import KafkaConsumer, TopicPartition

        with self._lock:
            try:
                if self._consumer is None:
                    self._consumer = KafkaConsumer(
                        bootstrap_servers=self.settings.kafka_bootstrap_servers,
                        client_id="adclick-stream-metrics",
                        enable_auto_commit=False,
                        request_timeout_ms=_LAG_TIMEOUT_MS,
                    )
                partitions = self._consumer.partitions_for_topic(self.topic) or set()
                ends = self._consumer.end_offsets(
                    [TopicPartition(self.topic, p) for p in partitions], timeout_ms=_LAG_TIMEOUT_MS
                )
            except Exception:
                self._close_locked()  # a fresh consumer next time
                raise
        return {tp.partition: offset for tp, offset in ends.items()}

    def _close_locked(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                consumer.close()
            except Exception:
                log.debug("closing the metrics consumer failed", exc_info=True)

    def close(self) -> None:
        with self._lock:
            self._close_locked()


@dataclass
class _Latest:
    active: bool
    values: dict[str, float] = field(default_factory=dict)
    dropped_total: int = 0
    end_offsets: dict[str, int] | None = None


class StreamCollector(Collector):
    """Each query's latest figures (:meth:`update`, from the watcher), rendered when scraped.

    ``topic_ends`` reads the topic's end offsets for the lag (None: no lag series); when it fails
    the scrape goes on without the lag series.
    """

    def __init__(self, topic: str, topic_ends: Callable[[], Mapping[int, int]] | None) -> None:
        self.topic = topic
        self.topic_ends = topic_ends
        self._lock = threading.Lock()
        self._latest: dict[str, _Latest] = {}

    def update(
        self, query: str, *, active: bool, progress: Mapping[str, Any] | None, dropped_total: int
    ) -> None:
        """The query's state after the watcher's latest look; ``dropped_total``: rows its watermark
        dropped over every batch since the application started."""
        progress = progress or {}
        latest = _Latest(
            active, progress_values(progress), dropped_total, source_end_offsets(progress, self.topic)
        )
        with self._lock:
            previous = self._latest.get(query)
            if previous is not None and not progress:  # no batch reported yet: keep what we had
                latest.values, latest.end_offsets = previous.values, previous.end_offsets
            self._latest[query] = latest

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            latest = dict(sorted(self._latest.items()))
        active = GaugeMetricFamily(f"{PREFIX}_query_active", "1 while the query runs.", labels=["query"])
        gauges = {
            name: GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=["query"]) for name, doc in GAUGES.items()
        }
        dropped = CounterMetricFamily(
            f"{PREFIX}_rows_dropped_by_watermark",
            "Rows dropped as behind the watermark, over every batch since the application started.",
            labels=["query"],
        )
        for query, state in latest.items():
            active.add_metric([query], 1 if state.active else 0)
            for name, value in state.values.items():
                gauges[name].add_metric([query], value)
            if "batch_rows_dropped_by_watermark" in state.values:
                dropped.add_metric([query], state.dropped_total)
        yield active
        yield from gauges.values()
        yield dropped
        yield from self._lag(latest)

    def _lag(self, latest: Mapping[str, _Latest]) -> Iterator[Metric]:
        reading = {q: s.end_offsets for q, s in latest.items() if s.end_offsets is not None}
        if self.topic_ends is None or not reading:
            return
        try:
            ends = self.topic_ends()
        except Exception as exc:  # Kafka down: the other series still matter
            log.warning("stream metrics: no Kafka lag (%s)", exc)
            return
        lag = GaugeMetricFamily(
            f"{PREFIX}_kafka_records_behind",
            "Records in the events topic the query has not read yet (topic end offsets now minus "
            "the latest batch's end offsets).",
            labels=["query"],
        )
        for query, done in reading.items():
            lag.add_metric([query], records_behind(done, ends))
        yield lag


def serve(settings: Settings, collector: StreamCollector, say: Callable[[str], None]) -> Callable[[], None]:
    """Serve ``collector`` at ``http://bind_host:stream_metrics_port/metrics``; the function that
    stops it. A busy port is reported and skipped: metrics never stop the stream."""
    port = settings.stream_metrics_port
    if port == 0:
        return lambda: None
    registry = CollectorRegistry()
    registry.register(collector)
    try:
        server, _ = start_http_server(port, addr=settings.bind_host, registry=registry)
    except OSError as exc:
        say(f"stream: metrics not served on {settings.bind_host}:{port} ({exc})")
        return lambda: None
    say(f"stream: metrics at http://{settings.bind_host}:{port}/metrics")

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return stop
