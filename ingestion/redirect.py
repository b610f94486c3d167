"""Signed click-redirect tokens: ``GET /v1/c/{token}`` records a click and 302s to the ad's page.

Reads nothing but the key (``settings.redirect_key``; a fixed development key only when
``env`` is ``local`` or ``test``). A token is ``<payload>.<signature>``, both URL-safe base64
without padding: the payload is the compact JSON array
``[1, ad_id, campaign_id, placement_id, destination, issued_at_epoch_seconds]`` and the
signature is HMAC-SHA256 over a domain prefix and the payload's base64 text. Verification
checks the signature first (constant time), then the payload, the issue time (not more than
five minutes ahead, not older than ``redirect_ttl_seconds``) and the destination (``http`` or
``https`` with a host, no whitespace or backslashes), so a tampered, expired or malformed token
never yields a redirect (no open redirect through this endpoint).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from pydantic import TypeAdapter, ValidationError

from adclick.contract import Id
from adclick.settings import Settings

TOKEN_VERSION = 1
LOCAL_DEV_REDIRECT_KEY = b"adclick-local-development-redirect-key-not-for-production"
MAX_TOKEN_CHARS = 4096
MAX_DESTINATION_CHARS = 2048
FUTURE_SKEW_SECONDS = 300
_DOMAIN = b"adclick.click.v1\x00"
_ID = TypeAdapter(Id)
_B64_CHARS = frozenset(string.ascii_letters + string.digits + "-_")


class MissingRedirectKeyError(RuntimeError):
    """Outside local/test, click redirects need ``ADCLICK_REDIRECT_KEY``."""


class TokenError(ValueError):
    """A token that must not redirect; ``reason`` is safe to show to the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ClickToken:
    ad_id: str
    campaign_id: str | None
    placement_id: str | None
    destination: str
    issued_at: int  # epoch seconds


def redirect_key(settings: Settings) -> bytes:
    """The HMAC key of click tokens; the development key only in the local/test environment."""
    if settings.redirect_key is not None and settings.redirect_key.get_secret_value():
        return settings.redirect_key.get_secret_value().encode()
    if settings.env in ("local", "test"):
        return LOCAL_DEV_REDIRECT_KEY
    raise MissingRedirectKeyError(f"ADCLICK_REDIRECT_KEY must be set when ADCLICK_ENV={settings.env}")


def check_destination(url: Any) -> str:
    """The destination if it is a safe absolute http(s) URL, else :class:`TokenError`."""
    if not isinstance(url, str) or not url or len(url) > MAX_DESTINATION_CHARS:
        raise TokenError(f"destination must be an http(s) URL of at most {MAX_DESTINATION_CHARS} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url) or "\\" in url:
        raise TokenError("destination must not contain whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises on a malformed port
    except ValueError:
        raise TokenError("destination is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise TokenError("destination must be an http or https URL")
    if not host:
        raise TokenError("destination must have a host")
    return url


def _check_id(name: str, value: Any, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    try:
        return _ID.validate_python(value)
    except ValidationError:
        raise TokenError(f"{name} must be 1-128 characters of A-Z a-z 0-9 . _ : -") from None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or not _B64_CHARS.issuperset(text):
        raise TokenError("malformed token")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("malformed token") from None


def _sign(key: bytes, payload_b64: str) -> bytes:
    return hmac.new(key, _DOMAIN + payload_b64.encode("ascii"), hashlib.sha256).digest()


def _epoch_seconds(issued_at: datetime | float) -> int:
    if isinstance(issued_at, datetime):
        if issued_at.tzinfo is None:
            raise ValueError("issued_at must be timezone-aware")
        return int(issued_at.timestamp())
    return int(issued_at)


def mint_token(
    key: bytes,
    *,
    ad_id: str,
    campaign_id: str | None,
    placement_id: str | None,
    destination: str,
    issued_at: datetime | float,
) -> str:
    """A signed token for one ad placement; raises :class:`TokenError` on a bad id or destination."""
    payload = [
        TOKEN_VERSION,
        _check_id("ad_id", ad_id, required=True),
        _check_id("campaign_id", campaign_id, required=False),
        _check_id("placement_id", placement_id, required=False),
        check_destination(destination),
        _epoch_seconds(issued_at),
    ]
    payload_b64 = _b64(orjson.dumps(payload))
    return f"{payload_b64}.{_b64(_sign(key, payload_b64))}"


def verify_token(key: bytes, token: str, *, now: float, ttl_seconds: float) -> ClickToken:
    """The token's content if authentic, fresh and safe; else :class:`TokenError` with the reason."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise TokenError("malformed token")
    payload_b64, signature_b64 = token.split(".")
    signature = _unb64(signature_b64)
    _unb64(payload_b64)  # shape check before spending an HMAC
    if not hmac.compare_digest(signature, _sign(key, payload_b64)):
        raise TokenError("bad signature")
    try:
        payload = orjson.loads(_unb64(payload_b64))
    except orjson.JSONDecodeError:
        raise TokenError("malformed payload") from None
    if not isinstance(payload, list) or len(payload) != 6 or payload[0] != TOKEN_VERSION:
        raise TokenError("malformed payload")
    _, ad_id, campaign_id, placement_id, destination, issued_at = payload
    if isinstance(issued_at, bool) or not isinstance(issued_at, int):
        raise TokenError("malformed payload")
    if issued_at > now + FUTURE_SKEW_SECONDS:
        raise TokenError("token issued in the future")
    if now - issued_at > ttl_seconds:
        raise TokenError("token expired")
    return ClickToken(
        ad_id=_check_id("ad_id", ad_id, required=True) or "",
        campaign_id=_check_id("campaign_id", campaign_id, required=False),
        placement_id=_check_id("placement_id", placement_id, required=False),
        destination=check_destination(destination),
        issued_at=issued_at,
    )


def mint_click_url(  # noqa: PLR0917 - positional, as the CLI and docs call it
    settings: Settings,
    base_url: str,
    ad_id: str,
    campaign_id: str | None,
    placement_id: str | None,
    destination: str,
    issued_at: datetime | float,
) -> str:
    """``{base_url}/v1/c/{token}``: the URL an ad's link points at."""
    token = mint_token(
        redirect_key(settings),
        ad_id=ad_id,
        campaign_id=campaign_id,
        placement_id=placement_id,
        destination=destination,
        issued_at=issued_at,
    )
    return f"{base_url.rstrip('/')}/v1/c/{token}"
