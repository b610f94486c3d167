"""The synthetic traffic generator and its ground truth: determinism, the contract, truth, realism."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from generator_runs import SMALL, START, TS_FORMAT, Run, run

from adclick.contract import IncomingEvent, validate_incoming
from adclick.geo import COUNTRY_REGION, REGIONS, region_of
from adclick.privacy import pseudonymise
from traffic.generator import (
    AGE_GROUPS,
    REGION_SHARES,
    SEGMENTS,
    GeneratorConfig,
    generate,
    to_ms,
)
from traffic.truth import Truth
from traffic.user_agents import describe, is_bot


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
