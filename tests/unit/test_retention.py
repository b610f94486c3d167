"""The lifecycle policy (adclick/retention.py): tiers, per-table overrides, the plan a retention run
carries out, legal holds, restored-day expiry; the speed MERGE's partition list."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from adclick.retention import (
    Hold,
    PolicyError,
    holding,
    plan,
    policy_for,
    restored_expiry,
    tier,
)
from adclick.settings import Settings

TODAY = date(2026, 12, 1)


def ago(n: int) -> date:
    return TODAY - timedelta(days=n)


def test_default_policy_is_the_specs_tiers() -> None:
    s = Settings()
    bronze = policy_for(s, "bronze.events")
    assert (bronze.hot_days, bronze.warm_days, bronze.storage_class, bronze.end) == (
        30,
        365,
        "GLACIER",
        "archive",
    )
    assert [tier(bronze, ago(n), TODAY) for n in (0, 29, 30, 364, 365, 4000)] == [
        "hot",
        "hot",
        "warm",
        "warm",
        "cold",
        "cold",
    ]
    gold = policy_for(s, "gold.ad_clicks_daily")
    assert (gold.end, gold.warm_days, tier(gold, ago(4000), TODAY)) == ("keep", None, "warm")
    speed = policy_for(s, "speed.ad_clicks_minute")
    assert (speed.end, speed.hot_days) == ("expire", s.late_horizon_days)


def test_overrides_apply_by_layer_then_by_table() -> None:
    s = Settings(
        retention_overrides={
            "bronze": {"warm_days": 90, "storage_class": "DEEP_ARCHIVE"},
            "bronze.rejects": {"warm_days": 40},
            "gold": {"warm_days": None},
        }
    )
    assert (policy_for(s, "bronze.events").warm_days, policy_for(s, "bronze.events").storage_class) == (
        90,
        "DEEP_ARCHIVE",
    )
    assert policy_for(s, "bronze.rejects").warm_days == 40
    assert policy_for(s, "bronze.rejects").storage_class == "DEEP_ARCHIVE"
    assert policy_for(s, "silver.events").warm_days == 365


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"bronze": {"warm_day": 3}}, "unknown keys ['warm_day']"),
        ({"bronze": {"hot_days": 0}}, "hot_days must be at least 1"),
        ({"bronze": {"hot_days": 40, "warm_days": 30}}, "warm_days 30 is before hot_days 40"),
        ({"bronze": {"storage_class": "TAPE"}}, "unknown storage class 'TAPE'"),
    ],
)
def test_a_bad_policy_is_refused_with_what_is_wrong(override, message) -> None:
    with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        policy_for(Settings(retention_overrides=override), "bronze.events")


def test_plan_compacts_warm_archives_cold_and_skips_held_days() -> None:
    policy = policy_for(Settings(retention_hot_days=2, retention_warm_days=5), "bronze.events")
    days = [ago(n) for n in range(8)]
    actions = plan(policy, days, TODAY, compacted=[ago(3)], holds={ago(6): ("hold-1",)})
    assert [(a.kind, (TODAY - a.day).days) for a in actions] == [
        ("archive", 7),
        ("skip_held", 6),
        ("archive", 5),
        ("compact", 4),
        ("compact", 2),
    ]
    held = next(a for a in actions if a.kind == "skip_held")
    assert held.holds == ("hold-1",) and "would archive" in held.why


def test_speed_expires_only_behind_the_watermark_and_past_hot_days() -> None:
    policy = policy_for(Settings(retention_overrides={"speed": {"hot_days": 2}}), "speed.ad_clicks_minute")
    days = [ago(n) for n in range(6)]
    actions = plan(policy, days, TODAY, watermark=ago(3))
    assert [(a.kind, (TODAY - a.day).days) for a in actions] == [("expire", 5), ("expire", 4), ("expire", 3)]
    assert plan(policy, days, TODAY, watermark=None) == []  # no batch yet: speed is all there is
    held = plan(policy, days, TODAY, watermark=ago(3), holds={ago(4): ("h",)})
    assert [a.kind for a in held] == ["expire", "skip_held", "expire"]


def test_gold_is_compacted_but_never_removed() -> None:
    policy = policy_for(Settings(retention_hot_days=2), "gold.ad_clicks_daily")
    actions = plan(policy, [ago(n) for n in (1, 3, 5000)], TODAY)
    assert [(a.kind, (TODAY - a.day).days) for a in actions] == [("compact", 5000), ("compact", 3)]


def test_holds_cover_their_dates_or_what_the_partition_holds() -> None:
    dates = Hold("h1", "dates", "case", "legal", date_from=ago(5), date_to=ago(3))
    user = Hold("h2", "user", "case", "legal", user_key="k" * 32)
    assert [d for d in (ago(n) for n in range(7)) if dates.covers_day(d)] == [ago(3), ago(4), ago(5)]
    assert not user.covers_day(ago(4))
    assert holding([dates, user], ago(4)) == ("h1",)
    assert holding([dates, user], ago(1), {"h2": True}) == ("h2",)
    assert holding([dates, user], ago(1), {"h2": False}) == ()
    assert "kkkkkkkkkkkk..." in user.describe() and "k" * 13 not in user.describe()  # never the whole key


def test_restored_days_expire_after_their_keep_days() -> None:
    restored_on = {ago(400): ago(8), ago(401): ago(7), ago(402): ago(6)}
    assert restored_expiry(restored_on, TODAY, 7) == [ago(401), ago(400)]


def test_add_hold_refuses_unclear_requests_before_writing_anything() -> None:
    from batch_layer.lifecycle import HoldError, add_hold

    s = Settings()
    with pytest.raises(HoldError, match="exactly one of"):
        add_hold(None, s, reason="r", by="me")  # type: ignore[arg-type]
    with pytest.raises(HoldError, match="exactly one of"):
        add_hold(None, s, reason="r", by="me", advertiser_id="adv-1", user_key="u")  # type: ignore[arg-type]
    with pytest.raises(HoldError, match="needs a reason"):
        add_hold(None, s, reason=" ", by="me", advertiser_id="adv-1")  # type: ignore[arg-type]
    with pytest.raises(HoldError, match="before --from"):
        add_hold(None, s, reason="r", by="me", date_from=ago(1), date_to=ago(3))  # type: ignore[arg-type]


def test_cli_parses_the_lifecycle_commands() -> None:
    from cli.main import build_parser

    parser = build_parser()
    args = parser.parse_args(["archive", "restore", "--from", "2025-01-01", "--to", "2025-01-03"])
    assert (args.first, args.last) == (date(2025, 1, 1), date(2025, 1, 3))
    args = parser.parse_args(["archive", "run", "--dry-run", "--table", "bronze.events"])
    assert (args.dry_run, args.table, args.date) == (True, ["bronze.events"], None)
    args = parser.parse_args(["hold", "add", "--user", "u-1", "--reason", "case 9", "--by", "legal"])
    assert (args.user, args.reason, args.by) == ("u-1", "case 9", "legal")
    with pytest.raises(SystemExit):
        parser.parse_args(["archive", "run", "--table", "gold.nope"])
