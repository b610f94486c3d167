"""Click-fraud rules, shared by the speed layer (per micro-batch) and the batch layer (per day).

Reads enriched events: the bronze columns (``event_id``, ``event_type``, ``ad_id``, ``event_time``,
``user_key``, ``ip_key``, ``country``, ``user_agent``) plus ``device_type`` from
:func:`adclick.enrich.with_device`, one row per ``event_id`` (deduplicated: a duplicate would count
twice in the rate rules). :func:`with_fraud` keeps every row and its grain and adds:

* ``fraud_reasons`` (array<string>): the rules that fired, in the order of :data:`REASONS`;
* ``fraud_score`` (double in [0, 1]): ``1 - prod(1 - weight)`` over the fired rules, rounded to
  6 decimals so float noise never decides a comparison with the threshold;
* ``is_fraud`` (boolean): ``fraud_score >= rules.threshold``.

Only ``click`` rows are judged; impressions and conversions get ``[]``, ``0.0``, ``false`` (they
still feed the impression rules). Each rule is a function ``FraudRules -> Column`` (a boolean,
never null, false for non-click rows) built from window functions over the input, so the verdict
depends only on the rows given: the speed layer judges a click against its micro-batch, the batch
layer against the whole day. No clock is read. A null ``ip_key``/``user_key`` is never a group: a
row with a null key is alone in its window partition and never fires a rule keyed on it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, Window

from adclick.enrich import BOT_RE

IP_RATE = "ip_rate"
USER_RATE = "user_rate"
REPEAT_CLICK = "repeat_click"
BOT_USER_AGENT = "bot_user_agent"
TOO_SOON_AFTER_IMPRESSION = "too_soon_after_impression"
COUNTRY_MISMATCH = "country_mismatch"
REASONS = (BOT_USER_AGENT, IP_RATE, USER_RATE, REPEAT_CLICK, TOO_SOON_AFTER_IMPRESSION, COUNTRY_MISMATCH)

_MICROS_PER_SECOND = 1_000_000
_MICROS_PER_MINUTE = 60 * _MICROS_PER_SECOND


@dataclass(frozen=True)
class FraudRules:
    """Thresholds and weights of the fraud rules (the defaults are the production ones)."""

    max_clicks_per_ip_per_minute: int = 20
    max_clicks_per_user_per_minute: int = 10
    max_repeat_clicks: int = 3
    repeat_window_minutes: int = 10
    impression_lookback_minutes: int = 30
    min_seconds_after_impression: float = 1.0
    weight_bot_user_agent: float = 0.9
    weight_ip_rate: float = 0.6
    weight_user_rate: float = 0.5
    weight_repeat_click: float = 0.5
    weight_too_soon_after_impression: float = 0.4
    weight_country_mismatch: float = 0.3
    threshold: float = 0.5

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("weight_") or f.name == "threshold":
                if not 0.0 <= value <= 1.0:
                    raise ValueError(f"FraudRules.{f.name} must be in [0, 1], got {value}")
            elif f.name.startswith("max_") and value < 0:
                raise ValueError(f"FraudRules.{f.name} must be >= 0, got {value}")
            elif not f.name.startswith("max_") and value <= 0:
                raise ValueError(f"FraudRules.{f.name} must be > 0, got {value}")

    def weight(self, reason: str) -> float:
        """The weight of the rule named ``reason`` (one of :data:`REASONS`)."""
        if reason not in REASONS:
            raise KeyError(reason)
        return float(getattr(self, f"weight_{reason}"))


DEFAULT_RULES = FraudRules()


def _is_click() -> Column:
    return F.coalesce(F.col("event_type") == "click", F.lit(False))


def _micros() -> Column:
    return F.unix_micros(F.col("event_time"))


def _alone_if_null(key: Column) -> Column:
    """A second partition key that puts each null-key row in a partition of its own.

    Partitioning by ``key`` alone would put all null-key rows into one (skewed) partition; the rules
    mask null keys anyway, this keeps that partition from existing at all.
    """
    return F.when(key.isNull(), F.col("event_id"))


def _clicks_per_minute_above(key: str, limit: int) -> Column:
    k = F.col(key)
    minute = F.floor(_micros() / _MICROS_PER_MINUTE)  # epoch-aligned, like F.window(..., "1 minute")
    w = Window.partitionBy(k, _alone_if_null(k), _is_click(), minute)
    fired = F.count(F.lit(1)).over(w) > limit
    return _is_click() & k.isNotNull() & F.col("event_time").isNotNull() & F.coalesce(fired, F.lit(False))


def ip_rate(rules: FraudRules) -> Column:
    """All clicks of an (ip_key, event-time minute) with more than ``max_clicks_per_ip_per_minute`` clicks.

    The whole group is flagged, not only the clicks beyond the limit: within a burst there is no
    telling which click was the honest one, and flagging the group does not depend on event order.
    """
    return _clicks_per_minute_above("ip_key", rules.max_clicks_per_ip_per_minute)


def user_rate(rules: FraudRules) -> Column:
    """All clicks of a (user_key, event-time minute) with more than ``max_clicks_per_user_per_minute``."""
    return _clicks_per_minute_above("user_key", rules.max_clicks_per_user_per_minute)


def repeat_click(rules: FraudRules) -> Column:
    """Clicks on one ad by one actor beyond the first ``max_repeat_clicks`` in a sliding window.

    The actor is the ``user_key``, or the ``ip_key`` when the user is unknown (both null: no actor).
    A click fires when it is at position > ``max_repeat_clicks`` among the actor's clicks on that ad
    in (event_time - ``repeat_window_minutes``, event_time], ordered by (event_time, event_id): a
    true sliding window (range frame over epoch microseconds), with clicks at the same instant put in
    event_id order so that exactly the clicks beyond the limit fire.
    """
    actor = F.coalesce(F.concat(F.lit("u:"), F.col("user_key")), F.concat(F.lit("i:"), F.col("ip_key")))
    keys = (actor, _alone_if_null(actor), F.col("ad_id"), _is_click())
    window_us = rules.repeat_window_minutes * _MICROS_PER_MINUTE
    earlier = Window.partitionBy(*keys).orderBy(_micros()).rangeBetween(-(window_us - 1), -1)
    same_instant = Window.partitionBy(*keys, F.col("event_time")).orderBy(F.col("event_id"))
    position = F.count(F.lit(1)).over(earlier) + F.row_number().over(same_instant)
    return (
        _is_click()
        & actor.isNotNull()
        & F.col("ad_id").isNotNull()
        & F.col("event_time").isNotNull()
        & F.coalesce(position > rules.max_repeat_clicks, F.lit(False))
    )


def bot_user_agent(rules: FraudRules) -> Column:
    """Clicks from an automated client: ``device_type = 'bot'`` or a user agent matching the bot regex.

    Takes ``rules`` like every rule (it has no threshold of its own).
    """
    del rules
    bot = F.coalesce(F.col("device_type") == "bot", F.lit(False)) | F.coalesce(
        F.col("user_agent").rlike(BOT_RE), F.lit(False)
    )
    return _is_click() & bot


def _latest_impression(rules: FraudRules) -> Column:
    """(t: epoch micros, c: country) of the user's latest impression of the ad at or before this row,
    at most ``impression_lookback_minutes`` earlier; null if none. Ties: the greatest country."""
    user = F.col("user_key")
    lookback_us = rules.impression_lookback_minutes * _MICROS_PER_MINUTE
    w = (
        Window.partitionBy(user, _alone_if_null(user), F.col("ad_id"))
        .orderBy(_micros())
        .rangeBetween(-lookback_us, 0)
    )
    impression = F.when(
        F.col("event_type") == "impression",
        F.struct(_micros().alias("t"), F.col("country").alias("c")),
    )
    return F.max(impression).over(w)


def too_soon_after_impression(rules: FraudRules) -> Column:
    """Clicks less than ``min_seconds_after_impression`` after the same user's latest impression of the
    ad (looked up ``impression_lookback_minutes`` back). No impression in the input: no verdict."""
    latest = _latest_impression(rules)
    min_us = round(rules.min_seconds_after_impression * _MICROS_PER_SECOND)
    fired = (_micros() - latest["t"]) < min_us
    return _is_click() & F.col("user_key").isNotNull() & F.coalesce(fired, F.lit(False))


def country_mismatch(rules: FraudRules) -> Column:
    """Clicks whose country differs from the country of the same user's latest impression of the ad
    (looked up ``impression_lookback_minutes`` back); both countries must be known."""
    latest = _latest_impression(rules)
    fired = F.col("country") != latest["c"]  # null when either country is null
    return _is_click() & F.col("user_key").isNotNull() & F.coalesce(fired, F.lit(False))


RULES = {
    BOT_USER_AGENT: bot_user_agent,
    IP_RATE: ip_rate,
    USER_RATE: user_rate,
    REPEAT_CLICK: repeat_click,
    TOO_SOON_AFTER_IMPRESSION: too_soon_after_impression,
    COUNTRY_MISMATCH: country_mismatch,
}


# The rules that judge a click on its own row, without a window over other events: all the speed
# layer applies (a micro-batch is no honest window for rates, repeats or impressions; the batch
# layer judges those over the whole day, so the speed layer's fraud counts are provisional).
PER_EVENT_REASONS = (BOT_USER_AGENT,)


# What the rules read of an event; no other column changes a verdict.
JUDGED_COLUMNS = (
    "event_id",
    "event_type",
    "ad_id",
    "event_time",
    "user_key",
    "ip_key",
    "country",
    "user_agent",
    "device_type",
)
VERDICT_COLUMNS = ("fraud_reasons", "fraud_score", "is_fraud")


def with_fraud(
    df: DataFrame, rules: FraudRules = DEFAULT_RULES, reasons: tuple[str, ...] = REASONS
) -> DataFrame:
    """Adds ``fraud_reasons``, ``fraud_score`` and ``is_fraud`` (see the module docstring), from
    the rules named in ``reasons`` (default: all of them, in the order of :data:`REASONS`)."""
    unknown = set(reasons) - set(REASONS)
    if unknown:
        raise ValueError(f"unknown fraud rules {sorted(unknown)}; known: {list(REASONS)}")
    applied = tuple(r for r in REASONS if r in reasons)
    flags = {reason: f"_fraud_{reason}" for reason in applied}
    flagged = df.select("*", *[RULES[reason](rules).alias(flags[reason]) for reason in applied])
    fired = [F.when(F.col(flags[r]), F.lit(r)) for r in applied]
    reasons_col = F.array_compact(F.array(*fired)) if fired else F.array().cast("array<string>")
    keep = F.lit(1.0)
    for reason in applied:
        keep = keep * F.when(F.col(flags[reason]), F.lit(1.0 - rules.weight(reason))).otherwise(F.lit(1.0))
    score = F.round(F.lit(1.0) - keep, 6)
    return (
        flagged.withColumns({"fraud_reasons": reasons_col, "fraud_score": score})
        .withColumn("is_fraud", F.col("fraud_score") >= F.lit(rules.threshold))
        .drop(*flags.values())
    )


def fraud_verdicts(df: DataFrame, rules: FraudRules = DEFAULT_RULES) -> DataFrame:
    """The clicks of ``df`` that at least one rule fired on: ``event_id`` and :data:`VERDICT_COLUMNS`.

    The same verdicts as :func:`with_fraud` over all of ``df`` (every rule, ``df`` unique by
    ``event_id``), computed on a narrow projection of the clicks and impressions only: the rules
    never read other event types or other columns. Every click left out has no reason, score 0.0
    and ``is_fraud`` = (0.0 >= threshold): :func:`with_fraud_verdicts` puts those back.
    """
    judged = df.select(*JUDGED_COLUMNS)
    clicks = judged.where(_is_click())
    # The impression rules look at the clicker's impressions of the ad clicked: impressions of
    # other (user, ad) pairs can never change a verdict, and are most of a day.
    clicked = (
        clicks.where(F.col("user_key").isNotNull())
        .select(F.col("user_key").alias("_clicked_user"), F.col("ad_id").alias("_clicked_ad"))
        .distinct()
    )
    impressions = judged.where(F.col("event_type") == "impression")
    # null-safe on the ad: the rules' windows put a null ad_id in a group of its own, like any value
    same_pair = (F.col("user_key") == F.col("_clicked_user")) & F.col("ad_id").eqNullSafe(
        F.col("_clicked_ad")
    )
    impressions = impressions.join(clicked, same_pair, "left_semi")
    fired = with_fraud(clicks.unionByName(impressions), rules).where(F.size("fraud_reasons") > 0)
    return fired.select("event_id", *VERDICT_COLUMNS)


def with_fraud_verdicts(
    df: DataFrame, verdicts: DataFrame, rules: FraudRules = DEFAULT_RULES, *, broadcast: bool = True
) -> DataFrame:
    """``df`` with :data:`VERDICT_COLUMNS` from ``verdicts`` (:func:`fraud_verdicts` of ``df``).

    Equals :func:`with_fraud` of ``df``: a row without a verdict had no rule fire. ``broadcast``
    ships the verdicts to every task instead of shuffling ``df`` (they are the fired clicks only,
    a small share of a day).
    """
    renamed = verdicts.select(
        F.col("event_id").alias("_verdict_id"), *[F.col(c).alias(f"_verdict_{c}") for c in VERDICT_COLUMNS]
    )
    if broadcast:
        renamed = F.broadcast(renamed)
    events = df.drop(*VERDICT_COLUMNS)
    joined = events.join(renamed, events["event_id"].eqNullSafe(renamed["_verdict_id"]), "left")
    nothing_fired = F.lit(0.0) >= F.lit(rules.threshold)
    return joined.withColumns(
        {
            "fraud_reasons": F.coalesce(F.col("_verdict_fraud_reasons"), F.array().cast("array<string>")),
            "fraud_score": F.coalesce(F.col("_verdict_fraud_score"), F.lit(0.0)),
            "is_fraud": F.coalesce(F.col("_verdict_is_fraud"), nothing_fired),
        }
    ).drop("_verdict_id", *[f"_verdict_{c}" for c in VERDICT_COLUMNS])
