"""SQL for the query API: parameter parsing, whitelists and the statements over ``serving`` views.

Reads nothing itself: each builder returns a :class:`Query` (SQL text with ``?`` placeholders, the
trino client's qmark style, and the values to bind). Every value a caller sends is bound as a
parameter; identifiers (view, dimension and metric names, time grains) come only from the
whitelists below, so no caller text ever becomes SQL text. Bad input raises
:class:`BadParameter` naming the parameter.

Time ranges: ``from``/``to`` are ISO 8601 / RFC 3339 (no zone = UTC), ``now``, or relative to now
(``-15m``, ``-2h``, ``-7d``, ``-1w``). A bucket (minute, hour, day) is served when it overlaps
[from, to): ``from`` is floored and ``to`` ceiled to the grain, and the aligned bounds are echoed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, NamedTuple

from adclick.times import parse_time

Granularity = Literal["minute", "hour", "day"]
GRAIN: dict[str, timedelta] = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}
# The most buckets one request may ask for: a week of minutes, a quarter of hours, three years of days.
MAX_BUCKETS = {"minute": 7 * 24 * 60, "hour": 92 * 24, "day": 3 * 366}
MAX_VALUE_CHARS = 128
MAX_FILTER_VALUES = 100
_RELATIVE = re.compile(r"^-(\d{1,7})([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

# Dimensions a report may group by, per source view.
CLICK_DIMENSIONS = ("day", "ad_id", "campaign_id", "advertiser_id", "country", "region", "device_type")
AUDIENCE_DIMENSIONS = ("day", "ad_id", "campaign_id", "advertiser_id", "region", "age_group", "segment")
DEMOGRAPHIC = frozenset({"age_group", "segment"})
# Filters (equality, or IN for a comma-separated list) per source view.
CLICK_FILTERS = ("ad_id", "campaign_id", "advertiser_id", "country", "region", "device_type")
AUDIENCE_FILTERS = ("ad_id", "campaign_id", "advertiser_id", "region", "age_group", "segment")
# Filters of the minute/hour/day series endpoints (the speed rows have no advertiser or region).
SERIES_FILTERS = ("campaign_id", "country", "device_type")

# Metric name -> aggregate over a view's rows. Ratios are recomputed from the summed counts.
METRICS: dict[str, str] = {
    "impressions": "sum(impressions)",
    "clicks": "sum(clicks)",
    "fraud_clicks": "sum(fraud_clicks)",
    "conversions": "sum(conversions)",
    "cost_micros": "sum(cost_micros)",
    "revenue_micros": "sum(revenue_micros)",
    "ctr": "CAST(sum(clicks) AS double) / nullif(sum(impressions), 0)",
    "cvr": "CAST(sum(conversions) AS double) / nullif(sum(clicks), 0)",
    "rpc_micros": "CAST(sum(revenue_micros) AS double) / nullif(sum(clicks), 0)",
    "cpa_micros": "CAST(sum(cost_micros) AS double) / nullif(sum(conversions), 0)",
    "fraud_rate": "CAST(sum(fraud_clicks) AS double) / nullif(sum(clicks) + sum(fraud_clicks), 0)",
    # Distinct users do not add up across rows: the largest row's count is a lower bound of the
    # group's (exact when the group is one row of the view).
    "unique_users": "max(unique_users)",
}
ADDITIVE_METRICS = frozenset(
    {"impressions", "clicks", "fraud_clicks", "conversions", "cost_micros", "revenue_micros"}
)
K_USERS_COLUMN = "k_min_users"  # hidden column of demographic reports, checked against k


class BadParameter(ValueError):
    """A request parameter the API refuses (HTTP 400 naming ``parameter``)."""

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(f"{parameter}: {reason}")
        self.parameter = parameter
        self.reason = reason


class Query(NamedTuple):
    sql: str
    params: list[Any]


@dataclass(frozen=True)
class Views:
    """Fully qualified serving view names (the catalog comes from settings, not from requests)."""

    catalog: str = "delta"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.catalog):
            raise ValueError(f"not a plain catalog name: {self.catalog!r}")

    def __call__(self, view: str) -> str:
        if view not in _VIEWS:
            raise ValueError(f"unknown serving view {view!r}")
        return f"{self.catalog}.serving.{view}"


_VIEWS = frozenset(
    {
        "ad_clicks_minute",
        "ad_clicks_hourly",
        "ad_clicks_daily",
        "top_ads_minute",
        "audience_daily",
        "experiments_daily",
        "batch_watermark",
    }
)
_SERIES_VIEW = {"minute": "ad_clicks_minute", "hour": "ad_clicks_hourly", "day": "ad_clicks_daily"}


# --- parameters -----------------------------------------------------------------------------------


def parse_when(parameter: str, text: str, now: datetime) -> datetime:
    """``now``, ``-<n><s|m|h|d|w>`` before now, or an ISO 8601 time (no zone = UTC); aware UTC."""
    value = text.strip()
    match = _RELATIVE.match(value)
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        return parse_time(value, now)
    except Exception:
        raise BadParameter(
            parameter, "not a time (ISO 8601 such as 2026-01-02T03:04:05Z, 'now', or relative such as -15m)"
        ) from None


def floor_to(moment: datetime, granularity: str) -> datetime:
    moment = moment.astimezone(UTC)
    if granularity == "minute":
        return moment.replace(second=0, microsecond=0)
    if granularity == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def ceil_to(moment: datetime, granularity: str) -> datetime:
    floored = floor_to(moment, granularity)
    return floored if floored == moment else floored + GRAIN[granularity]


@dataclass(frozen=True)
class Range:
    """[start, end) aligned to ``granularity`` (``start``/``end`` are bucket starts, end exclusive)."""

    start: datetime
    end: datetime
    granularity: str

    @property
    def buckets(self) -> int:
        return int((self.end - self.start) / GRAIN[self.granularity])

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        """The day of the last instant in the range (inclusive)."""
        return (self.end - timedelta(microseconds=1)).date()

    @property
    def end_day(self) -> date:
        """The first day after the range (exclusive bound for day grains)."""
        return (
            self.end.date() if self.end == floor_to(self.end, "day") else self.end.date() + timedelta(days=1)
        )

    def previous(self) -> Range:
        """The period of the same length just before this one."""
        return Range(self.start - (self.end - self.start), self.start, self.granularity)

    def bucket_starts(self) -> list[datetime]:
        step = GRAIN[self.granularity]
        return [self.start + i * step for i in range(self.buckets)]


def time_range(
    granularity: str,
    now: datetime,
    *,
    start: str | None,
    end: str | None,
    default: timedelta,
    minutes: int | None = None,
) -> Range:
    """The aligned range of a request; ``minutes`` (if given) means from = to - minutes."""
    if granularity not in GRAIN:
        raise BadParameter("granularity", f"must be one of {', '.join(GRAIN)}")
    to = parse_when("to", end, now) if end is not None else now
    if minutes is not None:
        if start is not None:
            raise BadParameter("minutes", "give either from or minutes, not both")
        if minutes < 1:
            raise BadParameter("minutes", "must be at least 1")
        begin = to - timedelta(minutes=minutes)
    else:
        begin = parse_when("from", start, now) if start is not None else to - default
    if begin >= to:
        raise BadParameter("from", "must be before to")
    aligned = Range(floor_to(begin, granularity), ceil_to(to, granularity), granularity)
    if aligned.buckets > MAX_BUCKETS[granularity]:
        raise BadParameter(
            "from", f"range too long: at most {MAX_BUCKETS[granularity]} {granularity} buckets per request"
        )
    return aligned


def parse_names(parameter: str, text: str | None, allowed: Sequence[str], *, default: str) -> list[str]:
    """A comma-separated list of names, each one of ``allowed``; no repeats, at least one."""
    raw = default if text is None else text
    names = [n.strip() for n in raw.split(",")]
    if not names or any(not n for n in names):
        raise BadParameter(parameter, "an empty name in the list")
    for name in names:
        if name not in allowed:
            shown = name if len(name) <= 40 else name[:40] + "..."
            raise BadParameter(parameter, f"unknown name {shown!r}; allowed: {', '.join(allowed)}")
    if len(set(names)) != len(names):
        raise BadParameter(parameter, "a name is repeated")
    return names


def parse_values(parameter: str, text: str) -> list[str]:
    """A filter's values: one value, or several separated by commas (matched with IN)."""
    values = [v.strip() for v in text.split(",")]
    if any(not v for v in values):
        raise BadParameter(parameter, "an empty value")
    if len(values) > MAX_FILTER_VALUES:
        raise BadParameter(parameter, f"at most {MAX_FILTER_VALUES} values")
    if any(len(v) > MAX_VALUE_CHARS for v in values):
        raise BadParameter(parameter, f"a value longer than {MAX_VALUE_CHARS} characters")
    return values


