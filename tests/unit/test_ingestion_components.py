"""Ingestion building blocks on their own: body guards, auth, rate limits, duplicate hint, hot keys,
Kafka sink (with a fake kafka-python producer), redirect tokens, CLI wiring."""

from __future__ import annotations

import argparse
import gzip
import threading
import time
import uuid
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest
from pydantic import SecretStr

from adclick.settings import Settings
from ingestion.auth import ApiKeys
from ingestion.commands import add_ingest_parser
from ingestion.dedup_hint import DuplicateHint, bloom_parameters
from ingestion.hot_keys import CountMinSketch, HotKeys, salted_key
from ingestion.limits import (
    BodyError,
    BodyReader,
    check_content_length,
    gunzip_capped,
    json_depth_exceeds,
    parse_json,
)
from ingestion.producer import KafkaSink, SinkUnavailable, producer_config
from ingestion.rate_limit import RateLimiter, retry_after
from ingestion.redirect import (
    LOCAL_DEV_REDIRECT_KEY,
    MissingRedirectKeyError,
    TokenError,
    check_destination,
    mint_click_url,
    mint_token,
    redirect_key,
    verify_token,
)
from ingestion.server import uvicorn_options


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"env": "test", "home": Path("/tmp/adclick-unit-unused")}
    values.update(overrides)
    return Settings(_env_file=None, **values)


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


# --- duplicate hint -----------------------------------------------------------------------------


def test_bloom_parameters_follow_the_formula() -> None:
    bits, hashes = bloom_parameters(1_000_000, 1e-6)
    assert 28_700_000 < bits < 28_800_000  # -n ln p / ln^2 2 = 28.76 bits per item
    assert hashes == 20


def test_duplicate_hint_remembers_then_forgets() -> None:
    clock = Clock()
    hint = DuplicateHint(window_seconds=60, expected_rate=10, clock=clock)
    ids = [str(uuid.uuid4()) for _ in range(100)]
    assert not any(hint.seen_or_add(i) for i in ids)
    assert all(hint.seen_or_add(i) for i in ids)
    clock.t += 59
    assert all(hint.seen(i) for i in ids)  # within the window: remembered
    clock.t += 30
    assert all(hint.seen(i) for i in ids)  # under 1.5 windows: may still be remembered
    clock.t += 1
    assert not any(hint.seen(i) for i in ids)  # 1.5 windows: forgotten
    hint.add(ids[0])
    assert hint.seen(ids[0])


def test_duplicate_hint_false_positive_rate_is_small() -> None:
    clock = Clock()
    hint = DuplicateHint(window_seconds=20, expected_rate=1000, fp_rate=1e-3, clock=clock)
    for _ in range(10_000):
        hint.add(str(uuid.uuid4()))
    false_positives = sum(hint.seen(str(uuid.uuid4())) for _ in range(20_000))
    assert false_positives < 20_000 * 5e-3


def test_duplicate_hint_starts_a_new_filter_when_full() -> None:
    clock = Clock()
    hint = DuplicateHint(window_seconds=100, expected_rate=1, clock=clock)  # capacity 1,000
    first = [str(uuid.uuid4()) for _ in range(1000)]
    for i in first:
        hint.add(i)
    second = [str(uuid.uuid4()) for _ in range(1000)]
    for i in second:
        hint.add(i)
    assert len(hint._filters) == 2
    assert all(hint.seen(i) for i in first + second)


# --- hot keys -----------------------------------------------------------------------------------


def test_count_min_sketch_overestimates_only_and_decays() -> None:
    sketch = CountMinSketch(width=64, depth=4)
    for i in range(500):
        sketch.add(f"ad-{i % 50}")
    assert all(sketch.estimate(f"ad-{i}") >= 10 for i in range(50))
    sketch.decay(0.5)
    assert sketch.total == 250
    assert all(sketch.estimate(f"ad-{i}") >= 5 for i in range(50))


