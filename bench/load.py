"""Load-generation helpers shared by the ingestion benchmarks (not a benchmark itself)."""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from adclick.contract import now_utc
from adclick.settings import Settings


def events(n: int, *, seed: int) -> list[dict[str, Any]]:
    """``n`` distinct, valid events (recent event times, unique ids), as clients would send them."""
    from traffic.generator import GeneratorConfig, generate

    config = GeneratorConfig(
        start=now_utc() - timedelta(hours=2),
        duration=timedelta(hours=1),
        impressions_per_second=max(1.0, n / 3600 * 1.2),
        seed=seed,
        duplicate_rate=0.0,
    )
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for event in generate(config):
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            out.append(event)
            if len(out) == n:
                return out
    raise RuntimeError(f"generator gave only {len(out)} distinct events, wanted {n}")


def free_port(host: str) -> int:
    """A TCP port nothing listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def api_workers(parent_pid: int) -> list:
    """The worker processes (psutil) of a multi-worker uvicorn parent (not its resource tracker)."""
    import psutil

    return [
        child
        for child in psutil.Process(parent_pid).children()
        if any("spawn_main" in part for part in child.cmdline())
    ]


@contextlib.contextmanager
def ingest_api_process(settings: Settings, workers: int) -> Iterator[tuple[str, list[int]]]:
    """An ingestion API process with ``workers`` workers on a free port, wired like the stack's
    (same settings through the environment); yields (base URL, the PIDs of parent and workers).
    Stopped with SIGTERM afterwards (SIGKILL if it does not stop within 30 s)."""
    import httpx
    import psutil

    from infra.app_services import app_env

    port = free_port(settings.bind_host)
    env = {**os.environ, **app_env(settings), "ADCLICK_INGEST_WORKERS": str(workers)}
    cmd = [sys.executable, "-m", "cli", "ingest-api", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://{settings.bind_host}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                up = httpx.get(f"{base}/v1/health", timeout=2).status_code == 200
                if up and (workers == 1 or len(api_workers(proc.pid)) >= workers):
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"the benchmark's ingestion API did not start ({' '.join(cmd)})")
            time.sleep(0.5)
        yield base, [proc.pid, *(c.pid for c in psutil.Process(proc.pid).children(recursive=True))]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@contextlib.contextmanager
def private_stream(settings: Settings, name: str, per_batch: int) -> Iterator[Settings]:
    """The stack's wiring with a private events topic and a private lake and checkpoints (under
    the data directory) for one stream benchmark, reading ``per_batch`` records a micro-batch;
    the topic and the files are deleted afterwards."""
    import shutil
    import tempfile
    import uuid
    from pathlib import Path

    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"bench.{name}.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    admin.create_topics([NewTopic(topic, num_partitions=settings.topic_partitions, replication_factor=1)])
    work = Path(tempfile.mkdtemp(prefix=f"bench-{name}-", dir=settings.home))
    try:
        yield settings.model_copy(
            update={
                "home": work,
                "lake_root": (work / "lake").as_uri(),
                "topic_events": topic,
                "stream_max_offsets_per_trigger": per_batch,
            }
        )
    finally:
        admin.delete_topics([topic])
        admin.close()
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def paused(settings: Settings, program: str) -> Iterator[bool]:
    """Stop a supervised program for the duration (restarting it after); yields whether it ran.

    The ingestion benchmarks pause the stream application: on this 2-core machine its Spark
    driver would otherwise land the benchmark's own events on the same cores as the API.
    """
    from infra import supervisor

    running = supervisor.process_info(settings).get(program, {}).get("statename") == "RUNNING"
    if running:
        supervisor.stop_process(settings, program)
    try:
        yield running
    finally:
        if running:
            supervisor.start_process(settings, program)


def steady_rate(progress: list[dict]) -> tuple[float, list[dict]]:
    """Rows/s of a streaming query's micro-batches after the first (which pays for JIT warm-up and
    the query's start), from its progress reports; and each batch's durations, for the record."""
    later = [p for p in progress if p["batchId"] > 0 and p["numInputRows"]]
    rows = sum(p["numInputRows"] for p in later)
    seconds = sum(p["durationMs"]["triggerExecution"] for p in later) / 1000
    batches = [{"batch": p["batchId"], "rows": p["numInputRows"], **p["durationMs"]} for p in progress]
    return (rows / seconds if seconds else math.nan), batches


def wait_caught_up(settings: Settings, timeout_s: float = 300, *, required: bool = False) -> bool:
    """Wait until the stack's stream application has caught up with Kafka (heartbeat fresh, lag
    0); False after ``timeout_s`` without, or a RuntimeError when ``required``."""
    from adclick.stream_status import is_fresh, lag

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if is_fresh(settings) and lag(settings) == 0:
            return True
        time.sleep(2)
    if required:
        raise RuntimeError(f"the stream did not catch up within {timeout_s:.0f} s")
    return False
