"""ingest_single_latency: ``POST /v1/events`` latency at a fixed offered load of 1,000 requests/s.

Open loop: request *i* is due at ``t0 + i / rate`` whatever happened to earlier ones, and its
latency is measured from that due time (not from when it was actually sent), so a stall shows up
in the figures instead of silently lowering the load (no coordinated omission). Every request is
one event; 202 means Kafka acknowledged it with acks=all. The peer is Kafka's own
``ProducerPerformance`` at the same 1,000 records/s on the same broker, in the same run: the
latency of producing directly, without HTTP. The headline is measured with the stream application
paused (on this 2-core machine its Spark driver shares the cores with the API); the same load
with the stream running is reported beside it (``with_stream_running``).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import orjson

from adclick.settings import Settings
from bench.kafka_producer_baseline import producer_performance
from bench.load import events, paused, percentile
from bench.result import write_result

RATE = float(os.environ.get("BENCH_SINGLE_RATE", "1000"))
SECONDS = float(os.environ.get("BENCH_SINGLE_SECONDS", "30"))


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


def _wait_caught_up(settings: Settings, timeout_s: float = 300) -> None:
    from adclick.stream_status import is_fresh, lag

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if is_fresh(settings) and lag(settings) == 0:
            return
        time.sleep(2)


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
    _wait_caught_up(settings)
    contended, contended_errors, _ = asyncio.run(_paced(url, payload[2000 + n :]))
    contended.sort()
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
            f"({len(latencies) / elapsed:,.0f} req/s answered 202, {errors} errors)"
        ),
        p50_ms=round(p50, 2),
        p90_ms=round(percentile(latencies, 90), 2),
        p99_ms=round(p99, 2),
        p999_ms=round(percentile(latencies, 99.9), 2),
        max_ms=round(latencies[-1], 2) if latencies else None,
        achieved_rps=round(len(latencies) / elapsed, 1),
        errors=errors,
        kafka=kafka,
        with_stream_running={
            "p50_ms": round(percentile(contended, 50), 2),
            "p99_ms": round(percentile(contended, 99), 2),
            "errors": contended_errors,
        },
    )
