"""The query HTTP API (FastAPI): real-time and historical ad-click metrics over Trino.

Reads the ``serving`` views (``ad_clicks_minute|hourly|daily``, ``audience_daily``,
``experiments_daily``, ``batch_watermark``) through an :class:`query_api.executor.Executor`, as
Trino's analyst user; writes nothing. Rows are the views' lambda merge: ``is_final`` true for days
up to the batch watermark (exact, gold), false after it (the speed layer's running counts).

Each endpoint parses its parameters (:mod:`query_api.queries`: whitelisted names, values bound as
parameters), runs one statement through the :class:`query_api.cache.QueryCache` (the
``X-Cache: hit|miss`` header says which) in a worker thread, and shapes the answer. Errors: 400
``{"error", "parameter", "reason"}`` for a bad parameter, 503 when Trino or a view is not there
(yet), 500 when Trino fails the statement. An unknown ad or experiment is an empty answer, not 404.

Privacy: a report that groups or filters by ``age_group`` or ``segment`` hides the groups with
fewer than ``settings.k_anonymity`` distinct users and says how many it hid (``k_anonymity`` in
JSON, ``X-K-Anonymity-*`` headers in every format).
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any, Literal

import orjson
from fastapi import Depends, FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from adclick.settings import Settings
from query_api import queries as q
from query_api.cache import QueryCache
from query_api.executor import Executor, QueryFailed, QueryUnavailable, Result, TrinoExecutor
from query_api.stats import two_proportion_z_test, wilson_interval

log = logging.getLogger(__name__)

JSON = "application/json"
CSV = "text/csv; charset=utf-8"
PARQUET = "application/vnd.apache.parquet"
_ROWS_PER_CHUNK = 1000
_PARQUET_CHUNK = 1 << 20
LIVE_MAX_MINUTES = 180
CONFIDENCE = 0.95
_TOP_WINDOWS = {"1m": timedelta(minutes=1), "5m": timedelta(minutes=5), "1h": timedelta(hours=1)}

_TIME_DOC = "ISO 8601 (no zone = UTC), 'now', or relative to now: -15m, -2h, -7d, -1w."
_FILTER_DOC = "Equality filter; several values separated by commas match any of them."


# --- documentation-only models -------------------------------------------------------------------


class ErrorBody(BaseModel):
    error: str = Field(description="'parameter: reason'")
    parameter: str
    reason: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "A bad parameter (named in 'parameter')."},
    500: {"model": ErrorBody, "description": "Trino failed the statement."},
    503: {"model": ErrorBody, "description": "Trino unreachable, or the serving view not created yet."},
}


# --- helpers -------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A result value as JSON/CSV shows it: UTC times with Z, dates ISO, no NaN."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body, default=_plain, option=orjson.OPT_UTC_Z),
        status_code=status,
        media_type=JSON,
        headers=headers,
    )


def error_response(status: int, parameter: str, reason: str) -> Response:
    return _json(status, {"error": f"{parameter}: {reason}", "parameter": parameter, "reason": reason})


def _csv_text(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _iter_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Iterable[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for start in range(0, len(rows), _ROWS_PER_CHUNK):
        for row in rows[start : start + _ROWS_PER_CHUNK]:
            writer.writerow([_csv_text(v) for v in row])
        yield buf.getvalue().encode("utf-8")
        buf.seek(0)
        buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode("utf-8")


def _iter_json(
    meta: dict[str, Any], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> Iterable[bytes]:
    head = orjson.dumps({**meta, "columns": list(columns)}, default=_plain, option=orjson.OPT_UTC_Z)
    yield head[:-1] + b',"rows":['
    for start in range(0, len(rows), _ROWS_PER_CHUNK):
        chunk = [dict(zip(columns, row, strict=True)) for row in rows[start : start + _ROWS_PER_CHUNK]]
        body = orjson.dumps(chunk, default=_plain, option=orjson.OPT_UTC_Z)[1:-1]
        yield (b"," if start else b"") + body
    yield b"]}"


def _parquet_bytes(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = []
    for i, _ in enumerate(columns):
        values = [r[i].astimezone(UTC) if isinstance(r[i], datetime) else r[i] for r in rows]
        arrays.append(pa.array(values))
    table = pa.Table.from_arrays(arrays, names=list(columns))
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def _iter_bytes(data: bytes) -> Iterable[bytes]:
    for start in range(0, len(data), _PARQUET_CHUNK):
        yield data[start : start + _PARQUET_CHUNK]


async def _only_known_parameters(request: Request) -> None:
    """A misspelt filter must not silently widen a result: unknown query parameters are refused."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = {param.alias for param in dependant.query_params}
    for name in request.query_params:
        if name not in known:
            shown = name if len(name) <= 40 else name[:40] + "..."
            raise q.BadParameter(shown, f"unknown parameter; known: {', '.join(sorted(known))}")