def check_value(parameter: str, value: str) -> str:
    """A single id (path parameter): non-empty, at most MAX_VALUE_CHARS."""
    if not value or len(value) > MAX_VALUE_CHARS:
        raise BadParameter(parameter, f"must be 1 to {MAX_VALUE_CHARS} characters")
    return value


def parse_filters(given: Mapping[str, str | None], allowed: Sequence[str]) -> dict[str, list[str]]:
    """The filters that were given (name -> values); a filter not in ``allowed`` is refused."""
    filters: dict[str, list[str]] = {}
    for name, text in given.items():
        if text is None:
            continue
        if name not in allowed:
            raise BadParameter(name, f"not a filter here; allowed: {', '.join(allowed)}")
        filters[name] = parse_values(name, text)
    return filters


def _where_filters(filters: Mapping[str, list[str]], allowed: Sequence[str]) -> tuple[str, list[Any]]:
    sql: list[str] = []
    params: list[Any] = []
    for name, values in filters.items():
        if name not in allowed:  # identifiers only from the whitelist, whatever the caller passed
            raise BadParameter(name, "not a filter here")
        if len(values) == 1:
            sql.append(f" AND {name} = ?")
        else:
            sql.append(f" AND {name} IN ({', '.join('?' for _ in values)})")
        params.extend(values)
    return "".join(sql), params


