"""The dashboard's chart library: the installer (a fake npm script, no registry), the pinned
manifests, and how the query API serves the files or says they are missing."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from query_api_fakes import NOW, FakeExecutor, TestClient, fake_probes

from adclick.settings import Settings
from query_api import web_assets
from query_api.app import create_app

# Stands in for npm: records its arguments, then lays out what `npm ci` of the lock would.
FAKE_NPM = """#!/bin/sh
echo "$@" >> calls.log
[ -n "$NPM_FAIL" ] && { echo "npm error 404 Not Found - GET uplot"; exit 1; }
mkdir -p node_modules/uplot/dist
echo "var uPlot = function () {};" > node_modules/uplot/dist/uPlot.iife.min.js
echo ".uplot { }" > node_modules/uplot/dist/uPlot.min.css
"""


@pytest.fixture
def npm(tmp_path: Path) -> str:
    script = tmp_path / "bin" / "npm"
    script.parent.mkdir()
    script.write_text(FAKE_NPM)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def _settings(tmp_path: Path) -> Settings:
    return Settings(cache_dir=tmp_path / "cache")


def test_install_runs_npm_ci_once_and_is_idempotent(tmp_path: Path, npm: str) -> None:
    settings = _settings(tmp_path)
    assert not web_assets.is_installed(settings)
    target = web_assets.install(settings, npm=npm, log=lambda _: None)
    assert target == tmp_path / "cache" / "web"
    assert (target / "calls.log").read_text().split() == [
        "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error",
    ]  # fmt: skip
    assert (target / "package-lock.json").read_bytes() == (
        web_assets.WEB_DIR / "package-lock.json"
    ).read_bytes()
    assert web_assets.is_installed(settings)
    web_assets.install(settings, npm=npm, log=lambda _: None)
    assert len((target / "calls.log").read_text().splitlines()) == 1  # already there: no npm at all

    (target / web_assets.STAMP).write_text("a lock of other versions")
    assert not web_assets.is_installed(settings)
    web_assets.install(settings, npm=npm, log=lambda _: None)
    assert len((target / "calls.log").read_text().splitlines()) == 2  # a changed lock reinstalls


def test_install_without_npm_or_with_npm_failing_says_what_to_do(
    tmp_path: Path, npm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path)
    monkeypatch.setenv("NPM_FAIL", "1")
    with pytest.raises(web_assets.AssetsError, match=r"(?s)npm ci failed .*exit 1.*404 Not Found"):
        web_assets.install(settings, npm=npm, log=lambda _: None)
    assert not web_assets.is_installed(settings)  # no stamp after a failure
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(web_assets.AssetsError, match=r"npm not found.*apt-get install -y npm"):
        web_assets.install(settings, log=lambda _: None)


def test_the_manifests_pin_uplot_1_6() -> None:
    package = json.loads((web_assets.WEB_DIR / "package.json").read_text())
    lock = json.loads((web_assets.WEB_DIR / "package-lock.json").read_text())
    version = package["dependencies"]["uplot"]
    assert version.startswith("1.6.") and version[0].isdigit()  # an exact version, not a range
    entry = lock["packages"]["node_modules/uplot"]
    assert entry["version"] == version and entry["integrity"].startswith("sha512-")
    assert set(lock["packages"]) == {"", "node_modules/uplot"}  # nothing else comes along


def _client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings, FakeExecutor(), clock=lambda: NOW, probes=fake_probes()))


def test_missing_library_is_a_clear_note_and_a_503(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with _client(settings) as client:
        page = client.get("/").text
        asset = client.get("/assets/uplot/uPlot.iife.min.js")
        health = client.get("/v1/health").json()
    assert 'id="assets-note"' in page and "make install" in page and str(tmp_path / "cache" / "web") in page
    assert asset.status_code == 503
    assert asset.json()["parameter"] == "assets" and "make install" in asset.json()["reason"]
    assert health["dashboard_assets"] == {"installed": False}


def test_installed_library_and_the_page_files_are_served(tmp_path: Path, npm: str) -> None:
    settings = _settings(tmp_path)
    web_assets.install(settings, npm=npm, log=lambda _: None)
    with _client(settings) as client:
        page = client.get("/").text
        js = client.get("/assets/uplot/uPlot.iife.min.js")
        css = client.get("/assets/uplot/uPlot.min.css")
        outside = client.get("/assets/uplot/../../package.json")
        own = client.get("/static/dashboard.css")
        assert client.get("/v1/health").json()["dashboard_assets"] == {"installed": True}
    assert 'id="assets-note"' not in page
    assert js.status_code == 200 and js.text.startswith("var uPlot")
    assert js.headers["content-type"].startswith(("application/javascript", "text/javascript"))
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert outside.status_code == 404  # only the library's dist folder is served
    assert own.status_code == 200 and "--click" in own.text
