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

A request's ids are looked up together (:meth:`DuplicateHint.lookup`) and the kept ones are
remembered later from the same bit positions (:meth:`DuplicateHint.remember`: hashed once per
id). From ``_VECTOR_MIN`` ids on, positions, probes and inserts run as numpy array operations over
the filters' bytes (the same bits as the per-id path, a few microseconds less per id).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import deque
from collections.abc import Callable, Iterable, Sequence

import numpy as np

_MAX_HASHES = 32
_VECTOR_MIN = 16  # ids a lookup takes before numpy pays for its fixed cost per call


class BloomFilter:
    """A plain Bloom filter over precomputed bit positions (see :meth:`DuplicateHint.positions`)."""

    def __init__(self, num_bits: int) -> None:
        self.num_bits = num_bits
        self.bits = bytearray((num_bits + 7) // 8)
        self.view = np.frombuffer(self.bits, dtype=np.uint8)  # the same memory, for batches
        self.count = 0

    def contains(self, positions: Iterable[int]) -> bool:
        bits = self.bits
        for p in positions:  # noqa: SIM110 (a plain loop: no generator per call; a fresh id misses early)
            if not bits[p >> 3] & (1 << (p & 7)):
                return False
        return True

    def add(self, positions: Iterable[int]) -> None:
        bits = self.bits
        for p in positions:
            bits[p >> 3] |= 1 << (p & 7)
        self.count += 1

    def contains_many(self, offsets: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Per row of (byte offset, bit mask) pairs: are all its bits set?"""
        return np.all(self.view[offsets] & masks, axis=1)

    def add_many(self, offsets: np.ndarray, masks: np.ndarray) -> None:
        np.bitwise_or.at(self.view, offsets.ravel(), masks.ravel())  # repeated bytes OR together
        self.count += len(offsets)


class Hints:
    """A :meth:`DuplicateHint.lookup` answer: ``seen`` per id, and the ids' bit addresses for
    :meth:`DuplicateHint.remember` (positions lists, or numpy offsets and masks for a batch)."""

    def __init__(
        self,
        seen: list[bool],
        positions: list[list[int]] | None = None,
        offsets: np.ndarray | None = None,
        masks: np.ndarray | None = None,
    ) -> None:
        self.seen = seen
        self.positions = positions
        self.offsets = offsets
        self.masks = masks


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
        self._keyed = hashlib.blake2b(digest_size=16, key=self._key)  # copied per id: the key block once
        self._steps = np.arange(self.num_hashes, dtype=np.uint64)
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
        self._rotate_by_time()
        if self._filters[-1].count >= self.capacity:
            self._rotate_full()

    def _rotate_full(self) -> None:
        # More ids than planned: a fresh filter keeps the false-positive rate, memory gets shorter.
        self._push()
        self._started = self.clock()

    def _rotate_by_time(self) -> None:
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

    def positions(self, event_id: str) -> list[int]:
        """The ``num_hashes`` bit positions of ``event_id``: ``(h1 + i * h2) mod bits``."""
        hasher = self._keyed.copy()
        hasher.update(event_id.encode())
        digest = hasher.digest()
        m = self.num_bits
        # Reduced mod m first: the same positions, computed on small ints.
        h1 = int.from_bytes(digest[:8], "little") % m
        h2 = (int.from_bytes(digest[8:], "little") | 1) % m
        return [x % m for x in range(h1, h1 + h2 * self.num_hashes, h2)] if h2 else [h1] * self.num_hashes

    def seen(self, event_id: str) -> bool:
        """Whether ``event_id`` was added within the window (may be a false positive)."""
        self._rotate()
        pos = self.positions(event_id)
        return any(f.contains(pos) for f in reversed(self._filters))

    def add(self, event_id: str) -> None:
        self._rotate()
        self._filters[-1].add(self.positions(event_id))

    def addresses(self, event_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`positions` of many ids at once, as (byte offsets, bit masks), one row per id."""
        digests = []
        keyed = self._keyed
        for event_id in event_ids:
            hasher = keyed.copy()
            hasher.update(event_id.encode())
            digests.append(hasher.digest())
        halves = np.frombuffer(b"".join(digests), dtype="<u8").reshape(-1, 2)
        m = np.uint64(self.num_bits)
        h1 = halves[:, 0] % m
        h2 = (halves[:, 1] | np.uint64(1)) % m
        positions = (h1[:, None] + h2[:, None] * self._steps) % m  # < 33 m: no uint64 overflow
        offsets = (positions >> np.uint64(3)).astype(np.intp)
        masks = np.left_shift(np.uint8(1), (positions & np.uint64(7)).astype(np.uint8))
        return offsets, masks

    def lookup(self, event_ids: Sequence[str]) -> Hints:
        """:meth:`seen` for each id, with what :meth:`remember` needs to add them without rehashing."""
        self._rotate()
        filters = list(reversed(self._filters))
        if len(event_ids) < _VECTOR_MIN:
            positions = [self.positions(event_id) for event_id in event_ids]
            return Hints([any(f.contains(p) for f in filters) for p in positions], positions=positions)
        offsets, masks = self.addresses(event_ids)
        seen = np.zeros(len(event_ids), dtype=bool)
        for f in filters:
            seen |= f.contains_many(offsets, masks)
        return Hints(seen.tolist(), offsets=offsets, masks=masks)

    def remember(self, hints: Hints, rows: Sequence[int]) -> None:
        """:meth:`add` the ids at ``rows`` of a :meth:`lookup` (a full filter starts a new one)."""
        self._rotate_by_time()
        if hints.positions is not None:
            for row in rows:
                if self._filters[-1].count >= self.capacity:
                    self._rotate_full()
                self._filters[-1].add(hints.positions[row])
            return
        assert hints.offsets is not None and hints.masks is not None
        todo = np.asarray(rows, dtype=np.intp)
        while len(todo):
            room = self.capacity - self._filters[-1].count
            if room <= 0:
                self._rotate_full()
                continue
            chunk, todo = todo[:room], todo[room:]
            self._filters[-1].add_many(hints.offsets[chunk], hints.masks[chunk])

    def seen_or_add(self, event_id: str) -> bool:
        """True if seen before (not added again, so it is still forgotten on time); else add it."""
        self._rotate()
        pos = self.positions(event_id)
        if any(f.contains(pos) for f in reversed(self._filters)):
            return True
        self._filters[-1].add(pos)
        return False
