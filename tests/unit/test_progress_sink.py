"""Stream progress reports -> ops.stream_progress rows."""

from __future__ import annotations

from datetime import datetime

from adclick.catalog import table
from adclick.settings import Settings
from speed_layer import progress_sink

PROGRESS = {
    "batchId": 7,
    "timestamp": "2026-11-28T10:15:02.500Z",
    "numInputRows": 1200,
    "processedRowsPerSecond": 850.5,
    "durationMs": {"triggerExecution": 1411, "addBatch": 1200},
    "stateOperators": [{"numRowsDroppedByWatermark": 3}, {"numRowsDroppedByWatermark": 2}],
}


def test_progress_row_sums_late_rows_over_state_operators() -> None:
    row = progress_sink.progress_row("speed_minute", PROGRESS)
    assert row == ("speed_minute", 7, datetime(2026, 11, 28, 10, 15, 2, 500000), 1200, 850.5, 1411, 5)


def test_progress_row_of_a_batch_without_state_or_rate() -> None:
    bare = {"batchId": 0, "timestamp": "2026-11-28T10:00:00Z", "numInputRows": 0}
    assert progress_sink.progress_row("bronze_landing", bare)[3:] == (0, 0.0, 0, 0)


def test_append_writes_rows_and_nothing_when_empty(spark, tmp_path) -> None:
    settings = Settings(home=tmp_path)
    path = table("ops.stream_progress").path(settings)
    progress_sink.append(spark, settings, [])
    assert not (tmp_path / "lake" / "ops" / "stream_progress").exists()
    progress_sink.append(spark, settings, [progress_sink.progress_row("speed_minute", PROGRESS)])
    rows = spark.read.format("delta").load(path).collect()
    assert [(r.query, r.batch_id, r.late_rows_dropped) for r in rows] == [("speed_minute", 7, 5)]
