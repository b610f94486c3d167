"""Runs the query API's statements on Trino and returns whole results.

Reads the ``serving`` views through :func:`serving.trino_client.connect` as
``settings.trino_analyst_user`` (who may read ``serving`` and ``gold`` only); writes nothing. One
statement, one connection (the client speaks HTTP; a connection holds no server resource).

:class:`Executor` is the interface the app uses; tests pass a fake with the same two methods.
Trino failures become :class:`QueryUnavailable` (Trino unreachable, or a serving view not created
yet: HTTP 503) or :class:`QueryFailed` (Trino refused the statement: HTTP 500).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from adclick.settings import Settings
from query_api.queries import Views, watermark_query

_MISSING = frozenset({"TABLE_NOT_FOUND", "SCHEMA_NOT_FOUND", "CATALOG_NOT_FOUND"})


@dataclass(frozen=True)
class Result:
    """A whole result: column names and rows (tuples, in column order)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class QueryUnavailable(Exception):
    """Trino cannot answer now: unreachable, or the serving view does not exist yet."""


class QueryFailed(Exception):
    """Trino refused or failed the statement."""


class Executor(Protocol):
    def run(self, sql: str, params: Sequence[Any]) -> Result:
        """Run one statement with ``?`` parameters bound; the whole result."""
        ...

    def watermark(self) -> Hashable:
        """A cheap value that changes whenever the batch watermark moves (cache invalidation)."""
        ...


class TrinoExecutor:
    """:class:`Executor` over Trino (``serving.trino_client``)."""

    def __init__(self, settings: Settings, *, user: str | None = None) -> None:
        self.settings = settings
        self.user = user or settings.trino_analyst_user
        self.views = Views(settings.trino_catalog)

    def run(self, sql: str, params: Sequence[Any]) -> Result:
        import trino.exceptions as texc

        from serving.trino_client import connect

        try:
            with connect(self.settings, user=self.user) as conn:
                cur = conn.cursor()
                cur.execute(sql, list(params) or None)
                rows = cur.fetchall()
                columns = tuple(d[0] for d in cur.description or [])
        except texc.TrinoUserError as exc:
            if exc.error_name in _MISSING:
                raise QueryUnavailable(f"serving view not available yet: {exc.message}") from exc
            raise QueryFailed(exc.message) from exc
        except texc.TrinoQueryError as exc:
            raise QueryFailed(exc.message) from exc
        except (texc.HttpError, texc.TrinoConnectionError, OSError) as exc:
            raise QueryUnavailable(f"Trino unreachable: {exc}") from exc
        except Exception as exc:  # requests' connection errors, among others
            if type(exc).__module__.startswith(("requests", "urllib3")):
                raise QueryUnavailable(f"Trino unreachable: {exc}") from exc
            raise
        return Result(columns, tuple(tuple(r) for r in rows))

    def watermark(self) -> Hashable:
        sql, params = watermark_query(self.views)
        result = self.run(sql, params)
        return tuple(result.rows[0]) if result.rows else None
