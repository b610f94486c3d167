"""The stream application's metrics: a Spark progress report -> gauge values, the Kafka lag from
the latest batch's end offsets, the collector's exposition, and the HTTP server (no Spark, no Kafka).

The progress dicts have the shape of ``StreamingQueryProgress.json`` (the speed query reads Kafka
and deduplicates within the watermark; bronze has no state operator).
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from metrics_support import Scrape
from prometheus_client import CollectorRegistry, generate_latest

from adclick.settings import Settings
from speed_layer.metrics import (
    StreamCollector,
    progress_values,
    records_behind,
    serve,
    source_end_offsets,
)

TOPIC = "adclick.events"
P = "adclick_stream_"


def speed_progress(**overrides: Any) -> dict[str, Any]:
    progress: dict[str, Any] = {
        "id": "5f0c1d8e-8f5e-4a57-9d43-0b6f4d3c2a10",
        "runId": "b7a4e1f2-3c5d-4e6f-8a9b-0c1d2e3f4a5b",
        "name": "speed_minute",
        "timestamp": "2026-11-28T10:15:02.500Z",
        "batchId": 42,
        "batchDuration": 1411,
        "numInputRows": 1200,
        "inputRowsPerSecond": 600.0,
        "processedRowsPerSecond": 850.5,
        "durationMs": {"addBatch": 1200, "getBatch": 3, "latestOffset": 5, "triggerExecution": 1411},
        "eventTime": {"watermark": "2026-11-28T10:04:00.000Z", "max": "2026-11-28T10:14:59.000Z"},
        "stateOperators": [
            {
                "operatorName": "dedupeWithinWatermark",
                "numRowsTotal": 5000,
                "numRowsUpdated": 1190,
                "numRowsDroppedByWatermark": 7,
                "numRowsRemoved": 300,
                "memoryUsedBytes": 812_000,
            }
        ],
        "sources": [
            {
                "description": f"KafkaV2[Subscribe[{TOPIC}]]",
                "startOffset": {TOPIC: {"0": 400, "1": 380}},
                "endOffset": {TOPIC: {"0": 1000, "1": 980}},
                "latestOffset": {TOPIC: {"0": 1000, "1": 980}},
                "numInputRows": 1200,
                "inputRowsPerSecond": 600.0,
                "processedRowsPerSecond": 850.5,
                "metrics": {"avgOffsetsBehindLatest": "0.0", "maxOffsetsBehindLatest": "0"},
            }
        ],
        "sink": {"description": "ForeachBatchSink", "numOutputRows": -1},
    }
    progress.update(overrides)
    return progress


def bronze_progress() -> dict[str, Any]:
    # as PySpark hands it over: a source's offsets are JSON text
    source = {**speed_progress()["sources"][0], "endOffset": json.dumps({TOPIC: {"0": 900, "1": 980}})}
    return speed_progress(name="bronze_landing", batchId=17, stateOperators=[], sources=[source],
                          numInputRows=300, inputRowsPerSecond=150.0, processedRowsPerSecond=2000.0,
                          durationMs={"triggerExecution": 150})  # fmt: skip


def test_progress_values_of_a_stateful_batch() -> None:
    progress = speed_progress()
    progress["stateOperators"].append({"numRowsTotal": 20, "numRowsDroppedByWatermark": 1})
    assert progress_values(progress) == {
        "batch_id": 42.0,
        "last_progress_timestamp_seconds": 1795860902.5,
        "batch_input_rows": 1200.0,
        "input_rows_per_second": 600.0,
        "processed_rows_per_second": 850.5,
        "batch_duration_seconds": 1.411,
        "state_rows": 5020.0,  # summed over the state operators
        "batch_rows_dropped_by_watermark": 8.0,
    }


def test_progress_values_without_state_or_rates_leave_them_out() -> None:
    values = progress_values(bronze_progress())
    assert "state_rows" not in values and "batch_rows_dropped_by_watermark" not in values
    assert values["batch_duration_seconds"] == 0.15 and values["processed_rows_per_second"] == 2000.0
    idle = {"batchId": 3, "timestamp": "2026-11-28T10:00:00Z", "numInputRows": 0, "inputRowsPerSecond": None}
    assert progress_values(idle) == {"batch_id": 3.0, "last_progress_timestamp_seconds": 1795860000.0,
                                     "batch_input_rows": 0.0}  # fmt: skip
    assert progress_values({}) == {}


def test_end_offsets_as_json_text_or_dict_and_the_records_behind() -> None:
    assert source_end_offsets(speed_progress(), TOPIC) == {"0": 1000, "1": 980}
    assert source_end_offsets(bronze_progress(), TOPIC) == {"0": 900, "1": 980}
    assert source_end_offsets(speed_progress(), "other.topic") is None
    assert source_end_offsets({"sources": [{"endOffset": "not json"}]}, TOPIC) is None
    # partition 2 was never read: all of it is behind; an end below the read offset is not negative
    assert records_behind({"0": 900, "1": 980}, {0: 1000, 1: 975, 2: 40}) == 100 + 0 + 40


def collect(collector: StreamCollector) -> Scrape:
    registry = CollectorRegistry()
    registry.register(collector)
    return Scrape(generate_latest(registry).decode())


def test_collector_exposes_each_query_with_its_lag() -> None:
    collector = StreamCollector(TOPIC, lambda: {0: 1010, 1: 990})
    collector.update("speed_minute", active=True, progress=speed_progress(), dropped_total=31)
    collector.update("bronze_landing", active=True, progress=bronze_progress(), dropped_total=0)
    scrape = collect(collector)

    assert scrape.value(P + "query_active", query="speed_minute") == 1
    assert scrape.value(P + "processed_rows_per_second", query="speed_minute") == 850.5
    assert scrape.value(P + "input_rows_per_second", query="bronze_landing") == 150.0
    assert scrape.value(P + "batch_duration_seconds", query="speed_minute") == 1.411
    assert scrape.value(P + "state_rows", query="speed_minute") == 5000
    assert scrape.value(P + "batch_rows_dropped_by_watermark", query="speed_minute") == 7
    assert scrape.value(P + "rows_dropped_by_watermark_total", query="speed_minute") == 31
    assert not scrape.has(P + "state_rows", query="bronze_landing")
    assert scrape.value(P + "kafka_records_behind", query="speed_minute") == 10 + 10
    assert scrape.value(P + "kafka_records_behind", query="bronze_landing") == 110 + 10
    assert scrape.type_of(P + "rows_dropped_by_watermark") == "counter"
    assert scrape.type_of(P + "kafka_records_behind") == "gauge"


def test_collector_keeps_the_last_batch_while_none_is_reported_and_survives_kafka_down() -> None:
    def kafka_down() -> dict[int, int]:
        raise ConnectionError("no broker")

    collector = StreamCollector(TOPIC, kafka_down)
    collector.update("speed_minute", active=True, progress=speed_progress(), dropped_total=7)
    collector.update("speed_minute", active=False, progress=None, dropped_total=7)
    scrape = collect(collector)
    assert scrape.value(P + "query_active", query="speed_minute") == 0
    assert scrape.value(P + "batch_id", query="speed_minute") == 42
    assert P + "kafka_records_behind" not in scrape.families  # no lag, the rest still served


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_on_the_configured_port_and_skip_a_busy_one(tmp_path: Path) -> None:
    collector = StreamCollector(TOPIC, None)
    collector.update("speed_minute", active=True, progress=speed_progress(), dropped_total=0)
    said: list[str] = []
    settings = Settings(_env_file=None, home=tmp_path, stream_metrics_port=_free_port())
    stop = serve(settings, collector, said.append)
    try:
        url = f"http://127.0.0.1:{settings.stream_metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            scrape = Scrape(response.read().decode())
        assert scrape.value(P + "batch_id", query="speed_minute") == 42
        assert said == [f"stream: metrics at {url}"]
        # a second app on the same port goes on without metrics
        assert serve(settings, collector, said.append)() is None
        assert said[-1].startswith(f"stream: metrics not served on 127.0.0.1:{settings.stream_metrics_port}")
    finally:
        stop()
    assert serve(settings.model_copy(update={"stream_metrics_port": 0}), collector, said.append)() is None
    assert len(said) == 2


def test_the_port_setting_defaults_to_9101_and_is_bounded(tmp_path: Path) -> None:
    assert Settings(_env_file=None, home=tmp_path).stream_metrics_port == 9101
    with pytest.raises(ValueError, match="stream_metrics_port"):
        Settings(_env_file=None, home=tmp_path, stream_metrics_port=70000)


class FakeQuery:
    """The part of a StreamingQuery the watcher reads."""

    def __init__(self, name: str, progress: list[dict[str, Any]]) -> None:
        self.name = name
        self.isActive = False  # finished: the watcher looks once and returns
        self.recentProgress = progress
        self.lastProgress = progress[-1] if progress else None


def test_the_watcher_feeds_the_collector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from speed_layer import app, progress_sink

    appended: list[tuple] = []
    monkeypatch.setattr(progress_sink, "append", lambda _spark, _settings, rows: appended.extend(rows))
    first = speed_progress(batchId=41, stateOperators=[{"numRowsTotal": 10, "numRowsDroppedByWatermark": 5}])
    queries = [FakeQuery("speed_minute", [first, speed_progress()]), FakeQuery("bronze_landing", [])]
    collector = StreamCollector(TOPIC, None)
    stop = threading.Event()
    stop.set()
    settings = Settings(_env_file=None, home=tmp_path)
    app._watch(None, settings, queries, stop, lambda _line: None, metrics=collector)  # type: ignore[arg-type]

    scrape = collect(collector)
    assert scrape.value(P + "batch_id", query="speed_minute") == 42
    assert scrape.value(P + "rows_dropped_by_watermark_total", query="speed_minute") == 5 + 7
    assert scrape.value(P + "query_active", query="bronze_landing") == 0
    assert not scrape.has(P + "batch_id", query="bronze_landing")  # no batch yet
    assert len(appended) == 2
