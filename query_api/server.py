"""Run the query API under uvicorn (uvloop event loop, httptools parser, no access log).

Binds ``settings.bind_host:settings.query_port`` (the port can be overridden). With several
workers each process builds its own app, so each keeps its own result cache.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from adclick.settings import Settings, get_settings


def build_app() -> FastAPI:
    """uvicorn factory (``query_api.server:build_app``): the app from the process settings."""
    from query_api.app import create_app

    return create_app(get_settings())


def uvicorn_options(settings: Settings, *, port: int | None = None, workers: int = 1) -> dict[str, Any]:
    return {
        "host": settings.bind_host,
        "port": port if port is not None else settings.query_port,
        "workers": workers,
        "loop": "uvloop",
        "http": "httptools",
        "ws": "websockets",
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
        "lifespan": "on",
        "timeout_keep_alive": 15,
        "timeout_graceful_shutdown": 10,
    }


def run(settings: Settings, *, port: int | None = None, workers: int = 1) -> None:
    """Serve until interrupted (blocking).

    One worker serves an app built from ``settings``; several workers need uvicorn's import-string
    factory, so each builds its app from the process settings (:func:`get_settings`).
    """
    import uvicorn

    options: dict[str, Any] = uvicorn_options(settings, port=port, workers=workers)
    if workers <= 1:
        from query_api.app import create_app

        options.pop("workers")
        uvicorn.run(create_app(settings), **options)
    else:
        uvicorn.run("query_api.server:build_app", factory=True, **options)
