"""Ingestion API over ASGI with a fake sink: what is refused (status, message, field), what is accepted.

No Kafka: the app gets :class:`FakeSink` (records kept in memory) and a fixed clock.
"""

from __future__ import annotations

import asyncio
import gzip
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from adclick.privacy import LOCAL_DEV_KEY, MissingHashKeyError, pseudonymise
from adclick.settings import Settings
from ingestion.app import create_app
from ingestion.producer import Record, SendResult
from ingestion.redirect import LOCAL_DEV_REDIRECT_KEY, _b64, _sign, mint_click_url

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


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api_factory(tmp_path: Path, sink: FakeSink, clock: Clock) -> Iterator[Callable[..., Api]]:
    made: list[Api] = []

    def make(*, peer: str = PEER, home: Path | None = None, **overrides: Any) -> Api:
        settings = make_settings(home or tmp_path / f"home{len(made)}", **overrides)
        client = Api(create_app(settings, producer=sink, clock=clock), peer=peer)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def api(api_factory: Callable[..., Api]) -> Api:
    return api_factory()


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


def nested(depth: int) -> dict[str, Any]:
    """An event whose unknown field nests so that the whole event has ``depth`` levels."""
    inner: Any = 1
    for _ in range(depth - 1):
        inner = {"k": inner}
    return event(extra=inner)


def gzip_bomb_multi_member() -> bytes:
    """~1 MiB of gzip expanding to 1 GiB (1,024 concatenated members of 1 MiB of zeros)."""
    return gzip.compress(bytes(1 << 20), 9) * 1024


