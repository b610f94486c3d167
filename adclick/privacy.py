"""Keyed pseudonymisation of personal data (``user_id`` -> ``user_key``, ``ip`` -> ``ip_key``).

HMAC-SHA256 under a secret key: the same input always gives the same key (so uniques and fraud
rules work), and without the secret the raw value cannot be recovered by hashing guesses.
"""

from __future__ import annotations

import hashlib
import hmac

from adclick.settings import Settings

LOCAL_DEV_KEY = b"adclick-local-development-key-not-for-production"


class MissingHashKeyError(RuntimeError):
    """Raised outside the local/test environment when no hash key is configured."""


def hash_key(settings: Settings) -> bytes:
    """The HMAC key from settings; a fixed development key only in the local/test environment."""
    if settings.hash_key is not None and settings.hash_key.get_secret_value():
        return settings.hash_key.get_secret_value().encode()
    if settings.env in ("local", "test"):
        return LOCAL_DEV_KEY
    raise MissingHashKeyError(
        f"ADCLICK_HASH_KEY must be set when ADCLICK_ENV={settings.env}: raw user ids and IPs are never stored"
    )


def pseudonymise(key: bytes, value: str | None, *, domain: str) -> str | None:
    """HMAC-SHA256 of ``value`` (hex, 32 chars), separated per ``domain`` ("user", "ip")."""
    if value is None:
        return None
    return hmac.new(key, f"{domain}\x00{value}".encode(), hashlib.sha256).hexdigest()[:32]
