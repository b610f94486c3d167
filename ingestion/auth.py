"""API keys per publisher (``X-Api-Key``), compared in constant time.

Reads ``settings.api_keys`` (publisher -> key). With no keys configured authentication is off
(the local default). A presented key is compared against every configured key, always all of
them, on SHA-256 digests (equal length, so neither the position of the first differing byte nor
the key's length leaks through timing). A refusal never says whether the header was missing,
malformed or merely wrong.
"""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr

HEADER = "X-Api-Key"
REFUSAL = "missing or invalid API key"
_MAX_KEY_CHARS = 512


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


class ApiKeys:
    """The configured keys; :meth:`publisher` maps a presented key to its publisher or ``None``."""

    def __init__(self, keys: dict[str, SecretStr]) -> None:
        self._digests = [
            (publisher, _digest(secret.get_secret_value().encode()))
            for publisher, secret in sorted(keys.items())
            if secret.get_secret_value()
        ]
        self._dummy = _digest(b"\x00no-key\x00")

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def publisher(self, presented: str | None) -> str | None:
        """The publisher whose key this is, else ``None``. Constant time in the presented value."""
        if not self._digests:
            return None
        valid_shape = presented is not None and 0 < len(presented) <= _MAX_KEY_CHARS
        candidate = _digest(presented.encode("utf-8", "surrogatepass")) if valid_shape else self._dummy
        found: str | None = None
        for publisher, digest in self._digests:
            # No early exit: every key is compared whatever matched before.
            if hmac.compare_digest(candidate, digest) and valid_shape:
                found = publisher
        return found
