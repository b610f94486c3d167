"""ingest_single_latency: ``POST /v1/events`` latency at a fixed offered load of 1,000 requests/s.

Open loop: request *i* is due at ``t0 + i / rate`` whatever happened to earlier ones, and its
latency is measured from that due time (not from when it was actually sent), so a stall shows up
in the figures instead of silently lowering the load (no coordinated omission). Every request is
one event; 202 means Kafka acknowledged it with acks=all. The peer is Kafka's own
``ProducerPerformance`` at the same 1,000 records/s on the same broker, in the same run: the
latency of producing directly, without HTTP. The headline is measured with the stream application
paused (on this 2-core machine its Spark driver shares the cores with the API); the same load
with the stream running is reported beside it (``with_stream_running``), and again under Spark
(``p99_ms_under_spark``): while a background client posts ``BENCH_SPARK_LOAD_EPS`` (5,000)
events/s in 500-event batches that the stream application lands and aggregates, and while the
day's batch recompute (``adclick batch day``: the Spark steps of a ``daily_batch`` run, at the
stack's ``ADCLICK_SPARK_NICE``) runs over today's bronze.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import orjson

from adclick.settings import Settings
from bench.kafka_producer_baseline import producer_performance
from bench.load import events, paused, percentile, wait_caught_up
from bench.result import write_result

RATE = float(os.environ.get("BENCH_SINGLE_RATE", "1000"))
SECONDS = float(os.environ.get("BENCH_SINGLE_SECONDS", "30"))
SPARK_LOAD_EPS = int(os.environ.get("BENCH_SPARK_LOAD_EPS", "5000"))
BATCH_WARMUP_S = 25.0  # the batch job's JVM is up and reading bronze by then


@contextlib.contextmanager
def _background_batches(url: str, events_per_s: int, seconds: float) -> Iterator[dict[str, int]]:
    """Post ``events_per_s`` events/s in 500-event batches from a thread (open loop) while inside."""
    import aiohttp

    per_request = 500
    bodies = [
        orjson.dumps(events(per_request, seed=9000 + i))
        for i in range(int(seconds * events_per_s / per_request) + 1)
    ]
    counts = {"accepted": 0, "failed": 0}
    stop = threading.Event()

    async def main() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:

            async def one(body: bytes) -> None:
                try:
                    async with session.post(
                        url, data=body, headers={"Content-Type": "application/json"}
                    ) as r:
                        await r.read()
                        counts["accepted" if r.status == 202 else "failed"] += per_request
                except (aiohttp.ClientError, TimeoutError):
                    counts["failed"] += per_request

            start = time.perf_counter()
            tasks = []
            for i, body in enumerate(bodies):
                if stop.is_set():
                    break
                delay = start + i * per_request / events_per_s - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(body)))
            await asyncio.gather(*tasks)

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="bench-batch-load", daemon=True)
    thread.start()
    try:
        yield counts
    finally:
        stop.set()
        thread.join(timeout=120)


@contextlib.contextmanager
def _daily_batch(day: str) -> Iterator[subprocess.Popen]:
    """``adclick batch day --date DAY --no-register`` in the background (stopped if still running)."""
    cmd = [sys.executable, "-m", "cli", "batch", "day", "--date", day, "--no-register"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _paced(url: str, bodies: list[bytes]) -> tuple[list[float], int, float]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=512)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def one(body: bytes, due: float) -> None:
            nonlocal errors
            try:
                async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    if r.status != 202:
                        errors += 1
                        return
            except (aiohttp.ClientError, TimeoutError):
                errors += 1
                return
            latencies.append((time.perf_counter() - due) * 1000)

        loop_start = time.perf_counter()
        tasks = []
        for i, body in enumerate(bodies):
            due = loop_start + i / RATE
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body, due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - loop_start
    return latencies, errors, elapsed


def _kafka_perf_at_rate(settings: Settings, records: int) -> dict[str, float]:
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"bench.latency.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    admin.create_topics([NewTopic(topic, settings.topic_partitions, 1)])
    try:
        return producer_performance(
            settings, topic, records=records, record_size=400, throughput=int(RATE), props=["linger.ms=5"]
        )
    finally:
        admin.delete_topics([topic])
        admin.close()


def _under_spark(settings: Settings, url: str, n: int) -> dict:
    """The same offered load beside 5,000 events/s of batch traffic and a running batch day."""
    from datetime import UTC, datetime

    batch_url = url.replace("/v1/events", "/v1/events/batch")
    singles = [orjson.dumps(e) for e in events(n, seed=8101)]
    load_seconds = BATCH_WARMUP_S + SECONDS + 10
    today = datetime.now(tz=UTC).date().isoformat()
    with _background_batches(batch_url, SPARK_LOAD_EPS, load_seconds) as load, _daily_batch(today) as batch:
        time.sleep(BATCH_WARMUP_S)
        started_running = batch.poll() is None
        latencies, errors, elapsed = asyncio.run(_paced(url, singles))
        still_running = batch.poll() is None
    latencies.sort()
    return {
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "p999_ms": round(percentile(latencies, 99.9), 2),
        "achieved_rps": round(len(latencies) / elapsed, 1),
        "errors": errors,
        "batch_traffic_events_per_s": SPARK_LOAD_EPS,
        "batch_traffic_accepted": load["accepted"],
        "batch_traffic_failed": load["failed"],
        "daily_batch_running_throughout": started_running and still_running,
        "spark_nice": settings.spark_nice,
    }


def run(settings: Settings, context: dict | None = None) -> dict:
    url = f"http://{settings.bind_host}:{settings.ingest_port}/v1/events"
    n = int(RATE * SECONDS)
    payload = [orjson.dumps(e) for e in events(2 * n + 2000, seed=8001)]
    with paused(settings, "stream"):
        asyncio.run(_paced(url, payload[:2000]))  # warm-up at the same rate
        latencies, errors, elapsed = asyncio.run(_paced(url, payload[2000 : 2000 + n]))
        kafka = _kafka_perf_at_rate(settings, n)  # the peer, under the same conditions
    # The same load again with the stream application landing events on the same two cores
    # (after it has started and caught up with the events above).
    wait_caught_up(settings)
    contended, contended_errors, _ = asyncio.run(_paced(url, payload[2000 + n :]))
    contended.sort()
    under_spark = _under_spark(settings, url, n)
    latencies.sort()
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    return write_result(
        "ingest_single_latency",
        metric="p99 latency of POST /v1/events at a fixed offered load (open loop)",
        value=p99,
        unit="ms",
        peer={"name": "kafka ProducerPerformance p99 at the same rate, acks=all", "value": kafka["p99_ms"]},
        params={"offered_rps": RATE, "seconds": SECONDS, "requests": n, "api_workers": 1},
        summary=(
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms at {RATE:,.0f} req/s offered "
            f"({len(latencies) / elapsed:,.0f} req/s answered 202, {errors} errors); under Spark "
            f"(stream + {SPARK_LOAD_EPS:,} events/s of batches + a batch day): "
            f"p99 {under_spark['p99_ms']:.1f} ms"
        ),
        p50_ms=round(p50, 2),
        p90_ms=round(percentile(latencies, 90), 2),
        p99_ms=round(p99, 2),
        p999_ms=round(percentile(latencies, 99.9), 2),
        max_ms=round(latencies[-1], 2) if latencies else None,
        achieved_rps=round(len(latencies) / elapsed, 1),
        errors=errors,
        kafka=kafka,
        p99_ms_under_spark=under_spark["p99_ms"],
        under_spark=under_spark,
        target_p99_ms=100,
        with_stream_running={
            "p50_ms": round(percentile(contended, 50), 2),
            "p99_ms": round(percentile(contended, 99), 2),
            "errors": contended_errors,
        },
    )
