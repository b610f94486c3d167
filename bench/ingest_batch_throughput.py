"""ingest_batch_throughput: sustained events/s through ``POST /v1/events/batch`` into Kafka.

1,000 events a request (JSON array), a few requests in flight, against the stack's ingestion API
(one uvicorn worker) producing with acks=all. A 202 means Kafka acknowledged every event (or
the spool holds it; the run checks the spool stayed empty). The stream application is paused
while it runs (it would land these events on the same two cores). The peer is the plain kafka-python
producer on the same broker from ``kafka_producer_baseline`` in the same run: the ceiling of
the client library the API uses.
"""

from __future__ import annotations

import asyncio
import os
import time

import orjson

from adclick.settings import Settings
from bench.load import events
from bench.result import write_result

BATCH = 1000
BATCHES = int(os.environ.get("BENCH_INGEST_BATCHES", "150"))
IN_FLIGHT = int(os.environ.get("BENCH_INGEST_IN_FLIGHT", "4"))


async def _post_all(url: str, bodies: list[bytes]) -> tuple[float, int, int]:
    import aiohttp

    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    accepted = refused = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal accepted, refused
        while not queue.empty():
            body = queue.get_nowait()
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                payload = await r.json(loads=orjson.loads)
                if r.status == 202:
                    accepted += payload["accepted"]
                else:
                    refused += BATCH

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(IN_FLIGHT)))
        elapsed = time.perf_counter() - start
    return elapsed, accepted, refused


def _bodies(payload: list[dict]) -> list[bytes]:
    return [orjson.dumps(payload[i : i + BATCH]) for i in range(0, len(payload), BATCH)]


def run(settings: Settings, context: dict | None = None) -> dict:
    import httpx

    base = f"http://{settings.bind_host}:{settings.ingest_port}"
    warm = events(BATCH * 5, seed=7001)
    asyncio.run(
        _post_all(
            f"{base}/v1/events/batch", [orjson.dumps(warm[i : i + BATCH]) for i in range(0, len(warm), BATCH)]
        )
    )
    payload = events(BATCH * BATCHES, seed=7002)
    bodies = [orjson.dumps(payload[i : i + BATCH]) for i in range(0, len(payload), BATCH)]
    elapsed, accepted, refused = asyncio.run(_post_all(f"{base}/v1/events/batch", bodies))
    spool = httpx.get(f"{base}/v1/health", timeout=10).json().get("spool", {})
    rate = accepted / elapsed

    baseline = (context or {}).get("kafka_producer_baseline")
    if baseline is None:
        from bench import kafka_producer_baseline

        baseline = kafka_producer_baseline.run(settings)
    python_ceiling = baseline["python"]["records_per_s"]
    java_ceiling = baseline["java"]["records_per_s"]
    peer = {"name": "kafka-python producer, same broker, same run", "value": round(python_ceiling, 1)}
    summary = (
        f"{rate:,.0f} events/s ({accepted:,} accepted, {refused:,} refused in {elapsed:.1f}s; "
        f"spool after: {spool.get('events', '?')} events)"
    )
    return write_result(
        "ingest_batch_throughput",
        metric="events/s through POST /v1/events/batch into Kafka (acks=all)",
        value=rate,
        unit="events/s",
        peer=peer,
        params={
            "events_per_request": BATCH,
            "requests": len(bodies),
            "in_flight": IN_FLIGHT,
            "api_workers": 1,
        },
        summary=summary,
        ratio_vs_java_producer=round(rate / java_ceiling, 3),
        spool_events_after=spool.get("events"),
        accepted=accepted,
        refused=refused,
        seconds=round(elapsed, 2),
    )
