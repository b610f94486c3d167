"""The synthetic traffic generator, its ground truth, the user-agent table, the sinks and the CLI."""

from __future__ import annotations

import argparse
import gzip
import io
import itertools
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from adclick.contract import IncomingEvent, validate_incoming
from adclick.geo import COUNTRY_REGION, REGIONS, region_of
from adclick.privacy import LOCAL_DEV_KEY, pseudonymise
from adclick.settings import Settings
from traffic import commands
from traffic.generator import (
    AGE_GROUPS,
    COUNTRY_WEIGHTS,
    REGION_SHARES,
    SEGMENTS,
    GeneratorConfig,
    generate,
    generate_timed,
    rfc3339_ms,
    to_ms,
)
from traffic.sinks import (
    ApiError,
    Progress,
    batch_url,
    post_to_api,
    send_to_kafka,
    with_clock,
    write_ndjson,
)
from traffic.truth import Truth
from traffic.user_agents import BOTS, BROWSERS, describe, is_bot

START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
TS_FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
# About 20,000 impressions over one hour.
SMALL = GeneratorConfig(start=START, seed=42, impressions_per_second=20_000 / 3600)


@dataclass
class Run:
    config: GeneratorConfig
    truth: Truth
    sends: list[tuple[datetime, dict[str, Any]]]

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for _, event in self.sends]

    def first_sends(self) -> dict[str, tuple[datetime, dict[str, Any]]]:
        first: dict[str, tuple[datetime, dict[str, Any]]] = {}
        for sent, event in self.sends:
            first.setdefault(event["event_id"], (sent, event))
        return first


def run(config: GeneratorConfig, key: bytes = LOCAL_DEV_KEY) -> Run:
    truth = Truth()
    return Run(config, truth, list(generate_timed(config, truth, key=key)))


@pytest.fixture(scope="module")
def small() -> Run:
    return run(SMALL)


@pytest.fixture(scope="module")
def large() -> Run:
    # About 150,000 impressions: enough traffic for the A/B difference to show.
    return run(replace(SMALL, impressions_per_second=150_000 / 3600))


# --- determinism --------------------------------------------------------------------------------


def test_same_seed_and_start_give_identical_events_and_truth(small: Run) -> None:
    again = run(SMALL)
    assert again.sends == small.sends
    assert again.truth.to_json() == small.truth.to_json()


def test_different_seed_or_start_gives_different_events(small: Run) -> None:
    other_seed = run(replace(SMALL, seed=43))
    assert {e["event_id"] for e in other_seed.events}.isdisjoint(e["event_id"] for e in small.events)
    other_start = list(itertools.islice(generate(replace(SMALL, start=START + timedelta(days=1))), 100))
    assert [e["ts"] for e in other_start] != [e["ts"] for e in small.events[:100]]


def test_generate_yields_the_same_events_as_generate_timed(small: Run) -> None:
    assert list(generate(SMALL)) == small.events


def test_start_must_be_timezone_aware_and_volume_unambiguous() -> None:
    with pytest.raises(ValueError, match="timezone"):
        GeneratorConfig(start=datetime(2025, 3, 1))
    with pytest.raises(ValueError, match="either"):
        GeneratorConfig(start=START, clicks=10, impressions_per_second=1.0)
    with pytest.raises(ValueError, match="duration"):
        GeneratorConfig(start=START, duration=timedelta(0))
    with pytest.raises(ValueError, match="duplicate_rate"):
        GeneratorConfig(start=START, duplicate_rate=1.5)
    local = GeneratorConfig(start=datetime(2025, 3, 1, 10, 0, tzinfo=UTC).astimezone())
    assert local.start.tzinfo is UTC


# --- every event honours the contract -----------------------------------------------------------


def test_every_event_passes_validation_at_the_end_of_the_range(small: Run) -> None:
    for event in small.events:
        validate_incoming(event, now=SMALL.end)