def test_hot_ad_is_salted_and_cold_ad_is_not() -> None:
    clock = Clock()
    hot = HotKeys(share=0.1, salts=8, window_seconds=10, clock=clock, min_total=100)
    events = [("ad-hot" if i % 3 == 0 else f"ad-{i}", str(uuid.uuid4())) for i in range(600)]
    keys = hot.keys_for(events)
    hot_keys = {k for (ad, _), k in zip(events, keys, strict=True) if ad == "ad-hot"}
    cold_keys = [(ad, k) for (ad, _), k in zip(events, keys, strict=True) if ad != "ad-hot"]
    assert len(hot_keys) == 8
    assert hot_keys == {f"ad-hot#{s}" for s in range(8)}
    assert all(ad == k for ad, k in cold_keys)


def test_salt_is_stable_per_event() -> None:
    event_id = str(uuid.uuid4())
    assert salted_key("ad", event_id, 8) == salted_key("ad", event_id, 8)
    assert salted_key("ad", event_id, 8) == f"ad#{zlib.crc32(event_id.encode()) % 8}"


def test_hot_ad_cools_down_as_the_sketch_decays() -> None:
    clock = Clock()
    hot = HotKeys(share=0.2, salts=4, window_seconds=10, clock=clock, min_total=100)
    hot.keys_for([("ad-hot", str(uuid.uuid4())) for _ in range(1000)])
    assert hot.is_hot("ad-hot")
    clock.t += 100  # ten half-lives later the old burst weighs ~1 event
    keys = hot.keys_for([(f"ad-{i}", str(uuid.uuid4())) for i in range(2000)])
    assert not hot.is_hot("ad-hot")
    assert keys[0] == "ad-0"


def test_no_ad_is_hot_before_enough_traffic() -> None:
    hot = HotKeys(share=0.05, salts=8, window_seconds=10, clock=Clock(), min_total=1000)
    assert hot.keys_for([("ad-1", str(uuid.uuid4()))]) == ["ad-1"]


# --- Kafka sink ---------------------------------------------------------------------------------


class FakeFuture:
    def __init__(self, error: BaseException | None = None, delay: float = 0.0) -> None:
        self.error = error
        self.delay = delay

    def get(self, timeout: float | None = None) -> Any:
        if self.delay:
            time.sleep(min(self.delay, self.delay if timeout is None else timeout))
            if timeout is not None and self.delay > timeout:
                raise TimeoutError("no ack in time")
        if self.error is not None:
            raise self.error
        return "metadata"


class FakeProducer:
    """Stands in for kafka-python's KafkaProducer (records sends; futures resolve as configured)."""

    instances: ClassVar[list[FakeProducer]] = []

    def __init__(self, **config: Any) -> None:
        self.config = config
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.log: list[str] = []
        self.fail_from: int | None = None
        self.raise_on_send: int | None = None
        self.delay = 0.0
        self.closed = False
        FakeProducer.instances.append(self)

    def send(self, topic: str, key: bytes, value: bytes) -> FakeFuture:
        if self.raise_on_send is not None and len(self.sent) >= self.raise_on_send:
            raise TimeoutError("metadata not available")
        self.sent.append((topic, key, value))
        self.log.append("send")
        failed = self.fail_from is not None and len(self.sent) > self.fail_from
        return _LoggedFuture(self.log, RuntimeError("NotEnoughReplicas") if failed else None, self.delay)

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


class _LoggedFuture(FakeFuture):
    def __init__(self, log: list[str], error: BaseException | None, delay: float) -> None:
        super().__init__(error, delay)
        self.log = log

    def get(self, timeout: float | None = None) -> Any:
        self.log.append("wait")
        return super().get(timeout)


def test_producer_config_is_durable_and_batched() -> None:
    config = producer_config(settings(kafka_bootstrap_servers="k1:9092, k2:9092"))
    assert config["bootstrap_servers"] == ["k1:9092", "k2:9092"]
    assert config["acks"] == "all"
    assert config["enable_idempotence"] is True  # kafka-python 3 supports it
    assert config["max_in_flight_requests_per_connection"] == 5
    assert config["linger_ms"] == 5
    assert config["batch_size"] == 256 * 1024
    assert config["compression_type"] in ("lz4", "gzip")
    assert config["delivery_timeout_ms"] >= config["linger_ms"] + config["request_timeout_ms"]
    from kafka import KafkaProducer

    assert set(config) <= set(KafkaProducer.DEFAULT_CONFIG)


