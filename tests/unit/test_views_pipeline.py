"""The serving views over ``delta.ops`` that the analyst may read (``reconciliation_latest``,
``job_runs_latest``), run on DuckDB as test_views_sql.py runs the merge: the latest check or run is
picked, nothing else of ops is exposed, and before the ops tables exist the fallbacks serve no rows
with the same columns. No Trino."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import duckdb
import pytest
from trino.exceptions import TrinoUserError

from adclick.settings import Settings
from serving.views import SQL_DIR, apply_views_report, split_statements

# the columns batch_layer/reconcile.py writes (SUMMARY), in its order
RECONCILIATION = (
    "day date, speed_clicks bigint, speed_fraud_clicks bigint, gold_clicks bigint, gold_fraud_clicks bigint, "
    "speed_total bigint, gold_total bigint, diff bigint, missed bigint, over_counted bigint, "
    "late_dropped bigint, late_counted bigint, duplicates bigint, fraud_reclassified bigint, "
    "unexplained bigint, total_drift double, drift double, passed boolean, checked_at timestamptz"
)
# batch_layer/ops.py's JOB_RUNS
JOB_RUNS = (
    "run_id varchar, job varchar, day date, started_at timestamptz, finished_at timestamptz, status varchar, "
    "inputs varchar[], outputs varchar[], rows_in bigint, rows_out bigint, model_version varchar, "
    "message varchar"
)
FILES = ("016_reconciliation_latest.sql", "017_job_runs_latest.sql")


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Duck:
    """A DB-API-like connection over DuckDB failing like Trino when a source table is missing."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def cursor(self) -> Duck:
        return self

    def execute(self, sql: str, params: Any = None) -> None:
        sql = sql.replace("SECURITY DEFINER", "").replace("timestamp(3) with time zone", "timestamptz")
        try:
            self.con.execute(sql)
        except duckdb.CatalogException as exc:
            if "does not exist" not in str(exc):
                raise
            raise TrinoUserError({"errorName": "TABLE_NOT_FOUND", "message": str(exc)}, "q") from exc

    def fetchall(self) -> list[Any]:
        return []

    def close(self) -> None:
        pass


def _lake(*, ops: bool) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("ATTACH ':memory:' AS delta")
    for schema in ("serving", "ops"):
        con.execute(f"CREATE SCHEMA delta.{schema}")
    if ops:
        con.execute(f"CREATE TABLE delta.ops.reconciliation_summary ({RECONCILIATION})")
        con.execute(f"CREATE TABLE delta.ops.job_runs ({JOB_RUNS})")
    return con


def _apply(con: duckdb.DuckDBPyConnection, tmp_path: Any) -> dict[str, str]:
    """Apply only the schema file and the ops views (the other files need tables this lake lacks)."""
    for name in ("001_schemas.sql", *FILES):
        (tmp_path / name).write_text((SQL_DIR / name).read_text(encoding="utf-8"))
    report = apply_views_report(Settings(), Duck(con), directory=tmp_path)
    return {r.view: r.status for r in report}


def _check(day: str, diff: int, passed: bool, at: str) -> tuple[Any, ...]:
    return (date.fromisoformat(day), 10, 0, 10, 0, 10 + diff, 10, diff, 0, max(diff, 0), 1, 0, 0, 0,
            diff, 0.0, diff / 10, passed, _ts(at))  # fmt: skip


def test_reconciliation_latest_is_each_days_latest_check(tmp_path: Any) -> None:
    con = _lake(ops=True)
    for check in (
        _check("2026-01-08", 5, False, "2026-01-09 03:00:00"),
        _check("2026-01-08", 0, True, "2026-01-09 09:00:00"),  # re-run after a fix: this one counts
        _check("2026-01-09", 1, True, "2026-01-10 03:00:00"),
    ):
        con.execute(
            f"INSERT INTO delta.ops.reconciliation_summary VALUES ({', '.join('?' * len(check))})", check
        )
    assert _apply(con, tmp_path)["delta.serving.reconciliation_latest"] == "applied"
    rows = con.execute(
        "SELECT day, diff, unexplained, passed, checked_at "
        "FROM delta.serving.reconciliation_latest ORDER BY day"
    ).fetchall()
    assert rows == [
        (date(2026, 1, 8), 0, 0, True, _ts("2026-01-09 09:00:00")),
        (date(2026, 1, 9), 1, 1, True, _ts("2026-01-10 03:00:00")),
    ]


def test_job_runs_latest_is_each_jobs_latest_run_without_lineage(tmp_path: Any) -> None:
    con = _lake(ops=True)
    runs = [
        ("r1", "silver", "2026-01-08", "2026-01-09 03:00:00", "succeeded", None),
        ("r2", "silver", "2026-01-09", "2026-01-10 03:00:00", "failed", "x" * 800),
        ("r3", "gold", "2026-01-08", "2026-01-09 03:05:00", "succeeded", None),
    ]
    for run_id, job, day, at, status, message in runs:
        con.execute(
            "INSERT INTO delta.ops.job_runs "
            "VALUES (?, ?, ?, ?, ?, ?, ['bronze.events@3'], [], 9, 4, NULL, ?)",
            [run_id, job, date.fromisoformat(day), _ts(at), _ts(at), status, message],
        )
    assert _apply(con, tmp_path)["delta.serving.job_runs_latest"] == "applied"
    result = con.execute("SELECT * FROM delta.serving.job_runs_latest ORDER BY job")
    columns = [d[0] for d in result.description]
    rows = result.fetchall()
    # no lineage (inputs, outputs) and no model version
    assert columns == [
        "job",
        "run_id",
        "day",
        "started_at",
        "finished_at",
        "status",
        "rows_in",
        "rows_out",
        "message",
    ]
    assert [(r[0], r[1], r[5]) for r in rows] == [("gold", "r3", "succeeded"), ("silver", "r2", "failed")]
    assert len(rows[1][8]) == 500  # a failure's text is cut


@pytest.mark.parametrize("view", ["reconciliation_latest", "job_runs_latest"])
def test_before_any_batch_the_fallbacks_serve_no_rows_with_the_same_columns(view: str, tmp_path: Any) -> None:
    full, empty = _lake(ops=True), _lake(ops=False)
    assert _apply(full, tmp_path)[f"delta.serving.{view}"] == "applied"
    assert _apply(empty, tmp_path)[f"delta.serving.{view}"] == "fallback"
    query = f"SELECT * FROM delta.serving.{view}"
    assert empty.execute(query).fetchall() == []
    assert [d[0] for d in empty.execute(query).description] == [d[0] for d in full.execute(query).description]


def test_each_ops_view_has_one_primary_and_one_fallback() -> None:
    for name in FILES:
        statements = split_statements((SQL_DIR / name).read_text(encoding="utf-8"))
        assert [s.fallback for s in statements] == [False, True], name
        assert "SECURITY DEFINER" in statements[0].sql  # analysts read it with the owner's rights
