"""Device parsing and dimension joins (adclick.enrich), on inline rows."""

from __future__ import annotations

import re

import pytest

from adclick.enrich import BOT_RE, enrich_ads, enrich_users, with_device, with_device_by_agent
from traffic.user_agents import BOT_MARKERS, BOTS, BROWSERS

# Strings the generator does not send, to pin the ordering rules down.
EXTRA = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0": ("desktop", "Windows", "Opera"),
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36": ("desktop", "ChromeOS", "Chrome"),
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1": ("tablet", "iOS", "Chrome"),
    "Mozilla/5.0 (Android 14; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0": ("tablet", "Android", "Firefox"),
    "Mozilla/5.0 (X11; FreeBSD amd64; rv:125.0) Gecko/20100101 Firefox/125.0": (
        "desktop",
        "other",
        "Firefox",
    ),
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)": ("bot", "unknown", "bot"),
    "Wget/1.21.4": ("bot", "unknown", "bot"),
    "SomeApp/1.0": ("unknown", "unknown", "other"),  # malformed: names no platform, no browser
    "   ": ("unknown", "unknown", "unknown"),
}


def _expected() -> dict[str | None, tuple[str, str, str]]:
    expected: dict[str | None, tuple[str, str, str]] = {
        ua.text: (ua.device_type, ua.os, ua.browser) for ua in BROWSERS
    }
    # Bots keep the OS their UA names; their browser is reported as "bot".
    expected.update({ua.text: ("bot", ua.os, "bot") for ua in BOTS})
    expected.update(EXTRA)
    expected[None] = ("unknown", "unknown", "unknown")
    return expected


@pytest.fixture(scope="module")
def devices(spark) -> dict[str | None, tuple[str, str, str]]:
    rows = [(i, ua) for i, ua in enumerate(_expected())]
    df = spark.createDataFrame(rows, "n int, user_agent string")
    out = with_device(df).collect()
    assert len(out) == len(rows)
    return {r.user_agent: (r.device_type, r.os, r.browser) for r in out}


@pytest.mark.parametrize("ua", [*BROWSERS, *BOTS], ids=lambda ua: f"{ua.device_type}-{ua.os}-{ua.browser}")
def test_every_generator_user_agent(devices, ua) -> None:
    device, os_name, browser = devices[ua.text]
    assert (device, os_name) == (ua.device_type, ua.os)
    assert browser == ("bot" if ua.is_bot else ua.browser)


@pytest.mark.parametrize("ua", list(EXTRA), ids=lambda ua: ua[:40])
def test_ordering_rules_and_malformed_user_agents(devices, ua) -> None:
    assert devices[ua] == EXTRA[ua]


def test_null_user_agent_is_unknown(devices) -> None:
    assert devices[None] == ("unknown", "unknown", "unknown")


def test_parsing_each_distinct_agent_once_gives_every_row_its_expected_device(spark) -> None:
    expected = _expected()
    agents = list(expected)
    # Each agent three times (null and blank included), with a wide column riding along.
    rows = [(n, agents[n % len(agents)], f"payload-{n}") for n in range(3 * len(agents))]
    df = spark.createDataFrame(rows, "n int, user_agent string, payload string")
    out = with_device_by_agent(df)
    assert out.columns == with_device(df).columns
    got = {r.n: (r.user_agent, r.payload, (r.device_type, r.os, r.browser)) for r in out.collect()}
    assert len(got) == len(rows) == out.count()  # the join neither drops nor multiplies rows
    assert got == {n: (ua, payload, expected[ua]) for n, ua, payload in rows}


def test_bot_regex_covers_every_generator_marker() -> None:
    for marker in BOT_MARKERS:
        assert re.search(BOT_RE, f"Mozilla/5.0 (compatible; X{marker.upper()}Y/1.0)"), marker
    for ua in BROWSERS:
        assert not re.search(BOT_RE, ua.text), ua.text


ADS = [
    ("ad-1", "camp-1", "adv-1", 250_000),
    ("ad-2", "camp-2", "adv-2", 400_000),
    ("ad-2", "camp-9", "adv-9", 900_000),  # duplicated key: must not multiply events
    (None, "camp-x", "adv-x", 1),  # malformed dimension row
]
ADS_SCHEMA = "ad_id string, campaign_id string, advertiser_id string, cpc_micros int"


def test_enrich_ads_fills_campaign_and_adds_advertiser_and_cpc(spark) -> None:
    events = spark.createDataFrame(
        [
            ("e1", "ad-1", None),  # campaign from the dimension
            ("e2", "ad-1", "camp-own"),  # the event's own campaign wins
            ("e3", "ad-2", None),
            ("e4", "ad-unknown", "camp-7"),
            ("e5", None, None),  # malformed: no ad
        ],
        "event_id string, ad_id string, campaign_id string",
    )
    out = enrich_ads(events, spark.createDataFrame(ADS, ADS_SCHEMA))
    assert out.columns == ["event_id", "ad_id", "campaign_id", "advertiser_id", "cpc_micros"]
    assert dict(out.dtypes)["cpc_micros"] == "bigint"
    got = {r.event_id: (r.campaign_id, r.advertiser_id, r.cpc_micros) for r in out.collect()}
    assert out.count() == 5
    assert got == {
        "e1": ("camp-1", "adv-1", 250_000),
        "e2": ("camp-own", "adv-1", 250_000),
        "e3": ("camp-2", "adv-2", 400_000),  # smallest of the duplicated rows, deterministically
        "e4": ("camp-7", None, None),
        "e5": (None, None, None),
    }


def test_enrich_users_defaults_to_unknown(spark) -> None:
    events = spark.createDataFrame(
        [("e1", "u-1"), ("e2", "u-2"), ("e3", "u-404"), ("e4", None)],
        "event_id string, user_key string",
    )
    users = spark.createDataFrame(
        [("u-1", "25-34", "sports"), ("u-2", None, "travel"), ("u-1", "65+", "sports"), (None, "18-24", "x")],
        "user_key string, age_group string, segment string",
    )
    out = enrich_users(events, users)
    assert out.columns == ["event_id", "user_key", "age_group", "segment"]
    got = {r.event_id: (r.age_group, r.segment) for r in out.collect()}
    assert got == {
        "e1": ("25-34", "sports"),
        "e2": ("unknown", "travel"),
        "e3": ("unknown", "unknown"),
        "e4": ("unknown", "unknown"),
    }
