"""speed_freshness: seconds from the ingestion API's 202 to the event's minute being visible in
``speed.ad_clicks_minute`` (committed to Delta, so any reader sees it), at a steady offered load.

Method, on the running stack as deployed (API -> Kafka -> the stream application running bronze
landing and the speed layer together): background events with current event times are posted in
batches at ``BENCH_FRESHNESS_RATE`` events/s (5,000 by default); once a second one probe click
with an ad id of its own is posted alone and its 202 time noted. A watcher follows the speed
table's Delta log: for each new commit it reads the ``ad_id`` column of the files the commit
added and stamps each probe found with the commit's timestamp. Freshness = commit time - 202
time. There is no peer engine for this figure; the trigger interval (the floor a micro-batch
design cannot beat) and the stream's micro-batch durations are reported beside it.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import unquote

import orjson

from adclick.settings import Settings
from bench.load import events, percentile
from bench.result import write_result

RATE = float(os.environ.get("BENCH_FRESHNESS_RATE", "5000"))
SECONDS = float(os.environ.get("BENCH_FRESHNESS_SECONDS", "60"))
WARMUP = float(os.environ.get("BENCH_FRESHNESS_WARMUP", "20"))
BATCH = 250


class LogWatcher(threading.Thread):
    """Follows a Delta table's log and stamps probe ad ids with the commit that made them visible."""

    def __init__(self, table_dir: Path, prefix: str) -> None:
        super().__init__(daemon=True)
        self.table_dir, self.prefix = table_dir, prefix
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        log = table_dir / "_delta_log"
        self.next_version = 1 + max((int(p.stem) for p in log.glob("*.json")), default=-1)

    def _read_commit(self, path: Path) -> None:
        import pyarrow.parquet as pq

        actions = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        info = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
        at = info.get("timestamp", path.stat().st_mtime * 1000) / 1000
        for action in actions:
            if "add" not in action:
                continue
            ads = pq.read_table(self.table_dir / unquote(action["add"]["path"]), columns=["ad_id"])
            for ad in set(ads.column("ad_id").to_pylist()):
                if ad and ad.startswith(self.prefix) and ad not in self.seen:
                    self.seen[ad] = at

    def run(self) -> None:
        while not self.stop.is_set():
            path = self.table_dir / "_delta_log" / f"{self.next_version:020d}.json"
            if path.exists():
                time.sleep(0.05)  # the commit file is written atomically; its data files already exist
                self._read_commit(path)
                self.next_version += 1
                continue
            time.sleep(0.1)


async def _load(
    url: str, background: list[dict], prefix: str, seconds: float
) -> tuple[dict[str, float], int]:
    """Offer ``RATE`` events/s for ``seconds``; returns the probes' 202 times and the error count."""
    import aiohttp

    sent_at: dict[str, float] = {}
    errors = 0
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def post(path: str, body: bytes, probe: str | None = None) -> None:
            nonlocal errors
            try:
                async with session.post(url + path, data=body, headers=headers) as r:
                    await r.read()
                    if r.status != 202:
                        errors += 1
                    elif probe:
                        sent_at[probe] = time.time()
            except (aiohttp.ClientError, TimeoutError):
                errors += 1

        start = time.perf_counter()
        tasks, i, tick = [], 0, 0
        while (elapsed := time.perf_counter() - start) < seconds:
            now_ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
            chunk = [{**background[(i + k) % len(background)], "ts": now_ts} for k in range(BATCH)]
            for event in chunk:
                event["event_id"] = str(uuid.uuid4())
            i += BATCH
            tasks.append(asyncio.create_task(post("/v1/events/batch", orjson.dumps(chunk))))
            if elapsed >= tick:
                probe = f"{prefix}{tick:05d}"
                body = orjson.dumps({"event_id": str(uuid.uuid4()), "ad_id": probe, "ts": now_ts})
                tasks.append(asyncio.create_task(post("/v1/events", body, probe)))
                tick += 1
            due = start + i / RATE
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        await asyncio.gather(*tasks)
    return sent_at, errors


def run(settings: Settings, context: dict | None = None) -> dict:
    from adclick.catalog import table
    from adclick.stream_status import read as read_heartbeat

    url = f"http://{settings.bind_host}:{settings.ingest_port}"
    table_dir = Path(table("speed.ad_clicks_minute").path(settings).removeprefix("file://"))
    background = events(20_000, seed=9201)
    deadline = time.monotonic() + 300
    while not (table_dir / "_delta_log").is_dir():  # a fresh stack: the first batch creates it
        asyncio.run(_load(url, background, "warm-", 2))
        if time.monotonic() > deadline:
            raise RuntimeError(f"{table_dir} never appeared: is the stream application running?")
    asyncio.run(_load(url, background, "warm-", WARMUP))
    prefix = f"probe-{uuid.uuid4().hex[:6]}-"
    watcher = LogWatcher(table_dir, prefix)
    watcher.start()
    sent_at, errors = asyncio.run(_load(url, background, prefix, SECONDS))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not set(sent_at) <= set(watcher.seen):
        time.sleep(0.5)
    watcher.stop.set()
    delays = sorted(watcher.seen[p] - t for p, t in sent_at.items() if p in watcher.seen)
    missing = len(sent_at) - len(delays)
    p50, p95 = percentile(delays, 50), percentile(delays, 95)
    beat = read_heartbeat(settings) or {}
    return write_result(
        "speed_freshness",
        metric="seconds from the API's 202 to the event's minute committed in speed.ad_clicks_minute",
        value=p95,
        unit="s",
        peer={
            "name": "trigger interval (a micro-batch design's floor)",
            "value": settings.stream_trigger_seconds,
        },
        params={"offered_events_per_s": RATE, "seconds": SECONDS, "probes": len(sent_at), "batch": BATCH},
        summary=(
            f"p50 {p50:.1f} s, p95 {p95:.1f} s at {RATE:,.0f} events/s offered "
            f"({len(delays)} probes, {missing} not visible within 120 s, {errors} HTTP errors)"
        ),
        p50_s=round(p50, 2),
        p95_s=round(p95, 2),
        max_s=round(delays[-1], 2) if delays else None,
        probes_missing=missing,
        http_errors=errors,
        stream_heartbeat=beat,
    )
