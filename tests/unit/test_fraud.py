"""Click-fraud rules (adclick.fraud), each firing and not firing at its boundary, on inline rows."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from adclick.fraud import (
    PER_EVENT_REASONS,
    REASONS,
    FraudRules,
    fraud_verdicts,
    with_fraud,
    with_fraud_verdicts,
)

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
COLUMNS = (
    "event_id string, event_type string, ad_id string, event_time timestamp, user_key string, "
    "ip_key string, country string, user_agent string, device_type string"
)
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
# Only the rule under test can fire: the others get limits no test reaches.
QUIET = {
    "max_clicks_per_ip_per_minute": 1000,
    "max_clicks_per_user_per_minute": 1000,
    "max_repeat_clicks": 1000,
}


def ev(
    event_id: str,
    seconds: float = 0.0,
    *,
    kind: str = "click",
    ad: str | None = "ad-1",
    user: str | None = None,
    ip: str | None = None,
    country: str | None = "FR",
    ua: str | None = CHROME,
    device: str | None = "desktop",
) -> tuple:
    return (event_id, kind, ad, T0 + timedelta(seconds=seconds), user, ip, country, ua, device)


def judge(spark, rows: list[tuple], **rules) -> dict[str, tuple[list[str], float, bool]]:
    df = spark.createDataFrame(rows, COLUMNS)
    out = with_fraud(df, FraudRules(**{**QUIET, **rules}))
    assert out.columns == [*df.columns, "fraud_reasons", "fraud_score", "is_fraud"]
    got = {r.event_id: (list(r.fraud_reasons), r.fraud_score, r.is_fraud) for r in out.collect()}
    assert len(got) == len(rows)  # one row out per row in, none lost or multiplied
    return got


def fired(spark, rows: list[tuple], **rules) -> set[str]:
    return {e for e, (reasons, _, _) in judge(spark, rows, **rules).items() if reasons}


def test_ip_rate_flags_every_click_of_a_minute_above_the_limit(spark) -> None:
    rows = [
        *[ev(f"a{i}", 10 + i, ip="ip-a", user=f"ua{i}") for i in range(4)],  # 4 > 3: all four
        *[ev(f"b{i}", 10 + i, ip="ip-b", user=f"ub{i}") for i in range(3)],  # 3 = limit: none
        ev("b-imp1", 20, ip="ip-b", kind="impression"),  # impressions are not clicks
        ev("b-conv", 21, ip="ip-b", kind="conversion"),
        # 4 clicks within 20 s but across a minute boundary: 2 + 2, none
        *[ev(f"c{i}", 50 + 5 * i, ip="ip-c", user=f"uc{i}") for i in range(4)],
        *[ev(f"n{i}", 10 + i, ip=None, user=f"un{i}") for i in range(5)],  # null ips are not one ip
    ]
    got = judge(spark, rows, max_clicks_per_ip_per_minute=3)
    assert {e for e, v in got.items() if v[0]} == {"a0", "a1", "a2", "a3"}
    assert got["a0"] == (["ip_rate"], 0.6, True)
    assert got["b-imp1"] == ([], 0.0, False)


def test_user_rate_flags_a_user_above_the_limit_and_ignores_null_users(spark) -> None:
    rows = [
        *[ev(f"a{i}", i, user="u-a", ad=f"ad-{i}") for i in range(3)],  # 3 > 2
        *[ev(f"b{i}", i, user="u-b", ad=f"ad-{i}") for i in range(2)],  # 2 = limit
        ev("b-late", 61, user="u-b"),  # next minute
        *[ev(f"n{i}", i, user=None, ad=f"ad-{i}") for i in range(4)],
    ]
    got = judge(spark, rows, max_clicks_per_user_per_minute=2)
    assert {e for e, v in got.items() if v[0]} == {"a0", "a1", "a2"}
    assert got["a2"] == (["user_rate"], 0.5, True)  # 0.5 >= threshold 0.5: the bound is inclusive


def test_repeat_click_flags_clicks_beyond_the_first_n_in_a_sliding_window(spark) -> None:
    minute = 60.0
    rows = [
        # 4 clicks within 3 minutes: the 4th fires; another ad does not count
        *[ev(f"a{i}", i * minute, user="u-a") for i in range(4)],
        ev("a-other-ad", 30, user="u-a", ad="ad-2"),
        # 4th click exactly 10 min after the 1st: the 1st has left the window (t-10min, t]
        *[ev(f"b{i}", s, user="u-b") for i, s in enumerate([0, minute, 2 * minute, 10 * minute])],
        # 4th click 1 ms before that: still in the window
        *[ev(f"c{i}", s, user="u-c") for i, s in enumerate([0, minute, 2 * minute, 10 * minute - 0.001])],
        # the window slides: clicks at 0, 6, 12, 18 min never have 4 in 10 min
        *[ev(f"d{i}", i * 6 * minute, user="u-d") for i in range(4)],
        # 4 clicks at the same instant: exactly the one beyond the first 3 (event_id order) fires
        *[ev(f"e-{c}", 5, user="u-e") for c in "dbca"],
        # no user: the ip is the actor
        *[ev(f"f{i}", i, user=None, ip="ip-f") for i in range(4)],
        # no user, no ip: no actor
        *[ev(f"g{i}", i, user=None, ip=None) for i in range(5)],
        # a user key and an ip key with the same text are different actors
        *[ev(f"h{i}", i, user="k") for i in range(2)],
        *[ev(f"i{i}", 2 + i, user=None, ip="k") for i in range(2)],
        # impressions are not clicks
        *[ev(f"j{i}", i, user="u-j", kind="impression") for i in range(3)],
        ev("j-click", 10, user="u-j"),
    ]
    got = judge(spark, rows, max_repeat_clicks=3, repeat_window_minutes=10)
    assert {e for e, v in got.items() if v[0]} == {"a3", "c3", "e-d", "f3"}
    assert got["a3"] == (["repeat_click"], 0.5, True)


def test_bot_user_agent_fires_on_device_type_or_user_agent(spark) -> None:
    rows = [
        ev("bot-device", device="bot", ua="Mozilla/5.0 (compatible; Googlebot/2.1)"),
        ev("bot-ua", device="desktop", ua="python-requests/2.31.0"),  # device not parsed yet
        ev("bot-device-only", device="bot", ua=None),
        ev("human", device="desktop"),
        ev("no-ua", device=None, ua=None),  # malformed: nothing known
        ev("bot-impression", device="bot", ua="curl/8.5.0", kind="impression"),
    ]
    got = judge(spark, rows)
    assert {e for e, v in got.items() if v[0]} == {"bot-device", "bot-ua", "bot-device-only"}
    assert got["bot-ua"] == (["bot_user_agent"], 0.9, True)
    assert got["bot-impression"] == ([], 0.0, False)


def test_too_soon_after_impression(spark) -> None:
    rows = [
        ev("a-imp", 0, user="u-a", kind="impression"),
        ev("a", 0.999, user="u-a"),  # 0.999 s < 1 s
        ev("b-imp", 0, user="u-b", kind="impression"),
        ev("b", 1.0, user="u-b"),  # exactly 1 s: not too soon
        ev("c-imp", 0, user="u-c", kind="impression"),
        ev("c-imp2", 5, user="u-c", kind="impression"),
        ev("c", 5.5, user="u-c"),  # the latest impression counts
        ev("d-imp", 0, user="u-d", kind="impression", ad="ad-2"),
        ev("d", 0.5, user="u-d"),  # impression of another ad
        ev("e", 0, user="u-e"),
        ev("e-imp", 0.5, user="u-e", kind="impression"),  # after the click
        ev("f", 0.5, user="u-f"),  # no impression at all
        ev("n-imp", 0, user=None, ip="ip-n", kind="impression"),
        ev("n", 0.5, user=None, ip="ip-n"),  # no user: no verdict
    ]
    got = judge(spark, rows, min_seconds_after_impression=1.0)
    assert {e for e, v in got.items() if v[0]} == {"a", "c"}
    assert got["a"] == (["too_soon_after_impression"], 0.4, False)  # alone it is below the threshold


def test_country_mismatch(spark) -> None:
    minute = 60.0
    rows = [
        ev("a-imp", 0, user="u-a", kind="impression", country="FR"),
        ev("a", 10, user="u-a", country="DE"),
        ev("b-imp", 0, user="u-b", kind="impression", country="FR"),
        ev("b", 10, user="u-b", country="FR"),
        ev("c-imp", 0, user="u-c", kind="impression", country=None),
        ev("c", 10, user="u-c", country="DE"),
        ev("d-imp", 0, user="u-d", kind="impression", country="FR"),
        ev("d", 10, user="u-d", country=None),
        ev("e-imp", 0, user="u-e", kind="impression", country="FR"),
        ev("e", 30 * minute, user="u-e", country="DE"),  # 30 min back: still looked up
        ev("f-imp", 0, user="u-f", kind="impression", country="FR"),
        ev("f", 30 * minute + 1, user="u-f", country="DE"),  # beyond the lookback
        ev("g-imp", 0, user="u-g", kind="impression", country="FR"),
        ev("g-imp2", minute, user="u-g", kind="impression", country="DE"),
        ev("g", 2 * minute, user="u-g", country="DE"),  # the latest impression is DE
        ev("n-imp", 0, user=None, ip="ip-n", kind="impression", country="FR"),
        ev("n", 10, user=None, ip="ip-n", country="DE"),
    ]
    got = judge(spark, rows, impression_lookback_minutes=30)
    assert {e for e, v in got.items() if v[0]} == {"a", "e"}
    assert got["a"] == (["country_mismatch"], 0.3, False)


def test_score_combines_the_fired_rules(spark) -> None:
    bot = "HeadlessChrome/124.0"
    rows = [
        # bot + too soon + country mismatch: 1 - 0.1 * 0.6 * 0.7
        ev("x-imp", 0, user="u-x", kind="impression", country="FR"),
        ev("x", 0.2, user="u-x", country="DE", ua=bot, device="bot"),
        # too soon + mismatch: 1 - 0.6 * 0.7 = 0.58 >= 0.5
        ev("y-imp", 0, user="u-y", kind="impression", country="FR"),
        ev("y", 0.2, user="u-y", country="DE"),
    ]
    got = judge(spark, rows)
    assert got["x"][0] == ["bot_user_agent", "too_soon_after_impression", "country_mismatch"]
    assert got["x"][1] == pytest.approx(0.958)
    assert got["y"] == (["too_soon_after_impression", "country_mismatch"], 0.58, True)
    # the threshold is a parameter
    assert judge(spark, rows, threshold=0.6)["y"] == (
        ["too_soon_after_impression", "country_mismatch"],
        0.58,
        False,
    )


def test_the_per_event_rules_alone_judge_each_row_without_its_neighbours(spark) -> None:
    """The speed layer's subset: a bot click is fraud, the windowed rules never fire."""
    rows = [
        ev("imp", 0, user="u", kind="impression", country="FR"),
        ev("soon", 0.2, user="u", country="DE"),  # too soon + mismatch under all rules
        ev("bot", 5, user="v", ua="HeadlessChrome/124.0", device="bot"),
        *[ev(f"burst{n}", 10 + n / 100, ip="ip-burst") for n in range(25)],  # ip_rate under all rules
    ]
    df = spark.createDataFrame(rows, COLUMNS)
    out = with_fraud(df, reasons=PER_EVENT_REASONS)
    got = {r.event_id: (list(r.fraud_reasons), r.fraud_score, r.is_fraud) for r in out.collect()}
    assert got["bot"] == (["bot_user_agent"], 0.9, True)
    assert got["soon"] == ([], 0.0, False)
    assert all(got[f"burst{n}"] == ([], 0.0, False) for n in range(25))
    everything = {r.event_id: r.is_fraud for r in with_fraud(df).collect()}
    assert everything["soon"] and everything["burst0"]  # the same rows under every rule
    with pytest.raises(ValueError, match="unknown fraud rules"):
        with_fraud(df, reasons=("no_such_rule",))


