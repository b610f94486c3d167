"""The ingestion API with two worker processes, on the running stack's Kafka and stream app.

The API runs as its own process (``adclick ingest-api --workers 2`` on a free port, the stack's
settings), so its workers can be killed without touching the stack's API. Every test counts
the events answered 202 and checks that each landed in bronze, every Kafka record once.
"""

from __future__ import annotations

import contextlib
import threading
import time

import httpx
import psutil
import pytest
from flow_checks import post_until_accepted
from landing import generated, wait_landed

from adclick.settings import Settings
from bench.load import api_workers, ingest_api_process

pytestmark = pytest.mark.integration

SENDERS = 4  # concurrent clients, each request on a new connection: both workers take some


def _load(base: str, seed: int, per_sender: int) -> tuple[list[threading.Thread], set[str], list[int]]:
    accepted: set[str] = set()
    statuses: list[int] = []
    threads = []
    for s in range(SENDERS):
        batches = [generated(clicks=20, seed=seed + 100 * s + i)[:300] for i in range(per_sender)]
        threads.append(threading.Thread(target=post_until_accepted, args=(base, batches, accepted, statuses)))
    for t in threads:
        t.start()
    return threads, accepted, statuses


def _assert_landed_once(spark, stack: Settings, accepted: set[str]) -> None:
    rows = wait_landed(spark, stack, accepted)
    assert {r.event_id for r in rows} == accepted  # every 202'd event is in bronze
    assert len({(r.kafka_partition, r.kafka_offset) for r in rows}) == len(rows)  # each record once


def test_two_workers_through_a_kafka_outage_and_a_sigkill_lose_nothing(stack: Settings, spark) -> None:
    """Kafka stopped mid-load: both workers keep answering 202 from their spools. Both workers
    are then SIGKILLed with full spools; uvicorn starts new workers, which take the dead workers'
    spool slots and drain them once Kafka is back."""
    from infra import supervisor

    with ingest_api_process(stack, 2) as (base, pids):
        assert len(api_workers(pids[0])) == 2
        threads, accepted, statuses = _load(base, seed=5100, per_sender=4)
        time.sleep(1.0)
        supervisor.stop_process(stack, "kafka")
        try:
            for t in threads:
                t.join(timeout=300)
            # each answer is one worker's; a few of them reach both workers
            healths = [httpx.get(f"{base}/v1/health", timeout=10).json() for _ in range(6)]
            killed = api_workers(pids[0])
            assert len(killed) == 2
            for worker in killed:
                worker.kill()  # SIGKILL: no shutdown, the spool segments stay as they are on disk
            psutil.wait_procs(killed, timeout=30)
            deadline = time.monotonic() + 60
            while len([p for p in api_workers(pids[0]) if p.pid not in {k.pid for k in killed}]) < 2:
                assert time.monotonic() < deadline, "uvicorn did not replace the killed workers"
                time.sleep(0.5)
        finally:
            supervisor.start_process(stack, "kafka")
        assert statuses and set(statuses) == {202}  # both workers kept answering while Kafka was down
        assert sum(h["stats"]["spooled"] for h in healths) > 0  # ... from their spools
        with contextlib.suppress(httpx.HTTPError):  # the new workers answer too
            assert httpx.get(f"{base}/v1/health", timeout=30).status_code == 200
        _assert_landed_once(spark, stack, accepted)
