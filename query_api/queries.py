"""SQL for the query API: the whitelists and the statements over the ``serving`` views.

Reads nothing itself: each builder returns a :class:`Query` (SQL text with ``?`` placeholders, the
trino client's qmark style, and the values to bind). Every value a caller sends is bound as a
parameter; identifiers (view, dimension and metric names, time grains) come only from the
whitelists below, so no caller text ever becomes SQL text. Bad input raises
:class:`BadParameter` naming the parameter.

Parsing of request values is in :mod:`query_api.parsing` and time ranges in
:mod:`query_api.timerange`; their public names are re-exported here, so ``queries.Range``,
``queries.BadParameter``, ``queries.time_range`` and the like keep working.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from query_api.parsing import (
    MAX_FILTER_VALUES,
    MAX_VALUE_CHARS,
    BadParameter,
    check_value,
    parse_filters,
    parse_names,
    parse_values,
)
from query_api.timerange import (
    GRAIN,
    MAX_BUCKETS,
    Granularity,
    Range,
    ceil_to,
    floor_to,
    parse_when,
    time_range,
)

__all__ = [
    "ADDITIVE_METRICS",
    "AUDIENCE_DIMENSIONS",
    "AUDIENCE_FILTERS",
    "CLICK_DIMENSIONS",
    "CLICK_FILTERS",
    "DEMOGRAPHIC",
    "GRAIN",
    "K_USERS_COLUMN",
    "LIVE_FILTERS",
    "MAX_BUCKETS",
    "MAX_FILTER_VALUES",
    "MAX_VALUE_CHARS",
    "METRICS",
    "SERIES_FILTERS",
    "TOP_FILTERS",
    "BadParameter",
    "Granularity",
    "Query",
    "Range",
    "ReportPlan",
    "Views",
    "ad_clicks_query",
    "ceil_to",
    "check_value",
    "experiment_query",
    "floor_to",
    "funnel_query",
    "job_runs_query",
    "latest_click_minute_query",
    "live_query",
    "parse_filters",
    "parse_names",
    "parse_values",
    "parse_when",
    "reconciliation_query",
    "report_query",
    "time_range",
    "top_ads_query",
    "trend_query",
    "watermark_query",
]

# Dimensions a report may group by, per source view.
CLICK_DIMENSIONS = ("day", "ad_id", "campaign_id", "advertiser_id", "country", "region", "device_type")
AUDIENCE_DIMENSIONS = ("day", "ad_id", "campaign_id", "advertiser_id", "region", "age_group", "segment")
DEMOGRAPHIC = frozenset({"age_group", "segment"})
# Filters (equality, or IN for a comma-separated list) per source view.
CLICK_FILTERS = ("ad_id", "campaign_id", "advertiser_id", "country", "region", "device_type")
AUDIENCE_FILTERS = ("ad_id", "campaign_id", "advertiser_id", "region", "age_group", "segment")
# Filters of the minute/hour/day series endpoints (the speed rows have no advertiser or region).
SERIES_FILTERS = ("campaign_id", "country", "device_type")
# Filters of the top-ads ranking and of the live minutes.
TOP_FILTERS = ("country", "device_type")
LIVE_FILTERS = ("ad_id", "country", "device_type")

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
        "reconciliation_latest",
        "job_runs_latest",
    }
)
_SERIES_VIEW = {"minute": "ad_clicks_minute", "hour": "ad_clicks_hourly", "day": "ad_clicks_daily"}


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
    filter_sql, filter_params = _where_filters(filters, TOP_FILTERS)
    sql = (
        "SELECT rank, ad_id, clicks FROM ("  # noqa: S608
        "SELECT ad_id, clicks, rank() OVER (ORDER BY clicks DESC) AS rank FROM ("
        f"SELECT ad_id, sum(clicks) AS clicks FROM {views('ad_clicks_minute')} "
        f"WHERE {time_sql}{filter_sql} GROUP BY ad_id HAVING sum(clicks) > 0"
        ") AS per_ad) AS ranked WHERE rank <= ? ORDER BY rank, ad_id"
    )
    return Query(sql, [*time_params, *filter_params, n])


def latest_click_minute_query(views: Views, rng: Range, filters: Mapping[str, list[str]]) -> Query:
    """One row: the latest minute of ``rng`` with any non-fraud click (null when there is none)."""
    time_sql, time_params = _time_where(rng)
    filter_sql, filter_params = _where_filters(filters, TOP_FILTERS)
    sql = (
        f"SELECT max(window_start) AS minute FROM {views('ad_clicks_minute')} "  # noqa: S608
        f"WHERE {time_sql}{filter_sql} AND clicks > 0"
    )
    return Query(sql, [*time_params, *filter_params])


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
    filter_sql, filter_params = _where_filters(filters, LIVE_FILTERS)
    sql = (
        "SELECT window_start, sum(impressions) AS impressions, sum(clicks) AS clicks, "  # noqa: S608
        f"sum(fraud_clicks) AS fraud_clicks, bool_and(is_final) AS is_final FROM {views('ad_clicks_minute')} "
        f"WHERE day >= ? AND window_start >= ?{filter_sql} GROUP BY window_start ORDER BY window_start"
    )
    return Query(sql, [since.date(), since, *filter_params])


def reconciliation_query(views: Views, days: int) -> Query:
    """The latest reconciliation check of each of the ``days`` latest reconciled days, newest first."""
    sql = (
        "SELECT day, speed_total, gold_total, diff, late_dropped, late_counted, duplicates, "  # noqa: S608
        "fraud_reclassified, unexplained, drift, passed, checked_at "
        f"FROM {views('reconciliation_latest')} ORDER BY day DESC LIMIT ?"
    )
    return Query(sql, [days])


def job_runs_query(views: Views) -> Query:
    """Each batch job's latest run, the most recent first."""
    sql = (
        "SELECT job, day, started_at, finished_at, status, rows_in, rows_out, message "  # noqa: S608
        f"FROM {views('job_runs_latest')} ORDER BY started_at DESC, job"
    )
    return Query(sql, [])
