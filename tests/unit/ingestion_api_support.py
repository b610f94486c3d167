"""Shared by the ingestion API tests: a fake sink, a fixed clock, an ASGI client, settings, events.

No Kafka: the app gets :class:`FakeSink` (records kept in memory) and a fixed :class:`Clock`.
The fixtures built on these are in ``ingestion_api_fixtures`` (a pytest plugin).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from adclick.settings import Settings
from ingestion.producer import Record, SendResult
from ingestion.redirect import mint_click_url

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NOW_S = NOW.timestamp()
NOW_MS = int(NOW_S * 1000)
RAW_USER = "alice-raw-user-7731"
RAW_IP = "198.51.100.77"
PEER = "203.0.113.9"
JSON = {"Content-Type": "application/json"}
NDJSON = {"Content-Type": "application/x-ndjson"}


class FakeSink:
    """In-memory EventSink: ``fail`` makes every send fail (Kafka down)."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.calls = 0
        self.fail = False

    def send_many(self, records: Any, timeout: float) -> list[SendResult]:
        self.calls += 1
        if self.fail:
            return [ConnectionError("kafka down")] * len(records)
        self.records.extend(records)
        return [None] * len(records)

    def reachable(self) -> bool:
        return not self.fail

    def close(self) -> None:
        pass

    def values(self) -> list[dict[str, Any]]:
        return [orjson.loads(v) for _, v in self.records]


class Clock:
    def __init__(self, t: float = NOW_S) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Api:
    """Synchronous calls into the ASGI app (one event loop per client)."""

    def __init__(self, app: FastAPI, peer: str = PEER) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(peer, 50000)), base_url="http://ingest"
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.http.request(method, path, **kwargs))

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def close(self) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.close()
        self.app.state.ingestor.close()


def make_settings(home: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "home": home,
        "max_body_bytes": 256 * 1024,
        "max_decompressed_bytes": 1024 * 1024,
        "max_batch_events": 100,
        "max_json_depth": 8,
        "rate_limit_per_ip": 1e6,
        "rate_limit_per_ip_burst": 1_000_000,
        "rate_limit_per_key": 1e6,
        "rate_limit_per_key_burst": 1_000_000,
        "spool_fsync": "never",
        "dedup_expected_rate": 100,
        "produce_timeout_seconds": 1.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def event(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "ad_id": "ad-00042",
        "ts": "2025-03-01T11:59:00Z",
        "user_id": RAW_USER,
        "ip": RAW_IP,
        "campaign_id": "cmp-7",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def good_token(**overrides: Any) -> str:
    url = mint_click_url(
        make_settings(Path("/nonexistent")),
        "http://ingest",
        overrides.get("ad_id", "ad-00042"),
        overrides.get("campaign_id", "cmp-7"),
        overrides.get("placement_id", "pl-1"),
        overrides.get("destination", "https://shop.example.com/landing?x=1"),
        overrides.get("issued_at", NOW_S - 60),
    )
    return url.rsplit("/", 1)[1]


KEYS = {"api_keys": {"pub-a": "key-a-0123456789", "pub-b": "key-b-9876543210"}}
