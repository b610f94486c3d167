"""ingest_batch_throughput: sustained events/s through ``POST /v1/events/batch`` into Kafka.

1,000 events a request (JSON array), a few requests in flight, against an ingestion API the run
starts itself beside the stack's (``adclick ingest-api --port P --workers N``, the stack's
settings, producing with acks=all through the configured producer): first one worker
(``value``), then one worker per CPU core (``value_all_workers``). A 202 means Kafka acknowledged
every event (or the spool holds it; the run checks the spool stayed empty). ``us_per_event`` is
the API processes' CPU time (user + system, all threads, from ``/proc``) over the timed run,
divided by the events accepted. The stream application is paused while it runs (it would land
these events on the same two cores). The peers come from ``kafka_producer_baseline`` in the same
run: kafka-python, confluent-kafka (librdkafka) and Java's ProducerPerformance on the same broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import orjson

from adclick.settings import Settings
from bench.load import events, ingest_api_process, paused
from bench.result import write_result

BATCH = 1000
BATCHES = int(os.environ.get("BENCH_INGEST_BATCHES", "150"))
IN_FLIGHT = int(os.environ.get("BENCH_INGEST_IN_FLIGHT", "4"))


async def _post_all(url: str, bodies: list[bytes], in_flight: int = IN_FLIGHT) -> tuple[float, int, int]:
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
        await asyncio.gather(*(worker(session) for _ in range(in_flight)))
        elapsed = time.perf_counter() - start
    return elapsed, accepted, refused


def _bodies(payload: list[dict]) -> list[bytes]:
    return [orjson.dumps(payload[i : i + BATCH]) for i in range(0, len(payload), BATCH)]


def _cpu_seconds(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def _measure(settings: Settings, workers: int, seed: int) -> dict[str, float]:
    import httpx

    with ingest_api_process(settings, workers) as (base, pids):
        warm = events(BATCH * 5 * workers, seed=seed)
        asyncio.run(_post_all(f"{base}/v1/events/batch", _bodies(warm), IN_FLIGHT * workers))
        bodies = _bodies(events(BATCH * BATCHES, seed=seed + 1))
        cpu_before = _cpu_seconds(pids)
        elapsed, accepted, refused = asyncio.run(
            _post_all(f"{base}/v1/events/batch", bodies, IN_FLIGHT * workers)
        )
        cpu = _cpu_seconds(pids) - cpu_before
        spool = httpx.get(f"{base}/v1/health", timeout=10).json().get("spool", {})
    return {
        "events_per_s": accepted / elapsed,
        "us_per_event": cpu / max(1, accepted) * 1e6,
        "cpu_cores_used": cpu / elapsed,
        "accepted": accepted,
        "refused": refused,
        "seconds": round(elapsed, 2),
        "spool_events_after": spool.get("events"),
    }


def run(settings: Settings, context: dict | None = None) -> dict:
    all_workers = os.cpu_count() or 1
    with paused(settings, "stream"):
        one = _measure(settings, 1, seed=7001)
        many = _measure(settings, all_workers, seed=7101)
    rate, accepted, refused, elapsed = one["events_per_s"], one["accepted"], one["refused"], one["seconds"]
    spool = {"events": one["spool_events_after"]}

    baseline = (context or {}).get("kafka_producer_baseline")
    if baseline is None:
        from bench import kafka_producer_baseline

        baseline = kafka_producer_baseline.run(settings)
    python_ceiling = baseline["python"]["records_per_s"]
    java_ceiling = baseline["java"]["records_per_s"]
    confluent_ceiling = baseline.get("confluent", {}).get("records_per_s")
    peer = {"name": "kafka-python producer, same broker, same run", "value": round(python_ceiling, 1)}
    summary = (
        f"{rate:,.0f} events/s on 1 worker ({one['us_per_event']:.1f} us CPU/event; {accepted:,} accepted, "
        f"{refused:,} refused in {elapsed:.1f}s; spool after: {spool.get('events', '?')} events), "
        f"{many['events_per_s']:,.0f} events/s on {all_workers} workers"
    )
    return write_result(
        "ingest_batch_throughput",
        metric="events/s through POST /v1/events/batch into Kafka (acks=all)",
        value=rate,
        unit="events/s",
        peer=peer,
        params={
            "events_per_request": BATCH,
            "requests": BATCHES,
            "in_flight": IN_FLIGHT,
            "api_workers": 1,
            "all_workers": all_workers,
            "producer": settings.ingest_producer,
        },
        summary=summary,
        ratio_vs_java_producer=round(rate / java_ceiling, 3),
        ratio_vs_confluent_producer=round(rate / confluent_ceiling, 3) if confluent_ceiling else None,
        us_per_event=round(one["us_per_event"], 2),
        value_all_workers=round(many["events_per_s"], 1),
        one_worker=one,
        all_workers=many,
        target_events_per_s=50_000,
        spool_events_after=spool.get("events"),
        accepted=accepted,
        refused=refused,
        seconds=elapsed,
    )