def _time_where(rng: Range) -> tuple[str, list[Any]]:
    """Range predicate on a view: ``day`` bounds prune both layers' partitions, then the exact bounds."""
    if rng.granularity == "day":
        return "day >= ? AND day < ?", [rng.first_day, rng.end_day]
    return (
        "day >= ? AND day <= ? AND window_start >= ? AND window_start < ?",
        [rng.first_day, rng.last_day, rng.start, rng.end],
    )


# --- statements -----------------------------------------------------------------------------------


def watermark_query(views: Views) -> Query:
    """One row: the batch watermark's (day, advanced_at)."""
    return Query(f"SELECT day, advanced_at FROM {views('batch_watermark')}", [])  # noqa: S608


def ad_clicks_query(views: Views, ad_id: str, rng: Range, filters: Mapping[str, list[str]]) -> Query:
    """One ad's series at ``rng.granularity``: a row per bucket with any data, oldest first."""
    bucket = "day" if rng.granularity == "day" else "window_start"
    time_sql, time_params = _time_where(rng)
    filter_sql, filter_params = _where_filters(filters, SERIES_FILTERS)
    sql = (
        f"SELECT {bucket} AS t, sum(impressions) AS impressions, sum(clicks) AS clicks, "  # noqa: S608
        "sum(fraud_clicks) AS fraud_clicks, sum(conversions) AS conversions, bool_and(is_final) AS is_final "
        f"FROM {views(_SERIES_VIEW[rng.granularity])} "
        f"WHERE ad_id = ? AND {time_sql}{filter_sql} "
        f"GROUP BY {bucket} ORDER BY {bucket}"
    )
    return Query(sql, [ad_id, *time_params, *filter_params])


def top_ads_query(views: Views, rng: Range, n: int, filters: Mapping[str, list[str]]) -> Query:
    """Ads ranked by non-fraud clicks over ``rng`` (SQL RANK: ties share a rank; every rank <= n kept)."""
    time_sql, time_params = _time_where(rng)
    filter_sql, filter_params = _where_filters(filters, ("country", "device_type"))
    sql = (
        "SELECT rank, ad_id, clicks FROM ("  # noqa: S608
        "SELECT ad_id, clicks, rank() OVER (ORDER BY clicks DESC) AS rank FROM ("
        f"SELECT ad_id, sum(clicks) AS clicks FROM {views('ad_clicks_minute')} "
        f"WHERE {time_sql}{filter_sql} GROUP BY ad_id HAVING sum(clicks) > 0"
        ") AS per_ad) AS ranked WHERE rank <= ? ORDER BY rank, ad_id"
    )
    return Query(sql, [*time_params, *filter_params, n])


@dataclass(frozen=True)
class ReportPlan:
    query: Query
    source: str  # the serving view read
    demographic: bool  # k-anonymity applies (K_USERS_COLUMN is the last column)


