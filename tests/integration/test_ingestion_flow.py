"""Ingestion end to end on the running stack: HTTP API -> Kafka -> stream -> Delta bronze.

The API (`ingest-api`) and the stream application (`stream`) run under the stack's supervisord,
exactly as `adclick up` starts them. Each test sends events with fresh ids and checks bronze.
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import psutil
import pytest
from landing import generated, wait_landed

from adclick.contract import now_utc
from adclick.settings import Settings

pytestmark = pytest.mark.integration

TALKINGDATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "talkingdata_train_sample.csv"


def _api(settings: Settings) -> str:
    return f"http://{settings.bind_host}:{settings.ingest_port}"


def test_posted_events_land_in_bronze_exactly(stack: Settings, spark) -> None:
    from traffic.sinks import post_to_api

    events = generated(clicks=60, seed=101)
    single = events[:20]
    for event in single:  # the single-event endpoint
        r = httpx.post(f"{_api(stack)}/v1/events", json=event, timeout=30)
        assert r.status_code == 202, r.text
        assert r.json()["event_id"] == event["event_id"]
    result = post_to_api(events[20:], url=_api(stack))
    assert result.rejected == 0

    ids = {e["event_id"] for e in events}
    rows = wait_landed(spark, stack, ids)
    assert {r.event_id for r in rows} == ids  # set equality: none missing, none foreign
    # one row per Kafka record, and the duplicate hint kept client retries out of Kafka
    assert len({(r.kafka_partition, r.kafka_offset) for r in rows}) == len(rows) == len(ids)


def test_client_retries_answer_duplicate_and_land_once(stack: Settings, spark) -> None:
    events = generated(clicks=30, seed=202)[:500]
    first = httpx.post(f"{_api(stack)}/v1/events/batch", json=events, timeout=60).json()
    again = httpx.post(f"{_api(stack)}/v1/events/batch", json=events, timeout=60).json()
    ids = {e["event_id"] for e in events}
    assert first["accepted"] == len(ids) and first["rejected"] == []
    assert again == {"accepted": 0, "duplicates": len(events), "rejected": []}
    one = httpx.post(f"{_api(stack)}/v1/events", json=events[0], timeout=30).json()
    assert one == {"event_id": events[0]["event_id"], "status": "duplicate"}

    rows = wait_landed(spark, stack, ids)
    assert sorted(r.event_id for r in rows) == sorted(ids)  # exactly one bronze row per event


def test_kafka_down_mid_load_spools_and_delivers_everything(stack: Settings, spark) -> None:
    from infra import supervisor

    batches = [generated(clicks=20, seed=300 + i)[:400] for i in range(12)]
    statuses: list[int] = []
    accepted: set[str] = set()

    def load() -> None:
        for batch in batches:
            r = httpx.post(f"{_api(stack)}/v1/events/batch", json=batch, timeout=60)
            statuses.append(r.status_code)
            if r.status_code == 202:
                rejected = {x["index"] for x in r.json()["rejected"]}
                accepted.update(e["event_id"] for i, e in enumerate(batch) if i not in rejected)
            time.sleep(0.5)

    sender = threading.Thread(target=load)
    sender.start()
    time.sleep(1.0)
    supervisor.stop_process(stack, "kafka")
    try:
        sender.join(timeout=300)
        health = httpx.get(f"{_api(stack)}/v1/health", timeout=10).json()
    finally:
        supervisor.start_process(stack, "kafka")
    assert statuses == [202] * len(batches)  # the API kept answering while Kafka was down
    assert health["spool"]["events"] > 0  # ... from the durable spool

    rows = wait_landed(spark, stack, accepted)
    assert {r.event_id for r in rows} == accepted
    assert len({(r.kafka_partition, r.kafka_offset) for r in rows}) == len(rows)


def test_stream_killed_mid_load_loses_and_repeats_nothing(stack: Settings, spark) -> None:
    from infra import supervisor
    from traffic.sinks import post_to_api

    events = generated(clicks=200, seed=404)
    half = len(events) // 2
    assert post_to_api(events[:half], url=_api(stack)).rejected == 0

    pid = supervisor.process_info(stack)["stream"]["pid"]
    tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    time.sleep(4)  # let a micro-batch be under way
    for proc in tree:
        with contextlib.suppress(psutil.NoSuchProcess):  # a short-lived child may have exited already
            proc.kill()  # SIGKILL: no shutdown hook runs
    psutil.wait_procs(tree, timeout=30)
    assert post_to_api(events[half:], url=_api(stack)).rejected == 0

    ids = {e["event_id"] for e in events}
    rows = wait_landed(spark, stack, ids)  # supervisord restarts the stream app
    assert {r.event_id for r in rows} == ids
    offsets = [(r.kafka_partition, r.kafka_offset) for r in rows]
    assert len(offsets) == len(set(offsets)) == len(ids)


@pytest.mark.skipif(not TALKINGDATA.exists(), reason=f"real data file absent: {TALKINGDATA}")
def test_talkingdata_replay_lands_every_row(stack: Settings, spark) -> None:
    from traffic.replay import ReplayStats, replay_events
    from traffic.sinks import post_to_api

    stats = ReplayStats()
    events = list(replay_events(TALKINGDATA, end=now_utc() - timedelta(minutes=1), stats=stats))
    assert stats.rows == 100_000
    result = post_to_api(events, url=_api(stack))
    assert result.rejected == 0
    assert result.accepted + result.duplicates == len(events) == stats.clicks + stats.conversions
    clicks = {e["event_id"] for e in events if e.get("event_type", "click") == "click"}
    assert len(clicks) == 99_999  # the file's one exact duplicate row is the same event
    rows = wait_landed(spark, stack, {e["event_id"] for e in events})
    assert {r.event_id for r in rows} >= clicks
    assert len(rows) == result.accepted
