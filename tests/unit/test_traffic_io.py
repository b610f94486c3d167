"""Traffic around the generator: user agents, country tables, the NDJSON / Kafka / API sinks and the
`adclick generate` / `replay` command line."""

from __future__ import annotations

import argparse
import gzip
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from generator_runs import SMALL, START, Run, run

from adclick.geo import COUNTRY_REGION, region_of
from adclick.privacy import LOCAL_DEV_KEY, pseudonymise
from adclick.settings import Settings
from traffic import commands
from traffic.generator import (
    COUNTRY_WEIGHTS,
    REGION_SHARES,
    generate,
    rfc3339_ms,
    to_ms,
)
from traffic.sinks import (
    ApiError,
    batch_url,
    post_to_api,
    send_to_kafka,
    with_clock,
    write_ndjson,
)
from traffic.truth import Truth
from traffic.user_agents import BOTS, BROWSERS, describe, is_bot


@pytest.fixture(scope="module")
def small() -> Run:
    return run(SMALL)


def test_click_target() -> None:
    truth = Truth()
    for _ in generate(replace(SMALL, impressions_per_second=None, clicks=1_000), truth):
        pass
    assert truth.distinct["click"] == pytest.approx(1_000, rel=0.1)
    assert truth.bot_clicks == 30  # 3 % of the target


def test_country_tables_match_geo() -> None:
    assert sum(REGION_SHARES.values()) == pytest.approx(1.0)
    for region, countries in COUNTRY_WEIGHTS.items():
        assert len(countries) >= 3
        for country, _ in countries:
            assert COUNTRY_REGION[country] == region


