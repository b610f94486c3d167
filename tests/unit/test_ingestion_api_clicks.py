"""Ingestion API over ASGI: signed click redirects record a click, then answer 302.

No Kafka: the app gets a fake sink (``ingestion_api_support``) and a fixed clock. The refused
tokens are in the table of ``test_ingestion_api_refusals``.
"""

from __future__ import annotations

import uuid

from ingestion_api_support import NOW_MS, PEER, RAW_USER, Api, FakeSink, good_token

from adclick.privacy import LOCAL_DEV_KEY, pseudonymise

pytest_plugins = ("ingestion_api_fixtures",)


# --- click redirect -----------------------------------------------------------------------------


def test_click_redirect_records_a_click_and_redirects(api: Api, sink: FakeSink) -> None:
    response = api.get(
        f"/v1/c/{good_token()}",
        headers={
            "CloudFront-Viewer-Country": "FR",
            "User-Agent": "Mozilla/5.0 test",
            "Referer": "https://news.example/",
            "Cookie": f"adclick_uid={RAW_USER}",
        },
        follow_redirects=False,
    )
    assert response.status_code == 302
    assert response.headers["location"] == "https://shop.example.com/landing?x=1"
    assert response.headers["cache-control"] == "no-store"
    [click] = sink.values()
    uuid.UUID(click["event_id"])
    assert click["event_type"] == "click"
    assert (click["ad_id"], click["campaign_id"], click["placement_id"]) == ("ad-00042", "cmp-7", "pl-1")
    assert click["ts"] == NOW_MS
    assert click["country"] == "FR"
    assert click["user_key"] == pseudonymise(LOCAL_DEV_KEY, RAW_USER, domain="user")
    assert click["ip_key"] == pseudonymise(LOCAL_DEV_KEY, PEER, domain="ip")
    assert click["referrer"] == "https://news.example/"
    assert RAW_USER.encode() not in sink.records[0][1]


def test_click_without_cookie_has_no_user(api: Api, sink: FakeSink) -> None:
    response = api.get(f"/v1/c/{good_token()}", follow_redirects=False)
    assert response.status_code == 302
    assert "user_key" not in sink.values()[0]


def test_every_click_is_a_new_event(api: Api, sink: FakeSink) -> None:
    token = good_token()
    for _ in range(3):
        assert api.get(f"/v1/c/{token}", follow_redirects=False).status_code == 302
    assert len({v["event_id"] for v in sink.values()}) == 3


def test_no_trailing_slash_redirect_echoing_the_host(api: Api) -> None:
    response = api.get(f"/v1/c/{good_token()}/", headers={"Host": "evil.example"}, follow_redirects=False)
    assert response.status_code == 404
    assert "location" not in response.headers
