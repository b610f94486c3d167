"""What every route of the query API shares: settings, executor, result cache, view names, clock,
the dashboard page and the pipeline probes.

One :class:`Context` per app, built by :func:`query_api.app.create_app` and kept in
``app.state.context``; a route gets it through the :data:`Ctx` dependency (HTTP and WebSocket
alike). :meth:`Context.fetch` runs one statement through the result cache in a worker thread
(the executor blocks); the ``X-Cache`` header (:func:`cache_header`) says whether it was a hit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from adclick.settings import Settings
from query_api import queries as q
from query_api.cache import QueryCache
from query_api.executor import Executor, Result
from query_api.pipeline_probes import Probes


@dataclass(frozen=True)
class Context:
    settings: Settings
    executor: Executor
    cache: QueryCache[Result]
    views: q.Views
    now: Callable[[], datetime]  # aware UTC now
    live_interval: float  # seconds between two looks at the latest minutes; their cache lifetime
    dashboard: str  # the page served at /
    probes: Probes  # the stream heartbeat and Airflow, for /v1/pipeline

    async def fetch(self, query: q.Query, *, live: bool = False) -> tuple[Result, bool]:
        """The statement's result and whether it came from the cache. ``live`` results (the latest
        minutes, still filling) are kept only ``live_interval`` seconds."""

        def run() -> Result:
            return self.executor.run(query.sql, query.params)

        return await run_in_threadpool(
            self.cache.get, query.sql, query.params, run, ttl=self.live_interval if live else None
        )


def cache_header(hit: bool) -> dict[str, str]:
    return {"X-Cache": "hit" if hit else "miss"}


def get_context(connection: HTTPConnection) -> Context:
    return connection.app.state.context


Ctx = Annotated[Context, Depends(get_context)]