def test_kafka_sink_sends_everything_then_waits() -> None:
    sink = KafkaSink(settings(), factory=FakeProducer)
    records = [(f"ad-{i}".encode(), b"{}") for i in range(5)]
    assert sink.send_many(records, timeout=1.0) == [None] * 5
    producer = FakeProducer.instances[-1]
    assert producer.log == ["send"] * 5 + ["wait"] * 5
    assert [(t, k) for t, k, _ in producer.sent] == [("adclick.events", k) for k, _ in records]
    sink.close()
    assert producer.closed


def test_kafka_sink_reports_failures_per_record() -> None:
    sink = KafkaSink(settings(), factory=FakeProducer)
    sink.send_many([(b"k", b"v")], timeout=1.0)
    producer = FakeProducer.instances[-1]
    producer.fail_from = 3
    results = sink.send_many([(b"k", b"v")] * 4, timeout=1.0)
    assert [r is None for r in results] == [True, True, False, False]
    producer.raise_on_send = len(producer.sent) + 1
    results = sink.send_many([(b"k", b"v")] * 3, timeout=1.0)
    assert [type(r) for r in results] == [RuntimeError, TimeoutError, TimeoutError]


def test_kafka_sink_waits_at_most_the_timeout_in_total() -> None:
    sink = KafkaSink(settings(), factory=FakeProducer)
    sink.send_many([(b"k", b"v")], timeout=1.0)
    FakeProducer.instances[-1].delay = 5.0
    started = time.perf_counter()
    results = sink.send_many([(b"k", b"v")] * 4, timeout=0.2)
    assert time.perf_counter() - started < 1.0
    assert all(isinstance(r, TimeoutError) for r in results)


def test_kafka_sink_without_brokers_fails_fast_and_retries_later() -> None:
    attempts: list[int] = []

    def no_brokers(**config: Any) -> Any:
        attempts.append(1)
        raise ConnectionError("NoBrokersAvailable")

    sink = KafkaSink(settings(), factory=no_brokers, retry_create_seconds=60)
    results = sink.send_many([(b"k", b"v")] * 2, timeout=1.0)
    assert all(isinstance(r, SinkUnavailable) for r in results)
    sink.send_many([(b"k", b"v")], timeout=1.0)
    assert len(attempts) == 1  # not retried before retry_create_seconds
    sink.close()


def test_kafka_sink_reachability_is_a_tcp_probe() -> None:
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        assert KafkaSink(settings(kafka_bootstrap_servers=f"127.0.0.1:{port}")).reachable()
    finally:
        server.close()
    assert not KafkaSink(settings(kafka_bootstrap_servers=f"127.0.0.1:{port}")).reachable()


def test_kafka_sink_is_thread_safe_on_creation() -> None:
    created: list[int] = []

    def slow_factory(**config: Any) -> FakeProducer:
        created.append(1)
        time.sleep(0.05)
        return FakeProducer(**config)

    sink = KafkaSink(settings(), factory=slow_factory)
    threads = [threading.Thread(target=sink.send_many, args=([(b"k", b"v")], 1.0)) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(created) == 1


# --- redirect tokens ----------------------------------------------------------------------------

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC).timestamp()


def mint(**overrides: Any) -> str:
    args: dict[str, Any] = {
        "ad_id": "ad-1",
        "campaign_id": "cmp-1",
        "placement_id": None,
        "destination": "https://example.com/p?q=1#top",
        "issued_at": NOW,
    }
    args.update(overrides)
    return mint_token(LOCAL_DEV_REDIRECT_KEY, **args)


def test_token_roundtrip() -> None:
    claims = verify_token(LOCAL_DEV_REDIRECT_KEY, mint(), now=NOW + 10, ttl_seconds=60)
    assert (claims.ad_id, claims.campaign_id, claims.placement_id) == ("ad-1", "cmp-1", None)
    assert claims.destination == "https://example.com/p?q=1#top"
    assert claims.issued_at == int(NOW)


def test_any_changed_character_breaks_the_token() -> None:
    token = mint()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i in range(0, len(token), 3):
        if token[i] == ".":
            continue
        replacement = alphabet[(alphabet.index(token[i]) + 1) % len(alphabet)]
        tampered = token[:i] + replacement + token[i + 1 :]
        with pytest.raises(TokenError):
            verify_token(LOCAL_DEV_REDIRECT_KEY, tampered, now=NOW, ttl_seconds=60)


