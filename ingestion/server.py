"""Run the ingestion API under uvicorn (uvloop event loop, httptools parser, no access log).

Binds ``settings.bind_host:settings.ingest_port`` (the port can be overridden). uvicorn's own
``X-Forwarded-For`` handling is off: the app decides which proxies to believe
(``settings.trusted_proxies``). With several workers each process builds its own app (own
producer, own spool slot directory; see :mod:`ingestion.spool`).
"""

from __future__ import annotations

import gc
from typing import Any

from fastapi import FastAPI

from adclick.settings import Settings, get_settings


def build_app() -> FastAPI:
    """uvicorn factory (``ingestion.server:build_app``): the app from the process settings."""
    from ingestion.app import create_app

    app = create_app(get_settings())
    tune_gc()
    return app


GC_YOUNG_THRESHOLD = 50_000
"""Allocations between young-generation collections (CPython's default is 700)."""


def tune_gc() -> None:
    """Fewer, cheaper garbage collections for a process that allocates a dict per event.

    A 1,000-event batch allocates tens of thousands of short-lived objects; at CPython's default
    threshold that triggers dozens of collections per request, and the older generations get
    scanned with every import-time object in them (7 % of the API's event-loop time under load,
    measured with py-spy). The objects alive once the app is built are frozen (never scanned
    again), and young collections run every ``GC_YOUNG_THRESHOLD`` allocations.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def uvicorn_options(settings: Settings, *, port: int | None = None, workers: int = 1) -> dict[str, Any]:
    return {
        "host": settings.bind_host,
        "port": port if port is not None else settings.ingest_port,
        "workers": workers,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
        "lifespan": "on",
        "timeout_keep_alive": 15,
        "timeout_graceful_shutdown": 30,
    }


def run(settings: Settings, *, port: int | None = None, workers: int = 1) -> None:
    """Serve until interrupted (blocking).

    One worker serves an app built from ``settings``; several workers need uvicorn's import-string
    factory, so each builds its app from the process settings (:func:`get_settings`).
    """
    import uvicorn

    from adclick.privacy import hash_key

    hash_key(settings)  # fail before binding when ADCLICK_HASH_KEY is missing outside local/test
    options: dict[str, Any] = uvicorn_options(settings, port=port, workers=workers)
    if workers <= 1:
        from ingestion.app import create_app

        options.pop("workers")
        app = create_app(settings)
        tune_gc()
        uvicorn.run(app, **options)
    else:
        uvicorn.run("ingestion.server:build_app", factory=True, **options)