def test_default_rules_leave_ordinary_traffic_alone(spark) -> None:
    rows = [ev(f"i{n}", n, user=f"u{n}", ip=f"ip{n}", kind="impression") for n in range(5)]
    rows += [ev(f"c{n}", n + 30, user=f"u{n}", ip=f"ip{n}") for n in range(5)]
    rows += [ev("conv", 40, user="u1", kind="conversion")]
    df = spark.createDataFrame(rows, COLUMNS)
    out = with_fraud(df).collect()
    assert [(r.event_id, list(r.fraud_reasons), r.fraud_score, r.is_fraud) for r in out if r.is_fraud] == []
    assert {r.fraud_score for r in out} == {0.0}


def test_rules_are_validated() -> None:
    assert FraudRules().weight("bot_user_agent") == 0.9
    with pytest.raises(ValueError, match="weight_ip_rate"):
        FraudRules(weight_ip_rate=1.5)
    with pytest.raises(ValueError, match="repeat_window_minutes"):
        FraudRules(repeat_window_minutes=0)
    with pytest.raises(KeyError):
        FraudRules().weight("nope")


def _busy_traffic(seed: int, n: int = 1500) -> list[tuple]:
    """Few users, IPs and ads in three minutes, so every rule fires somewhere; null keys,
    null ads, bots and conversions mixed in."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        user = rng.choice([None, *[f"u{k}" for k in range(12)]])
        rows.append(
            ev(
                f"e{i:05d}",
                rng.uniform(0, 180),
                kind=rng.choices(["impression", "click", "conversion"], [6, 3, 1])[0],
                ad=rng.choice([None, "ad-1", "ad-2", "ad-3"]),
                user=user,
                ip=rng.choice([None, "ip-a", "ip-b", f"ip-{user}"]),
                country=rng.choice([None, "FR", "DE"]),
                ua=rng.choice([CHROME, "HeadlessChrome/124.0", None]),
                device=rng.choice(["desktop", "bot", None]),
            )
        )
    return rows


@pytest.mark.parametrize(
    "rules",
    [FraudRules(), FraudRules(threshold=0.0), FraudRules(max_clicks_per_ip_per_minute=2, threshold=0.35)],
    ids=["default", "threshold-0", "strict"],
)
@pytest.mark.parametrize("broadcast", [True, False])
def test_narrow_verdicts_equal_the_rules_over_the_whole_frame(spark, rules, broadcast) -> None:
    """The batch layer's path (the fired clicks on a narrow projection, joined back) gives every
    row the reasons, score and verdict that :func:`with_fraud` over all rows gives it."""
    df = spark.createDataFrame(_busy_traffic(seed=7), COLUMNS)
    whole = {
        r.event_id: (list(r.fraud_reasons), r.fraud_score, r.is_fraud)
        for r in with_fraud(df, rules).collect()
    }
    verdicts = fraud_verdicts(df, rules)
    narrow_rows = with_fraud_verdicts(df, verdicts, rules, broadcast=broadcast)
    assert narrow_rows.columns == [*df.columns, "fraud_reasons", "fraud_score", "is_fraud"]
    narrow = {r.event_id: (list(r.fraud_reasons), r.fraud_score, r.is_fraud) for r in narrow_rows.collect()}
    assert narrow == whole
    fired_reasons = {reason for reasons, _, _ in whole.values() for reason in reasons}
    assert fired_reasons == set(REASONS)  # the traffic exercises every rule
    assert verdicts.count() == sum(1 for reasons, _, _ in whole.values() if reasons)
