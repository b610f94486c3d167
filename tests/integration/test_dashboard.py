"""The live dashboard on the running stack, in headless Chromium (Debian's ``chromium`` driven by
Playwright with the system binary; no downloaded browser).

Opens the stack's query API (``query-api``, port ``settings.query_port``) at ``/``, watches a fresh
ad (``?ad=...``), sends clicks through the ingestion API, and sees the clicks-per-minute panel and
the top-ads panel take them in; the panel's number equals the query API's JSON for the same window.
Then saves a screenshot of the whole dashboard to ``docs/img/dashboard.png`` (shown by the README).
Skipped only when no Chromium binary is installed (``apt-get install -y chromium``).
"""

from __future__ import annotations

import shutil
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from adclick.settings import Settings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("chromium") is None, reason="no Chromium binary (apt-get install -y chromium)"
    ),
]

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "dashboard.png"
CLICKS = 400  # on one new ad in one minute: enough to rank among the top 10 of the last 5 minutes
LANDING_MS = 600_000  # the stream app on a busy 2-core machine
TOP_MS = 240_000  # the minute must complete (up to 60 s) and then be counted


def _send_clicks(settings: Settings, ad_id: str, n: int) -> datetime:
    """``n`` clicks on ``ad_id`` one second ago, through the ingestion API (no user, no IP: no fraud
    rule can fire on them); the minute they fall in (UTC)."""
    from adclick.contract import now_utc

    at = now_utc() - timedelta(seconds=1)
    ts = at.isoformat().replace("+00:00", "Z")
    events = [
        {"event_id": str(uuid.uuid4()), "event_type": "click", "ad_id": ad_id, "ts": ts, "country": "DE"}
        for _ in range(n)
    ]
    url = f"http://{settings.bind_host}:{settings.ingest_port}/v1/events/batch"
    r = httpx.post(url, json=events, timeout=60)
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == n and r.json()["rejected"] == [], r.text
    return at.replace(second=0, microsecond=0)


def _rows(page: Any, selector: str) -> list[list[Any]]:
    return page.eval_on_selector_all(selector, "rows => rows.map(r => [r.dataset.ad, +r.dataset.clicks])")


@pytest.mark.timeout(1200)
def test_dashboard_follows_clicks_sent_through_the_ingestion_api(stack: Settings) -> None:
    from playwright.sync_api import expect, sync_playwright

    base = f"http://{stack.bind_host}:{stack.query_port}"
    health = httpx.get(base + "/v1/health", timeout=30).json()
    assert health["dashboard_assets"]["installed"], "the chart library is not installed: run make install"
    ad = f"ad-dash-{uuid.uuid4().hex[:8]}"
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1440, "height": 1200})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{base}/?ad={ad}&window=5m")
        totals = page.locator(f'#clicks-totals[data-ad="{ad}"]')
        expect(totals).to_have_attribute("data-clicks", "0", timeout=60_000)  # a new ad: nothing yet
        expect(page.locator("#clicks-chart canvas")).to_have_count(1)
        expect(page.locator("#top-label")).not_to_be_empty(timeout=30_000)
        assert ad not in [a for a, _ in _rows(page, "#top tr")]

        minute = _send_clicks(stack, ad, CLICKS)

        # clicks per minute: the minute's bar and the totals take the clicks in
        expect(totals).to_have_attribute("data-clicks", str(CLICKS), timeout=LANDING_MS)
        xs, clicks = page.evaluate("[charts['clicks-chart'].data[0], charts['clicks-chart'].data[1]]")
        assert clicks[xs.index(minute.timestamp())] == CLICKS and sum(clicks) == CLICKS
        # the same number as the query API's JSON for the same window
        window = {"from": totals.get_attribute("data-from"), "to": totals.get_attribute("data-to")}
        series = httpx.get(
            f"{base}/v1/ads/{ad}/clicks", params={**window, "granularity": "minute"}, timeout=60
        )
        assert series.status_code == 200, series.text
        assert sum(p["clicks"] for p in series.json()["series"]) == int(totals.get_attribute("data-clicks"))

        # top ads: once the minute is complete, the ad is listed with its clicks, as the API says
        expect(page.locator(f'#top tr[data-ad="{ad}"]')).to_have_count(1, timeout=TOP_MS)
        shown = dict(_rows(page, "#top tr"))
        top = httpx.get(base + "/v1/ads/top", params={"window": "5m", "n": 10}, timeout=60).json()
        assert shown[ad] == CLICKS == {a["ad_id"]: a["clicks"] for a in top["ads"]}[ad]

        # the whole dashboard, every ad, for the README
        page.goto(base + "/")
        expect(page.locator("#clicks-totals[data-clicks]")).to_be_attached(timeout=60_000)
        expect(page.locator("#top tr").first).to_be_attached(timeout=60_000)
        page.wait_for_timeout(3_000)  # the polled panels (breakdowns, pipeline) have answered
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        browser.close()
    assert errors == []
