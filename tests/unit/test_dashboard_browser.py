"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``, driven by Playwright
with the system binary) on the query API served by uvicorn over the fake Trino
(:mod:`dashboard_scenario`). Checks what a person sees: the charts drawn by the installed uPlot on a
true minute axis (quiet minutes as zero), panel numbers equal to the API's JSON for the same
window, the panels following new clicks and a quiet spell, pipeline health, no script error.

Skipped only when no Chromium binary is installed (``apt-get install -y chromium``). The chart
library is installed first if missing (:func:`query_api.web_assets.install`, as ``make install``).
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_scenario import LIVE, QUIET_MINUTES, busy_half_hour, more_clicks, quiet_window, serving
from query_api_fakes import ts

from adclick.settings import Settings
from query_api import web_assets

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (apt-get install -y chromium)")
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def settings() -> Settings:
    settings = Settings()
    web_assets.install(settings)  # idempotent: a no-op when `make install` already did it
    return settings


def _page(browser: Any, errors: list[str]) -> Any:
    page = browser.new_page(viewport={"width": 1440, "height": 1200})
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return page


def test_dashboard_draws_live_panels_that_equal_the_api(settings: Settings, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    fake = busy_half_hour()
    errors: list[str] = []
    with serving(fake, settings) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = _page(browser, errors)
        page.goto(url + "/")
        totals = page.locator("#clicks-totals[data-clicks]")
        expect(totals).to_be_attached(timeout=TIMEOUT_MS)

        # clicks per minute: every minute of the window on the axis, the quiet ones as zero
        live = fake.answers[-1][2]  # the scenario's first answer: the live minutes
        assert int(totals.get_attribute("data-clicks")) == sum(r[2] for r in live.rows)
        assert int(totals.get_attribute("data-fraud")) == sum(r[3] for r in live.rows)
        xs, clicks = page.evaluate("[charts['clicks-chart'].data[0], charts['clicks-chart'].data[1]]")
        starts = [ts("2026-01-10 11:31:00") + timedelta(minutes=i) for i in range(30)]
        assert xs == [s.timestamp() for s in starts]
        quiet = [starts.index(ts(m)) for m in QUIET_MINUTES]
        assert [clicks[i] for i in quiet] == [0, 0]
        assert page.locator("#clicks-chart canvas").count() == 1  # drawn by uPlot
        share = page.evaluate("charts['fraud-chart'].data[1]")
        assert [share[i] for i in quiet] == [None, None]  # no clicks: a gap, not 0 %

        # top ads and the breakdowns: the same numbers as the API's JSON for the same window
        expect(page.locator("#top tr")).to_have_count(10, timeout=TIMEOUT_MS)
        top = httpx.get(
            url + "/v1/ads/top", params={"window": "5m", "n": 10, "fallback": "latest_minute"}
        ).json()
        shown = page.eval_on_selector_all(
            "#top tr", "rows => rows.map(r => [r.dataset.ad, +r.dataset.clicks])"
        )
        assert shown == [[a["ad_id"], a["clicks"]] for a in top["ads"]]
        expect(page.locator("#top-label")).to_contain_text("11:55–12:00 UTC")
        expect(page.locator("#country tr")).to_have_count(11, timeout=TIMEOUT_MS)
        report = httpx.get(
            url + "/v1/reports",
            params={
                "dimensions": "country",
                "metrics": "clicks,impressions,ctr",
                "from": "2026-01-10",
                "limit": 500,
            },
        ).json()
        first = page.locator("#country tr").first
        best = max(report["rows"], key=lambda r: r["clicks"])
        assert (first.get_attribute("data-key"), int(first.get_attribute("data-clicks"))) == (
            best["country"],
            best["clicks"],
        )
        expect(page.locator("#country-range")).to_have_text("2026-01-10")
        expect(page.locator("#device tr").first).to_have_attribute("data-key", "mobile")

        # batch watermark, reconciliation and pipeline health
        expect(page.locator("#watermark-day")).to_have_text("2026-01-09", timeout=TIMEOUT_MS)
        expect(page.locator("#recon-latest")).to_contain_text("2026-01-09: passed", timeout=TIMEOUT_MS)
        expect(page.locator("#stream tr")).to_have_count(2)
        expect(page.locator("#stream tr").nth(1)).to_contain_text("372")  # speed_minute's Kafka lag
        expect(page.locator("#airflow tr")).to_have_count(5)
        expect(page.locator("#jobs tr").first).to_contain_text("succeeded")
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

        # new clicks: the chart and the totals follow; a quiet window: the latest minute with clicks
        total = more_clicks(fake, 250)
        expect(totals).to_have_attribute("data-clicks", str(total), timeout=TIMEOUT_MS)
        assert page.evaluate("charts['clicks-chart'].data[1][29]") == live.rows[-1][2] + 250
        quiet_window(fake)
        expect(page.locator("#top")).to_have_attribute("data-source", "fallback", timeout=TIMEOUT_MS)
        expect(page.locator("#top-label")).to_contain_text("latest minute with clicks: 2026-01-10 11:52")
        fallback = httpx.get(url + "/v1/ads/top", params={"n": 10, "fallback": "latest_minute"}).json()[
            "fallback"
        ]
        shown = page.eval_on_selector_all("#top tr", "rows => rows.map(r => r.dataset.ad)")
        assert shown == [a["ad_id"] for a in fallback["ads"]] and shown
        browser.close()
    assert errors == []


def test_dashboard_without_the_chart_library_still_shows_the_numbers(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    fake = busy_half_hour()
    errors: list[str] = []
    with serving(fake, Settings(cache_dir=tmp_path)) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = _page(browser, errors)
        page.goto(url + "/")
        expect(page.locator("#assets-note")).to_contain_text("make install")
        expect(page.locator("#clicks-totals[data-clicks]")).to_be_attached(timeout=TIMEOUT_MS)
        expect(page.locator("#top tr")).to_have_count(10, timeout=TIMEOUT_MS)
        assert page.locator("canvas").count() == 0
        browser.close()
    # the two library files answered 503: the browser reports those loads, and nothing else failed
    assert errors and all("503" in e for e in errors), errors


def test_the_page_address_sets_the_controls(settings: Settings) -> None:
    from playwright.sync_api import expect, sync_playwright

    fake = busy_half_hour()
    with serving(fake, settings) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = _page(browser, [])
        page.goto(url + "/?ad=ad-00034&minutes=15&window=1h&span=6&minutes_typo=1")
        expect(page.locator('#clicks-totals[data-ad="ad-00034"]')).to_be_attached(timeout=TIMEOUT_MS)
        expect(page.locator("#country-range")).to_have_text("2026-01-04 – 2026-01-10", timeout=TIMEOUT_MS)
        assert page.evaluate("charts['clicks-chart'].data[0].length") == 15
        browser.close()
    live = [params for sql, params in fake.calls if LIVE in sql]
    assert live and live[-1] == [date(2026, 1, 10), ts("2026-01-10 11:46:00"), "ad-00034"]
    assert any("rank()" in sql and ts("2026-01-10 11:00:00") in params for sql, params in fake.calls)