def test_rfc3339_ms() -> None:
    assert rfc3339_ms(0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339_ms(to_ms(START) + 1_234) == "2025-03-01T09:00:01.234Z"


# --- user agents --------------------------------------------------------------------------------


def test_user_agent_table() -> None:
    assert len(BROWSERS) >= 20
    assert {ua.device_type for ua in BROWSERS} == {"desktop", "mobile", "tablet"}
    assert {ua.os for ua in BROWSERS} >= {"iOS", "Android", "Windows", "macOS", "Linux"}
    assert {ua.browser for ua in BROWSERS} >= {"Chrome", "Safari", "Firefox", "Edge", "Samsung Internet"}
    assert len({ua.text for ua in BROWSERS}) == len(BROWSERS)
    assert not any(is_bot(ua.text) for ua in BROWSERS)
    assert all(is_bot(ua.text) and ua.is_bot for ua in BOTS)
    bot_texts = " ".join(ua.text for ua in BOTS).lower()
    for marker in ("bot", "crawler", "headlesschrome", "python-requests", "curl"):
        assert marker in bot_texts


@pytest.mark.parametrize(
    ("agent", "device", "os", "browser"),
    [
        (
            "Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 Version/16.0 Safari/604.1",
            "tablet",
            "iOS",
            "Safari",
        ),
        (
            "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36",
            "mobile",
            "Android",
            "Chrome",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36 Edg/1",
            "desktop",
            "Windows",
            "Edge",
        ),
        ("Wget/1.21.4", "bot", "unknown", "unknown"),
        (None, "unknown", "unknown", "unknown"),
    ],
)
def test_describe_unknown_user_agents(agent: str | None, device: str, os: str, browser: str) -> None:
    info = describe(agent)
    assert (info.device_type, info.os, info.browser) == (device, os, browser)


# --- sinks --------------------------------------------------------------------------------------


def test_write_ndjson(tmp_path: Path) -> None:
    config = replace(SMALL, impressions_per_second=3_000 / 3600)
    truth = Truth()
    count = write_ndjson(generate(config, truth), tmp_path / "out", truth=truth)
    lines = (tmp_path / "out" / "events.ndjson").read_bytes().splitlines()
    assert count == len(lines) == truth.events_sent
    assert [orjson.loads(line) for line in lines] == list(generate(config))
    assert Truth.read(tmp_path / "out" / "truth.json") == truth
    ads = [orjson.loads(line) for line in (tmp_path / "out" / "ads.ndjson").read_bytes().splitlines()]
    users = [orjson.loads(line) for line in (tmp_path / "out" / "users.ndjson").read_bytes().splitlines()]
    assert ads == truth.ads
    assert set(ads[0]) == {"ad_id", "campaign_id", "advertiser_id", "cpc_micros"}
    assert users == truth.users
    assert set(users[0]) == {"user_key", "age_group", "segment"}
    assert not (tmp_path / "out" / "events.ndjson.partial").exists()


class FakeFuture:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def add_errback(self, fn: Any, *args: Any) -> FakeFuture:
        if self.error is not None:
            fn(*args, self.error)
        return self


class FakeProducer:
    def __init__(self, fail_keys: tuple[bytes, ...] = ()) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.fail_keys = fail_keys
        self.flushed = 0
        self.closed = False

    def send(self, topic: str, key: bytes, value: bytes) -> FakeFuture:
        self.sent.append((topic, key, value))
        return FakeFuture(RuntimeError("broker down") if key in self.fail_keys else None)

    def flush(self) -> None:
        self.flushed += 1

    def close(self) -> None:
        self.closed = True


def test_send_to_kafka_validates_hashes_and_keys_by_ad(small: Run) -> None:
    settings = Settings(_env_file=None, topic_events="test.events")
    producer = FakeProducer()
    sends = small.sends[:3_000]
    result = send_to_kafka(iter(sends), settings=settings, key=LOCAL_DEV_KEY, producer=producer)
    assert (result.produced, result.invalid, result.failed) == (3_000, 0, 0)
    assert producer.flushed == 1
    assert not producer.closed
    for (sent, event), (topic, key, value) in zip(sends, producer.sent, strict=True):
        record = orjson.loads(value)
        assert topic == "test.events"
        assert key == event["ad_id"].encode()
        assert record["event_id"] == event["event_id"]
        assert record["received_at"] == to_ms(sent)
        assert record["user_key"] == pseudonymise(LOCAL_DEV_KEY, event["user_id"], domain="user")
        assert record["region"] == region_of(event["country"])
        assert "user_id" not in record
        assert "ip" not in record
        assert event["user_id"].encode() not in value


def test_send_to_kafka_counts_invalid_and_failed() -> None:
    settings = Settings(_env_file=None)
    now = START
    good = {"event_id": "4e26177e-cf45-4e6f-93a6-3c2b68aaf461", "ad_id": "ad-1", "ts": "2025-03-01T08:59:00Z"}
    failing = {**good, "event_id": "fd43fdde-e6e1-4380-b592-903a835cfe05", "ad_id": "ad-2"}
    too_old = {**good, "ts": "2025-01-01T00:00:00Z"}
    producer = FakeProducer(fail_keys=(b"ad-2",))
    result = send_to_kafka(
        with_clock([good, too_old, failing, {"no": "id"}], now),
        settings=settings,
        key=LOCAL_DEV_KEY,
        producer=producer,
    )
    assert (result.produced, result.invalid, result.failed) == (1, 2, 1)
    assert len(producer.sent) == 2
    assert any("ts:" in error for error in result.errors)
    assert any("broker down" in error for error in result.errors)


def _api(handler: Any) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_post_to_api_batches_and_maps_rejections() -> None:
    bodies: list[list[dict[str, Any]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/events/batch"
        assert request.headers["content-type"] == "application/json"
        batch = orjson.loads(request.content)
        bodies.append(batch)
        rejected = [
            {"index": i, "error": "ad_id: is required"} for i, e in enumerate(batch) if "ad_id" not in e
        ]
        return httpx.Response(
            202, json={"accepted": len(batch) - len(rejected), "duplicates": 0, "rejected": rejected}
        )

    events: list[dict[str, Any]] = [{"event_id": str(i), "ad_id": "ad-1"} for i in range(2_500)]
    events[1_500].pop("ad_id")
    result = post_to_api(iter(events), url="http://ingest:8000", client=_api(handler))
    assert [len(b) for b in bodies] == [1_000, 1_000, 500]
    assert (result.sent, result.accepted, result.rejected, result.batches) == (2_500, 2_499, 1, 3)
    assert result.errors == [{"index": 1_500, "error": "ad_id: is required"}]


def test_post_to_api_retries_429_and_503_honouring_retry_after() -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "2"}),
            httpx.Response(503),
            httpx.Response(202, json={"accepted": 1, "duplicates": 1, "rejected": []}),
        ]
    )
    slept: list[float] = []
    seen_keys: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen_keys.append(request.headers.get("x-api-key"))
        return next(answers)

    result = post_to_api(
        [{"event_id": "a"}, {"event_id": "a"}],
        url="http://ingest:8000/",
        api_key="k-1",
        client=_api(handler),
        sleep=slept.append,
    )
    assert slept[0] == 2.0
    assert len(slept) == 2
    assert (result.accepted, result.duplicates, result.retries) == (1, 1, 2)
    assert seen_keys == ["k-1"] * 3