_KNOWN = [Depends(_only_known_parameters)]


async def _wait_closed(ws: WebSocket) -> None:
    """Returns when the client goes away (messages it sends are ignored)."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return


# --- the app -------------------------------------------------------------------------------------


def create_app(
    settings: Settings,
    executor: Executor | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    monotonic: Callable[[], float] | None = None,
    live_interval: float = 2.0,
) -> FastAPI:
    """The query API. ``executor`` defaults to :class:`query_api.executor.TrinoExecutor`; ``clock``
    (aware UTC now) to the wall clock; ``monotonic`` (the cache's clock) to ``time.monotonic``.
    ``live_interval``: seconds between two looks at the latest minutes (WebSocket, and the cache
    lifetime of per-minute results). ``app.state.cache`` holds the result cache.
    """
    executor = executor if executor is not None else TrinoExecutor(settings)
    views = q.Views(settings.trino_catalog)
    cache: QueryCache[Result] = QueryCache(
        settings.query_cache_ttl_seconds, executor.watermark, clock=monotonic or time.monotonic
    )
    now_fn = clock or (lambda: datetime.now(tz=UTC))
    dashboard = resources.files("query_api").joinpath("dashboard.html").read_text(encoding="utf-8")

    app = FastAPI(
        title="adclick query API",
        version="1",
        description="Ad-click metrics over Trino's serving views: per-ad series, top ads, reports "
        "(JSON, CSV, Parquet), trends, funnel, A/B tests, live minutes over a WebSocket. Rows up to the "
        "batch watermark are exact (is_final true); later rows are the speed layer's running counts. "
        f"Times: {_TIME_DOC} A bucket is served when it overlaps [from, to).",
        redirect_slashes=False,
    )
    app.state.cache = cache
    app.state.executor = executor

    @app.exception_handler(q.BadParameter)
    async def _bad_parameter(request: Request, exc: q.BadParameter) -> Response:
        return error_response(400, exc.parameter, exc.reason)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": ("request",), "msg": "invalid"}
        loc = [str(part) for part in first.get("loc", ()) if part not in ("query", "path", "body")]
        return error_response(400, loc[0] if loc else "request", str(first.get("msg", "invalid")))

    @app.exception_handler(QueryUnavailable)
    async def _unavailable(request: Request, exc: QueryUnavailable) -> Response:
        return error_response(503, "trino", str(exc))

    @app.exception_handler(QueryFailed)
    async def _failed(request: Request, exc: QueryFailed) -> Response:
        log.warning("Trino failed a statement: %s", exc)
        return error_response(500, "trino", str(exc))

    async def fetch(query: q.Query, *, live: bool = False) -> tuple[Result, bool]:
        def run() -> Result:
            return executor.run(query.sql, query.params)

        return await run_in_threadpool(
            cache.get, query.sql, query.params, run, ttl=live_interval if live else None
        )

    def cache_header(hit: bool) -> dict[str, str]:
        return {"X-Cache": "hit" if hit else "miss"}

    # --- per-ad series ---------------------------------------------------------------------------

    @app.get(
        "/v1/ads/{ad_id}/clicks",
        response_model=None,
        responses=_ERRORS,
        dependencies=_KNOWN,
        summary="One ad's clicks per minute, hour or day",
        description="Series of buckets that have data, oldest first: impressions, clicks (non-fraud), "
        "fraud_clicks, conversions, is_final. Default range: the last 60 minutes / 24 hours / 30 days. "
        "`minutes` is an alternative to `from` (from = to - minutes). An unknown ad gives an empty series.",
    )
    async def ad_clicks(
        ad_id: str,
        *,
        from_: str | None = Query(None, alias="from", description=_TIME_DOC),
        to: str | None = Query(None, description=_TIME_DOC + " Default: now."),
        minutes: int | None = Query(None, ge=1, le=q.MAX_BUCKETS["minute"]),
        granularity: Literal["minute", "hour", "day"] = "minute",
        country: str | None = Query(None, description=_FILTER_DOC),
        device_type: str | None = Query(None, description=_FILTER_DOC),
        campaign_id: str | None = Query(None, description=_FILTER_DOC),
    ) -> Response:
        q.check_value("ad_id", ad_id)
        default = {"minute": timedelta(minutes=60), "hour": timedelta(hours=24), "day": timedelta(days=30)}
        rng = q.time_range(
            granularity, now_fn(), start=from_, end=to, default=default[granularity], minutes=minutes
        )
        filters = q.parse_filters(
            {"country": country, "device_type": device_type, "campaign_id": campaign_id}, q.SERIES_FILTERS
        )
        result, hit = await fetch(q.ad_clicks_query(views, ad_id, rng, filters), live=granularity == "minute")
        series = result.records()
        body = {
            "ad_id": ad_id,
            "granularity": granularity,
            "from": rng.start,
            "to": rng.end,
            "series": series,
        }
        return _json(200, body, cache_header(hit))

    # --- top ads ---------------------------------------------------------------------------------

    @app.get(
        "/v1/ads/top",
        response_model=None,
        responses=_ERRORS,
        dependencies=_KNOWN,
        summary="Top ads by non-fraud clicks over the last complete minute(s)",
        description="window=1m|5m|1h of complete minutes ending at the current minute's start. Ranked "
        "with SQL RANK(): tied ads share a rank and every ad ranked <= n is listed (so possibly more "
        "than n).",
    )
    async def top_ads(
        window: Literal["1m", "5m", "1h"] = "5m",
        n: int = Query(100, ge=1, le=1000),
        country: str | None = Query(None, description=_FILTER_DOC),
        device_type: str | None = Query(None, description=_FILTER_DOC),
    ) -> Response:
        end = q.floor_to(now_fn(), "minute")
        rng = q.Range(end - _TOP_WINDOWS[window], end, "minute")
        filters = q.parse_filters(
            {"country": country, "device_type": device_type}, ("country", "device_type")
        )
        result, hit = await fetch(q.top_ads_query(views, rng, n, filters), live=True)
        body = {"window": window, "from": rng.start, "to": rng.end, "n": n, "ads": result.records()}
        return _json(200, body, cache_header(hit))

    # --- reports ---------------------------------------------------------------------------------

    @app.get(
        "/v1/reports",
        response_model=None,
        dependencies=_KNOWN,
        responses={
            **_ERRORS,
            200: {
                "description": "JSON {columns, rows, row_count, truncated, k_anonymity}, CSV or Parquet.",
                "content": {JSON: {}, "text/csv": {}, PARQUET: {}},
            },
        },
        summary="Metrics grouped by dimensions over days (JSON, CSV or Parquet)",
        description=f"dimensions: {', '.join(dict.fromkeys(q.CLICK_DIMENSIONS + q.AUDIENCE_DIMENSIONS))}. "
        f"metrics: {', '.join(q.METRICS)}. Ratios are recomputed from the summed counts; unique_users "
        "is the largest single row's count (a lower bound for a group of several rows). Every row "
        "carries is_final (all its days final). With age_group or segment (as a dimension or filter) "
        "the report reads serving.audience_daily (no country/device_type) and hides the groups with "
        "fewer than k distinct users (k_anonymity in JSON; X-K-Anonymity-K and "
        "X-K-Anonymity-Suppressed headers). X-Truncated: true when more than `limit` rows matched.",
    )
    async def report(
        *,
        dimensions: str = Query("day", description="Comma-separated dimension names."),
        metrics: str = Query("clicks", description="Comma-separated metric names."),
        from_: str | None = Query(None, alias="from", description=_TIME_DOC + " Default: -7d."),
        to: str | None = Query(None, description=_TIME_DOC + " Default: now."),
        country: str | None = Query(None, description=_FILTER_DOC),
        device_type: str | None = Query(None, description=_FILTER_DOC),
        campaign_id: str | None = Query(None, description=_FILTER_DOC),
        ad_id: str | None = Query(None, description=_FILTER_DOC),
        advertiser_id: str | None = Query(None, description=_FILTER_DOC),
        region: str | None = Query(None, description=_FILTER_DOC),
        age_group: str | None = Query(None, description=_FILTER_DOC),
        segment: str | None = Query(None, description=_FILTER_DOC),
        format: Literal["json", "csv", "parquet"] = "json",
        limit: int = Query(10_000, ge=1, le=100_000),
    ) -> Response:
        dims = q.parse_names(
            "dimensions",
            dimensions,
            tuple(dict.fromkeys(q.CLICK_DIMENSIONS + q.AUDIENCE_DIMENSIONS)),
            default="day",
        )
        mets = q.parse_names("metrics", metrics, tuple(q.METRICS), default="clicks")
        given = {
            "country": country,
            "device_type": device_type,
            "campaign_id": campaign_id,
            "ad_id": ad_id,
            "advertiser_id": advertiser_id,
            "region": region,
            "age_group": age_group,
            "segment": segment,
        }
        filters = q.parse_filters(given, tuple(dict.fromkeys(q.CLICK_FILTERS + q.AUDIENCE_FILTERS)))
        rng = q.time_range("day", now_fn(), start=from_, end=to, default=timedelta(days=7))
        plan = q.report_query(views, dims, mets, rng, filters, limit=limit + 1)
        result, hit = await fetch(plan.query)
        columns = list(result.columns)
        rows = list(result.rows)
        truncated = len(rows) > limit
        rows = rows[:limit]
        headers = cache_header(hit)
        k_info = None
        if plan.demographic:
            k = settings.k_anonymity
            at = columns.index(q.K_USERS_COLUMN)
            kept = [r for r in rows if r[at] is not None and r[at] >= k]
            k_info = {"k": k, "suppressed_rows": len(rows) - len(kept)}
            rows = [tuple(v for i, v in enumerate(r) if i != at) for r in kept]
            columns.pop(at)
            headers["X-K-Anonymity-K"] = str(k)
            headers["X-K-Anonymity-Suppressed"] = str(k_info["suppressed_rows"])
        if truncated:
            headers["X-Truncated"] = "true"
        if format == "csv":
            headers["Content-Disposition"] = 'attachment; filename="report.csv"'
            return StreamingResponse(_iter_csv(columns, rows), media_type=CSV, headers=headers)
        if format == "parquet":
            headers["Content-Disposition"] = 'attachment; filename="report.parquet"'
            data = await run_in_threadpool(_parquet_bytes, columns, rows)
            return StreamingResponse(_iter_bytes(data), media_type=PARQUET, headers=headers)
        meta = {
            "source": f"serving.{plan.source}",
            "from": rng.first_day,
            "to": rng.end_day,
            "row_count": len(rows),
            "truncated": truncated,
            "k_anonymity": k_info,
        }
        return StreamingResponse(_iter_json(meta, columns, rows), media_type=JSON, headers=headers)

    # --- trends ----------------------------------------------------------------------------------

    @app.get(
        "/v1/trends",
        response_model=None,
        responses=_ERRORS,
        dependencies=_KNOWN,
        summary="A metric per hour or day, optionally beside the previous period",
        description=f"metric: {', '.join(q.METRICS)}. Every bucket of the range is listed (counts 0, "
        "ratios null where there is no data). compare=previous_period adds, per bucket, the bucket at "
        "the same offset in the equally long period just before (previous_t, previous_value) and "
        "change = value / previous_value - 1.",
    )
    async def trends(
        *,
        metric: str = "clicks",
        granularity: Literal["hour", "day"] = "day",
        from_: str | None = Query(None, alias="from", description=_TIME_DOC),
        to: str | None = Query(None, description=_TIME_DOC + " Default: now."),
        compare: Literal["previous_period"] | None = None,
        country: str | None = Query(None, description=_FILTER_DOC),
        device_type: str | None = Query(None, description=_FILTER_DOC),
        campaign_id: str | None = Query(None, description=_FILTER_DOC),
        ad_id: str | None = Query(None, description=_FILTER_DOC),
        advertiser_id: str | None = Query(None, description=_FILTER_DOC),
        region: str | None = Query(None, description=_FILTER_DOC),
    ) -> Response:
        if metric not in q.METRICS:
            raise q.BadParameter("metric", f"unknown metric; allowed: {', '.join(q.METRICS)}")
        default = timedelta(hours=24) if granularity == "hour" else timedelta(days=30)
        rng = q.time_range(granularity, now_fn(), start=from_, end=to, default=default)
        given = {
            "country": country,
            "device_type": device_type,
            "campaign_id": campaign_id,
            "ad_id": ad_id,
            "advertiser_id": advertiser_id,
            "region": region,
        }
        filters = q.parse_filters(given, q.CLICK_FILTERS)
        queried = q.Range(rng.previous().start, rng.end, granularity) if compare else rng
        result, hit = await fetch(q.trend_query(views, metric, queried, filters))
        empty = 0 if metric in q.ADDITIVE_METRICS else None

        def key(moment: datetime) -> datetime | date:
            return moment.date() if granularity == "day" else moment

        found = {_bucket_key(row[0], granularity): (row[1], row[2]) for row in result.rows}
        series = []
        previous = rng.previous().bucket_starts() if compare else None
        for i, start in enumerate(rng.bucket_starts()):
            value, final = found.get(key(start), (empty, None))
            point: dict[str, Any] = {"t": key(start), "value": value, "is_final": final}
            if previous is not None:
                prev_value, _ = found.get(key(previous[i]), (empty, None))
                point["previous_t"] = key(previous[i])
                point["previous_value"] = prev_value
                point["change"] = (
                    value / prev_value - 1.0 if value is not None and prev_value not in (None, 0) else None
                )
            series.append(point)
        body = {
            "metric": metric,
            "granularity": granularity,
            "from": key(rng.start),
            "to": key(rng.end),
            "compare": compare,
            "series": series,
        }
        return _json(200, body, cache_header(hit))

    # --- funnel ----------------------------------------------------------------------------------

    @app.get(
        "/v1/funnel",
        response_model=None,
        responses=_ERRORS,
        dependencies=_KNOWN,
        summary="Impressions -> clicks -> conversions over days, with step rates",
        description="Clicks are non-fraud clicks. rate_from_previous = step / previous step, "
        "rate_from_first = step / impressions (null when the denominator is 0). Default range: -7d.",
    )
    async def funnel(
        *,
        from_: str | None = Query(None, alias="from", description=_TIME_DOC + " Default: -7d."),
        to: str | None = Query(None, description=_TIME_DOC + " Default: now."),
        country: str | None = Query(None, description=_FILTER_DOC),
        device_type: str | None = Query(None, description=_FILTER_DOC),
        campaign_id: str | None = Query(None, description=_FILTER_DOC),
        ad_id: str | None = Query(None, description=_FILTER_DOC),
        advertiser_id: str | None = Query(None, description=_FILTER_DOC),
        region: str | None = Query(None, description=_FILTER_DOC),
    ) -> Response:
        rng = q.time_range("day", now_fn(), start=from_, end=to, default=timedelta(days=7))
        given = {
            "country": country,
            "device_type": device_type,
            "campaign_id": campaign_id,
            "ad_id": ad_id,
            "advertiser_id": advertiser_id,
            "region": region,
        }
        filters = q.parse_filters(given, q.CLICK_FILTERS)
        result, hit = await fetch(q.funnel_query(views, rng, filters))
        row = result.records()[0] if result.rows else {}
        counts = [(name, int(row.get(name) or 0)) for name in ("impressions", "clicks", "conversions")]
        steps = []
        for i, (name, count) in enumerate(counts):
            prev = counts[i - 1][1] if i else None
            first = counts[0][1]
            steps.append(
                {
                    "step": name,
                    "count": count,
                    "rate_from_previous": (count / prev) if prev else None,
                    "rate_from_first": (count / first) if first else None,
                }
            )
        body = {
            "from": rng.first_day,
            "to": rng.end_day,
            "is_final": row.get("is_final"),
            "fraud_clicks": int(row.get("fraud_clicks") or 0),
            "steps": steps,
        }
        return _json(200, body, cache_header(hit))

    # --- experiments -----------------------------------------------------------------------------

    @app.get(
        "/v1/experiments/{experiment_id}",
        response_model=None,
        responses=_ERRORS,
        dependencies=_KNOWN,
        summary="A/B test: CTR per variant, z-test against the control, 95% intervals",
        description="Final days only (serving.experiments_daily). control: the variant to compare "
        "with (default: the first variant by name). Per variant: impressions, clicks, conversions, ctr "
        "with its Wilson 95% interval; against the control: diff (ctr - control ctr) with its 95% "
        "interval, lift, z and two-sided p of the pooled two-proportion z-test, significant "
        "(p < 0.05). Clicks above impressions are capped at impressions for the intervals and the test. "
        "An unknown experiment gives no variants. Default range: -30d.",
    )
    async def experiment(
        experiment_id: str,
        from_: str | None = Query(None, alias="from", description=_TIME_DOC + " Default: -30d."),
        to: str | None = Query(None, description=_TIME_DOC + " Default: now."),
        control: str | None = Query(None, max_length=q.MAX_VALUE_CHARS),
    ) -> Response:
        q.check_value("experiment_id", experiment_id)
        rng = q.time_range("day", now_fn(), start=from_, end=to, default=timedelta(days=30))
        result, hit = await fetch(q.experiment_query(views, experiment_id, rng))
        rows = result.records()
        names = [r["variant"] for r in rows]
        if control is not None and rows and control not in names:
            raise q.BadParameter("control", "not a variant of this experiment")
        base = next((r for r in rows if r["variant"] == control), rows[0]) if rows else None
        variants = []
        for r in rows:
            impressions, clicks = int(r["impressions"] or 0), int(r["clicks"] or 0)
            clicks_in = min(clicks, impressions)  # a rate needs clicks <= impressions
            entry: dict[str, Any] = {
                "variant": r["variant"],
                "impressions": impressions,
                "clicks": clicks,
                "conversions": int(r["conversions"] or 0),
                "ctr": clicks / impressions if impressions else None,
                "ctr_ci": wilson_interval(clicks_in, impressions, CONFIDENCE),
                "is_control": r is base,
            }
            test = None
            if base is not None and r is not base:
                b_imp, b_clicks = int(base["impressions"] or 0), int(base["clicks"] or 0)
                test = two_proportion_z_test(
                    min(b_clicks, b_imp), b_imp, clicks_in, impressions, confidence=CONFIDENCE
                )
            entry.update(
                {
                    "diff": test.diff if test else None,
                    "diff_ci": test.diff_ci if test else None,
                    "lift": test.lift if test else None,
                    "z": test.z if test else None,
                    "p_value": test.p_value if test else None,
                    "significant": (test.p_value < 1 - CONFIDENCE) if test else None,
                }
            )
            variants.append(entry)
        body = {
            "experiment_id": experiment_id,
            "from": rng.first_day,
            "to": rng.end_day,
            "control": base["variant"] if base else None,
            "confidence": CONFIDENCE,
            "variants": variants,
        }
        return _json(200, body, cache_header(hit))

    # --- live ------------------------------------------------------------------------------------

    @app.websocket("/v1/live")
    async def live(ws: WebSocket) -> None:
        """Clicks per minute for the last ``minutes`` (default 30), sent whenever they change."""
        await ws.accept()
        try:
            for name in ws.query_params:
                if name not in ("minutes", "ad_id", "country", "device_type"):
                    raise q.BadParameter(
                        name[:40], "unknown parameter; known: ad_id, country, device_type, minutes"
                    )
            raw = ws.query_params.get("minutes", "30")
            if not raw.isdigit() or not 1 <= int(raw) <= LIVE_MAX_MINUTES:
                raise q.BadParameter("minutes", f"must be an integer from 1 to {LIVE_MAX_MINUTES}")
            minutes = int(raw)
            filters = q.parse_filters(
                {k: ws.query_params.get(k) for k in ("ad_id", "country", "device_type")},
                ("ad_id", "country", "device_type"),
            )
        except q.BadParameter as exc:
            await ws.send_text(
                orjson.dumps({"type": "error", "parameter": exc.parameter, "error": str(exc)}).decode()
            )
            await ws.close(code=1008)
            return
        closed = asyncio.create_task(_wait_closed(ws))
        last: Any = None
        try:
            while not closed.done():
                since = q.floor_to(now_fn(), "minute") - timedelta(minutes=minutes - 1)
                try:
                    result, _ = await fetch(q.live_query(views, since, filters), live=True)
                    message: dict[str, Any] = {"type": "minutes", "minutes": result.records()}
                except (QueryUnavailable, QueryFailed) as exc:
                    message = {"type": "error", "error": str(exc)}
                if message != last:
                    await ws.send_text(
                        orjson.dumps(message, default=_plain, option=orjson.OPT_UTC_Z).decode()
                    )
                    last = message
                await asyncio.wait({closed}, timeout=live_interval)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client left while a message was being sent
        finally:
            closed.cancel()

    # --- health and dashboard ----------------------------------------------------------------------

    @app.get("/v1/health", response_model=None, summary="Is Trino reachable? The batch watermark.")
    async def health() -> Response:
        try:
            token = await run_in_threadpool(executor.watermark)
        except (QueryUnavailable, QueryFailed) as exc:
            return _json(503, {"status": "unavailable", "trino": {"reachable": False, "error": str(exc)}})
        day, advanced_at = token if isinstance(token, tuple) and len(token) == 2 else (None, None)
        stats = cache.stats
        return _json(
            200,
            {
                "status": "ok",
                "trino": {"reachable": True},
                "batch_watermark": {"day": day, "advanced_at": advanced_at},
                "cache": {"hits": stats.hits, "misses": stats.misses, "invalidations": stats.invalidations},
            },
        )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(dashboard)

    return app


def _bucket_key(value: Any, granularity: str) -> datetime | date:
    if granularity == "day":
        return value.date() if isinstance(value, datetime) else value
    return value.astimezone(UTC) if isinstance(value, datetime) else value