def test_token_ttl_and_key() -> None:
    token = mint()
    with pytest.raises(TokenError, match="expired"):
        verify_token(LOCAL_DEV_REDIRECT_KEY, token, now=NOW + 61, ttl_seconds=60)
    with pytest.raises(TokenError, match="bad signature"):
        verify_token(b"another key", token, now=NOW, ttl_seconds=60)
    for junk in ("", ".", "a.b.c", "x" * 5000, "é.é", "abc.$$$"):
        with pytest.raises(TokenError):
            verify_token(LOCAL_DEV_REDIRECT_KEY, junk, now=NOW, ttl_seconds=60)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html,hi",
        "//evil.example/",
        "/relative",
        "https://",
        "ftp://example.com/",
        "https://exa mple.com/",
        "https://example.com/\r\nSet-Cookie: x=1",
        "https:\\\\evil.example",
        "http://example.com:99999/",
        "https://example.com/" + "a" * 3000,
    ],
)
def test_unsafe_destinations_are_refused(url: str) -> None:
    with pytest.raises(TokenError):
        check_destination(url)
    with pytest.raises(TokenError):
        mint(destination=url)


def test_mint_refuses_bad_ids() -> None:
    with pytest.raises(TokenError, match="ad_id"):
        mint(ad_id="bad id")
    with pytest.raises(TokenError, match="placement_id"):
        mint(placement_id="x" * 200)


def test_redirect_key_and_click_url() -> None:
    assert redirect_key(settings()) == LOCAL_DEV_REDIRECT_KEY
    assert redirect_key(settings(env="prod", redirect_key="k")) == b"k"
    with pytest.raises(MissingRedirectKeyError):
        redirect_key(settings(env="prod"))
    url = mint_click_url(settings(), "http://ads.example/", "ad-1", None, "pl-1", "https://x.example/", NOW)
    assert url.startswith("http://ads.example/v1/c/")
    token = url.rsplit("/", 1)[1]
    assert verify_token(LOCAL_DEV_REDIRECT_KEY, token, now=NOW, ttl_seconds=1).placement_id == "pl-1"


# --- CLI and server wiring ----------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adclick")
    add_ingest_parser(p.add_subparsers(dest="command", required=True))
    return p


def test_ingest_api_flags() -> None:
    args = parser().parse_args(["ingest-api", "--port", "8123", "--workers", "2"])
    assert (args.port, args.workers) == (8123, 2)
    defaults = parser().parse_args(["ingest-api"])
    assert (defaults.port, defaults.workers) == (None, 1)
    with pytest.raises(SystemExit):
        parser().parse_args(["ingest-api", "--workers", "0"])


def test_uvicorn_options() -> None:
    options = uvicorn_options(settings(bind_host="127.0.0.1", ingest_port=8000), port=None, workers=1)
    assert options["host"] == "127.0.0.1"
    assert options["port"] == 8000
    assert (options["loop"], options["http"]) == ("uvloop", "httptools")
    assert options["access_log"] is False
    assert options["proxy_headers"] is False
    assert uvicorn_options(settings(), port=9001)["port"] == 9001


def test_mint_click_url_command(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADCLICK_ENV", "test")
    from adclick.settings import get_settings

    get_settings.cache_clear()
    try:
        args = parser().parse_args(
            [
                "mint-click-url",
                "--ad-id",
                "ad-7",
                "--destination",
                "https://shop.example/",
                "--base-url",
                "http://ads.example",
                "--issued-at",
                "2025-03-01T12:00:00Z",
            ]
        )
        assert args.func(args) == 0
        url = capsys.readouterr().out.strip()
        token = url.removeprefix("http://ads.example/v1/c/")
        claims = verify_token(LOCAL_DEV_REDIRECT_KEY, token, now=NOW, ttl_seconds=1)
        assert (claims.ad_id, claims.issued_at) == ("ad-7", int(NOW))
        bad = parser().parse_args(["mint-click-url", "--ad-id", "ad-7", "--destination", "javascript:x"])
        assert bad.func(bad) == 2
        assert "http or https" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()
