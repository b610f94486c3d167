"""The dashboard's browser libraries (uPlot), installed from npm into the artifact cache.

Reads ``query_api/web/package.json`` and its pinned ``package-lock.json``; writes
``<cache_dir>/web/`` (the two manifests, ``node_modules/`` as ``npm ci --omit=dev`` lays it out,
and a ``.complete`` stamp holding the lock file's hash). Nothing is fetched at run time: the query
API serves the installed files itself (``/assets/uplot/...``, :mod:`query_api.routes.static`),
and the page says so when they are missing.

:func:`install` is idempotent: a stamp that matches the lock means a complete install of exactly
these versions, so a second call runs no npm at all; a changed lock reinstalls. Run it with
``python -m query_api.web_assets`` (the ``make install`` path).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from adclick.errors import AdclickError
from adclick.settings import Settings, get_settings

WEB_DIR = Path(__file__).resolve().parent / "web"
MANIFESTS = ("package.json", "package-lock.json")
STAMP = ".complete"
# URL prefix -> the installed folder it serves (relative to the install directory), and the files
# the dashboard loads from it (an install without them is not complete).
LIBRARIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "uplot": ("node_modules/uplot/dist", ("uPlot.iife.min.js", "uPlot.min.css")),
}
INSTALL_HINT = "run `make install` (or `python -m query_api.web_assets`; needs npm)"


class AssetsError(AdclickError):
    """The dashboard's libraries could not be installed (npm missing or failing)."""


def install_dir(settings: Settings) -> Path:
    return settings.cache_dir / "web"


def library_dir(settings: Settings, library: str) -> Path:
    """The installed folder served under ``/assets/<library>/``."""
    return install_dir(settings) / LIBRARIES[library][0]


def _fingerprint() -> str:
    return hashlib.sha256((WEB_DIR / "package-lock.json").read_bytes()).hexdigest()


def is_installed(settings: Settings) -> bool:
    """The stamp matches the lock and every file the page loads is there."""
    stamp = install_dir(settings) / STAMP
    try:
        if stamp.read_text().strip() != _fingerprint():
            return False
    except OSError:
        return False
    return all(
        (library_dir(settings, name) / f).is_file() for name, (_, files) in LIBRARIES.items() for f in files
    )


def install(
    settings: Settings, *, npm: str | None = None, log: Callable[[str], None] = print, timeout: float = 600
) -> Path:
    """Install the pinned libraries into ``<cache_dir>/web`` unless already there; the directory.

    Raises :class:`AssetsError` when npm is not found or ``npm ci`` fails (its output's tail said).
    """
    target = install_dir(settings)
    if is_installed(settings):
        return target
    npm = npm or shutil.which("npm")
    if npm is None:
        raise AssetsError(
            "npm not found: the dashboard's chart library (uPlot) is installed with npm; "
            "install Node.js and npm (apt-get install -y npm) and run `make install` again"
        )
    target.mkdir(parents=True, exist_ok=True)
    (target / STAMP).unlink(missing_ok=True)
    for name in MANIFESTS:
        shutil.copyfile(WEB_DIR / name, target / name)
    log(f"installing the dashboard's browser libraries with npm ci into {target} ...")
    # --ignore-scripts: the libraries are plain files to serve; no package may run code here.
    cmd = [npm, "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
    try:
        proc = subprocess.run(cmd, cwd=target, capture_output=True, text=True, check=False, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AssetsError(f"npm ci failed in {target}: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise AssetsError(f"npm ci failed in {target} (exit {proc.returncode}):\n{tail}")
    missing = [
        str(library_dir(settings, name) / f)
        for name, (_, files) in LIBRARIES.items()
        for f in files
        if not (library_dir(settings, name) / f).is_file()
    ]
    if missing:
        raise AssetsError(f"npm ci succeeded but these files are missing: {', '.join(missing)}")
    (target / STAMP).write_text(_fingerprint())
    return target


def main() -> int:
    try:
        where = install(get_settings())
    except AssetsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("dashboard libraries installed in", where)
    return 0


if __name__ == "__main__":
    sys.exit(main())
