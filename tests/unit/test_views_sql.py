"""The serving SQL files: contract names and columns, the statement splitter, the lambda merge's
boundary.

No Trino here. The contract is checked on the SQL text; the merge logic is run on DuckDB (the
files translated for its dialect: ``SECURITY DEFINER`` dropped, ``timestamp(3) with time zone`` ->
``timestamptz``) with a few rows per source table. apply_views' rules: test_views_apply.py.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import duckdb
import pytest
from trino.exceptions import TrinoUserError

from adclick.settings import Settings
from serving import views
from serving.views import (
    SQL_DIR,
    apply_views,
    apply_views_report,
    split_statements,
    sql_files,
    strip_comments,
)

CONTRACT = {
    "ad_clicks_minute": (
        "window_start", "ad_id", "campaign_id", "country", "device_type",
        "clicks", "fraud_clicks", "unique_users", "is_final",
    ),
    "ad_clicks_hourly": (
        "window_start", "ad_id", "campaign_id", "country", "device_type",
        "clicks", "fraud_clicks", "unique_users", "is_final",
    ),
    "ad_clicks_daily": (
        "day", "ad_id", "campaign_id", "country", "device_type", "impressions", "clicks",
        "fraud_clicks", "conversions", "unique_users", "cost_micros", "revenue_micros", "is_final",
    ),
    "top_ads_minute": ("window_start", "rank", "ad_id", "clicks"),
}  # fmt: skip
FILES = {
    "ad_clicks_minute": "010_ad_clicks_minute.sql",
    "ad_clicks_hourly": "011_ad_clicks_hourly.sql",
    "ad_clicks_daily": "012_ad_clicks_daily.sql",
    "top_ads_minute": "013_top_ads_minute.sql",
}


# --- text checks ---------------------------------------------------------------------------------


def _top_level_selects(sql: str) -> list[list[str]]:
    """Output column names of every SELECT at parenthesis depth 0 (the view's own select lists)."""
    text = strip_comments(sql)
    body = text[re.search(r"\bAS\b", text[re.search(r"\bVIEW\b", text, re.I).end() :], re.I).end() :]
    lists: list[list[str]] = []
    depth = 0
    i = 0
    current: list[str] | None = None
    item = ""
    while i < len(body):
        ch = body[i]
        word = re.match(r"[A-Za-z_]+", body[i:]) if (i == 0 or not body[i - 1].isalnum()) else None
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if depth == 0 and word and word.group(0).upper() == "SELECT":
            current, item = [], ""
            i += len("SELECT")
            continue
        if depth == 0 and word and word.group(0).upper() == "FROM" and current is not None:
            current.append(item)
            lists.append([_output_name(x) for x in current])
            current = None
            i += len("FROM")
            continue
        if current is not None:
            if depth == 0 and ch == ",":
                current.append(item)
                item = ""
            else:
                item += ch
        i += 1
    if current is not None:  # a SELECT without FROM
        current.append(item)
        lists.append([_output_name(x) for x in current])
    return lists


def _output_name(expression: str) -> str:
    expression = expression.strip()
    alias = re.search(r"\bAS\s+(\w+)\s*$", expression, re.I)
    if alias:
        return alias.group(1).lower()
    return expression.split(".")[-1].strip().lower()


@pytest.mark.parametrize("view", sorted(CONTRACT))
def test_each_contract_view_has_its_file_and_columns(view: str) -> None:
    path = SQL_DIR / FILES[view]
    assert path.is_file(), f"{path} missing"
    statements = split_statements(path.read_text(encoding="utf-8"))
    creating = [s for s in statements if s.view == f"delta.serving.{view}"]
    assert creating, f"{path.name} does not create delta.serving.{view}"
    for statement in creating:  # the primary and every fallback keep the contract
        assert re.search(r"CREATE\s+OR\s+REPLACE\s+VIEW", statement.sql, re.I)
        selects = _top_level_selects(statement.sql)
        assert selects, statement.sql[:200]
        for names in selects:
            missing = [c for c in CONTRACT[view] if c not in names]
            assert not missing, f"{path.name}: select list lacks {missing}: {names}"


def test_every_file_is_idempotent_ddl_with_a_header_comment() -> None:
    files = sql_files()
    assert [p.name for p in files] == sorted(p.name for p in files)
    assert files[0].name == "001_schemas.sql"
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert text.lstrip().startswith("--"), f"{path.name} has no header comment"
        for statement in split_statements(text):
            body = strip_comments(statement.sql).strip().upper()
            assert body.startswith(("CREATE OR REPLACE VIEW", "CREATE SCHEMA IF NOT EXISTS")), path.name


def test_the_column_parser_would_notice_a_missing_column() -> None:
    sql = "CREATE OR REPLACE VIEW delta.serving.x AS SELECT a, f(b, c) AS d, t.e FROM (SELECT z FROM y) AS t"
    assert _top_level_selects(sql) == [["a", "d", "e"]]


def test_split_ignores_semicolons_in_strings_and_comments() -> None:
    text = (
        "-- header; not a statement\n"
        "CREATE SCHEMA IF NOT EXISTS delta.serving;\n"
        "/* a block; comment */ CREATE OR REPLACE VIEW delta.serving.v AS SELECT 'a;b' AS \"x;y\";\n"
        "-- @fallback: when the source is missing\n"
        "CREATE OR REPLACE VIEW delta.serving.v AS SELECT 'it''s; fine' AS x\n"
        ";  -- trailing comment only\n"
    )
    statements = split_statements(text)
    assert len(statements) == 3
    assert [s.fallback for s in statements] == [False, False, True]
    assert [s.view for s in statements] == [None, "delta.serving.v", "delta.serving.v"]
    assert "'a;b' AS \"x;y\"" in statements[1].sql
    assert statements[2].sql.endswith("'it''s; fine' AS x")


# --- the merge on DuckDB -------------------------------------------------------------------------


def _for_duckdb(sql: str) -> str:
    return sql.replace("SECURITY DEFINER", "").replace("timestamp(3) with time zone", "timestamptz")


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


_DDL = {
    "ops.batch_watermark": "pipeline varchar, day date, advanced_at timestamptz, run_id varchar",
    "silver.events": "event_id varchar, event_type varchar, ad_id varchar, campaign_id varchar, "
    "advertiser_id varchar, country varchar, region varchar, device_type varchar, event_time timestamptz, "
    "event_date date, is_fraud boolean, user_key varchar, cost_micros bigint, revenue_micros bigint",
    "speed.ad_clicks_minute": "window_start timestamptz, ad_id varchar, campaign_id varchar, "
    "country varchar, device_type varchar, impressions bigint, clicks bigint, fraud_clicks bigint, "
    "conversions bigint, cost_micros bigint, revenue_micros bigint, users_sketch blob, "
    "unique_users bigint, window_date date",
    "gold.ad_clicks_hourly": "window_start timestamptz, day date, ad_id varchar, campaign_id varchar, "
    "advertiser_id varchar, country varchar, region varchar, device_type varchar, impressions bigint, "
    "clicks bigint, fraud_clicks bigint, conversions bigint, cost_micros bigint, revenue_micros bigint, "
    "unique_users bigint, ctr double, cvr double, rpc_micros double, cpa_micros double",
    "gold.ad_clicks_daily": "day date, ad_id varchar, campaign_id varchar, advertiser_id varchar, "
    "country varchar, region varchar, device_type varchar, impressions bigint, clicks bigint, "
    "fraud_clicks bigint, conversions bigint, cost_micros bigint, revenue_micros bigint, "
    "unique_users bigint, ctr double, cvr double, rpc_micros double, cpa_micros double",
}

SILVER = [
    # (event_id, event_type, country, region, event_time, is_fraud, user_key, cost_micros); ad a1,
    # campaign c1, advertiser adv1, mobile.
    # Day 1 (final): an honest, a fraud and a null-verdict click in 23:59; an impression without country.
    ("e1", "click", "US", "na", "2026-01-01 23:59:30", False, "u1", 100),
    ("e2", "click", "US", "na", "2026-01-01 23:59:40", True, "u2", 100),
    ("e3", "impression", None, "unknown", "2026-01-01 23:59:50", None, "u1", None),
    ("e5", "click", "US", "na", "2026-01-01 23:59:55", None, "u1", 50),
    # Day 2 (after the watermark): silver may already hold it; it must not be served as final.
    ("e4", "click", "US", "na", "2026-01-02 00:00:10", False, "u1", 100),
]
SPEED = [
    # the last minute of the final day: the speed layer's count must not be served
    ("2026-01-01 23:59:00", 0, 9, 9, 0, 0, 0, 9, "2026-01-01"),
    # the first minutes after the boundary
    ("2026-01-02 00:00:00", 1, 3, 1, 0, 300, 0, 2, "2026-01-02"),
    ("2026-01-02 00:01:00", 0, 2, 0, 1, 200, 50, 3, "2026-01-02"),
]


def _lake(watermark: date | None, *, skip: tuple[str, ...] = ()) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("ATTACH ':memory:' AS delta")
    for schema in ("serving", "silver", "speed", "gold", "ops"):
        con.execute(f"CREATE SCHEMA delta.{schema}")
    for name, columns in _DDL.items():
        if name not in skip:
            con.execute(f"CREATE TABLE delta.{name} ({columns})")
    if "ops.batch_watermark" not in skip:
        con.execute(
            "INSERT INTO delta.ops.batch_watermark VALUES ('other_pipeline', DATE '2026-03-01', NULL, 'x')"
        )
        if watermark is not None:
            con.execute(
                "INSERT INTO delta.ops.batch_watermark VALUES ('daily_batch', ?, ?, 'r1')",
                [watermark, _ts("2026-01-02 03:00:00")],
            )
    if "silver.events" not in skip:
        for event_id, kind, country, region, at, fraud, user, cost in SILVER:
            moment = _ts(at)
            con.execute(
                "INSERT INTO delta.silver.events "
                "VALUES (?, ?, 'a1', 'c1', 'adv1', ?, ?, 'mobile', ?, ?, ?, ?, ?, NULL)",
                [event_id, kind, country, region, moment, moment.date(), fraud, user, cost],
            )
    for row in SPEED:
        con.execute(
            "INSERT INTO delta.speed.ad_clicks_minute "
            "VALUES (?, 'a1', 'c1', 'US', 'mobile', ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
            [_ts(row[0]), *row[1:8], date.fromisoformat(row[8])],
        )
    if "gold.ad_clicks_hourly" not in skip:
        con.execute(
            "INSERT INTO delta.gold.ad_clicks_hourly VALUES "
            "(?, DATE '2026-01-01', 'a1', 'c1', 'adv1', 'US', 'na', 'mobile', "
            " 0, 2, 1, 0, 150, 0, 1, NULL, 0, 0, NULL), "
            "(?, DATE '2026-01-02', 'a1', 'c1', 'adv1', 'US', 'na', 'mobile', "
            " 0, 77, 0, 0, 0, 0, 1, NULL, 0, 0, NULL)",
            [_ts("2026-01-01 23:00:00"), _ts("2026-01-02 00:00:00")],
        )
    if "gold.ad_clicks_daily" not in skip:
        con.execute(
            "INSERT INTO delta.gold.ad_clicks_daily VALUES "
            "(DATE '2026-01-01', 'a1','c1','adv1','US','na','mobile', 1, 2, 1, 0, 150, 0, 2, 2, 0, 75, NULL),"
            "(DATE '2026-01-02', 'a1','c1','adv1','US','na','mobile', 0, 77, 0, 0, 0, 0, 1, NULL, 0, 0, NULL)"
        )
    return con


class DuckConnection:
    """A DB-API-like connection over DuckDB that fails like Trino when a source table is missing."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.executed: list[str] = []

    def cursor(self) -> DuckConnection:
        return self

    def execute(self, sql: str, params: Any = None) -> None:
        self.executed.append(sql)
        try:
            self.con.execute(_for_duckdb(sql))
        except duckdb.CatalogException as exc:
            if "does not exist" in str(exc):
                raise TrinoUserError({"errorName": "TABLE_NOT_FOUND", "message": str(exc)}, "q") from exc
            raise

    def fetchall(self) -> list[Any]:
        return []

    def close(self) -> None:
        pass


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.execute(sql).fetchall()


def test_merge_serves_gold_up_to_the_watermark_and_speed_after_it() -> None:
    con = _lake(date(2026, 1, 1))
    applied = apply_views(Settings(), DuckConnection(con))
    # the ops views come from their fallbacks: this lake has no reconciliation or job runs yet
    ops_views = ("reconciliation_latest", "job_runs_latest", "archived_days")
    assert applied == [f"delta.serving.{v}" for v in ("batch_watermark", *CONTRACT, *ops_views)]

    minute = _rows(
        con,
        "SELECT window_start, country, clicks, fraud_clicks, impressions, cost_micros, unique_users, "
        "is_final, advertiser_id FROM delta.serving.ad_clicks_minute ORDER BY window_start, country",
    )
    assert [r[:8] for r in minute] == [
        # final: from silver (speed's 9/9 for this minute is not served); null is_fraud = not fraud,
        # null country = 'unknown'
        (_ts("2026-01-01 23:59:00"), "US", 2, 1, 0, 150, 2, True),
        (_ts("2026-01-01 23:59:00"), "unknown", 0, 0, 1, 0, 1, True),
        # after the boundary: speed (silver's e4 on 01-02 is not served)
        (_ts("2026-01-02 00:00:00"), "US", 3, 1, 1, 300, 2, False),
        (_ts("2026-01-02 00:01:00"), "US", 2, 0, 0, 200, 3, False),
    ]
    assert [r[8] for r in minute] == ["adv1", "adv1", None, None]

    hourly = _rows(
        con,
        "SELECT window_start, clicks, fraud_clicks, unique_users, unique_users_upper, ctr, is_final "
        "FROM delta.serving.ad_clicks_hourly ORDER BY window_start",
    )
    assert hourly == [
        (_ts("2026-01-01 23:00:00"), 2, 1, 1, 1, None, True),  # gold; gold's 77 on 01-02 not served
        (_ts("2026-01-02 00:00:00"), 5, 1, 3, 5, 5.0, False),  # speed minutes: max 3, sum 5 users
    ]

    daily = _rows(
        con,
        "SELECT day, impressions, clicks, conversions, cost_micros, revenue_micros, unique_users, is_final "
        "FROM delta.serving.ad_clicks_daily ORDER BY day",
    )
    assert daily == [
        (date(2026, 1, 1), 1, 2, 0, 150, 0, 2, True),
        (date(2026, 1, 2), 1, 5, 1, 500, 50, 3, False),
    ]
    # no overlap, no gap: every day appears once, on the right side of the boundary
    assert _rows(con, "SELECT pipeline, day FROM delta.serving.batch_watermark") == [
        ("daily_batch", date(2026, 1, 1))
    ]


def test_without_a_watermark_nothing_is_final_and_all_speed_is_served() -> None:
    con = _lake(None)
    apply_views(Settings(), DuckConnection(con))
    minute = _rows(
        con, "SELECT window_start, clicks, is_final FROM delta.serving.ad_clicks_minute ORDER BY 1"
    )
    assert minute == [
        (_ts("2026-01-01 23:59:00"), 9, False),
        (_ts("2026-01-02 00:00:00"), 3, False),
        (_ts("2026-01-02 00:01:00"), 2, False),
    ]
    daily = _rows(con, "SELECT day, clicks, is_final FROM delta.serving.ad_clicks_daily ORDER BY 1")
    assert daily == [(date(2026, 1, 1), 9, False), (date(2026, 1, 2), 5, False)]
    assert _rows(con, "SELECT day FROM delta.serving.batch_watermark") == [(None,)]


def test_before_the_first_batch_the_fallbacks_serve_speed_alone() -> None:
    con = _lake(
        None,
        skip=("ops.batch_watermark", "silver.events", "gold.ad_clicks_hourly", "gold.ad_clicks_daily"),
    )
    report = apply_views_report(Settings(), DuckConnection(con))
    status = {r.view: r.status for r in report}
    assert status == {
        "delta.serving.batch_watermark": "fallback",
        "delta.serving.ad_clicks_minute": "fallback",
        "delta.serving.ad_clicks_hourly": "fallback",
        "delta.serving.ad_clicks_daily": "fallback",
        "delta.serving.top_ads_minute": "applied",
        "delta.serving.audience_daily": "skipped",
        "delta.serving.experiments_daily": "skipped",
        "delta.serving.reconciliation_latest": "fallback",
        "delta.serving.job_runs_latest": "fallback",
        "delta.serving.archived_days": "fallback",
    }
    assert all("does not exist" in r.detail for r in report if r.status != "applied")
    hourly = _rows(
        con, "SELECT window_start, clicks, is_final FROM delta.serving.ad_clicks_hourly ORDER BY 1"
    )
    assert hourly == [(_ts("2026-01-01 23:00:00"), 9, False), (_ts("2026-01-02 00:00:00"), 5, False)]
    assert _rows(con, "SELECT day, advanced_at FROM delta.serving.batch_watermark") == [(None, None)]


def test_top_ads_minute_ranks_each_minute_at_read_time_ties_kept_at_the_cut_off() -> None:
    con = _lake(None)
    noon, next_minute, later = (_ts(f"2026-01-03 12:0{m}:00") for m in range(3))
    rows = [  # (minute, ad, country, clicks): ad-a has 10 over two countries
        (noon, "ad-a", "FR", 6), (noon, "ad-a", "DE", 4), (noon, "ad-b", "FR", 9),
        (noon, "ad-c", "FR", 9), (noon, "ad-d", "FR", 7), (noon, "ad-e", "FR", 0),
        (next_minute, "ad-d", "FR", 3),
        *((noon, f"ad-{i:03d}", "FR", 1) for i in range(120)),  # 120 ads tied at 1 click
        *((later, f"ad-{i:03d}", "FR", i) for i in range(1, 106)),  # 105 ads, 1..105 clicks
    ]  # fmt: skip
    for minute, ad, country, clicks in rows:
        con.execute(
            "INSERT INTO delta.speed.ad_clicks_minute "
            "VALUES (?, ?, 'c1', ?, 'mobile', 0, ?, 0, 0, 0, 0, NULL, 1, DATE '2026-01-03')",
            [minute, ad, country, clicks],
        )
    apply_views(Settings(), DuckConnection(con))
    top = _rows(
        con,
        "SELECT window_start, rank, ad_id, clicks, is_final FROM delta.serving.top_ads_minute "
        "WHERE day = DATE '2026-01-03' ORDER BY window_start, rank, ad_id",
    )
    at_noon = [(rank, ad, clicks) for minute, rank, ad, clicks, _ in top if minute == noon]
    # RANK(): ties share a rank and the next rank skips; ad-e (no click) is never ranked; the 120
    # ads tied at rank 5 are all kept although the cut-off is 100
    assert at_noon[:4] == [(1, "ad-a", 10), (2, "ad-b", 9), (2, "ad-c", 9), (4, "ad-d", 7)]
    assert at_noon[4:] == [(5, f"ad-{i:03d}", 1) for i in range(120)]
    assert [(r, a, c) for m, r, a, c, _ in top if m == next_minute] == [(1, "ad-d", 3)]
    assert [(r, c) for m, r, _, c, _ in top if m == later] == [(r, 106 - r) for r in range(1, 101)]
    assert {final for *_, final in top} == {False}


def test_views_module_reads_its_own_directory() -> None:
    assert views.SQL_DIR.is_dir()
    assert {p.name for p in sql_files()} >= set(FILES.values())


def test_archived_days_lists_each_days_latest_archive_and_whether_it_is_restored() -> None:
    con = _lake(date(2026, 1, 1))
    con.execute(
        'CREATE TABLE delta.ops.archive_manifest (run_id varchar, "table" varchar, day date, bucket varchar, '
        "object_key varchar, storage_class varchar, bytes bigint, sha256 varchar, rows bigint, "
        "partition_rows bigint, content_hash varchar, source_version bigint, archived_at timestamptz)"
    )
    con.execute(
        'CREATE TABLE delta.ops.lifecycle_log ("at" timestamptz, run_id varchar, action varchar, '
        '"table" varchar, day date, rows bigint, objects bigint, detail varchar)'
    )
    manifest = [
        # bronze 2025-01-01: archived twice (the later run, 2 objects, is the archive now)
        ("r1", "bronze.events", "2025-01-01", "k1", 10, 7, 7, "2026-01-01 01:00:00"),
        ("r2", "bronze.events", "2025-01-01", "k2", 20, 4, 9, "2026-01-02 01:00:00"),
        ("r2", "bronze.events", "2025-01-01", "k3", 30, 5, 9, "2026-01-02 01:00:00"),
        ("r1", "silver.events", "2025-01-01", "k4", 40, 6, 6, "2026-01-01 01:00:00"),
        ("r1", "bronze.events", "2025-01-02", "k5", 50, 8, 8, "2026-01-01 01:00:00"),
    ]
    for run, name, day, key, size, rows, total, at in manifest:
        con.execute(
            "INSERT INTO delta.ops.archive_manifest "
            "VALUES (?, ?, ?, 'b', ?, 'GLACIER', ?, 's', ?, ?, 'h', 3, ?)",
            [run, name, date.fromisoformat(day), key, size, rows, total, _ts(at)],
        )
    log = [  # bronze 2025-01-01 restored; bronze 2025-01-02 restored then expired again
        ("2026-01-03 00:00:00", "restore", "restored.bronze_events", "2025-01-01"),
        ("2026-01-03 00:00:00", "restore", "restored.bronze_events", "2025-01-02"),
        ("2026-01-09 00:00:00", "expire", "restored.bronze_events", "2025-01-02"),
        ("2026-01-09 00:00:00", "archive", "bronze.events", "2025-01-02"),
    ]
    for at, action, name, day in log:
        con.execute(
            "INSERT INTO delta.ops.lifecycle_log VALUES (?, 'r', ?, ?, ?, NULL, NULL, NULL)",
            [_ts(at), action, name, date.fromisoformat(day)],
        )
    apply_views(Settings(), DuckConnection(con))
    got = _rows(
        con,
        "SELECT table_name, day, objects, rows, bytes, storage_class, restored "
        "FROM delta.serving.archived_days ORDER BY table_name, day",
    )
    assert got == [
        ("bronze.events", date(2025, 1, 1), 2, 9, 50, "GLACIER", True),
        ("bronze.events", date(2025, 1, 2), 1, 8, 50, "GLACIER", False),
        ("silver.events", date(2025, 1, 1), 1, 6, 40, "GLACIER", False),
    ]
