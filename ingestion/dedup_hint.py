"""Duplicate hint: "have I seen this ``event_id`` in the last few minutes?" (rotating Bloom filters).

In memory, per worker process; reads event ids, writes nothing. A *hint*, not the dedup: the
exact, authoritative dedup on ``event_id`` happens downstream (silver batch, and within the
watermark in the speed layer). The hint only saves Kafka and the lake the obvious retries (a
client re-sending a batch after a timeout). An event answered ``"duplicate"`` is not produced.

Shape: ``generations`` (default 3) Bloom filters, each covering ``window / (generations - 1)``
seconds. Lookups check all of them, inserts go to the newest; when the newest is older than its
span (or holds its planned capacity: rate overload) a fresh one starts and the oldest is dropped.
So an id is remembered for at least ``window_seconds`` and forgotten within 1.5x that.

Sizing: each filter is planned for ``expected_rate * span`` ids at false-positive rate ``p``:
``m = -n ln p / (ln 2)^2`` bits and ``k = (m / n) ln 2`` hash functions (double hashing of one
keyed BLAKE2b digest). A false positive means a genuine event is answered "duplicate" and NOT
produced, so ``p`` is kept tiny (default 1e-6 per filter, about 3e-6 over the three filters checked).
Defaults (5,000 events/s, 600 s, 1e-6): three filters of ~5.4 MB with k = 20. Filling a filter
to capacity starts a new one early, so the false-positive rate holds under overload at the
cost of a shorter memory. The digest is keyed with a per-process random key, so clients cannot
craft ids that collide on purpose.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import deque
from collections.abc import Callable, Iterable

_MAX_HASHES = 32


class BloomFilter:
    """A plain Bloom filter over precomputed bit positions (see :meth:`DuplicateHint.positions`)."""

    def __init__(self, num_bits: int) -> None:
        self.num_bits = num_bits
        self.bits = bytearray((num_bits + 7) // 8)
        self.count = 0

    def contains(self, positions: Iterable[int]) -> bool:
        bits = self.bits
        return all(bits[p >> 3] & (1 << (p & 7)) for p in positions)

    def add(self, positions: Iterable[int]) -> None:
        bits = self.bits
        for p in positions:
            bits[p >> 3] |= 1 << (p & 7)
        self.count += 1


def bloom_parameters(capacity: int, fp_rate: float) -> tuple[int, int]:
    """(bits, hash functions) of a Bloom filter for ``capacity`` items at ``fp_rate``."""
    capacity = max(1, capacity)
    fp_rate = min(max(fp_rate, 1e-12), 0.5)
    bits = max(64, math.ceil(-capacity * math.log(fp_rate) / math.log(2) ** 2))
    hashes = min(_MAX_HASHES, max(1, round(bits / capacity * math.log(2))))
    return bits, hashes


class DuplicateHint:
    """Rotating Bloom filters over event ids; clock in seconds (injected for tests)."""

    def __init__(
        self,
        *,
        window_seconds: float,
        expected_rate: float,
        fp_rate: float = 1e-6,
        generations: int = 3,
        clock: Callable[[], float],
    ) -> None:
        if generations < 2:
            raise ValueError("generations must be >= 2")
        self.window_seconds = float(window_seconds)
        self.generations = generations
        self.span = self.window_seconds / (generations - 1)
        self.capacity = max(1_000, math.ceil(expected_rate * self.span))
        self.num_bits, self.num_hashes = bloom_parameters(self.capacity, fp_rate)
        self.clock = clock
        self._key = os.urandom(16)
        self._filters: deque[BloomFilter] = deque([BloomFilter(self.num_bits)])
        self._started = clock()

    @property
    def memory_bytes(self) -> int:
        return sum(len(f.bits) for f in self._filters)

    def _push(self) -> None:
        self._filters.append(BloomFilter(self.num_bits))
        while len(self._filters) > self.generations:
            self._filters.popleft()

    def _rotate(self) -> None:
        now = self.clock()
        elapsed = now - self._started
        if elapsed >= self.span * self.generations:
            # Idle for longer than the whole memory: everything is forgotten.
            self._filters.clear()
            self._push()
            self._started = now
        elif elapsed >= self.span:
            steps = int(elapsed // self.span)
            for _ in range(steps):
                self._push()
            self._started += steps * self.span
        elif self._filters[-1].count >= self.capacity:
            # More ids than planned: a fresh filter keeps the false-positive rate, memory gets shorter.
            self._push()
            self._started = now

    def positions(self, event_id: str) -> list[int]:
        digest = hashlib.blake2b(event_id.encode(), digest_size=16, key=self._key).digest()
        h1 = int.from_bytes(digest[:8], "little")
        h2 = int.from_bytes(digest[8:], "little") | 1
        m = self.num_bits
        return [(h1 + i * h2) % m for i in range(self.num_hashes)]

    def seen(self, event_id: str) -> bool:
        """Whether ``event_id`` was added within the window (may be a false positive)."""
        self._rotate()
        pos = self.positions(event_id)
        return any(f.contains(pos) for f in reversed(self._filters))

    def add(self, event_id: str) -> None:
        self._rotate()
        self._filters[-1].add(self.positions(event_id))

    def seen_or_add(self, event_id: str) -> bool:
        """True if seen before (not added again, so it is still forgotten on time); else add it."""
        self._rotate()
        pos = self.positions(event_id)
        if any(f.contains(pos) for f in reversed(self._filters)):
            return True
        self._filters[-1].add(pos)
        return False
