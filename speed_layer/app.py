"""``adclick stream``: the stream application (bronze landing now; the speed layer joins it).

Each query has its own checkpoint directory under ``var/checkpoints``. Each query's latest
progress goes to the heartbeat (:mod:`adclick.stream_status`), ``ops.stream_progress``
(:mod:`speed_layer.progress_sink`) and the Prometheus metrics (:mod:`speed_layer.metrics`, served
on ``settings.stream_metrics_port``). SIGTERM/SIGINT stop the queries cleanly; a SIGKILL is safe
too (the checkpoint and Delta's idempotent writes recover).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from pyspark.sql import SparkSession
from pyspark.sql.streaming import DataStreamWriter, StreamingQuery

from adclick import stream_status as heartbeat
from adclick.dims import DimsCache
from adclick.errors import AdclickError
from adclick.settings import Settings
from speed_layer import metrics as stream_metrics
from speed_layer import progress_sink
from speed_layer.bronze_sink import ensure_tables, land_batch
from speed_layer.source import kafka_events

if TYPE_CHECKING:
    from speed_layer.window_refresh import WindowRefresh

QUERIES = ("bronze", "speed")
# Both queries share the application's cores: with Spark's default FIFO scheduler a bronze
# micro-batch's tasks hold them until it ends and the speed batch (what the live minutes wait
# for) queues behind it. Fair scheduling between one pool per query shares the cores instead.
STREAM_CONF = {"spark.scheduler.mode": "FAIR"}


def in_pool(name: str, body: Callable[..., None]) -> Callable[..., None]:
    """A foreachBatch body whose jobs run in the fair-scheduler pool ``name`` (a thread-local
    property; each query's batches run on that query's own thread)."""

    def run(df, batch_id: int) -> None:
        df.sparkSession.sparkContext.setLocalProperty("spark.scheduler.pool", name)
        body(df, batch_id)

    return run


def checkpoint_dir(settings: Settings, query: str) -> str:
    return str(settings.path("checkpoints", query))


def _triggered(writer: DataStreamWriter, every_s: float, available_now: bool) -> DataStreamWriter:
    """Drain what Kafka holds and stop (available-now), or run every ``every_s`` seconds."""
    if available_now:
        return writer.trigger(availableNow=True)
    return writer.trigger(processingTime=f"{every_s} seconds")


def start_bronze(spark: SparkSession, settings: Settings, *, available_now: bool = False) -> StreamingQuery:
    ensure_tables(spark, settings)
    writer = (
        kafka_events(spark, settings)
        .writeStream.queryName("bronze_landing")
        .option("checkpointLocation", checkpoint_dir(settings, "bronze"))
        .foreachBatch(in_pool("bronze", lambda df, batch_id: land_batch(settings, df, batch_id)))
    )
    return _triggered(writer, settings.stream_bronze_trigger_seconds, available_now).start()


def _watch(
    spark: SparkSession,
    settings: Settings,
    running: list[StreamingQuery],
    stop: threading.Event,
    log: Callable[[str], None],
    *,
    metrics: stream_metrics.StreamCollector | None = None,
) -> None:
    """Wait for the queries, logging each new micro-batch, keeping the heartbeat (and ``metrics``)
    fresh and appending the batches' progress to ``ops.stream_progress``."""
    last_batch: dict[str, int] = {}
    late: dict[str, int] = {}  # events behind the watermark, dropped by the speed layer (bronze keeps them)
    pending: list[tuple] = []
    flushed_at = time.monotonic()
    while True:
        stop.wait(2)
        active = not stop.is_set() and any(q.isActive for q in running)
        beat = {}
        for q in running:
            for p in q.recentProgress:  # every batch since the last look, not only the latest
                if p["batchId"] <= last_batch.get(q.name, -1):
                    continue
                last_batch[q.name] = p["batchId"]
                row = progress_sink.progress_row(q.name, p)
                pending.append(row)
                dropped = row[-1]
                late[q.name] = late.get(q.name, 0) + dropped
                log(
                    f"stream: {q.name} batch {p['batchId']}: {row[3]} rows, {row[4]:.0f} rows/s"
                    + (f", {dropped} behind the watermark" if dropped else "")
                )
            p = q.lastProgress or {}
            beat[q.name] = {
                "active": q.isActive,
                "batch_id": p.get("batchId"),
                "input_rows": p.get("numInputRows"),
                "rows_per_s": p.get("processedRowsPerSecond"),
                "duration_ms": (p.get("durationMs") or {}).get("triggerExecution"),
                "late_rows_dropped": late.get(q.name, 0),
                "end_offsets": [src.get("endOffset") for src in p.get("sources", [])],
            }
            if metrics is not None:
                metrics.update(q.name, active=q.isActive, progress=p, dropped_total=late.get(q.name, 0))
        heartbeat.write(settings, beat)
        if pending and (not active or time.monotonic() - flushed_at >= progress_sink.FLUSH_SECONDS):
            try:
                progress_sink.append(spark, settings, pending)
                pending = []
            except Exception as exc:  # the figures stay in the log; never stop the stream for them
                log(f"stream: could not append to ops.stream_progress ({exc}); will retry")
            flushed_at = time.monotonic()
        if not active:
            return