def test_every_event_passes_validation_at_its_own_send_time(small: Run) -> None:
    for sent, event in small.sends:
        validate_incoming(event, now=sent)


def test_event_shapes(small: Run) -> None:
    known = set(IncomingEvent.model_fields)
    start_ms, end_ms = to_ms(SMALL.start), to_ms(SMALL.end)
    for event in small.events:
        assert set(event) <= known, "generated events carry no unknown fields"
        assert TS_FORMAT.match(event["ts"])
        ts_ms = to_ms(datetime.fromisoformat(event["ts"].replace("Z", "+00:00")))
        assert start_ms <= ts_ms < end_ms
        assert event["country"] in COUNTRY_REGION
        kind = event["event_type"]
        assert ("cost_micros" in event) == (kind == "click")
        assert ("x" in event and "y" in event) == (kind == "click")
        assert ("click_id" in event) == (kind == "conversion")
        assert ("revenue_micros" in event) == (kind == "conversion")
        assert ("experiment_id" in event) == ("variant" in event)
        if kind == "click":
            assert event["cost_micros"] > 0
        if kind == "conversion":
            assert event["revenue_micros"] >= 10_000


def test_send_order_is_by_send_time_with_out_of_order_event_times(small: Run) -> None:
    sent_times = [sent for sent, _ in small.sends]
    assert sent_times == sorted(sent_times)
    for sent, event in small.sends:
        assert sent >= datetime.fromisoformat(event["ts"].replace("Z", "+00:00"))
    event_times = [e["ts"] for e in small.events]
    inversions = sum(1 for a, b in itertools.pairwise(event_times) if b < a)
    assert inversions > len(event_times) * 0.01


# --- the truth matches a recount of what was emitted --------------------------------------------


def test_truth_distinct_counts_and_duplicates(small: Run) -> None:
    truth = small.truth
    first = small.first_sends()
    by_type = Counter(event["event_type"] for _, event in first.values())
    assert truth.distinct == {
        "click": by_type["click"],
        "impression": by_type["impression"],
        "conversion": by_type["conversion"],
    }
    assert truth.events_sent == len(small.sends)
    assert truth.duplicate_sends == len(small.sends) - len(first)
    assert 0.005 < truth.duplicate_sends / len(first) < 0.02  # about 1 %


def test_retries_repeat_the_identical_body_soon_or_minutes_later(small: Run) -> None:
    first: dict[str, tuple[datetime, dict[str, Any]]] = {}
    delays = []
    for sent, event in small.sends:
        if event["event_id"] in first:
            original_sent, original = first[event["event_id"]]
            assert event == original
            delays.append(sent - original_sent)
        else:
            first[event["event_id"]] = (sent, event)
    assert len(delays) == small.truth.duplicate_sends
    assert any(d < timedelta(seconds=5) for d in delays)
    assert any(d >= timedelta(minutes=1) for d in delays)


def test_truth_per_ad_day_minute_and_country(small: Run) -> None:
    truth = small.truth
    per_ad_day: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    per_minute: Counter[tuple[str, str]] = Counter()
    per_country: Counter[str] = Counter()
    for _, event in small.first_sends().values():
        per_ad_day[event["event_type"]][(event["ad_id"], event["ts"][:10])] += 1
        if event["event_type"] == "click":
            per_minute[(event["ad_id"], event["ts"][:16])] += 1
            per_country[event["country"]] += 1
    for kind, counts in per_ad_day.items():
        flat = {(ad, day): n for ad, days in truth.by_ad_day[kind].items() for day, n in days.items()}
        assert flat == dict(counts)
    flat_minutes = {
        (ad, m): n for ad, minutes in truth.clicks_by_ad_minute.items() for m, n in minutes.items()
    }
    assert flat_minutes == dict(per_minute)
    assert truth.clicks_by_country == dict(per_country)
    hottest_ad, _ = per_ad_day["click"].most_common(1)[0]
    assert truth.count("click", hottest_ad[0], hottest_ad[1]) == per_ad_day["click"][hottest_ad]
    assert truth.count("click") == truth.distinct["click"]


