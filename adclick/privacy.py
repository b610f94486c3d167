"""Keyed pseudonymisation of personal data (``user_id`` -> ``user_key``, ``ip`` -> ``ip_key``).

HMAC-SHA256 under a secret key: the same input always gives the same key (so uniques and fraud
rules work), and without the secret the raw value cannot be recovered by hashing guesses.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

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
    return hmac.digest(key, f"{domain}\x00{value}".encode(), "sha256").hex()[:32]


_BLOCK = 64  # SHA-256 block size: the HMAC key pads are one block each (RFC 2104)


class Pseudonymiser:
    """:func:`pseudonymise` under one key, with the key's HMAC pads hashed once, not per value.

    HMAC-SHA256(k, m) = H((k ^ opad) || H((k ^ ipad) || m)): the hash states after the pad
    blocks (and, inside, after the ``domain\\x00`` prefix) depend on the key and domain only, so a
    value costs a copy of each state and two short updates, not four block compressions and a
    fresh HMAC context. Same output as :func:`pseudonymise`; safe to share between threads (the
    prepared states are only ever copied).
    """

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\x00")
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
        inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._user = inner.copy()
        self._user.update(b"user\x00")
        self._ip = inner.copy()
        self._ip.update(b"ip\x00")

    def _hash(self, inner_state: Any, value: str) -> str:
        inner = inner_state.copy()
        inner.update(value.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()[:32]

    def user(self, user_id: str | None) -> str | None:
        """``pseudonymise(key, user_id, domain="user")``."""
        return None if user_id is None else self._hash(self._user, user_id)

    def ip(self, ip: str | None) -> str | None:
        """``pseudonymise(key, ip, domain="ip")``."""
        return None if ip is None else self._hash(self._ip, ip)
