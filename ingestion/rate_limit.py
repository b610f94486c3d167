"""Token buckets per client IP and per API key, counting events (not requests).

In-memory, per worker process; the clock is injected (seconds, float). A bucket holds up to
``burst`` tokens and refills at ``rate`` tokens per second; a request for ``n`` events needs
``n`` tokens in every bucket it touches (its IP's and, with authentication, its key's), else it
is refused with the whole number of seconds after which it would fit (``Retry-After``).
A request larger than a bucket's burst is charged the full burst (it could never fit
otherwise), so ``burst`` should be at least ``max_batch_events``.

Idle buckets are full buckets, so forgetting the least recently used ones (beyond
``max_buckets``) loses nothing: memory stays bounded under a spray of source addresses.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = now

    def cost(self, n: float) -> float:
        return min(float(n), self.burst)

    def wait_seconds(self, n: float) -> float:
        """Seconds until ``n`` tokens are available (0 if they are now)."""
        missing = self.cost(n) - self.tokens
        if missing <= 0:
            return 0.0
        return math.inf if self.rate <= 0 else missing / self.rate


class BucketMap:
    """One bucket per identity (IP or publisher), least recently used ones forgotten."""

    def __init__(self, rate: float, burst: float, *, max_buckets: int = 100_000) -> None:
        self.rate = rate
        self.burst = max(1.0, float(burst))
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def get(self, identity: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(identity)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, self.burst, now)
            self._buckets[identity] = bucket
            if len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(identity)
            bucket.refill(now)
        return bucket

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after(seconds: float) -> int:
    """Whole seconds for ``Retry-After`` (at least 1, capped at an hour)."""
    if math.isinf(seconds) or seconds > 3600:
        return 3600
    return max(1, math.ceil(seconds))


class RateLimiter:
    """Per-IP and per-key limits; :meth:`try_take` charges all touched buckets or none."""

    def __init__(
        self,
        *,
        per_ip: float,
        per_ip_burst: float,
        per_key: float,
        per_key_burst: float,
        clock: Callable[[], float],
    ) -> None:
        self.ips = BucketMap(per_ip, per_ip_burst)
        self.keys = BucketMap(per_key, per_key_burst)
        self.clock = clock

    def _buckets(self, ip: str, key: str | None) -> Sequence[TokenBucket]:
        now = self.clock()
        buckets = [self.ips.get(ip, now)]
        if key is not None:
            buckets.append(self.keys.get(key, now))
        return buckets

    def try_take(self, n: int, *, ip: str, key: str | None = None) -> int | None:
        """Take ``n`` tokens from the IP's (and key's) bucket; ``None`` if taken, else Retry-After."""
        buckets = self._buckets(ip, key)
        wait = max(b.wait_seconds(n) for b in buckets)
        if wait > 0:
            return retry_after(wait)
        for bucket in buckets:
            bucket.tokens -= bucket.cost(n)
        return None

    def precheck(self, *, ip: str, key: str | None = None) -> int | None:
        """Refuse early (before reading a body) when a bucket cannot afford even one event."""
        buckets = self._buckets(ip, key)
        wait = max(b.wait_seconds(1) for b in buckets)
        return retry_after(wait) if wait > 0 else None
