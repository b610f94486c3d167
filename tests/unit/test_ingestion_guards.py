"""Ingestion request guards on their own: body guards (size caps, gzip, JSON depth and errors),
API keys and the rate-limit token buckets."""

from __future__ import annotations

import gzip
import time
import zlib
from typing import Any

import orjson
import pytest
from ingestion_component_support import Clock
from pydantic import SecretStr

from ingestion.auth import ApiKeys
from ingestion.limits import (
    BodyError,
    BodyReader,
    check_content_length,
    gunzip_capped,
    json_depth_exceeds,
    parse_json,
)
from ingestion.rate_limit import RateLimiter, retry_after

# --- limits -------------------------------------------------------------------------------------


def test_content_length_is_checked_before_reading() -> None:
    check_content_length(None, 10)
    check_content_length("10", 10)
    with pytest.raises(BodyError) as info:
        check_content_length("11", 10)
    assert (info.value.status, info.value.reason) == (413, "larger than 10 bytes")
    for bad in ("-1", "1.5", "", "9" * 30):
        with pytest.raises(BodyError) as info:
            check_content_length(bad, 10)
        assert info.value.status == 400


def test_body_reader_counts_while_reading() -> None:
    reader = BodyReader(max_bytes=10, max_decompressed_bytes=100, gzip=False)
    reader.feed(b"12345")
    reader.feed(b"67890")
    with pytest.raises(BodyError) as info:
        reader.feed(b"x")
    assert info.value.status == 413


def test_gzip_is_inflated_incrementally_with_a_cap() -> None:
    data = orjson.dumps([{"a": i} for i in range(1000)])
    packed = gzip.compress(data)
    reader = BodyReader(max_bytes=len(packed), max_decompressed_bytes=len(data), gzip=True)
    for i in range(0, len(packed), 7):  # tiny chunks, as a slow client would send them
        reader.feed(packed[i : i + 7])
    assert reader.finish() == data
    with pytest.raises(BodyError) as info:
        gunzip_capped(packed, max_bytes=len(packed), max_decompressed_bytes=len(data) - 1)
    assert info.value.status == 413


def test_gzip_bomb_costs_only_the_cap() -> None:
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    packed = b"".join(bomb.compress(block) for _ in range(64)) + bomb.flush()  # 64 MiB of zeros
    started = time.perf_counter()
    reader = BodyReader(max_bytes=len(packed), max_decompressed_bytes=1 << 20, gzip=True)
    with pytest.raises(BodyError) as info:
        reader.feed(packed)
    assert info.value.status == 413
    assert reader.size <= 1 << 20  # never held more than the cap
    assert time.perf_counter() - started < 0.5


def test_concatenated_gzip_members_are_one_body() -> None:
    body = gzip.compress(b"[1,") + gzip.compress(b"2]")
    assert gunzip_capped(body, max_bytes=1000, max_decompressed_bytes=1000) == b"[1,2]"
    with pytest.raises(BodyError) as info:
        gunzip_capped(gzip.compress(b"") * 1001, max_bytes=10**6, max_decompressed_bytes=10**6)
    assert "members" in info.value.reason


def test_empty_gzip_body_is_bad() -> None:
    with pytest.raises(BodyError) as info:
        BodyReader(max_bytes=10, max_decompressed_bytes=10, gzip=True).finish()
    assert info.value.reason == "bad gzip stream (empty)"


def test_json_depth_walk() -> None:
    assert not json_depth_exceeds(1, 0)
    assert not json_depth_exceeds({"a": 1, "b": "x"}, 1)
    assert json_depth_exceeds({"a": {"b": 1}}, 1)
    assert not json_depth_exceeds({"a": [{"b": 1}]}, 3)
    assert json_depth_exceeds({"a": [{"b": []}]}, 3)
    deep: Any = []
    for _ in range(1000):
        deep = [deep]
    assert json_depth_exceeds(deep, 8)  # no recursion error


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"a": NaN}', "NaN and Infinity are not valid JSON numbers"),
        ('{"é€": NaN}'.encode(), "NaN and Infinity are not valid JSON numbers"),
        (b"[-Infinity]", "NaN and Infinity are not valid JSON numbers"),
        (b"\xc3\x28", "is not valid UTF-8"),
        (b"", "is empty"),
        (b"{} {}", "invalid JSON (unexpected content after document at line 1 column 4)"),
    ],
)
def test_json_errors_name_the_problem(body: bytes, reason: str) -> None:
    with pytest.raises(BodyError) as info:
        parse_json(body)
    assert info.value.reason == reason
    assert (info.value.status, info.value.field) == (400, "body")


# --- auth ---------------------------------------------------------------------------------------


def test_api_keys_map_to_publishers() -> None:
    keys = ApiKeys({"pub-a": SecretStr("alpha-key"), "pub-b": SecretStr("beta-key"), "off": SecretStr("")})
    assert keys.enabled
    assert keys.publisher("alpha-key") == "pub-a"
    assert keys.publisher("beta-key") == "pub-b"
    for wrong in (None, "", "alpha-ke", "alpha-key ", "x" * 10_000, "beta-keyalpha-key"):
        assert keys.publisher(wrong) is None
    assert not ApiKeys({}).enabled
    assert ApiKeys({}).publisher("anything") is None


def test_every_key_is_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    import ingestion.auth as auth

    compared: list[bytes] = []
    real = auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    keys = ApiKeys({f"p{i}": SecretStr(f"key-{i}") for i in range(5)})
    keys.publisher("key-0")  # matches the first: the other four are compared anyway
    assert len(compared) == 5


# --- rate limits --------------------------------------------------------------------------------


def test_token_buckets_per_ip_and_key() -> None:
    clock = Clock()
    limiter = RateLimiter(per_ip=10, per_ip_burst=20, per_key=5, per_key_burst=8, clock=clock)
    assert limiter.try_take(20, ip="a") is None
    assert limiter.try_take(1, ip="a") == 1
    assert limiter.try_take(20, ip="b") is None  # another IP, its own bucket
    assert limiter.try_take(8, ip="c", key="pub") is None
    assert limiter.try_take(1, ip="d", key="pub") == 1  # key empty, though IP d is fresh
    assert limiter.try_take(1, ip="d") is None  # nothing was taken from d's bucket by the refusal
    clock.t += 0.5
    assert limiter.try_take(5, ip="a") is None
    assert limiter.precheck(ip="a") == 1


def test_requests_over_the_burst_are_charged_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(per_ip=1, per_ip_burst=5, per_key=1, per_key_burst=5, clock=clock)
    assert limiter.try_take(50, ip="a") is None
    assert limiter.try_take(1, ip="a") == 1


def test_retry_after_is_whole_seconds() -> None:
    assert retry_after(0.01) == 1
    assert retry_after(1.2) == 2
    assert retry_after(float("inf")) == 3600


def test_bucket_map_is_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(per_ip=1, per_ip_burst=1, per_key=1, per_key_burst=1, clock=clock)
    limiter.ips.max_buckets = 100
    for i in range(1000):
        limiter.try_take(1, ip=f"10.0.{i // 256}.{i % 256}")
    assert len(limiter.ips) == 100