def start_speed(spark: SparkSession, settings: Settings, *, available_now: bool = False) -> StreamingQuery:
    """Valid events, deduplicated by event_id within the event-time watermark, into speed.*."""
    from speed_layer.parse import to_bronze_rows, with_parsed_event
    from speed_layer.speed_sink import ensure_properties, update_batch
    from speed_layer.window_refresh import WindowRefresh

    ensure_properties(spark, settings)
    windows = WindowRefresh(settings)
    windows.catch_up(spark)
    events = (
        to_bronze_rows(with_parsed_event(kafka_events(spark, settings)))
        .withWatermark("event_time", settings.speed_watermark)
        .dropDuplicatesWithinWatermark(["event_id"])
    )
    dims = DimsCache(settings)
    writer = (
        events.writeStream.queryName("speed_minute")
        .option("checkpointLocation", checkpoint_dir(settings, "speed"))
        .foreachBatch(
            in_pool(
                "speed",
                lambda df, batch_id: update_batch(settings, df, batch_id, dims=dims, windows=windows),
            )
        )
    )
    query = _triggered(writer, settings.stream_trigger_seconds, available_now).start()
    _WINDOWS[query.id] = windows
    return query


# The 5-minute window refresh of each speed query started in this process, by query id.
_WINDOWS: dict[str, WindowRefresh] = {}


def finish_speed(spark: SparkSession, query: StreamingQuery) -> None:
    """After a speed query stopped: refresh the 5-minute windows still pending (a no-op for other
    queries). Raises the refresh's error."""
    windows = _WINDOWS.pop(query.id, None)
    if windows is not None:
        try:
            windows.flush(spark)
        finally:
            windows.close()


STARTERS: dict[str, Callable[..., StreamingQuery]] = {"bronze": start_bronze, "speed": start_speed}


def run(
    settings: Settings,
    *,
    queries: tuple[str, ...] = QUERIES,
    available_now: bool = False,
    log: Callable[[str], None] = print,
) -> None:
    """Start the queries and block until they finish (available-now) or a stop signal arrives."""
    unknown = set(queries) - set(STARTERS)
    if unknown:
        raise ValueError(f"unknown stream queries {sorted(unknown)}; known: {sorted(STARTERS)}")
    with single_instance(settings):
        _run_locked(settings, queries, available_now, log)


@contextlib.contextmanager
def single_instance(settings: Settings) -> Iterator[None]:
    """One stream application per data directory: two on the same checkpoints would corrupt them."""
    lock_path = settings.path("stream", "app.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "?"
            raise StreamAlreadyRunning(
                f"the stream application is already running for {settings.home} (PID {owner}); "
                "stop it first (`adclick down`, or supervisorctl stop stream)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class StreamAlreadyRunning(AdclickError):
    """Another stream application holds this data directory's lock."""


def _run_locked(
    settings: Settings, queries: tuple[str, ...], available_now: bool, log: Callable[[str], None]
) -> None:
    from adclick.spark import get_spark

    spark = get_spark("adclick-stream", settings=settings, extra_conf=STREAM_CONF)
    running = [STARTERS[name](spark, settings, available_now=available_now) for name in queries]
    log(f"stream: started {', '.join(queries)} (checkpoints in {settings.path('checkpoints')})")
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    topic_ends = stream_metrics.TopicEnds(settings, settings.topic_events)
    metrics = stream_metrics.StreamCollector(settings.topic_events, topic_ends)
    stop_metrics = stream_metrics.serve(settings, metrics, log)
    try:
        _watch(spark, settings, running, stop, log, metrics=metrics)
    finally:
        stop_metrics()
        topic_ends.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for q in running:
        if q.isActive:
            q.stop()
        if not q.exception():
            finish_speed(spark, q)
        if q.exception():
            raise RuntimeError(f"stream query {q.name} failed: {q.exception()}")
    log("stream: stopped")