def test_truth_late_events_and_money(small: Run) -> None:
    late = 0
    cost = revenue = 0
    for sent, event in small.first_sends().values():
        ts = datetime.fromisoformat(event["ts"].replace("Z", "+00:00"))
        if sent - ts >= SMALL.min_lateness:
            late += 1
            assert sent - ts <= SMALL.max_lateness
        cost += event.get("cost_micros", 0)
        revenue += event.get("revenue_micros", 0)
    assert small.truth.late_events == late
    assert 0.01 < late / len(small.first_sends()) < 0.03  # about 2 %
    assert small.truth.cost_micros == cost
    assert small.truth.revenue_micros == revenue


def test_conversions_reference_real_earlier_clicks(small: Run) -> None:
    clicks = {e["event_id"]: e for _, e in small.first_sends().values() if e["event_type"] == "click"}
    conversions = [e for _, e in small.first_sends().values() if e["event_type"] == "conversion"]
    assert conversions
    for conversion in conversions:
        click = clicks[conversion["click_id"]]
        assert click["ts"] < conversion["ts"]
        assert click["ad_id"] == conversion["ad_id"]
        assert click["user_id"] == conversion["user_id"]
        assert not is_bot(click["user_agent"])


def test_truth_json_round_trip(small: Run) -> None:
    restored = Truth.from_json(small.truth.to_json())
    assert restored == small.truth
    assert restored.to_json() == small.truth.to_json()
    assert orjson.loads(small.truth.to_json())["start"] == "2025-03-01T09:00:00.000Z"


def test_truth_counts_only_what_was_emitted() -> None:
    truth = Truth()
    taken = list(itertools.islice(generate(SMALL, truth), 1_000))
    assert len(taken) == 1_000
    assert truth.events_sent == 1_000
    assert sum(truth.distinct.values()) + truth.duplicate_sends == 1_000


# --- realism ------------------------------------------------------------------------------------


def test_region_shares(small: Run) -> None:
    events = small.events
    assert len(events) > 19_000
    shares = Counter(region_of(e["country"]) for e in events)
    for region, expected in REGION_SHARES.items():
        assert shares[region] / len(events) == pytest.approx(expected, abs=0.02), region
    countries = Counter(e["country"] for e in events)
    for region in REGIONS:
        assert sum(1 for c in countries if COUNTRY_REGION[c] == region) >= 3, f"several countries in {region}"


def test_click_through_rate_is_one_to_three_percent(small: Run) -> None:
    truth = small.truth
    organic_clicks = truth.distinct["click"] - truth.bot_clicks
    ctr = organic_clicks / truth.distinct["impression"]
    assert 0.01 <= ctr <= 0.03
    conversion_rate = truth.distinct["conversion"] / organic_clicks
    assert 0.005 < conversion_rate < 0.12


def test_zipf_popularity_and_ad_hierarchy(small: Run) -> None:
    impressions = Counter(
        e["ad_id"] for _, e in small.first_sends().values() if e["event_type"] == "impression"
    )
    total = sum(impressions.values())
    top = impressions.most_common(10)
    assert top[0][1] / total > 0.10  # one hot ad
    assert sum(n for _, n in top) / total > 0.40  # a few hot ads carry much of the traffic
    ads = {row["ad_id"]: row for row in small.truth.ads}
    assert len(ads) == SMALL.num_ads
    assert len({row["campaign_id"] for row in ads.values()}) == SMALL.num_campaigns
    assert len({row["advertiser_id"] for row in ads.values()}) == SMALL.num_advertisers
    for event in small.events:
        assert event["campaign_id"] == ads[event["ad_id"]]["campaign_id"]
        if event["event_type"] == "click":
            assert event["cost_micros"] == ads[event["ad_id"]]["cpc_micros"]


