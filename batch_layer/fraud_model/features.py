"""The fraud model's features: per-click behaviour of the UTC hour around it, from silver-like rows.

Reads whatever rows it is given (silver columns: ``event_id``, ``event_type``, ``ad_id``,
``event_time``, ``user_key``, ``ip_key``, ``user_agent``, ``device_type``); writes nothing.
:func:`features` keeps the grain (one row out per row in) and adds :data:`FEATURES`. They are
computed with window functions over the rows given and mostly per UTC hour, so a click gets the
same features whether it is scored with its day (silver) or trained with a week of history.
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, Window

from adclick.enrich import BOT_RE

IP_CLICKS_HOUR = "f_ip_clicks_hour"
USER_CLICKS_HOUR = "f_user_clicks_hour"
USER_ADS_HOUR = "f_user_ads_hour"
USER_CLICK_SHARE = "f_user_click_share"
SECONDS_SINCE_PREVIOUS = "f_seconds_since_previous"
IS_BOT_UA = "f_is_bot_ua"
DEVICE_TYPES = ("desktop", "mobile", "tablet", "bot")
DEVICE_FEATURES = tuple(f"f_device_{d}" for d in DEVICE_TYPES)
HOUR_OF_DAY = "f_hour_of_day"
FEATURES: tuple[str, ...] = (
    IP_CLICKS_HOUR,
    USER_CLICKS_HOUR,
    USER_ADS_HOUR,
    USER_CLICK_SHARE,
    SECONDS_SINCE_PREVIOUS,
    IS_BOT_UA,
    *DEVICE_FEATURES,
    HOUR_OF_DAY,
)
"""The model's inputs, in assembler order; every one is a double, non-null on click rows."""

SECONDS_SINCE_PREVIOUS_CAP = 3600.0
"""A user's previous event more than an hour back (or none in the input) counts as an hour."""

MICROS_PER_SECOND = 1_000_000
MICROS_PER_HOUR = 3600 * MICROS_PER_SECOND
MICROS_PER_DAY = 24 * MICROS_PER_HOUR


def is_click() -> Column:
    """True on click rows, false on every other row (a null event type included)."""
    return F.coalesce(F.col("event_type") == "click", F.lit(False))


def micros() -> Column:
    return F.unix_micros(F.col("event_time"))


def _hour() -> Column:
    # Epoch-aligned UTC hour, independent of the session time zone.
    return F.floor(micros() / MICROS_PER_HOUR)


def _hourly(key: str) -> Window:
    """The rows of one ``key`` in one UTC hour; a row whose key or time is null is alone."""
    k = F.col(key)
    alone = F.when(k.isNull() | F.col("event_time").isNull(), F.col("event_id"))
    return Window.partitionBy(k, alone, _hour())


def features(events: DataFrame) -> DataFrame:
    """Adds the model's features (:data:`FEATURES`, doubles) to every row; null on non-click rows.

    Keeps every input row and column. Computed over the rows given (window functions, no clock);
    "hour" is the click's UTC clock hour (epoch-aligned, like ``date_trunc('hour')`` in UTC). A row
    with a null ``ip_key`` (``user_key``) is a group of its own for the ip (user) features: it is
    never pooled with other null-key rows. On click rows every feature is non-null:

    * ``f_ip_clicks_hour``: clicks from the same ``ip_key`` in the hour, this one included (>= 1).
    * ``f_user_clicks_hour``: clicks by the same ``user_key`` in the hour (>= 1).
    * ``f_user_ads_hour``: distinct ``ad_id`` the user clicked in the hour (0 when the ad is null).
    * ``f_user_click_share``: the user's clicks / all the user's events (impressions, clicks,
      conversions) in the hour, in (0, 1]. A share rather than clicks/impressions: it is bounded
      and defined when the input holds no impression of the user.
    * ``f_seconds_since_previous``: seconds since the same user's previous event of any type in the
      input (ordered by event_time, then event_id), capped at 3600; 3600 when there is none (first
      event, null user or null time).
    * ``f_is_bot_ua``: 1.0 when ``device_type`` is ``bot`` or the user agent matches
      :data:`adclick.enrich.BOT_RE`, else 0.0 (the bot rule's test).
    * ``f_device_desktop|mobile|tablet|bot``: one-hot ``device_type``; ``unknown``, null or any other
      value is all zeros. Fixed categories, so the features need no fitted indexer.
    * ``f_hour_of_day``: the UTC hour of day, 0..23; -1 when ``event_time`` is null.
    """
    click = is_click()
    by_ip, by_user = _hourly("ip_key"), _hourly("user_key")
    user = F.col("user_key")
    previous = F.lag(micros()).over(
        Window.partitionBy(user, F.when(user.isNull(), F.col("event_id"))).orderBy(
            micros(), F.col("event_id")
        )
    )
    since = (micros() - previous) / MICROS_PER_SECOND
    clicked_ad = F.when(click, F.col("ad_id"))
    bot = F.coalesce(F.col("device_type") == "bot", F.lit(False)) | F.coalesce(
        F.col("user_agent").rlike(BOT_RE), F.lit(False)
    )
    user_clicks = F.count(F.when(click, F.lit(1))).over(by_user)
    values: dict[str, Column] = {
        IP_CLICKS_HOUR: F.count(F.when(click, F.lit(1))).over(by_ip),
        USER_CLICKS_HOUR: user_clicks,
        USER_ADS_HOUR: F.size(F.collect_set(clicked_ad).over(by_user)),
        USER_CLICK_SHARE: user_clicks / F.count(F.lit(1)).over(by_user),
        SECONDS_SINCE_PREVIOUS: F.coalesce(
            F.least(since, F.lit(SECONDS_SINCE_PREVIOUS_CAP)), F.lit(SECONDS_SINCE_PREVIOUS_CAP)
        ),
        IS_BOT_UA: bot.cast("double"),
        **{
            name: F.coalesce(F.col("device_type") == device, F.lit(False)).cast("double")
            for name, device in zip(DEVICE_FEATURES, DEVICE_TYPES, strict=True)
        },
        HOUR_OF_DAY: F.coalesce(F.pmod(_hour(), F.lit(24)), F.lit(-1)),
    }
    return events.withColumns({name: F.when(click, value.cast("double")) for name, value in values.items()})
