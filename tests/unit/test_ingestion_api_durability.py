"""Ingestion API over ASGI: durability (Kafka down -> spool -> drained back, 503 only when the
spool is full, health, the drainer thread in the lifespan) and privacy (raw user ids and IPs
reach no record, spool segment or error; no start without a hash key outside local/test).

No Kafka: the app gets a fake sink (``ingestion_api_support``) whose ``fail`` flag plays Kafka
down, and a fixed clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from ingestion_api_support import (
    JSON,
    PEER,
    RAW_IP,
    RAW_USER,
    Api,
    Clock,
    FakeSink,
    dumps,
    event,
    good_token,
    make_settings,
)

from adclick.privacy import MissingHashKeyError
from ingestion.app import create_app

pytest_plugins = ("ingestion_api_fixtures",)


# --- durability through the app -----------------------------------------------------------------


def test_kafka_down_spools_and_still_answers_202(api: Api, sink: FakeSink) -> None:
    sink.fail = True
    batch = [event() for _ in range(5)]
    response = api.post("/v1/events/batch", content=dumps(batch), headers=JSON)
    assert response.json() == {"accepted": 5, "duplicates": 0, "rejected": []}
    ingestor = api.app.state.ingestor
    assert ingestor.spool.depth().events == 5
    assert not ingestor.state.up
    # While down, requests go straight to the spool (no produce attempt each time).
    calls = sink.calls
    api.post("/v1/events", content=dumps(event()), headers=JSON)
    assert sink.calls == calls
    assert ingestor.spool.depth().events == 6
    health = api.get("/v1/health")
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert health.json()["kafka"]["reachable"] is False
    assert health.json()["spool"]["events"] == 6
    # Kafka back: the drainer sends the spool in order and the sink is used directly again.
    sink.fail = False
    assert ingestor.drainer.drain_once() == 6
    assert [v["event_id"] for v in sink.values()][:5] == [e["event_id"] for e in batch]
    assert ingestor.spool.depth().events == 0
    assert ingestor.state.up
    assert api.get("/v1/health").json()["status"] == "ok"


def test_spool_full_and_kafka_down_is_503(api_factory: Callable[..., Api], sink: FakeSink) -> None:
    api = api_factory(spool_max_bytes=2_000)
    sink.fail = True
    assert api.post("/v1/events", content=dumps(event()), headers=JSON).status_code == 202
    body = dumps([event() for _ in range(20)])
    response = api.post("/v1/events/batch", content=body, headers=JSON)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json()["field"] == "service"
    # Not kept, so not remembered: the retry after recovery is accepted, not a "duplicate".
    sink.fail = False
    api.app.state.ingestor.drainer.drain_once()
    retry = api.post("/v1/events/batch", content=body, headers=JSON)
    assert retry.json()["accepted"] == 20


def test_health_is_503_when_kafka_down_and_spool_full(
    api_factory: Callable[..., Api], sink: FakeSink
) -> None:
    api = api_factory(spool_max_bytes=4_000)
    sink.fail = True
    assert api.post("/v1/events", content=dumps(event()), headers=JSON).status_code == 202
    health = api.get("/v1/health")
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"


def test_lifespan_runs_the_drainer_thread(tmp_path: Path, sink: FakeSink, clock: Clock) -> None:
    settings = make_settings(tmp_path)
    app = create_app(settings, producer=sink, clock=clock)
    app.state.ingestor.drainer.idle_seconds = 0.05

    async def scenario() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=(PEER, 1))
            async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
                sink.fail = True
                response = await http.post(
                    "/v1/events/batch", content=dumps([event() for _ in range(3)]), headers=JSON
                )
                assert response.status_code == 202
                sink.fail = False
                for _ in range(200):
                    if len(sink.records) == 3:
                        break
                    await asyncio.sleep(0.02)
        assert len(sink.records) == 3
        assert app.state.ingestor.spool.depth().events == 0

    asyncio.run(scenario())


# --- privacy ------------------------------------------------------------------------------------


def test_raw_user_and_ip_never_reach_records_spool_or_errors(
    api: Api, sink: FakeSink, tmp_path: Path
) -> None:
    api.post("/v1/events", content=dumps(event()), headers=JSON)
    sink.fail = True
    api.post("/v1/events/batch", content=dumps([event(), event(country="XX")]), headers=JSON)
    errors = [
        api.post("/v1/events", content=dumps(event(user_id=RAW_USER * 200)), headers=JSON),
        api.post("/v1/events", content=dumps(event(ip=RAW_IP * 10)), headers=JSON),
        api.post("/v1/events", content=dumps(event(user_id=12)), headers=JSON),
        api.post("/v1/events/batch", content=dumps([event(ip=[RAW_IP])]), headers=JSON),
    ]
    assert [r.status_code for r in errors] == [400, 400, 400, 202]
    for response in errors:
        assert RAW_USER not in response.text and RAW_IP not in response.text
    spooled = b"".join(p.read_bytes() for p in (tmp_path / "home0" / "spool").rglob("seg-*.log"))
    assert spooled  # the batch went to the spool
    produced = b"".join(v for _, v in sink.records)
    for blob in (spooled, produced):
        assert RAW_USER.encode() not in blob
        assert RAW_IP.encode() not in blob


def test_app_refuses_to_start_without_hash_key_outside_local(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, env="prod")
    with pytest.raises(MissingHashKeyError):
        create_app(settings, producer=FakeSink())


def test_app_with_hash_key_in_prod_disables_redirects_without_redirect_key(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, env="prod", hash_key="s3cret-key")
    api = Api(create_app(settings, producer=FakeSink(), clock=Clock()))
    try:
        response = api.get(f"/v1/c/{good_token()}")
        assert response.status_code == 404
        assert "location" not in response.headers
    finally:
        api.close()