def report_query(
    views: Views,
    dimensions: Sequence[str],
    metrics: Sequence[str],
    rng: Range,
    filters: Mapping[str, list[str]],
    *,
    limit: int,
) -> ReportPlan:
    """Metrics grouped by dimensions over days; demographic reports read ``audience_daily``.

    A report whose dimensions or filters name ``age_group`` or ``segment`` reads
    ``serving.audience_daily`` and gets a last column K_USERS_COLUMN (the largest distinct-user
    count among the group's rows, a lower bound of the group's users) for k-anonymity. Columns: the
    dimensions, the metrics, ``is_final`` (every row of the group final). Ordered by the
    dimensions; at most ``limit`` rows.
    """
    demographic = bool(DEMOGRAPHIC & (set(dimensions) | set(filters)))
    source = "audience_daily" if demographic else "ad_clicks_daily"
    allowed_dims = AUDIENCE_DIMENSIONS if demographic else CLICK_DIMENSIONS
    allowed_filters = AUDIENCE_FILTERS if demographic else CLICK_FILTERS
    for name in dimensions:
        if name not in allowed_dims:
            raise BadParameter("dimensions", f"{name!r} cannot be combined with age_group/segment")
    for name in filters:
        if name not in allowed_filters:
            raise BadParameter(name, "this filter cannot be combined with age_group/segment")
    for name in metrics:
        if name not in METRICS:
            raise BadParameter("metrics", f"unknown metric {name!r}")
    if rng.granularity != "day":
        raise ValueError("reports are daily")
    time_sql, time_params = _time_where(rng)
    filter_sql, filter_params = _where_filters(filters, allowed_filters)
    columns = [*dimensions, *(f"{METRICS[m]} AS {m}" for m in metrics), "bool_and(is_final) AS is_final"]
    if demographic:
        columns.append(f"max(unique_users) AS {K_USERS_COLUMN}")
    group = ", ".join(str(i + 1) for i in range(len(dimensions)))
    sql = (
        f"SELECT {', '.join(columns)} FROM {views(source)} "  # noqa: S608
        f"WHERE {time_sql}{filter_sql} GROUP BY {group} ORDER BY {group} LIMIT ?"
    )
    return ReportPlan(Query(sql, [*time_params, *filter_params, limit]), source, demographic)


def trend_query(views: Views, metric: str, rng: Range, filters: Mapping[str, list[str]]) -> Query:
    """``metric`` per bucket (hour or day) over ``rng``: rows (t, value, is_final), oldest first."""
    if metric not in METRICS:
        raise BadParameter("metric", f"unknown metric {metric!r}; allowed: {', '.join(METRICS)}")
    if rng.granularity not in ("hour", "day"):
        raise BadParameter("granularity", "must be hour or day")
    bucket = "day" if rng.granularity == "day" else "window_start"
    view = "ad_clicks_daily" if rng.granularity == "day" else "ad_clicks_hourly"
    time_sql, time_params = _time_where(rng)
    filter_sql, filter_params = _where_filters(filters, CLICK_FILTERS)
    sql = (
        f"SELECT {bucket} AS t, {METRICS[metric]} AS value, bool_and(is_final) AS is_final "  # noqa: S608
        f"FROM {views(view)} WHERE {time_sql}{filter_sql} GROUP BY {bucket} ORDER BY {bucket}"
    )
    return Query(sql, [*time_params, *filter_params])


def funnel_query(views: Views, rng: Range, filters: Mapping[str, list[str]]) -> Query:
    """One row: impressions, clicks, conversions, fraud_clicks, is_final over the days of ``rng``."""
    time_sql, time_params = _time_where(rng)
    filter_sql, filter_params = _where_filters(filters, CLICK_FILTERS)
    sql = (
        "SELECT coalesce(sum(impressions), 0) AS impressions, coalesce(sum(clicks), 0) AS clicks, "  # noqa: S608
        "coalesce(sum(conversions), 0) AS conversions, coalesce(sum(fraud_clicks), 0) AS fraud_clicks, "
        f"bool_and(is_final) AS is_final FROM {views('ad_clicks_daily')} WHERE {time_sql}{filter_sql}"
    )
    return Query(sql, [*time_params, *filter_params])


def experiment_query(views: Views, experiment_id: str, rng: Range) -> Query:
    """Per variant of one experiment over the days of ``rng``: impressions, clicks, conversions."""
    time_sql, time_params = _time_where(rng)
    sql = (
        "SELECT variant, sum(impressions) AS impressions, sum(clicks) AS clicks, "  # noqa: S608
        f"sum(conversions) AS conversions FROM {views('experiments_daily')} "
        f"WHERE experiment_id = ? AND {time_sql} GROUP BY variant ORDER BY variant"
    )
    return Query(sql, [experiment_id, *time_params])


def live_query(views: Views, since: datetime, filters: Mapping[str, list[str]]) -> Query:
    """Clicks per minute from ``since`` (a minute start) on, the newest (still filling) minute included."""
    filter_sql, filter_params = _where_filters(filters, ("ad_id", "country", "device_type"))
    sql = (
        "SELECT window_start, sum(impressions) AS impressions, sum(clicks) AS clicks, "  # noqa: S608
        f"sum(fraud_clicks) AS fraud_clicks, bool_and(is_final) AS is_final FROM {views('ad_clicks_minute')} "
        f"WHERE day >= ? AND window_start >= ?{filter_sql} GROUP BY window_start ORDER BY window_start"
    )
    return Query(sql, [since.date(), since, *filter_params])
