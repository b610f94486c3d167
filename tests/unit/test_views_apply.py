"""The serving SQL runner (:func:`serving.views.apply_views`) against fake DB-API connections that
fail like Trino does (``TABLE_NOT_FOUND``), and the Trino access-control rules. No Trino here."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from trino.exceptions import TrinoUserError

from adclick.settings import Settings
from serving.views import (
    SQL_DIR,
    ServingSqlError,
    apply_views,
    apply_views_report,
    strip_comments,
)

# --- apply_views with a scripted connection ------------------------------------------------------


class ScriptedConnection:
    """Records statements; a statement naming a ``missing`` table fails with Trino's TABLE_NOT_FOUND,
    one naming a ``broken`` table with another Trino error."""

    def __init__(self, missing: tuple[str, ...] = (), broken: tuple[str, ...] = ()) -> None:
        self.missing = missing
        self.broken = broken
        self.executed: list[str] = []
        self.closed = False

    def cursor(self) -> _Cursor:
        return _Cursor(self)

    def execute(self, sql: str, params: Any = None) -> None:
        body = strip_comments(sql)
        self.executed.append(body.strip())
        for name in self.missing:
            if re.search(rf"\bFROM\s+{re.escape(name)}\b", body):
                raise TrinoUserError(
                    {"errorName": "TABLE_NOT_FOUND", "message": f"Table '{name}' does not exist"}
                )
        for name in self.broken:
            if re.search(rf"\bFROM\s+{re.escape(name)}\b", body):
                raise TrinoUserError(
                    {"errorName": "COLUMN_NOT_FOUND", "message": "Column 'x' cannot be resolved"}
                )

    def close(self) -> None:
        self.closed = True


class _Cursor:
    def __init__(self, conn: ScriptedConnection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Any = None) -> None:
        self.conn.execute(sql, params)

    def fetchall(self) -> list[Any]:
        return [[True]]

    def close(self) -> None:
        pass


def test_apply_views_skips_a_view_whose_table_is_missing_and_applies_the_rest() -> None:
    conn = ScriptedConnection(missing=("delta.gold.audience_daily",))
    applied = apply_views(Settings(), conn)
    assert "delta.serving.audience_daily" not in applied
    assert applied == [
        "delta.serving.batch_watermark",
        "delta.serving.ad_clicks_minute",
        "delta.serving.ad_clicks_hourly",
        "delta.serving.ad_clicks_daily",
        "delta.serving.top_ads_minute",
        "delta.serving.experiments_daily",
        "delta.serving.reconciliation_latest",
        "delta.serving.job_runs_latest",
        "delta.serving.archived_days",
    ]
    # the schema first; fallbacks not run when the primary worked; no statement ends with ';'
    assert conn.executed[0] == "CREATE SCHEMA IF NOT EXISTS delta.serving"
    assert sum("VIEW delta.serving.ad_clicks_minute" in s for s in conn.executed) == 1
    assert not any(s.endswith(";") for s in conn.executed)
    assert not conn.closed  # a connection passed in is the caller's to close


def test_apply_views_uses_the_fallback_and_reports_the_missing_table() -> None:
    report = apply_views_report(Settings(), ScriptedConnection(missing=("delta.silver.events",)))
    minute = next(r for r in report if r.view == "delta.serving.ad_clicks_minute")
    assert minute.status == "fallback"
    assert "delta.silver.events" in minute.detail


def test_apply_views_raises_on_other_errors_after_trying_every_file() -> None:
    conn = ScriptedConnection(broken=("delta.gold.experiments_daily",))
    with pytest.raises(ServingSqlError, match=r"015_experiments_daily\.sql: Column 'x'"):
        apply_views(Settings(), conn)
    assert any("VIEW delta.serving.audience_daily" in s for s in conn.executed)


def test_apply_views_rewrites_the_catalog() -> None:
    conn = ScriptedConnection()
    applied = apply_views(Settings(trino_catalog="lake"), conn)
    assert applied[0] == "lake.serving.batch_watermark"
    assert conn.executed[0] == "CREATE SCHEMA IF NOT EXISTS lake.serving"
    assert not any(re.search(r"\bdelta\.(serving|speed|gold|silver|ops)\.", s) for s in conn.executed)
    assert "'daily_batch'" in conn.executed[1]  # literals untouched


# --- Trino access control --------------------------------------------------------------------------

RULES = SQL_DIR.parent.parent / "infra" / "trino" / "rules.json"


def _first_match(rules: list[dict[str, Any]], **subject: str) -> dict[str, Any] | None:
    """Trino's file-based rule matching: the first rule whose regexes all fully match wins."""
    for rule in rules:
        if all(re.fullmatch(rule.get(key, ".*"), value) for key, value in subject.items()):
            return rule
    return None


def _can_select(rules: dict[str, Any], user: str, catalog: str, schema: str) -> bool:
    catalog_rule = _first_match(rules["catalogs"], user=user, catalog=catalog)
    if catalog_rule is None or catalog_rule["allow"] == "none":
        return False
    table_rule = _first_match(rules["tables"], user=user, catalog=catalog, schema=schema, table="t")
    return table_rule is not None and "SELECT" in table_rule["privileges"]


def test_access_rules_give_analysts_serving_and_gold_only() -> None:
    rules = json.loads(RULES.read_text(encoding="utf-8"))
    layers = ("serving", "gold", "bronze", "silver", "speed", "ops", "dims")
    assert {s for s in layers if _can_select(rules, "analyst", "delta", s)} == {"serving", "gold"}
    assert all(_can_select(rules, "admin", "delta", s) for s in layers)
    assert not any(_can_select(rules, "ingest", "delta", s) for s in layers)
    assert not _can_select(rules, "analyst", "system", "runtime")
    assert not _can_select(rules, "someone", "delta", "serving")
    # the view owner needs GRANT_SELECT for analysts to read its SECURITY DEFINER views
    admin_tables = _first_match(
        rules["tables"], user="admin", catalog="delta", schema="silver", table="events"
    )
    assert admin_tables is not None and "GRANT_SELECT" in admin_tables["privileges"]
    assert _first_match(rules["queries"], user="ingest") is None  # may not run any query
    assert _first_match(rules["procedures"], user="admin", procedure="register_table") is not None
    properties = (RULES.parent / "access-control.properties").read_text(encoding="utf-8")
    assert "access-control.name=file" in properties.splitlines()
    assert "security.config-file=@RULES_FILE@" in properties.splitlines()