async def chunks(data: bytes, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    """A streamed body: sent chunked, without Content-Length."""
    for i in range(0, len(data), size):
        yield data[i : i + size]


def forged_token(payload: list[Any], key: bytes = LOCAL_DEV_REDIRECT_KEY) -> str:
    payload_b64 = _b64(orjson.dumps(payload))
    return f"{payload_b64}.{_b64(_sign(key, payload_b64))}"


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


# --- the table of bad inputs --------------------------------------------------------------------


@dataclass
class Bad:
    name: str
    status: int
    error: str
    field: str
    path: str = "/v1/events"
    body: Any = None  # bytes, or an iterator factory for a chunked body
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    method: str = "POST"
    settings: dict[str, Any] = field(default_factory=dict)
    before: int = 0  # identical requests sent first (rate limit)
    retry_after: str | None = None


KEYS = {"api_keys": {"pub-a": "key-a-0123456789", "pub-b": "key-b-9876543210"}}
GOOD = dumps(event())
TAMPERED = good_token()[:-3] + ("AAA" if not good_token().endswith("AAA") else "BBB")

BAD: list[Bad] = [
    Bad("malformed json", 400, "body: invalid JSON (unexpected end of data at line 1 column 14)", "body",
        body=b'{"event_id": '),
    Bad("not an object", 400, "event: must be a JSON object", "event", body=b"[1, 2]"),
    Bad("ad_id is a number", 400, "ad_id: Input should be a valid string", "ad_id",
        body=dumps(event(ad_id=42))),
    Bad("ad_id bad characters", 400, "ad_id: String should match pattern '^[A-Za-z0-9._:\\-]+$'", "ad_id",
        body=dumps(event(ad_id="ad 42/../x"))),
    Bad("missing event_id", 400, "event_id: is required", "event_id", body=dumps(event(event_id=...))),
    Bad("missing ad_id", 400, "ad_id: is required", "ad_id", body=dumps(event(ad_id=...))),
    Bad("missing ts", 400, "ts: is required", "ts", body=dumps(event(ts=...))),
    Bad("bad uuid", 400, "event_id: must be a UUID", "event_id", body=dumps(event(event_id="not-a-uuid"))),
    Bad("uuid is a number", 400, "event_id: must be a UUID string", "event_id",
        body=dumps(event(event_id=12345))),
    Bad("unknown country", 400, "country: must be an ISO 3166-1 alpha-2 country code", "country",
        body=dumps(event(country="ZZ"))),
    Bad("far future ts", 400,
        "ts: is more than the allowed clock skew in the future (2025-03-01T12:05:00+00:00)", "ts",
        body=dumps(event(ts="2025-03-01T13:00:00Z"))),
    Bad("ancient ts", 400, "ts: is older than the late-arrival horizon (2025-02-22T12:00:00+00:00)", "ts",
        body=dumps(event(ts=NOW_MS - 8 * 86_400_000))),
    Bad("ts without zone", 400, "ts: must be an RFC 3339 timestamp with zone (e.g. 2026-01-02T03:04:05Z)",
        "ts", body=dumps(event(ts="2025-03-01T11:59:00"))),
    Bad("ts is a boolean", 400, "ts: must be an RFC 3339 timestamp with zone or epoch milliseconds", "ts",
        body=dumps(event(ts=True))),
    Bad("negative x", 400, "x: Input should be greater than or equal to 0", "x", body=dumps(event(x=-1))),
    Bad("negative y", 400, "y: Input should be greater than or equal to 0", "y", body=dumps(event(y=-0.5))),
    Bad("bad event_type", 400, "event_type: Input should be 'click', 'impression' or 'conversion'",
        "event_type", body=dumps(event(event_type="view"))),
    Bad("huge user_agent", 400, "user_agent: String should have at most 2048 characters", "user_agent",
        body=dumps(event(user_agent="M" * 5000))),
    Bad("huge ad_id", 400, "ad_id: String should have at most 128 characters", "ad_id",
        body=dumps(event(ad_id="a" * 129))),
    Bad("huge ip", 400, "ip: String should have at most 64 characters", "ip", body=dumps(event(ip="1" * 65))),
    Bad("huge unknown field", 400, "note: unknown field too long (name <= 128, value <= 512)", "note",
        body=dumps(event(note="n" * 600))),
    Bad("invalid utf-8", 400, "body: is not valid UTF-8", "body",
        body=b'{"event_id": "' + b"\xff\xfe" + b'", "ad_id": "a", "ts": 1}'),
    Bad("NaN", 400, "body: NaN and Infinity are not valid JSON numbers", "body",
        body=b'{"event_id": "x", "ad_id": "a", "ts": NaN}'),
    Bad("Infinity", 400, "body: NaN and Infinity are not valid JSON numbers", "body",
        body=b'{"x": Infinity}'),
    Bad("-Infinity", 400, "body: NaN and Infinity are not valid JSON numbers", "body",
        body=b'{"x": -Infinity}'),
    Bad("number overflows", 400, "body: number out of range (NaN and Infinity are not valid JSON numbers)",
        "body", body=b'{"x": 1e999}'),
    Bad("nested deeper than the setting", 400, "event: nested deeper than 8 levels", "event",
        body=dumps(nested(9))),
    Bad("nested deeper than orjson allows", 400, "body: JSON nested too deeply", "body",
        body=b"[" * 2000 + b"]" * 2000),
    Bad("empty body", 400, "body: is empty", "body", body=b""),
    Bad("empty batch", 400, "body: empty batch", "body", path="/v1/events/batch", body=b"[]"),
    Bad("empty ndjson batch", 400, "body: empty batch", "body", path="/v1/events/batch", body=b"\n \n\r\n",
        headers=dict(NDJSON)),
    Bad("batch is an object", 400,
        "body: must be a JSON array of events (or NDJSON with Content-Type: application/x-ndjson)", "body",
        path="/v1/events/batch", body=GOOD),
    Bad("batch over max events", 413, "body: more than 100 events in one batch", "body",
        path="/v1/events/batch", body=dumps([event() for _ in range(101)])),
    Bad("ndjson over max events", 413, "body: more than 100 events in one batch", "body",
        path="/v1/events/batch", body=b"\n".join(dumps(event()) for _ in range(101)), headers=dict(NDJSON)),
    Bad("oversize (Content-Length)", 413, "body: larger than 262144 bytes", "body",
        path="/v1/events/batch", body=b"[" + b" " * 300_000 + b"]"),
    Bad("oversize (chunked, no length)", 413, "body: larger than 262144 bytes", "body",
        path="/v1/events/batch", body=lambda: chunks(b"[" + b" " * 300_000 + b"]")),
    Bad("bad Content-Length", 400, "Content-Length: must be a non-negative integer", "Content-Length",
        body=GOOD, headers={**JSON, "Content-Length": "12abc"}),
    Bad("gzip bomb 1 MiB -> 1 GiB", 413, "body: decompresses to more than 33554432 bytes", "body",
        path="/v1/events/batch", body=gzip_bomb_multi_member(), headers={**JSON, "Content-Encoding": "gzip"},
        settings={"max_body_bytes": 5 * 1024 * 1024, "max_decompressed_bytes": 32 * 1024 * 1024}),
    Bad("gzip bomb single member", 413, "body: decompresses to more than 1048576 bytes", "body",
        path="/v1/events/batch", body=gzip.compress(bytes(16 << 20), 1),
        headers={**JSON, "Content-Encoding": "gzip"}),
    Bad("bad gzip stream", 400,
        "body: bad gzip stream (Error -3 while decompressing data: incorrect header check)", "body",
        path="/v1/events/batch", body=b"this is not gzip", headers={**JSON, "Content-Encoding": "gzip"}),
    Bad("truncated gzip stream", 400, "body: bad gzip stream (truncated)", "body", path="/v1/events/batch",
        body=gzip.compress(dumps([event()]))[:-10], headers={**JSON, "Content-Encoding": "gzip"}),
    Bad("gzip with trailing garbage", 400, "body: bad gzip stream (trailing garbage after the gzip data)",
        "body", path="/v1/events/batch", body=gzip.compress(dumps([event()])) + b"junk",
        headers={**JSON, "Content-Encoding": "gzip"}),
    Bad("unsupported encoding", 415, "Content-Encoding: must be gzip or identity", "Content-Encoding",
        body=GOOD, headers={**JSON, "Content-Encoding": "br"}),
    Bad("text/plain", 415, "Content-Type: must be application/json (charset utf-8)", "Content-Type",
        body=GOOD, headers={"Content-Type": "text/plain"}),
    Bad("no content type", 415, "Content-Type: must be application/json (charset utf-8)", "Content-Type",
        body=GOOD, headers={}),
    Bad("form post", 415, "Content-Type: must be application/json (charset utf-8)", "Content-Type",
        body=GOOD, headers={"Content-Type": "application/x-www-form-urlencoded"}),
    Bad("ndjson on the single endpoint", 415, "Content-Type: must be application/json (charset utf-8)",
        "Content-Type", body=GOOD, headers=dict(NDJSON)),
    Bad("latin-1 charset", 415,
        "Content-Type: must be application/json or application/x-ndjson (charset utf-8)", "Content-Type",
        path="/v1/events/batch", body=b"[]", headers={"Content-Type": "application/json; charset=latin-1"}),
    Bad("missing API key", 401, "X-Api-Key: missing or invalid API key", "X-Api-Key", body=GOOD,
        settings=KEYS),
    Bad("wrong API key", 401, "X-Api-Key: missing or invalid API key", "X-Api-Key", body=GOOD,
        headers={**JSON, "X-Api-Key": "key-a-0123456780"}, settings=KEYS),
    Bad("API key of another length", 401, "X-Api-Key: missing or invalid API key", "X-Api-Key", body=GOOD,
        headers={**JSON, "X-Api-Key": "k"}, settings=KEYS),
    Bad("over the IP rate limit", 429, "rate_limit: too many events from this client IP; retry after 1 s",
        "rate_limit", path="/v1/events/batch", body=dumps([event() for _ in range(4)]),
        settings={"rate_limit_per_ip": 2.0, "rate_limit_per_ip_burst": 4}, before=1, retry_after="1"),
    Bad("batch over the remaining tokens", 429,
        "rate_limit: too many events from this client IP or API key; retry after 8 s", "rate_limit",
        path="/v1/events/batch", body=dumps([event() for _ in range(6)]),
        settings={"rate_limit_per_ip": 0.5, "rate_limit_per_ip_burst": 8}, before=1, retry_after="8"),
    Bad("over the key rate limit", 429, "rate_limit: too many events from this API key; retry after 1 s",
        "rate_limit", body=GOOD, headers={**JSON, "X-Api-Key": "key-b-9876543210"},
        settings={**KEYS, "rate_limit_per_key": 1.0, "rate_limit_per_key_burst": 1}, before=1,
        retry_after="1"),
    Bad("tampered redirect token", 400, "token: bad signature", "token", method="GET",
        path=f"/v1/c/{TAMPERED}"),
    Bad("expired redirect token", 400, "token: token expired", "token", method="GET",
        path=f"/v1/c/{good_token(issued_at=NOW_S - 31 * 86_400)}"),
    Bad("token from the future", 400, "token: token issued in the future", "token", method="GET",
        path=f"/v1/c/{good_token(issued_at=NOW_S + 3600)}"),
    Bad("malformed redirect token", 400, "token: malformed token", "token", method="GET",
        path="/v1/c/not-a-token"),
    Bad("token signed with another key", 400, "token: bad signature", "token", method="GET",
        path="/v1/c/" + forged_token([1, "ad-1", None, None, "https://x.example/", int(NOW_S)], key=b"evil")),
    Bad("javascript: destination", 400, "token: destination must be an http or https URL", "token",
        method="GET",
        path="/v1/c/" + forged_token([1, "ad-1", None, None, "javascript:alert(1)", int(NOW_S)])),
    Bad("destination without host", 400, "token: destination must have a host", "token", method="GET",
        path="/v1/c/" + forged_token([1, "ad-1", None, None, "https:///path", int(NOW_S)])),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD, ids=[c.name for c in BAD])
def test_bad_input_is_refused_with_status_and_reason(
    case: Bad, api_factory: Callable[..., Api], sink: FakeSink
) -> None:
    assert len(BAD) >= 30
    api = api_factory(**case.settings)
    body = case.body() if callable(case.body) else case.body
    for _ in range(case.before):
        warmup = api.request(case.method, case.path, content=body, headers=case.headers)
        assert warmup.status_code == 202, warmup.text
    produced_before = len(sink.records)
    started = time.perf_counter()
    response = api.request(case.method, case.path, content=body, headers=case.headers)
    elapsed = time.perf_counter() - started
    assert response.status_code == case.status, response.text
    payload = response.json()
    assert payload["error"] == case.error
    assert payload["field"] == case.field
    assert response.headers.get("Retry-After") == case.retry_after
    assert "location" not in response.headers  # never a redirect on a refused token
    assert RAW_USER not in response.text
    assert RAW_IP not in response.text
    assert elapsed < 2.0  # e.g. the gzip bomb is cut off, not inflated
    assert len(sink.records) == produced_before  # nothing of a refused request is produced


# --- accepted requests --------------------------------------------------------------------------


def test_single_event_is_accepted_pseudonymised_and_keyed_by_ad(api: Api, sink: FakeSink) -> None:
    body = event(country=None, x=10, extra_flag=True)
    response = api.post(
        "/v1/events", content=dumps(body), headers={**JSON, "CloudFront-Viewer-Country": "de"}
    )
    assert response.status_code == 202
    assert response.json() == {"event_id": body["event_id"], "status": "accepted"}
    assert len(sink.records) == 1
    key, value = sink.records[0]
    assert key == b"ad-00042"
    produced = orjson.loads(value)
    assert produced["country"] == "DE"  # from the CDN edge header
    assert produced["region"] == "eu"
    assert produced["user_key"] == pseudonymise(LOCAL_DEV_KEY, RAW_USER, domain="user")
    assert produced["ip_key"] == pseudonymise(LOCAL_DEV_KEY, RAW_IP, domain="ip")
    assert produced["received_at"] == NOW_MS
    assert produced["ts"] == NOW_MS - 60_000
    assert produced["attributes"] == {"extra_flag": "true"}
    assert RAW_USER.encode() not in value
    assert RAW_IP.encode() not in value


def test_event_country_wins_over_edge_header(api: Api, sink: FakeSink) -> None:
    api.post(
        "/v1/events", content=dumps(event(country="US")), headers={**JSON, "CloudFront-Viewer-Country": "DE"}
    )
    assert sink.values()[0]["country"] == "US"


def test_charset_parameter_and_gzip_are_accepted(api: Api, sink: FakeSink) -> None:
    headers = {"Content-Type": "application/json; charset=UTF-8", "Content-Encoding": "gzip"}
    response = api.post("/v1/events", content=gzip.compress(dumps(event())), headers=headers)
    assert response.status_code == 202, response.text
    assert len(sink.records) == 1


def test_batch_json_array_with_one_bad_event_keeps_the_neighbours(api: Api, sink: FakeSink) -> None:
    batch = [event(), event(ad_id=7), event(), {"nope": 1}, event(country="XX")]
    response = api.post("/v1/events/batch", content=dumps(batch), headers=JSON)
    assert response.status_code == 202
    assert response.json() == {
        "accepted": 2,
        "duplicates": 0,
        "rejected": [
            {"index": 1, "error": "ad_id: Input should be a valid string"},
            {"index": 3, "error": "event_id: is required"},
            {"index": 4, "error": "country: must be an ISO 3166-1 alpha-2 country code"},
        ],
    }
    assert [v["event_id"] for v in sink.values()] == [batch[0]["event_id"], batch[2]["event_id"]]


def test_ndjson_with_an_unparseable_line_is_partially_accepted(api: Api, sink: FakeSink) -> None:
    first, third = event(), event()
    body = dumps(first) + b"\n" + b'{"event_id": oops}\n' + dumps(third) + b"\n\n" + b"[1]\n"
    response = api.post("/v1/events/batch", content=body, headers=NDJSON)
    assert response.status_code == 202
    payload = response.json()
    assert payload["accepted"] == 2
    assert payload["rejected"] == [
        {
            "index": 1,
            "error": "body: invalid JSON (unexpected character, expected a JSON value at line 1 column 14)",
        },
        {"index": 4, "error": "event: must be a JSON object"},
    ]
    assert [v["event_id"] for v in sink.values()] == [first["event_id"], third["event_id"]]


def test_gzip_ndjson_batch(api: Api, sink: FakeSink) -> None:
    body = gzip.compress(b"\r\n".join(dumps(event()) for _ in range(20)))
    response = api.post("/v1/events/batch", content=body, headers={**NDJSON, "Content-Encoding": "gzip"})
    assert response.json() == {"accepted": 20, "duplicates": 0, "rejected": []}
    assert len(sink.records) == 20


def test_large_batch_is_sent_in_one_call(api_factory: Callable[..., Api], sink: FakeSink) -> None:
    api = api_factory(max_batch_events=10_000, max_body_bytes=5 << 20, max_decompressed_bytes=32 << 20)
    batch = [event(ad_id=f"ad-{i % 50}") for i in range(1000)]
    response = api.post("/v1/events/batch", content=dumps(batch), headers=JSON)
    assert response.json() == {"accepted": 1000, "duplicates": 0, "rejected": []}
    assert sink.calls == 1  # send all, then wait for all
    assert [v["event_id"] for v in sink.values()] == [e["event_id"] for e in batch]


def test_api_key_of_each_publisher_is_accepted(api_factory: Callable[..., Api], sink: FakeSink) -> None:
    api = api_factory(**KEYS)
    for key in ("key-a-0123456789", "key-b-9876543210"):
        response = api.post("/v1/events", content=dumps(event()), headers={**JSON, "X-Api-Key": key})
        assert response.status_code == 202
    assert len(sink.records) == 2


def test_rate_limit_counts_events_and_refills(
    api_factory: Callable[..., Api], sink: FakeSink, clock: Clock
) -> None:
    api = api_factory(rate_limit_per_ip=10.0, rate_limit_per_ip_burst=20)
    ok = api.post("/v1/events/batch", content=dumps([event() for _ in range(15)]), headers=JSON)
    assert ok.status_code == 202
    refused = api.post("/v1/events/batch", content=dumps([event() for _ in range(10)]), headers=JSON)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"  # 5 tokens missing at 10/s
    clock.t += 1.0
    again = api.post("/v1/events/batch", content=dumps([event() for _ in range(10)]), headers=JSON)
    assert again.status_code == 202
    assert len(sink.records) == 25


def test_rate_limit_is_per_client_ip(api_factory: Callable[..., Api], tmp_path: Path) -> None:
    first = api_factory(
        rate_limit_per_ip=1.0, rate_limit_per_ip_burst=1, home=tmp_path / "a", peer="192.0.2.1"
    )
    assert first.post("/v1/events", content=dumps(event()), headers=JSON).status_code == 202
    assert first.post("/v1/events", content=dumps(event()), headers=JSON).status_code == 429
    # Same app, another peer: its own bucket.
    other = Api(first.app, peer="192.0.2.2")
    try:
        assert other.post("/v1/events", content=dumps(event()), headers=JSON).status_code == 202
    finally:
        other.loop.run_until_complete(other.http.aclose())
        other.loop.close()


def test_forwarded_for_is_only_believed_from_trusted_proxies(
    api_factory: Callable[..., Api], tmp_path: Path, sink: FakeSink
) -> None:
    token = good_token()
    untrusted = api_factory(home=tmp_path / "u")
    untrusted.get(f"/v1/c/{token}", headers={"X-Forwarded-For": "192.0.2.50"})
    trusted = api_factory(home=tmp_path / "t", trusted_proxies=[PEER])
    trusted.get(f"/v1/c/{token}", headers={"X-Forwarded-For": "192.0.2.50, 10.9.9.9"})
    ip_keys = [v["ip_key"] for v in sink.values()]
    assert ip_keys == [
        pseudonymise(LOCAL_DEV_KEY, PEER, domain="ip"),
        pseudonymise(LOCAL_DEV_KEY, "10.9.9.9", domain="ip"),
    ]


# --- duplicate hint -----------------------------------------------------------------------------


def test_same_event_id_twice_is_a_duplicate_and_produced_once(api: Api, sink: FakeSink) -> None:
    body = dumps(event())
    first = api.post("/v1/events", content=body, headers=JSON)
    second = api.post("/v1/events", content=body, headers=JSON)
    assert first.json()["status"] == "accepted"
    assert second.json()["status"] == "duplicate"
    assert second.status_code == 202
    assert len(sink.records) == 1


def test_repeated_event_id_within_a_batch_and_across_batches(api: Api, sink: FakeSink) -> None:
    a, b = event(), event()
    response = api.post("/v1/events/batch", content=dumps([a, b, a, a]), headers=JSON)
    assert response.json() == {"accepted": 2, "duplicates": 2, "rejected": []}
    retry = api.post("/v1/events/batch", content=dumps([a, b, event()]), headers=JSON)
    assert retry.json() == {"accepted": 1, "duplicates": 2, "rejected": []}
    assert len(sink.records) == 3


def test_duplicate_hint_forgets_after_the_window(
    api_factory: Callable[..., Api], sink: FakeSink, clock: Clock
) -> None:
    api = api_factory(dedup_window_seconds=60)
    body = dumps(event())
    assert api.post("/v1/events", content=body, headers=JSON).json()["status"] == "accepted"
    clock.t += 59
    assert api.post("/v1/events", content=body, headers=JSON).json()["status"] == "duplicate"
    clock.t += 31 + 60  # beyond 1.5 windows: the filter holding it has been dropped
    # The event's ts must still be inside the accepted range for the new clock.
    assert api.post("/v1/events", content=body, headers=JSON).json()["status"] == "accepted"
    assert len(sink.records) == 2


def test_an_invalid_event_does_not_poison_its_id(api: Api, sink: FakeSink) -> None:
    body = event()
    bad = dict(body, country="XX")
    assert api.post("/v1/events", content=dumps(bad), headers=JSON).status_code == 400
    assert api.post("/v1/events", content=dumps(body), headers=JSON).json()["status"] == "accepted"


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


# --- hot keys through the app -------------------------------------------------------------------


def test_hot_ad_gets_salted_keys_and_cold_ad_keeps_its_id(
    api_factory: Callable[..., Api], sink: FakeSink
) -> None:
    api = api_factory(max_batch_events=2_000, max_body_bytes=2 << 20, max_decompressed_bytes=4 << 20)
    batch = [event(ad_id="ad-hot") if i % 2 else event(ad_id=f"ad-cold-{i % 100}") for i in range(1500)]
    api.post("/v1/events/batch", content=dumps(batch), headers=JSON)
    sink.records.clear()
    later = [event(ad_id="ad-hot") for _ in range(200)] + [event(ad_id="ad-cold-1")]
    api.post("/v1/events/batch", content=dumps(later), headers=JSON)
    hot_keys = {k for k, v in sink.records if orjson.loads(v)["ad_id"] == "ad-hot"}
    assert len(hot_keys) >= 4
    assert all(k.startswith(b"ad-hot#") and 0 <= int(k.split(b"#")[1]) < 8 for k in hot_keys)
    cold = [k for k, v in sink.records if orjson.loads(v)["ad_id"] == "ad-cold-1"]
    assert cold == [b"ad-cold-1"]


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


# --- click redirect -----------------------------------------------------------------------------


def test_click_redirect_records_a_click_and_redirects(api: Api, sink: FakeSink) -> None:
    response = api.get(
        f"/v1/c/{good_token()}",
        headers={
            "CloudFront-Viewer-Country": "FR",
            "User-Agent": "Mozilla/5.0 test",
            "Referer": "https://news.example/",
            "Cookie": f"adclick_uid={RAW_USER}",
        },
        follow_redirects=False,
    )
    assert response.status_code == 302
    assert response.headers["location"] == "https://shop.example.com/landing?x=1"
    assert response.headers["cache-control"] == "no-store"
    [click] = sink.values()
    uuid.UUID(click["event_id"])
    assert click["event_type"] == "click"
    assert (click["ad_id"], click["campaign_id"], click["placement_id"]) == ("ad-00042", "cmp-7", "pl-1")
    assert click["ts"] == NOW_MS
    assert click["country"] == "FR"
    assert click["user_key"] == pseudonymise(LOCAL_DEV_KEY, RAW_USER, domain="user")
    assert click["ip_key"] == pseudonymise(LOCAL_DEV_KEY, PEER, domain="ip")
    assert click["referrer"] == "https://news.example/"
    assert RAW_USER.encode() not in sink.records[0][1]


def test_click_without_cookie_has_no_user(api: Api, sink: FakeSink) -> None:
    response = api.get(f"/v1/c/{good_token()}", follow_redirects=False)
    assert response.status_code == 302
    assert "user_key" not in sink.values()[0]


def test_every_click_is_a_new_event(api: Api, sink: FakeSink) -> None:
    token = good_token()
    for _ in range(3):
        assert api.get(f"/v1/c/{token}", follow_redirects=False).status_code == 302
    assert len({v["event_id"] for v in sink.values()}) == 3


# --- docs ---------------------------------------------------------------------------------------


def test_openapi_describes_the_endpoints(api: Api) -> None:
    spec = api.get("/openapi.json").json()
    assert {"/v1/events", "/v1/events/batch", "/v1/health", "/v1/c/{token}"} <= set(spec["paths"])
    single = spec["paths"]["/v1/events"]["post"]
    assert single["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/IncomingEvent"
    }
    assert {"202", "400", "401", "413", "415", "429", "503"} <= set(single["responses"])
    batch = spec["paths"]["/v1/events/batch"]["post"]
    assert "application/x-ndjson" in batch["requestBody"]["content"]
    assert "event_id" in spec["components"]["schemas"]["IncomingEvent"]["required"]
    assert api.get("/docs").status_code == 200


def test_no_trailing_slash_redirect_echoing_the_host(api: Api) -> None:
    response = api.get(f"/v1/c/{good_token()}/", headers={"Host": "evil.example"}, follow_redirects=False)
    assert response.status_code == 404
    assert "location" not in response.headers
