"""serving_report_latency: p50/p95 of the query API's report SQL on Trino over 90 days of gold.

Data: gold-shaped tables built directly with Spark (not through events, which would take hours at
this volume) in a private lake: ``ad_clicks_daily`` for ``BENCH_SERVING_DAYS`` days (90) at about
``BENCH_SERVING_CLICKS_PER_DAY`` clicks (1M) spread over ``BENCH_SERVING_ROWS_PER_DAY`` rows
(~30k of the 2,000 ads x 20 countries x 4 device types = 160k possible rows a day; popular ads
reach more countries and devices and get more clicks), one Parquet file per day as the daily
batch writes it; ``ad_clicks_hourly`` for the last ``BENCH_SERVING_HOURLY_DAYS`` days (7), each
daily row split over up to 24 hours (the hours sum to the day). Both have gold's columns plus the
serving views' ``is_final`` (true), so the query API's SQL runs on them unchanged.

The tables are registered in Trino under a private schema ``bench_<hex>`` (the serving views read
``delta.gold``, which this must not touch) and queried as the admin user through the query API's
own executor (one connection per statement, as the API does). The statements are the ones
``query_api.queries`` builds, with the serving view names replaced by the private tables: top 100
ads by clicks over 7 days, clicks/impressions/CTR by country and device over 30 days, the daily CTR
trend over 90 days, the campaign report with CTR/CVR/RPC/CPA over 30 days, the funnel over 7 days
and the hourly clicks trend over 7 days. Each runs ``BENCH_SERVING_RUNS`` (30) times after
``BENCH_SERVING_WARMUP`` (3) warm-ups; the headline ``p95_ms`` is over every report's runs.

Peer, in the same run: DuckDB (``threads=2``) running the same statements over the same Parquet
files (a view per table over ``<table>/day=*/*.parquet``), runs interleaved with Trino's.
``ratio`` = Trino p95 / DuckDB p95. Both engines must return the same rows, or the run fails.
The private tables are unregistered and their files deleted at the end. Target: p95 < 1,000 ms.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from adclick.settings import Settings
from bench.load import percentile
from bench.result import write_result

DAYS = int(os.environ.get("BENCH_SERVING_DAYS", "90"))
ROWS_PER_DAY = int(os.environ.get("BENCH_SERVING_ROWS_PER_DAY", "30000"))
CLICKS_PER_DAY = int(os.environ.get("BENCH_SERVING_CLICKS_PER_DAY", "1000000"))
HOURLY_DAYS = int(os.environ.get("BENCH_SERVING_HOURLY_DAYS", "7"))
RUNS = int(os.environ.get("BENCH_SERVING_RUNS", "30"))
WARMUP = int(os.environ.get("BENCH_SERVING_WARMUP", "3"))
TARGET_P95_MS = 1000.0
TOP_N = 100
REPORT_LIMIT = 10_000

ADS = 2000
COUNTRIES = (
    ("US", "na"), ("CA", "na"), ("MX", "na"),
    ("DE", "eu"), ("GB", "eu"), ("FR", "eu"), ("ES", "eu"), ("IT", "eu"), ("NL", "eu"), ("PL", "eu"),
    ("IN", "apac"), ("JP", "apac"), ("ID", "apac"), ("AU", "apac"), ("KR", "apac"), ("SG", "apac"),
    ("BR", "other"), ("AR", "other"), ("ZA", "other"), ("NG", "other"),
)  # fmt: skip
DEVICES = ("desktop", "mobile", "tablet", "unknown")
COUNTS = ("impressions", "clicks", "fraud_clicks", "conversions", "cost_micros", "revenue_micros")
TABLES = ("ad_clicks_daily", "ad_clicks_hourly")
SEED = 4242


# --- data ----------------------------------------------------------------------------------------


def daily_rows(spark, first_day: date, days: int, rows_per_day: int, clicks_per_day: int):
    """``days`` days of ``gold.ad_clicks_daily``-shaped rows (plus ``is_final``), about
    ``rows_per_day`` rows and ``clicks_per_day`` clicks a day, deterministic for the arguments."""
    import pyspark.sql.functions as F

    from batch_layer.gold import with_ratios

    cells = ADS * len(COUNTRIES) * len(DEVICES)  # possible (ad, country, device) rows of a day
    # An ad's reach and click rate fall linearly with its rank: 2 * (1 - rank / ADS), mean 1 over
    # the ads, so the kept rows average rows_per_day. Among kept rows the weight averages 4/3,
    # hence the 3/4 that brings the clicks back to clicks_per_day.
    weight = 2.0 * (1.0 - F.col("_ad") / F.lit(ADS))
    mean_extra_clicks = max(clicks_per_day / rows_per_day - 1.0, 0.0)
    exponential = -F.log(F.lit(1.0) - F.rand(SEED + 1))  # mean 1, never infinite
    cell = F.col("id") % cells
    rows = (
        spark.range(days * cells)
        .select(
            F.floor(F.col("id") / cells).cast("int").alias("_day"),
            (cell % ADS).cast("int").alias("_ad"),
            (F.floor(cell / ADS) % len(COUNTRIES)).cast("int").alias("_country"),
            F.floor(cell / (ADS * len(COUNTRIES))).cast("int").alias("_device"),
        )
        .where(F.rand(SEED) < F.lit(rows_per_day / cells) * weight)
        .withColumn("clicks", (1 + F.floor(exponential * mean_extra_clicks * weight * 0.75)).cast("long"))
    )
    countries = F.array(*[F.lit(code) for code, _ in COUNTRIES])
    regions = F.array(*[F.lit(region) for _, region in COUNTRIES])
    devices = F.array(*[F.lit(device) for device in DEVICES])
    clicks = F.col("clicks")
    conversions = F.floor(clicks * (0.02 + 0.06 * F.rand(SEED + 4))).cast("long")
    impressions = (clicks * (40 + F.floor(F.rand(SEED + 2) * 40))).cast("long")
    measured = rows.select(
        F.date_add(F.lit(first_day), F.col("_day")).alias("day"),
        F.format_string("ad-%05d", F.col("_ad") + 1).alias("ad_id"),
        F.format_string("cmp-%04d", (F.floor(F.col("_ad") / 10) + 1).cast("int")).alias("campaign_id"),
        F.format_string("adv-%03d", (F.floor(F.col("_ad") / 100) + 1).cast("int")).alias("advertiser_id"),
        F.element_at(countries, F.col("_country") + 1).alias("country"),
        F.element_at(regions, F.col("_country") + 1).alias("region"),
        F.element_at(devices, F.col("_device") + 1).alias("device_type"),
        impressions.alias("impressions"),
        clicks,
        F.floor(clicks * 0.06 * F.rand(SEED + 3)).cast("long").alias("fraud_clicks"),
        conversions.alias("conversions"),
        (clicks * (50_000 + (F.col("_ad") % 50) * 40_000)).cast("long").alias("cost_micros"),
        (conversions * (20 + F.col("_ad") % 80) * 1_000_000).cast("long").alias("revenue_micros"),
        F.greatest(F.lit(1), F.floor(impressions * 0.8)).cast("long").alias("unique_users"),
    )
    return with_ratios(measured).withColumn("is_final", F.lit(True))


def hourly_rows(daily):
    """``gold.ad_clicks_hourly``-shaped rows from daily rows: each row split over
    ``min(24, 1 + clicks // 4)`` distinct hours, every count divided so the hours sum to the day."""
    import pyspark.sql.functions as F

    from batch_layer.gold import with_ratios

    ad = F.substring("ad_id", 4, 5).cast("int")
    hours = F.least(F.lit(24), 1 + F.floor(F.col("clicks") / 4)).cast("int")
    split = daily.withColumn("_k", hours).withColumn("_h", F.explode(F.sequence(F.lit(0), F.col("_k") - 1)))
    # 7 is coprime with 24, so _h = 0..k-1 lands on k distinct hours; the ad offsets them.
    hour = (F.col("_h") * 7 + ad) % 24
    start = F.timestamp_seconds(F.unix_timestamp(F.col("day").cast("timestamp")) + hour * 3600)

    def share(name: str):
        extra = F.when(F.col("_h") < F.col(name) % F.col("_k"), 1).otherwise(0)
        return (F.floor(F.col(name) / F.col("_k")) + extra).cast("long").alias(name)

    measured = split.select(
        start.alias("window_start"),
        "ad_id",
        "campaign_id",
        "advertiser_id",
        "country",
        "region",
        "device_type",
        *[share(name) for name in COUNTS],
        F.greatest(F.lit(1), share("unique_users")).cast("long").alias("unique_users"),
        "day",
    )
    return with_ratios(measured).withColumn("is_final", F.lit(True))


def _write(frame, path: str) -> None:
    """One file per day, as the daily batch's ``replaceWhere`` writes leave them."""
    import pyspark.sql.functions as F

    frame.repartition(F.col("day")).write.format("delta").mode("overwrite").partitionBy("day").save(path)


def build(spark, private: Settings, schema: str, last_day: date) -> dict[str, Any]:
    """Write both tables into the private lake; their row and click counts."""
    import pyspark.sql.functions as F

    from adclick.catalog import Table

    daily_path = Table(schema, "ad_clicks_daily").path(private)
    hourly_path = Table(schema, "ad_clicks_hourly").path(private)
    first_day = last_day - timedelta(days=DAYS - 1)
    _write(daily_rows(spark, first_day, DAYS, ROWS_PER_DAY, CLICKS_PER_DAY), daily_path)
    written = spark.read.format("delta").load(daily_path)
    recent = written.where(F.col("day") > F.lit(last_day - timedelta(days=HOURLY_DAYS)))
    _write(hourly_rows(recent), hourly_path)
    daily_stats = written.agg(F.count("*"), F.sum("clicks")).first()
    hourly_rows_written = spark.read.format("delta").load(hourly_path).count()
    return {
        "daily_rows": int(daily_stats[0]),
        "clicks_per_day": round(int(daily_stats[1]) / DAYS),
        "hourly_rows": int(hourly_rows_written),
    }


# --- statements ----------------------------------------------------------------------------------


def _day_range(last_day: date, days: int, granularity: str = "day"):
    from query_api.timerange import Range

    end = datetime(last_day.year, last_day.month, last_day.day, tzinfo=UTC) + timedelta(days=1)
    return Range(end - timedelta(days=days), end, granularity)


def reports(catalog: str, last_day: date) -> dict[str, tuple[str, list[Any]]]:
    """The query API's statements (``query_api.queries``) for the benchmark's reports, reading the
    serving views: report name -> (SQL with ``?`` placeholders, parameters)."""
    from query_api import queries as q

    views = q.Views(catalog)
    week, month, quarter = (_day_range(last_day, n) for n in (7, 30, 90))
    campaign = ["clicks", "ctr", "cvr", "rpc_micros", "cpa_micros"]
    by_country = q.report_query(
        views, ["country", "device_type"], ["clicks", "impressions", "ctr"], month, {}, limit=REPORT_LIMIT + 1
    )
    by_campaign = q.report_query(views, ["campaign_id"], campaign, month, {}, limit=REPORT_LIMIT + 1)
    # /v1/ads/top's ranking statement reads the minute view; over days it reads the daily table.
    top = q.top_ads_query(views, week, TOP_N, {})
    top = q.Query(top.sql.replace(views("ad_clicks_minute"), views("ad_clicks_daily")), top.params)
    built = {
        "top_ads_7d": top,
        "country_device_30d": by_country.query,
        "daily_ctr_trend_90d": q.trend_query(views, "ctr", quarter, {}),
        "campaign_30d": by_campaign.query,
        "funnel_7d": q.funnel_query(views, week, {}),
        "hourly_clicks_trend_7d": q.trend_query(views, "clicks", _day_range(last_day, 7, "hour"), {}),
    }
    return {name: (query.sql, list(query.params)) for name, query in built.items()}


def for_tables(sql: str, catalog: str, tables: dict[str, str]) -> str:
    """``sql`` with each serving view ``<catalog>.serving.<name>`` replaced by ``tables[name]``."""
    for name, target in tables.items():
        sql = sql.replace(f"{catalog}.serving.{name}", target)
    if re.search(rf"\b{re.escape(catalog)}\.serving\.", sql):
        raise ValueError(f"a serving view is left in the benchmark statement: {sql}")
    return sql


# --- Trino registration --------------------------------------------------------------------------


def _register(private: Settings, schema: str) -> None:
    from adclick.catalog import Table
    from serving.trino_client import register_table

    for name in TABLES:
        register_table(private, Table(schema, name))


def _unregister(settings: Settings, schema: str) -> None:
    from serving.trino_client import query

    if not re.fullmatch(r"bench_[0-9a-f]+", schema):
        raise ValueError(f"not a benchmark schema: {schema!r}")
    catalog = settings.trino_catalog
    _, present = query(
        settings,
        f"SELECT table_name FROM {catalog}.information_schema.tables WHERE table_schema = ?",
        [schema],
    )
    for (name,) in present:
        if name in TABLES:
            query(
                settings,
                f"CALL {catalog}.system.unregister_table(schema_name => '{schema}', table_name => '{name}')",
            )
    query(settings, f"DROP SCHEMA IF EXISTS {catalog}.{schema}")


# --- timing --------------------------------------------------------------------------------------


Engine = Callable[[str, list[Any]], Sequence[Sequence[Any]]]


def _timed(engine: Engine, sql: str, params: list[Any]) -> tuple[float, Sequence[Sequence[Any]]]:
    start = time.perf_counter()
    rows = engine(sql, params)
    return (time.perf_counter() - start) * 1000, rows


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _same_rows(left: Sequence[Sequence[Any]], right: Sequence[Sequence[Any]]) -> bool:
    return len(left) == len(right) and all(
        len(x) == len(y) and all(_same(a, b) for a, b in zip(x, y, strict=True))
        for x, y in zip(left, right, strict=True)
    )


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50_ms": round(percentile(ordered, 50), 1), "p95_ms": round(percentile(ordered, 95), 1)}


def measure(
    statements: dict[str, tuple[str, str, list[Any]]], trino: Engine, duck: Engine
) -> dict[str, dict[str, Any]]:
    """Per report: warm-ups, then ``RUNS`` timed runs of each engine, interleaved; the rows of
    both engines must be the same. Returns the milliseconds of every run per engine."""
    out: dict[str, dict[str, Any]] = {}
    for name, (trino_sql, duck_sql, params) in statements.items():
        for _ in range(WARMUP):
            trino(trino_sql, params)
            duck(duck_sql, params)
        times: dict[str, list[float]] = {"trino": [], "duckdb": []}
        rows: dict[str, Sequence[Sequence[Any]]] = {}
        for _ in range(RUNS):
            ms, rows["trino"] = _timed(trino, trino_sql, params)
            times["trino"].append(ms)
            ms, rows["duckdb"] = _timed(duck, duck_sql, params)
            times["duckdb"].append(ms)
        if not _same_rows(rows["trino"], rows["duckdb"]):
            raise RuntimeError(
                f"{name}: Trino and DuckDB disagree: {list(rows['trino'])[:3]} vs {list(rows['duckdb'])[:3]}"
            )
        out[name] = {**times, "rows": len(rows["trino"])}
    return out


def run(settings: Settings, context: dict | None = None) -> dict:
    import duckdb

    from adclick.catalog import Table
    from adclick.contract import now_utc
    from adclick.spark import get_spark
    from query_api.executor import TrinoExecutor

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp(prefix="bench-serving-", dir=settings.home))
    private = settings.model_copy(update={"home": work, "lake_root": (work / "lake").as_uri()})
    last_day = now_utc().date() - timedelta(days=1)
    catalog = settings.trino_catalog
    registered = False
    try:
        spark = get_spark("bench-serving", settings=private)
        try:
            # Parquet INT64 microsecond timestamps (UTC-adjusted): what both engines read natively.
            spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
            built = build(spark, private, schema, last_day)
        finally:
            spark.stop()  # two cores: the engines being timed get them to themselves

        registered = True
        _register(private, schema)
        executor = TrinoExecutor(settings, user=settings.trino_user)

        con = duckdb.connect()
        con.execute("SET threads = 2")
        con.execute("SET TimeZone = 'UTC'")
        for name in TABLES:
            files = Path(Table(schema, name).path(private).removeprefix("file://")) / "day=*" / "*.parquet"
            con.execute(
                f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{files}', hive_partitioning = true, "
                "hive_types = {'day': DATE})"
            )

        in_trino = {name: f"{catalog}.{schema}.{name}" for name in TABLES}
        in_duck = {name: name for name in TABLES}
        statements = {
            name: (for_tables(sql, catalog, in_trino), for_tables(sql, catalog, in_duck), params)
            for name, (sql, params) in reports(catalog, last_day).items()
        }
        timings = measure(
            statements,
            trino=lambda sql, params: executor.run(sql, params).rows,
            duck=lambda sql, params: con.execute(sql, params).fetchall(),
        )
        con.close()
    finally:
        if registered:
            _unregister(settings, schema)
        shutil.rmtree(work, ignore_errors=True)

    per_report = {
        name: {"rows": t["rows"], "trino": _summary(t["trino"]), "duckdb": _summary(t["duckdb"])}
        for name, t in timings.items()
    }
    trino_all = _summary([ms for t in timings.values() for ms in t["trino"]])
    duck_all = _summary([ms for t in timings.values() for ms in t["duckdb"]])
    params = {
        "first_day": (last_day - timedelta(days=DAYS - 1)).isoformat(),
        "last_day": last_day.isoformat(),
        "days": DAYS,
        "rows_per_day_target": ROWS_PER_DAY,
        "clicks_per_day_target": CLICKS_PER_DAY,
        "hourly_days": HOURLY_DAYS,
        "runs": RUNS,
        "warmup": WARMUP,
        **built,
    }
    slowest = max(per_report, key=lambda n: per_report[n]["trino"]["p95_ms"])
    slowest_ms = per_report[slowest]["trino"]["p95_ms"]
    return write_result(
        "serving_report_latency",
        metric="p95 latency of the query API's report statements on Trino (90 days of gold, all reports)",
        value=trino_all["p95_ms"],
        unit="ms",
        peer={"name": "DuckDB (threads=2), same Parquet files, same statements", "value": duck_all["p95_ms"]},
        params=params,
        summary=(
            f"p95 {trino_all['p95_ms']:,.0f} ms, p50 {trino_all['p50_ms']:,.0f} ms "
            f"over {len(per_report)} reports x {RUNS} runs (slowest: {slowest} p95 {slowest_ms:,.0f} ms); "
            f"DuckDB p95 {duck_all['p95_ms']:,.0f} ms; target < {TARGET_P95_MS:,.0f} ms"
        ),
        p95_ms=trino_all["p95_ms"],
        p50_ms=trino_all["p50_ms"],
        duckdb_p95_ms=duck_all["p95_ms"],
        duckdb_p50_ms=duck_all["p50_ms"],
        target_p95_ms=TARGET_P95_MS,
        met=trino_all["p95_ms"] < TARGET_P95_MS,
        reports=per_report,
    )
