"""stream_cpu_idle: the stream application's CPU share while the stack is idle.

Method, on the running stack as deployed: ``BENCH_IDLE_EVENTS`` events (20,000) are posted
through the ingestion API, so both queries have state, tables and a Delta log to look after;
once the stream has caught up (heartbeat fresh, Kafka lag 0) and ``BENCH_IDLE_SETTLE`` seconds
(30) have passed, the CPU time of the stream application's process tree (the Python driver, its
JVM and their children, from ``/proc``) is read over ``BENCH_IDLE_SECONDS`` (60) with no
traffic. ``value`` is the share of one core (100 % = one core busy the whole time). The peer, in
the same window: the Kafka broker's own idle CPU, a JVM that also only waits.
"""

from __future__ import annotations

import asyncio
import os
import time

from adclick.settings import Settings
from bench.load import events, wait_caught_up
from bench.result import write_result

EVENTS = int(os.environ.get("BENCH_IDLE_EVENTS", "20000"))
SETTLE = float(os.environ.get("BENCH_IDLE_SETTLE", "30"))
SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", "60"))
BATCH = 500


def _tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its descendants (0 for a process gone meanwhile)."""
    import psutil

    total = 0.0
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            try:
                t = proc.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                continue
    except psutil.NoSuchProcess:
        return 0.0
    return total


async def _post_all(url: str, batch: list[dict]) -> int:
    import aiohttp
    import orjson

    refused = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        for i in range(0, len(batch), BATCH):
            async with session.post(url, data=orjson.dumps(batch[i : i + BATCH])) as r:
                await r.read()
                refused += r.status != 202
    return refused


def run(settings: Settings, context: dict | None = None) -> dict:
    from infra import supervisor

    url = f"http://{settings.bind_host}:{settings.ingest_port}/v1/events/batch"
    now_ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
    refused = asyncio.run(_post_all(url, [{**e, "ts": now_ts} for e in events(EVENTS, seed=9301)]))
    wait_caught_up(settings, required=True)
    time.sleep(SETTLE)
    info = supervisor.process_info(settings)
    stream_pid, kafka_pid = info["stream"]["pid"], info["kafka"]["pid"]
    before = _tree_cpu_seconds(stream_pid), _tree_cpu_seconds(kafka_pid)
    start = time.monotonic()
    time.sleep(SECONDS)
    elapsed = time.monotonic() - start
    after = _tree_cpu_seconds(stream_pid), _tree_cpu_seconds(kafka_pid)
    stream_pct = 100 * (after[0] - before[0]) / elapsed
    kafka_pct = 100 * (after[1] - before[1]) / elapsed
    return write_result(
        "stream_cpu_idle",
        metric="CPU of the stream application (driver + JVM) with the stack idle, % of one core",
        value=stream_pct,
        unit="% of one core",
        peer={"name": "the Kafka broker's idle CPU in the same window", "value": round(kafka_pct, 3)},
        params={
            "events_before": EVENTS,
            "settle_s": SETTLE,
            "seconds": SECONDS,
            "trigger_s": settings.stream_trigger_seconds,
            "bronze_trigger_s": settings.stream_bronze_trigger_seconds,
        },
        summary=f"{stream_pct:.1f} % of one core over {elapsed:.0f} s idle (Kafka broker {kafka_pct:.1f} %)",
        machine_share_percent=round(stream_pct / (os.cpu_count() or 1), 2),
        target_percent=10,
        refused_batches=refused,
    )
