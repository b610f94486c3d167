"""Ingestion per-event hints on their own: the duplicate hint (rotating Bloom filters) and hot-key
salting (a decaying count-min sketch)."""

from __future__ import annotations

import hashlib
import uuid
import zlib

import pytest
from ingestion_component_support import Clock

from ingestion.dedup_hint import DuplicateHint, bloom_parameters
from ingestion.hot_keys import CountMinSketch, HotKeys, salted_key

# --- duplicate hint -----------------------------------------------------------------------------


def test_bloom_parameters_follow_the_formula() -> None:
    bits, hashes = bloom_parameters(1_000_000, 1e-6)
    assert 28_700_000 < bits < 28_800_000  # -n ln p / ln^2 2 = 28.76 bits per item
    assert hashes == 20


def test_duplicate_hint_remembers_then_forgets() -> None:
    clock = Clock()
    hint = DuplicateHint(window_seconds=60, expected_rate=10, clock=clock)
    ids = [str(uuid.uuid4()) for _ in range(100)]
    assert not any(hint.seen_or_add(i) for i in ids)
    assert all(hint.seen_or_add(i) for i in ids)
    clock.t += 59
    assert all(hint.seen(i) for i in ids)  # within the window: remembered
    clock.t += 30
    assert all(hint.seen(i) for i in ids)  # under 1.5 windows: may still be remembered
    clock.t += 1
    assert not any(hint.seen(i) for i in ids)  # 1.5 windows: forgotten
    hint.add(ids[0])
    assert hint.seen(ids[0])


def test_duplicate_hint_false_positive_rate_is_small() -> None:
    clock = Clock()
    hint = DuplicateHint(window_seconds=20, expected_rate=1000, fp_rate=1e-3, clock=clock)
    for _ in range(10_000):
        hint.add(str(uuid.uuid4()))
    false_positives = sum(hint.seen(str(uuid.uuid4())) for _ in range(20_000))
    assert false_positives < 20_000 * 5e-3


def test_duplicate_hint_starts_a_new_filter_when_full() -> None:
    clock = Clock()
    hint = DuplicateHint(window_seconds=100, expected_rate=1, clock=clock)  # capacity 1,000
    first = [str(uuid.uuid4()) for _ in range(1000)]
    for i in first:
        hint.add(i)
    second = [str(uuid.uuid4()) for _ in range(1000)]
    for i in second:
        hint.add(i)
    assert len(hint._filters) == 2
    assert all(hint.seen(i) for i in first + second)


def test_positions_follow_the_double_hashing_formula() -> None:
    hint = DuplicateHint(window_seconds=60, expected_rate=10, clock=Clock())
    for event_id in [str(uuid.uuid4()) for _ in range(50)]:
        digest = hashlib.blake2b(event_id.encode(), digest_size=16, key=hint._key).digest()
        h1 = int.from_bytes(digest[:8], "little")
        h2 = int.from_bytes(digest[8:], "little") | 1
        expected = [(h1 + i * h2) % hint.num_bits for i in range(hint.num_hashes)]
        assert hint.positions(event_id) == expected


@pytest.mark.parametrize("n", [3, 200])  # the per-id path and the numpy one
def test_batch_lookup_agrees_with_seen_and_remembers_only_the_given_rows(n: int) -> None:
    hint = DuplicateHint(window_seconds=60, expected_rate=10, clock=Clock())
    old = [str(uuid.uuid4()) for _ in range(n)]
    for event_id in old[::2]:
        hint.add(event_id)
    hints = hint.lookup(old)
    assert hints.seen == [i % 2 == 0 for i in range(n)] == [hint.seen(i) for i in old]
    new = [str(uuid.uuid4()) for _ in range(n)]
    hints = hint.lookup(new)
    assert not any(hints.seen)
    hint.remember(hints, range(0, n, 3))
    assert [hint.seen(i) for i in new] == [i % 3 == 0 for i in range(n)]
    assert hint.lookup(new).seen == [i % 3 == 0 for i in range(n)]


def test_batch_addresses_are_the_positions_bits() -> None:
    hint = DuplicateHint(window_seconds=60, expected_rate=10, clock=Clock())
    ids = [str(uuid.uuid4()) for _ in range(100)]
    offsets, masks = hint.addresses(ids)
    for event_id, row_offsets, row_masks in zip(ids, offsets.tolist(), masks.tolist(), strict=True):
        positions = hint.positions(event_id)
        assert row_offsets == [p >> 3 for p in positions]
        assert row_masks == [1 << (p & 7) for p in positions]


@pytest.mark.parametrize("batch", [10, 500])
def test_remembering_a_batch_starts_a_new_filter_when_full(batch: int) -> None:
    hint = DuplicateHint(window_seconds=100, expected_rate=1, clock=Clock())  # capacity 1,000
    ids = [str(uuid.uuid4()) for _ in range(1500)]
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        hint.remember(hint.lookup(chunk), range(len(chunk)))
    assert [f.count for f in hint._filters] == [1000, 500]
    assert all(hint.seen(i) for i in ids)


# --- hot keys -----------------------------------------------------------------------------------


def test_count_min_sketch_overestimates_only_and_decays() -> None:
    sketch = CountMinSketch(width=64, depth=4)
    for i in range(500):
        sketch.add(f"ad-{i % 50}")
    assert all(sketch.estimate(f"ad-{i}") >= 10 for i in range(50))
    sketch.decay(0.5)
    assert sketch.total == 250
    assert all(sketch.estimate(f"ad-{i}") >= 5 for i in range(50))


def test_hot_ad_is_salted_and_cold_ad_is_not() -> None:
    clock = Clock()
    hot = HotKeys(share=0.1, salts=8, window_seconds=10, clock=clock, min_total=100)
    events = [("ad-hot" if i % 3 == 0 else f"ad-{i}", str(uuid.uuid4())) for i in range(600)]
    keys = hot.keys_for(events)
    hot_keys = {k for (ad, _), k in zip(events, keys, strict=True) if ad == "ad-hot"}
    cold_keys = [(ad, k) for (ad, _), k in zip(events, keys, strict=True) if ad != "ad-hot"]
    assert len(hot_keys) == 8
    assert hot_keys == {f"ad-hot#{s}" for s in range(8)}
    assert all(ad == k for ad, k in cold_keys)


def test_salt_is_stable_per_event() -> None:
    event_id = str(uuid.uuid4())
    assert salted_key("ad", event_id, 8) == salted_key("ad", event_id, 8)
    assert salted_key("ad", event_id, 8) == f"ad#{zlib.crc32(event_id.encode()) % 8}"


def test_hot_ad_cools_down_as_the_sketch_decays() -> None:
    clock = Clock()
    hot = HotKeys(share=0.2, salts=4, window_seconds=10, clock=clock, min_total=100)
    hot.keys_for([("ad-hot", str(uuid.uuid4())) for _ in range(1000)])
    assert hot.is_hot("ad-hot")
    clock.t += 100  # ten half-lives later the old burst weighs ~1 event
    keys = hot.keys_for([(f"ad-{i}", str(uuid.uuid4())) for i in range(2000)])
    assert not hot.is_hot("ad-hot")
    assert keys[0] == "ad-0"


def test_no_ad_is_hot_before_enough_traffic() -> None:
    hot = HotKeys(share=0.05, salts=8, window_seconds=10, clock=Clock(), min_total=1000)
    assert hot.keys_for([("ad-1", str(uuid.uuid4()))]) == ["ad-1"]