def test_post_to_api_gives_up_and_refuses_clearly() -> None:
    with pytest.raises(ApiError, match="429"):
        post_to_api(
            [{"event_id": "a"}],
            url="http://ingest:8000",
            client=_api(lambda r: httpx.Response(429, headers={"Retry-After": "1"})),
            max_retries=2,
            sleep=lambda s: None,
        )
    with pytest.raises(ApiError, match="400"):
        post_to_api(
            [{"event_id": "a"}],
            url="http://ingest:8000",
            client=_api(lambda r: httpx.Response(400, json={"field": "body", "error": "bad"})),
        )
    with pytest.raises(ApiError, match="unexpected"):
        post_to_api(
            [{"event_id": "a"}], url="http://ingest:8000", client=_api(lambda r: httpx.Response(202, json=[]))
        )


def test_post_to_api_retries_connection_errors_and_gzips() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ConnectError("refused")
        assert request.headers["content-encoding"] == "gzip"
        assert orjson.loads(gzip.decompress(request.content)) == [{"event_id": "a"}]
        return httpx.Response(202, json={"accepted": 1, "duplicates": 0, "rejected": []})

    result = post_to_api(
        [{"event_id": "a"}], url="http://x", compress=True, client=_api(handler), sleep=lambda s: None
    )
    assert (result.accepted, result.retries) == (1, 1)


def test_batch_url() -> None:
    assert batch_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000/v1/events/batch"
    assert batch_url("http://h:1/v1/events/batch") == "http://h:1/v1/events/batch"


# --- command line -------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adclick")
    sub = parser.add_subparsers(dest="command", required=True)
    commands.add_generate_parser(sub)
    commands.add_replay_parser(sub)
    return parser


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("1h30m", timedelta(minutes=90)),
        ("2d", timedelta(days=2)),
        ("3600", timedelta(hours=1)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert commands.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "-5", "0s", "1x"])
def test_parse_duration_refuses_nonsense(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        commands.parse_duration(text)


def test_parse_time() -> None:
    now = datetime(2025, 3, 1, 12, tzinfo=UTC)
    assert commands.parse_time("now", now) is now
    assert commands.parse_time("2025-03-01T10:00:00Z", now) == datetime(2025, 3, 1, 10, tzinfo=UTC)
    assert commands.parse_time("2025-03-01T12:00:00+02:00", now) == datetime(2025, 3, 1, 10, tzinfo=UTC)
    assert commands.parse_time("2025-03-01T10:00:00", now) == datetime(2025, 3, 1, 10, tzinfo=UTC)
    with pytest.raises(argparse.ArgumentTypeError):
        commands.parse_time("tomorrow", now)


def test_generate_command_writes_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ADCLICK_HASH_KEY", raising=False)
    args = _parser().parse_args(
        [
            "generate",
            "--seed",
            "7",
            "--clicks",
            "200",
            "--start",
            "2025-03-01T00:00:00Z",
            "--duration",
            "10m",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert args.func(args) == 0
    truth = Truth.read(tmp_path / "run" / "truth.json")
    assert truth.seed == 7
    assert (truth.start, truth.end) == ("2025-03-01T00:00:00.000Z", "2025-03-01T00:10:00.000Z")
    assert len((tmp_path / "run" / "events.ndjson").read_bytes().splitlines()) == truth.events_sent


def test_generate_command_needs_a_sink() -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["generate", "--clicks", "10"])
    with pytest.raises(SystemExit):
        _parser().parse_args(["generate", "--out", "x", "--to", "kafka"])
    with pytest.raises(SystemExit):
        _parser().parse_args(["generate", "--clicks", "10", "--impressions-per-second", "3", "--to", "kafka"])
