"""An in-process TTL cache of query results, emptied when the batch watermark moves.

Reads the batch watermark through a callable (at most once every ``watermark_ttl`` seconds);
keeps results keyed by (SQL text, bound parameters); writes nothing outside the process.

Why the watermark: a result that covers a final day changes only when the batch republishes, which
always advances (or re-advances) the watermark; the TTL bounds how stale the speed-layer part of a
result may be. Live (per-minute) queries pass a shorter ``ttl`` per call.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_UNSET = object()


def _freeze(value: Any) -> Hashable:
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    invalidations: int = 0


class QueryCache(Generic[T]):
    """``get(sql, params, run)`` returns ``(value, hit)``; ``run()`` computes a missing value.

    A value computed while the watermark moved is not stored (it may mix old and new data).
    ``ttl_seconds <= 0`` disables caching (every call runs).
    """

    def __init__(
        self,
        ttl_seconds: float,
        watermark: Callable[[], Hashable],
        *,
        watermark_ttl: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 1024,
    ) -> None:
        self.ttl = ttl_seconds
        self._watermark = watermark
        self._watermark_ttl = watermark_ttl
        self._clock = clock
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[float, T]] = OrderedDict()
        self._token: Any = _UNSET
        self._checked_at = float("-inf")
        self._generation = 0
        self.stats = CacheStats()

    def check_watermark(self) -> None:
        """Empty the cache if the watermark changed (asks at most once per ``watermark_ttl``)."""
        now = self._clock()
        with self._lock:
            if now - self._checked_at < self._watermark_ttl:
                return
        token = self._watermark()  # outside the lock: it is a Trino round trip
        with self._lock:
            self._checked_at = now
            if token != self._token:
                if self._token is not _UNSET:
                    self.stats.invalidations += 1
                self._token = token
                self._entries.clear()
                self._generation += 1

    def get(
        self, sql: str, params: Sequence[Any], run: Callable[[], T], *, ttl: float | None = None
    ) -> tuple[T, bool]:
        ttl = self.ttl if ttl is None else min(ttl, self.ttl)
        if ttl <= 0:
            with self._lock:
                self.stats.misses += 1
            return run(), False
        self.check_watermark()
        key = (sql, _freeze(list(params)))
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > now:
                self._entries.move_to_end(key)
                self.stats.hits += 1
                return entry[1], True
            self.stats.misses += 1
            generation = self._generation
        value = run()
        with self._lock:
            if generation == self._generation:
                self._entries[key] = (now + ttl, value)
                self._entries.move_to_end(key)
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
        return value, False

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._generation += 1