def test_device_mix_uses_many_real_user_agents(small: Run) -> None:
    agents = Counter(e["user_agent"] for e in small.events if not is_bot(e["user_agent"]))
    assert len(agents) >= 15
    kinds = Counter(describe(agent).device_type for agent in agents.elements())
    assert kinds["mobile"] > kinds["desktop"] > kinds["tablet"] > 0


def test_users_dimension_is_keyed_like_the_events() -> None:
    key = b"test-key"
    keyed = run(replace(SMALL, impressions_per_second=2_000 / 3600), key=key)
    users = {row["user_key"]: row for row in keyed.truth.users}
    assert len(users) == SMALL.num_users
    for row in users.values():
        assert row["age_group"] in AGE_GROUPS
        assert row["segment"] in SEGMENTS
    assert len({row["age_group"] for row in users.values()}) == len(AGE_GROUPS)
    assert len({row["segment"] for row in users.values()}) == len(SEGMENTS)
    for event in keyed.events:
        user_key = pseudonymise(key, event["user_id"], domain="user")
        assert (user_key in users) != is_bot(event["user_agent"])
    default_keys = {row["user_key"] for row in run(replace(SMALL, impressions_per_second=0.1)).truth.users}
    assert default_keys.isdisjoint(users)


def test_bot_bursts(small: Run) -> None:
    truth = small.truth
    assert len(truth.bots) == SMALL.bot_bursts
    bot_clicks = [e for _, e in small.first_sends().values() if is_bot(e.get("user_agent"))]
    assert all(e["event_type"] == "click" for e in bot_clicks)
    assert len(bot_clicks) == truth.bot_clicks == sum(b["clicks"] for b in truth.bots)
    for burst in truth.bots:
        mine = [e for e in bot_clicks if e["ip"] == burst["ip"]]
        assert len(mine) == burst["clicks"]
        assert {e["user_id"] for e in mine} == {burst["user_id"]}
        assert {e["user_agent"] for e in mine} == {burst["user_agent"]}
        assert {e["ad_id"] for e in mine} == set(burst["ad_ids"])
        assert 1 <= len(burst["ad_ids"]) <= 3
        span = max(e["ts"] for e in mine), min(e["ts"] for e in mine)
        seconds = (
            datetime.fromisoformat(span[0][:-1]) - datetime.fromisoformat(span[1][:-1])
        ).total_seconds()
        assert burst["clicks"] / max(seconds, 1.0) >= 1.0, "a bot clicks at a high rate"


def test_ab_variants_are_sticky_and_b_has_a_higher_ctr(large: Run) -> None:
    variant_of: dict[tuple[str, str], str] = {}
    for event in large.events:
        if "experiment_id" in event:
            assert event["variant"] in ("A", "B")
            seen = variant_of.setdefault((event["experiment_id"], event["user_id"]), event["variant"])
            assert seen == event["variant"]
    variants = large.truth.variants
    assert len(variants) == SMALL.num_experiments
    funnel = {v: Counter() for v in ("A", "B")}
    for per_variant in variants.values():
        for variant, counts in per_variant.items():
            funnel[variant].update(counts)
    assert funnel["A"]["impressions"] == pytest.approx(funnel["B"]["impressions"], rel=0.1)
    ctr_a = funnel["A"]["clicks"] / funnel["A"]["impressions"]
    ctr_b = funnel["B"]["clicks"] / funnel["B"]["impressions"]
    assert ctr_b > ctr_a * 1.1


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


def test_progress_line_every_interval() -> None:
    stream = io.StringIO()
    ticks = iter([0.0, 1.0, 6.0, 7.0, 12.5, 13.0])
    progress = Progress("gen", every_seconds=5.0, stream=stream, clock=lambda: next(ticks))
    for _ in range(4):
        progress.tick(10)
    progress.done()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("gen: 20 events")
    assert lines[-1].startswith("gen: 40 events")
    assert len(lines) == 3


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
