"""Signed click-redirect tokens on their own, and the CLI and uvicorn wiring of the ingestion API
(the ``ingest-api`` and ``mint-click-url`` commands)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

import pytest
from ingestion_component_support import settings

from ingestion.commands import add_ingest_parser
from ingestion.redirect import (
    LOCAL_DEV_REDIRECT_KEY,
    MissingRedirectKeyError,
    TokenError,
    check_destination,
    mint_click_url,
    mint_token,
    redirect_key,
    verify_token,
)
from ingestion.server import uvicorn_options

# --- redirect tokens ----------------------------------------------------------------------------

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC).timestamp()


def mint(**overrides: Any) -> str:
    args: dict[str, Any] = {
        "ad_id": "ad-1",
        "campaign_id": "cmp-1",
        "placement_id": None,
        "destination": "https://example.com/p?q=1#top",
        "issued_at": NOW,
    }
    args.update(overrides)
    return mint_token(LOCAL_DEV_REDIRECT_KEY, **args)


def test_token_roundtrip() -> None:
    claims = verify_token(LOCAL_DEV_REDIRECT_KEY, mint(), now=NOW + 10, ttl_seconds=60)
    assert (claims.ad_id, claims.campaign_id, claims.placement_id) == ("ad-1", "cmp-1", None)
    assert claims.destination == "https://example.com/p?q=1#top"
    assert claims.issued_at == int(NOW)


def test_any_changed_character_breaks_the_token() -> None:
    token = mint()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i in range(0, len(token), 3):
        if token[i] == ".":
            continue
        replacement = alphabet[(alphabet.index(token[i]) + 1) % len(alphabet)]
        tampered = token[:i] + replacement + token[i + 1 :]
        with pytest.raises(TokenError):
            verify_token(LOCAL_DEV_REDIRECT_KEY, tampered, now=NOW, ttl_seconds=60)


def test_token_ttl_and_key() -> None:
    token = mint()
    with pytest.raises(TokenError, match="expired"):
        verify_token(LOCAL_DEV_REDIRECT_KEY, token, now=NOW + 61, ttl_seconds=60)
    with pytest.raises(TokenError, match="bad signature"):
        verify_token(b"another key", token, now=NOW, ttl_seconds=60)
    for junk in ("", ".", "a.b.c", "x" * 5000, "é.é", "abc.$$$"):
        with pytest.raises(TokenError):
            verify_token(LOCAL_DEV_REDIRECT_KEY, junk, now=NOW, ttl_seconds=60)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html,hi",
        "//evil.example/",
        "/relative",
        "https://",
        "ftp://example.com/",
        "https://exa mple.com/",
        "https://example.com/\r\nSet-Cookie: x=1",
        "https:\\\\evil.example",
        "http://example.com:99999/",
        "https://example.com/" + "a" * 3000,
    ],
)
def test_unsafe_destinations_are_refused(url: str) -> None:
    with pytest.raises(TokenError):
        check_destination(url)
    with pytest.raises(TokenError):
        mint(destination=url)


def test_mint_refuses_bad_ids() -> None:
    with pytest.raises(TokenError, match="ad_id"):
        mint(ad_id="bad id")
    with pytest.raises(TokenError, match="placement_id"):
        mint(placement_id="x" * 200)


def test_redirect_key_and_click_url() -> None:
    assert redirect_key(settings()) == LOCAL_DEV_REDIRECT_KEY
    assert redirect_key(settings(env="prod", redirect_key="k")) == b"k"
    with pytest.raises(MissingRedirectKeyError):
        redirect_key(settings(env="prod"))
    url = mint_click_url(settings(), "http://ads.example/", "ad-1", None, "pl-1", "https://x.example/", NOW)
    assert url.startswith("http://ads.example/v1/c/")
    token = url.rsplit("/", 1)[1]
    assert verify_token(LOCAL_DEV_REDIRECT_KEY, token, now=NOW, ttl_seconds=1).placement_id == "pl-1"


# --- CLI and server wiring ----------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adclick")
    add_ingest_parser(p.add_subparsers(dest="command", required=True))
    return p


def test_ingest_api_flags() -> None:
    args = parser().parse_args(["ingest-api", "--port", "8123", "--workers", "2"])
    assert (args.port, args.workers) == (8123, 2)
    defaults = parser().parse_args(["ingest-api"])
    assert (defaults.port, defaults.workers) == (None, None)  # None: settings.ingest_worker_count
    with pytest.raises(SystemExit):
        parser().parse_args(["ingest-api", "--workers", "0"])


def test_uvicorn_options() -> None:
    options = uvicorn_options(settings(bind_host="127.0.0.1", ingest_port=8000), port=None, workers=1)
    assert options["host"] == "127.0.0.1"
    assert options["port"] == 8000
    assert (options["loop"], options["http"]) == ("uvloop", "httptools")
    assert options["access_log"] is False
    assert options["proxy_headers"] is False
    assert uvicorn_options(settings(), port=9001)["port"] == 9001


def test_mint_click_url_command(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADCLICK_ENV", "test")
    from adclick.settings import get_settings

    get_settings.cache_clear()
    try:
        args = parser().parse_args(
            [
                "mint-click-url",
                "--ad-id",
                "ad-7",
                "--destination",
                "https://shop.example/",
                "--base-url",
                "http://ads.example",
                "--issued-at",
                "2025-03-01T12:00:00Z",
            ]
        )
        assert args.func(args) == 0
        url = capsys.readouterr().out.strip()
        token = url.removeprefix("http://ads.example/v1/c/")
        claims = verify_token(LOCAL_DEV_REDIRECT_KEY, token, now=NOW, ttl_seconds=1)
        assert (claims.ad_id, claims.issued_at) == ("ad-7", int(NOW))
        bad = parser().parse_args(["mint-click-url", "--ad-id", "ad-7", "--destination", "javascript:x"])
        assert bad.func(bad) == 2
        assert "http or https" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()


def test_ingest_worker_count_defaults_to_half_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    import adclick.settings as settings_module

    monkeypatch.setattr(settings_module.os, "cpu_count", lambda: 8)
    assert settings().ingest_worker_count == 4
    assert settings(ingest_workers=3).ingest_worker_count == 3
    monkeypatch.setattr(settings_module.os, "cpu_count", lambda: 1)
    assert settings().ingest_worker_count == 1


def test_each_worker_gets_its_share_of_the_rate_limits() -> None:
    from ingestion.ingestor import worker_limiter

    def clock() -> float:
        return 1000.0

    shared = settings(ingest_workers=4, rate_limit_per_ip=400.0, rate_limit_per_ip_burst=800)
    limiter = worker_limiter(shared, clock)
    assert limiter.try_take(200, ip="1.2.3.4") is None  # 800 / 4 = 200 at once
    assert limiter.try_take(1, ip="1.2.3.4") is not None  # ... and not one more
    alone = worker_limiter(
        settings(ingest_workers=1, rate_limit_per_ip=400.0, rate_limit_per_ip_burst=800), clock
    )
    assert alone.try_take(400, ip="1.2.3.4") is None
    assert alone.try_take(400, ip="1.2.3.4") is None  # the whole 800 in one worker
    assert alone.try_take(1, ip="1.2.3.4") is not None
