"""Applies the serving layer's SQL files (``serving/sql/*.sql``) to Trino, in file-name order.

Reads the ``.sql`` files; writes the ``serving`` schema and its views in Trino's metastore (no data).
Idempotent: every statement is ``CREATE SCHEMA IF NOT EXISTS`` or ``CREATE OR REPLACE VIEW``, so
running it again (after a new table is registered, or with edited SQL) just redefines the views.

Rules:

* A file holds one or more statements separated by ``;`` (a ``;`` inside a string, a quoted
  identifier or a comment does not split).
* A statement whose leading comment has a line starting ``-- @fallback`` is a *fallback* of the
  statement before it: it runs only when that statement (and any earlier fallback of the same
  chain) failed because a source table or schema is not registered in Trino yet
  (``TABLE_NOT_FOUND`` / ``SCHEMA_NOT_FOUND``). The views use this to serve the speed layer alone
  until the batch layer has produced its first tables, and are upgraded by the next run after that.
* When a statement and all its fallbacks miss a source, the rest of the file is skipped and
  reported (logged, and listed by :func:`apply_views_report`); other files still run. Any other
  Trino error is a defect in the SQL: the remaining files still run, then :class:`ServingSqlError`
  names every failed file.

The files spell the catalog ``delta`` (the serving contract); with another
``ADCLICK_TRINO_CATALOG`` the layer-qualified names (``delta.<layer>.``) are rewritten to it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import sqlparse
from trino.exceptions import TrinoUserError

from adclick.settings import Settings

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parent / "sql"
MISSING_SOURCE_ERRORS = frozenset({"TABLE_NOT_FOUND", "SCHEMA_NOT_FOUND"})
_SCHEMAS = ("serving", "bronze", "silver", "speed", "gold", "ops", "dims")
_CATALOG_REF = re.compile(r"\bdelta\.(?=(?:" + "|".join(_SCHEMAS) + r")\b)", re.IGNORECASE)
_VIEW_NAME = re.compile(r"^\s*CREATE\s+OR\s+REPLACE\s+VIEW\s+([\w.\"]+)", re.IGNORECASE)
_FALLBACK = re.compile(r"^\s*--\s*@fallback\b", re.IGNORECASE)


class ServingSqlError(RuntimeError):
    """One or more serving SQL files failed for a reason other than a missing source table."""


@dataclass(frozen=True)
class Statement:
    sql: str
    fallback: bool

    @property
    def view(self) -> str | None:
        """The view this statement creates (as written), or None for other statements."""
        match = _VIEW_NAME.match(strip_comments(self.sql))
        return match.group(1) if match else None


@dataclass(frozen=True)
class ViewResult:
    file: str
    view: str | None
    status: Literal["applied", "fallback", "skipped"]
    detail: str = ""


def split_statements(text: str) -> list[Statement]:
    """The statements of a SQL file, without their trailing ``;``; empty/comment-only chunks dropped."""
    statements = []
    for chunk in _split(text):
        body = strip_comments(chunk).strip()
        if not body:
            continue
        fallback = any(_FALLBACK.match(line) for line in _leading_comment_lines(chunk))
        statements.append(Statement(chunk.strip(), fallback))
    return statements


def _leading_comment_lines(chunk: str) -> Iterator[str]:
    for line in chunk.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            return
        yield stripped


def _split(text: str) -> list[str]:
    """Split on top-level ``;`` with sqlparse's lexer (quotes, quoted names and comments are not
    split); a statement keeps its leading comments and loses its ``;`` and what trails it."""
    chunks = []
    for statement in sqlparse.parse(text):
        tokens = list(statement.flatten())
        while tokens and (
            tokens[-1].is_whitespace
            or tokens[-1].ttype in sqlparse.tokens.Comment
            or tokens[-1].match(sqlparse.tokens.Punctuation, ";")
        ):
            tokens.pop()
        chunks.append("".join(t.value for t in tokens))
    return chunks


def strip_comments(sql: str) -> str:
    """The SQL without ``--`` and ``/* */`` comments (string literals and quoted names kept)."""
    return sqlparse.format(sql, strip_comments=True)


def sql_files(directory: Path = SQL_DIR) -> list[Path]:
    """The serving SQL files in the order they are applied (by file name)."""
    return sorted(directory.glob("*.sql"), key=lambda p: p.name)


def for_catalog(sql: str, catalog: str) -> str:
    """``delta.<layer>.`` references rewritten to ``catalog`` (unchanged for ``delta``)."""
    if catalog == "delta":
        return sql
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", catalog):
        raise ValueError(f"not a plain catalog name: {catalog!r}")
    return _CATALOG_REF.sub(f"{catalog}.", sql)


def _missing_source(exc: BaseException) -> bool:
    return isinstance(exc, TrinoUserError) and exc.error_name in MISSING_SOURCE_ERRORS


def _execute(conn: Any, sql: str) -> None:
    cur = conn.cursor()
    try:
        cur.execute(sql)
        cur.fetchall()  # Trino reports a DDL failure while the result is read, not always on execute
    finally:
        close = getattr(cur, "close", None)
        if close is not None:
            close()


def _groups(statements: list[Statement]) -> list[list[Statement]]:
    """Each statement with the fallbacks that follow it."""
    groups: list[list[Statement]] = []
    for statement in statements:
        if statement.fallback and groups:
            groups[-1].append(statement)
        else:
            groups.append([statement])
    return groups


def _apply_file(conn: Any, path: Path, catalog: str) -> list[ViewResult]:
    results: list[ViewResult] = []
    for group in _groups(split_statements(path.read_text(encoding="utf-8"))):
        misses: list[str] = []
        for position, statement in enumerate(group):
            try:
                _execute(conn, for_catalog(statement.sql, catalog))
            except Exception as exc:
                if not _missing_source(exc):
                    raise
                misses.append(getattr(exc, "message", str(exc)))
                continue
            if statement.view is not None:
                status = "applied" if position == 0 else "fallback"
                detail = "; ".join(misses)
                results.append(ViewResult(path.name, for_catalog(statement.view, catalog), status, detail))
            break
        else:
            view = group[0].view
            name = for_catalog(view, catalog) if view else None
            results.append(ViewResult(path.name, name, "skipped", "; ".join(misses)))
            return results
    return results


def apply_views_report(
    settings: Settings, conn: Any | None = None, directory: Path = SQL_DIR
) -> list[ViewResult]:
    """Apply every SQL file; one :class:`ViewResult` per view (applied, by a fallback, or skipped).

    ``conn`` is a DB-API connection (default: :func:`serving.trino_client.connect` as
    ``settings.trino_user``, who then owns the views and must be allowed to read their sources).
    """
    own = conn is None
    if conn is None:
        from serving.trino_client import connect

        conn = connect(settings)
    results: list[ViewResult] = []
    failures: list[str] = []
    try:
        for path in sql_files(directory):
            try:
                file_results = _apply_file(conn, path, settings.trino_catalog)
            except Exception as exc:
                failures.append(f"{path.name}: {getattr(exc, 'message', exc)}")
                continue
            for result in file_results:
                if result.status == "skipped":
                    log.warning("view %s not created (%s): %s", result.view, result.file, result.detail)
                elif result.status == "fallback":
                    log.info(
                        "view %s created by its fallback (%s): %s", result.view, result.file, result.detail
                    )
            results.extend(file_results)
    finally:
        if own:
            conn.close()
    if failures:
        raise ServingSqlError("serving SQL failed: " + " | ".join(failures))
    return results


def apply_views(settings: Settings, conn: Any | None = None) -> list[str]:
    """Apply the serving SQL files in name order; the names of the views now defined.

    A view whose source tables are not registered in Trino yet (and that has no fallback that
    works) is skipped and logged, not an error; see the module docstring for the rules.
    """
    return [
        r.view for r in apply_views_report(settings, conn) if r.status != "skipped" and r.view is not None
    ]
