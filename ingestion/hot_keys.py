"""Hot-ad detection (count-min sketch heavy hitters) and Kafka key salting.

In memory, per worker process; reads the ``ad_id`` of every produced event. The Kafka key is
``ad_id`` so one ad's events share a partition; an ad that takes more than ``hot_key_share`` of
recent traffic would overload that partition (and the task reading it), so its key is salted:
``f"{ad_id}#{salt}"`` with ``salt = crc32(event_id) % hot_key_salts``. The salt depends on the
event id only, so a retried event keeps its key (same partition), while the ad's traffic spreads
over up to ``hot_key_salts`` partitions. Consumers must read ``ad_id`` from the record value,
never from the key. A cold ad keeps ``key == ad_id``.

"Recent" is an exponential decay: every ``window_seconds`` all counters (and the total) are
halved, so the sketch's counts are an exponentially weighted traffic volume with that half-life.
A count-min sketch only over-estimates, so a cold ad can at worst be salted by mistake (harmless:
only partition affinity is lost), never a hot one missed. Width 2048 x depth 4 bounds the
over-estimate to ~e/2048 of the total with probability 1 - e^-4; the hot threshold (5 %) is far
above it. No ad is hot before ``min_total`` events have been seen (the first event of a
quiet period would otherwise hold 100 % of the traffic).
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence


class CountMinSketch:
    """Count-min sketch with exponential decay (``decay`` halves every counter)."""

    def __init__(self, width: int = 2048, depth: int = 4) -> None:
        self.width = width
        self.depth = depth
        self.rows = [[0.0] * width for _ in range(depth)]
        self.total = 0.0

    def _cells(self, item: str) -> list[int]:
        h1 = hash(item)
        h2 = hash((item, 0x9E3779B9)) | 1
        return [(h1 + i * h2) % self.width for i in range(self.depth)]

    def add(self, item: str, count: float = 1.0) -> float:
        """Add and return the new estimate of ``item``."""
        estimate = float("inf")
        for row, cell in zip(self.rows, self._cells(item), strict=True):
            row[cell] += count
            estimate = min(estimate, row[cell])
        self.total += count
        return estimate

    def estimate(self, item: str) -> float:
        return min(row[cell] for row, cell in zip(self.rows, self._cells(item), strict=True))

    def decay(self, factor: float = 0.5) -> None:
        for row in self.rows:
            row[:] = [v * factor for v in row]
        self.total *= factor


def salted_key(ad_id: str, event_id: str, salts: int) -> str:
    """The Kafka key of a hot ad's event: stable per event id, spread over ``salts`` values."""
    return f"{ad_id}#{zlib.crc32(event_id.encode()) % salts}"


class HotKeys:
    """Decides the Kafka key of each event: ``ad_id``, or a salted one for a hot ad."""

    def __init__(
        self,
        *,
        share: float,
        salts: int,
        window_seconds: float,
        clock: Callable[[], float],
        min_total: float = 1_000.0,
        width: int = 2048,
        depth: int = 4,
    ) -> None:
        self.share = share
        self.salts = max(1, salts)
        self.window_seconds = window_seconds
        self.clock = clock
        self.min_total = min_total
        self.sketch = CountMinSketch(width, depth)
        self._window_start = clock()

    def _maybe_decay(self) -> None:
        now = self.clock()
        if self.window_seconds <= 0:
            return
        windows = int((now - self._window_start) // self.window_seconds)
        if windows <= 0:
            return
        self.sketch.decay(0.5 ** min(windows, 64))
        self._window_start += windows * self.window_seconds

    def is_hot(self, ad_id: str) -> bool:
        total = self.sketch.total
        return self.salts > 1 and total >= self.min_total and self.sketch.estimate(ad_id) > self.share * total

    def keys_for(self, events: Sequence[tuple[str, str]]) -> list[str]:
        """Observe ``(ad_id, event_id)`` pairs and return each one's Kafka key, in order."""
        self._maybe_decay()
        counts = Counter(ad_id for ad_id, _ in events)
        for ad_id, n in counts.items():
            self.sketch.add(ad_id, n)
        hot = {ad_id for ad_id in counts if self.is_hot(ad_id)}
        if not hot:
            return [ad_id for ad_id, _ in events]
        return [
            salted_key(ad_id, event_id, self.salts) if ad_id in hot else ad_id for ad_id, event_id in events
        ]

    def hot_ads(self, candidates: Iterable[str]) -> list[str]:
        return [ad for ad in candidates if self.is_hot(ad)]
