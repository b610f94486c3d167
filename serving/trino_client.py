"""Trino access: connections, table registration and printing query results.

Every lake table is registered in the ``delta`` catalog with the Delta Lake connector's
``register_table`` procedure (idempotent: a table already registered is left alone).
Values are always bound as parameters, never formatted into SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import trino
import trino.exceptions

from adclick.catalog import Table
from adclick.settings import Settings


def connect(
    settings: Settings, *, user: str | None = None, schema: str | None = None
) -> trino.dbapi.Connection:
    return trino.dbapi.connect(
        host=settings.trino_host,
        port=settings.trino_port,
        user=user or settings.trino_user,
        catalog=settings.trino_catalog,
        schema=schema,
        http_scheme="http",
        request_timeout=120,
    )


def query(settings: Settings, sql: str, params: Sequence[Any] | None = None, *, user: str | None = None):
    """Run one statement and return ``(column names, rows)``."""
    with connect(settings, user=user) as conn:
        cur = conn.cursor()
        cur.execute(sql, params)
        rows = cur.fetchall()
        cols = [d[0] for d in cur.description or []]
        return cols, rows


def trino_location(settings: Settings, table: Table) -> str:
    """The table's location as Trino's file systems spell it (``local://`` for a local lake)."""
    path = table.path(settings)
    if path.startswith("file://"):
        return "local://" + path.removeprefix("file://")
    if path.startswith("s3a://"):
        return "s3://" + path.removeprefix("s3a://")
    return path


def ensure_schema(settings: Settings, schema: str) -> None:
    query(settings, f"CREATE SCHEMA IF NOT EXISTS {settings.trino_catalog}.{_ident(schema)}")


def register_table(settings: Settings, table: Table) -> bool:
    """Register a Delta table in Trino unless it already is; True when it was registered now."""
    ensure_schema(settings, table.layer)
    _, rows = query(
        settings,
        f"SELECT count(*) FROM {settings.trino_catalog}.information_schema.tables "  # noqa: S608 (catalog from settings)
        "WHERE table_schema = ? AND table_name = ?",
        [table.layer, table.name],
    )
    if rows[0][0]:
        return False
    # Trino cannot bind parameters in CALL: the arguments come from the table catalog (not from
    # users) and are checked and quoted as literals.
    args = {
        "schema_name": _literal(_ident(table.layer)),
        "table_name": _literal(_ident(table.name)),
        "table_location": _literal(trino_location(settings, table)),
    }
    named = ", ".join(f"{k} => {v}" for k, v in args.items())
    try:
        query(settings, f"CALL {settings.trino_catalog}.system.register_table({named})")
    except trino.exceptions.TrinoUserError as exc:
        # Another registrar (the hourly trino_catalog DAG, a daily_batch run) won the race
        # between the check above and this call: the table is registered, which is the goal.
        if exc.error_name == "ALREADY_EXISTS" or "already exists" in str(exc.message).lower():
            return False
        raise
    return True


def _literal(text: str) -> str:
    if any(ord(ch) < 32 for ch in text):
        raise ValueError(f"control character in SQL literal: {text!r}")
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


def print_query(settings: Settings, sql: str) -> None:
    cols, rows = query(settings, sql)
    widths = [
        max(len(str(c)), *(len(str(r[i])) for r in rows)) if rows else len(str(c)) for i, c in enumerate(cols)
    ]
    print(" | ".join(str(c).ljust(w) for c, w in zip(cols, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
    print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
