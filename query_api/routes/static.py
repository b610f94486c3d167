"""The dashboard's static files: its own script and style (``/static/``, from ``query_api/web/static``)
and the installed chart library (``/assets/uplot/``, from the artifact cache, see
:mod:`query_api.web_assets`).

Reads files only. An ``/assets/`` request while the library is not installed answers 503 with the
usual error body saying how to install it (never a bare 404); the dashboard page shows the same
note. Installing while the API runs needs no restart: every asset request checks the stamp.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from adclick.settings import Settings
from query_api import web_assets
from query_api.errors import error_response

STATIC_DIR = web_assets.WEB_DIR / "static"


class _InstalledLibrary(StaticFiles):
    """StaticFiles over an installed library folder, answering 503 while it is not installed."""

    def __init__(self, settings: Settings, library: str) -> None:
        super().__init__(directory=web_assets.library_dir(settings, library), check_dir=False)
        self.settings = settings
        self.library = library

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not web_assets.is_installed(self.settings):
            reason = (
                f"the dashboard's chart library ({self.library}) is not installed: {web_assets.INSTALL_HINT}"
            )
            await error_response(503, "assets", reason)(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def mount_static(app: FastAPI, settings: Settings) -> None:
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for library in web_assets.LIBRARIES:
        app.mount(f"/assets/{library}", _InstalledLibrary(settings, library), name=f"assets-{library}")
