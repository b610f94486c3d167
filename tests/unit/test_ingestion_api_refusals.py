"""Ingestion API over ASGI: the table of refused requests, each with its status, message and field.

No Kafka: the app gets a fake sink (``ingestion_api_support``) and a fixed clock. Every case also
checks that nothing of the refused request is produced, that no raw user id or IP is echoed and
that a refused click token never redirects.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from ingestion_api_support import (
    JSON,
    KEYS,
    NDJSON,
    NOW_MS,
    NOW_S,
    RAW_IP,
    RAW_USER,
    Api,
    FakeSink,
    dumps,
    event,
    good_token,
)

from ingestion.redirect import LOCAL_DEV_REDIRECT_KEY, _b64, _sign

pytest_plugins = ("ingestion_api_fixtures",)


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
