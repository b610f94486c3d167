"""Enrichment of events, shared by the speed layer (per micro-batch) and the batch layer (per day).

Reads event rows with the bronze columns (``speed_layer.parse.to_bronze_rows``) and, for the joins,
the ``dims.*`` reference tables. Writes nothing: every function is ``DataFrame -> DataFrame`` and
keeps the grain of its input (one output row per input row; the dimension joins are left joins on a
key made unique first, so they never drop or multiply events).

* :func:`with_device` adds ``device_type``, ``os``, ``browser`` parsed from ``user_agent``.
* :func:`enrich_ads` adds ``advertiser_id``, ``cpc_micros`` and fills a missing ``campaign_id``
  from the ads dimension.
* :func:`enrich_users` adds ``age_group``, ``segment`` from the user profiles dimension.

``region`` is not derived here: bronze already carries it (computed from ``country`` at ingestion).
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame

UNKNOWN = "unknown"
OTHER = "other"

# Automated clients (crawlers, headless browsers, HTTP libraries), case-insensitive. A superset of
# the generator's ``traffic.user_agents.BOT_MARKERS``; the unit tests check that it covers them.
BOT_RE = (
    r"(?i)(bot|crawl|spider|slurp|headless|phantomjs|python-requests|python-urllib|aiohttp|httpx|"
    r"curl/|wget/|scrapy|go-http-client|okhttp|java/|libwww|apache-httpclient|facebookexternalhit)"
)

# Each list is tried in order; the first regex found in the user agent wins. The order matters
# because user agents name their ancestors: Edge and Samsung Internet also say "Chrome", Chrome also
# says "Safari", an iPad says "Mac OS X" and "Mobile", Android says "Linux", ChromeOS says "X11".
_TABLET = r"iPad|Tablet|Kindle|Silk/|Android(?!.*Mobi)"
_MOBILE = r"iPhone|iPod|Mobi|Windows Phone"
_OS: tuple[tuple[str, str], ...] = (
    (r"iPhone|iPad|iPod", "iOS"),
    (r"Android", "Android"),
    (r"CrOS", "ChromeOS"),
    (r"Windows", "Windows"),
    (r"Macintosh|Mac OS X", "macOS"),
    (r"FreeBSD|OpenBSD|NetBSD|SunOS|BlackBerry|BB10|KAIOS|Tizen|[Ww]eb0?OS|PlayStation|Nintendo", OTHER),
    (r"Linux|X11", "Linux"),
)
_DESKTOP_OS = ("Windows", "macOS", "Linux", "ChromeOS")
_BROWSER: tuple[tuple[str, str], ...] = (
    (r"SamsungBrowser/", "Samsung Internet"),
    (r"Edg(e|A|iOS)?/", "Edge"),
    (r"OPR/|OPiOS/|Opera", "Opera"),
    (r"Firefox/|FxiOS/", "Firefox"),
    (r"Chrome/|CriOS/|Chromium/", "Chrome"),
    (r"Safari/", "Safari"),
)


def _first_match(text: Column, cases: tuple[tuple[str, str], ...], otherwise: Column) -> Column:
    expr = otherwise
    for pattern, label in reversed(cases):
        expr = F.when(text.rlike(pattern), F.lit(label)).otherwise(expr)
    return expr


def with_device(df: DataFrame) -> DataFrame:
    """Adds ``device_type``, ``os`` and ``browser`` from ``user_agent`` (regexes, no UDF).

    * ``device_type``: ``bot`` | ``tablet`` (iPad, Android without "Mobi", "Tablet") | ``mobile``
      (iPhone, "Mobi") | ``desktop`` (a desktop OS, or X11) | ``unknown`` (no UA, or a UA naming no
      desktop OS, such as a TV or an HTTP client).
    * ``os``: ``iOS`` | ``Android`` | ``ChromeOS`` | ``Windows`` | ``macOS`` | ``Linux`` | ``other``
      (a recognised minor platform: BSD, Tizen, KaiOS, consoles...) | ``unknown`` (no UA, or no
      platform named, as in ``curl/8.5.0``).
    * ``browser``: ``bot`` for automated clients, else ``Samsung Internet`` | ``Edge`` | ``Opera`` |
      ``Firefox`` | ``Chrome`` | ``Safari`` | ``other`` (a UA naming none of them) | ``unknown``
      (no UA).

    A null or blank ``user_agent`` gives ``unknown`` for all three. Bots keep the OS their UA names
    (HeadlessChrome on Linux -> ``Linux``).
    """
    ua = F.col("user_agent")
    missing = ua.isNull() | (F.trim(ua) == "")
    bot = ua.rlike(BOT_RE)
    os_name = F.when(missing, F.lit(UNKNOWN)).otherwise(_first_match(ua, _OS, F.lit(UNKNOWN)))
    device = (
        F.when(missing, F.lit(UNKNOWN))
        .when(bot, F.lit("bot"))
        .when(ua.rlike(_TABLET), F.lit("tablet"))
        .when(ua.rlike(_MOBILE), F.lit("mobile"))
        .when(os_name.isin(*_DESKTOP_OS) | ua.contains("X11"), F.lit("desktop"))
        .otherwise(F.lit(UNKNOWN))
    )
    browser = (
        F.when(missing, F.lit(UNKNOWN))
        .when(bot, F.lit("bot"))
        .otherwise(_first_match(ua, _BROWSER, F.lit(OTHER)))
    )
    return df.withColumns({"device_type": device, "os": os_name, "browser": browser})


def _one_row_per_key(dim: DataFrame, key: str, columns: dict[str, str]) -> DataFrame:
    """The dimension with one row per non-null key: the smallest row of the given columns (cast),
    renamed ``_dim_<key>`` / ``_dim_<column>`` so the join can never multiply or shadow events."""
    best = F.min(F.struct(*[F.col(c).cast(t).alias(c) for c, t in columns.items()]))
    return (
        dim.where(F.col(key).isNotNull())
        .groupBy(F.col(key).alias(f"_dim_{key}"))
        .agg(best.alias("_dim"))
        .select(f"_dim_{key}", *[F.col(f"_dim.{c}").alias(f"_dim_{c}") for c in columns])
    )


def with_device_by_agent(df: DataFrame, agents: DataFrame | None = None) -> DataFrame:
    """:func:`with_device`, parsing each distinct ``user_agent`` once instead of every row.

    A day repeats the same few thousand agents across millions of events: the regexes run on the
    distinct agents and the result is joined back (null-safe, so a missing agent gets ``unknown``
    like in :func:`with_device`). The parsed agents are broadcast (a day has a few thousand distinct
    agents), so the event rows are not shuffled for it. Same columns and values as :func:`with_device`.
    ``agents``: a frame holding at least every ``user_agent`` of ``df`` (e.g. the rows ``df`` was
    derived from, read before an expensive step), to take the distinct agents from instead of ``df``.
    """
    parsed = (
        (agents if agents is not None else df)
        .select("user_agent")
        .distinct()
        .transform(with_device)
        .select(F.col("user_agent").alias("_device_ua"), "device_type", "os", "browser")
    )
    events = df.drop("device_type", "os", "browser")
    joined = events.join(F.broadcast(parsed), events["user_agent"].eqNullSafe(parsed["_device_ua"]), "left")
    return joined.drop("_device_ua")


def enrich_ads(df: DataFrame, ads: DataFrame) -> DataFrame:
    """Left join with the ads dimension (``ad_id``, ``campaign_id``, ``advertiser_id``, ``cpc_micros``).

    Adds (or replaces) ``advertiser_id`` (string) and ``cpc_micros`` (long), null for an ad the
    dimension does not know; ``campaign_id`` becomes coalesce(event's, dimension's), so the event's
    own value wins. The dimension is small and broadcast. Should it hold an ``ad_id`` twice, the
    smallest (campaign_id, advertiser_id, cpc_micros) row is used, so the join never multiplies events
    (the dimension's data-quality suite is where such a duplicate is reported).
    """
    dim = _one_row_per_key(
        ads, "ad_id", {"campaign_id": "string", "advertiser_id": "string", "cpc_micros": "long"}
    ).withColumnsRenamed({"_dim_advertiser_id": "advertiser_id", "_dim_cpc_micros": "cpc_micros"})
    events = df.drop("advertiser_id", "cpc_micros")
    joined = events.join(F.broadcast(dim), events["ad_id"] == dim["_dim_ad_id"], "left")
    return joined.withColumn("campaign_id", F.coalesce(F.col("campaign_id"), F.col("_dim_campaign_id"))).drop(
        "_dim_ad_id", "_dim_campaign_id"
    )


def enrich_users(df: DataFrame, users: DataFrame) -> DataFrame:
    """Left join with the user profiles dimension (``user_key``, ``age_group``, ``segment``).

    Adds (or replaces) ``age_group`` and ``segment``: ``unknown`` for a null ``user_key``, a user the
    dimension does not know, or a null attribute. A ``user_key`` held twice uses the smallest
    (age_group, segment) row, so events are never multiplied.
    """
    dim = _one_row_per_key(users, "user_key", {"age_group": "string", "segment": "string"})
    events = df.drop("age_group", "segment")
    joined = events.join(dim, events["user_key"] == dim["_dim_user_key"], "left")
    return joined.withColumns(
        {
            "age_group": F.coalesce(F.col("_dim_age_group"), F.lit(UNKNOWN)),
            "segment": F.coalesce(F.col("_dim_segment"), F.lit(UNKNOWN)),
        }
    ).drop("_dim_user_key", "_dim_age_group", "_dim_segment")
