"""Erasure requests (adclick/erasure.py, batch_layer/erasure.py's predicates) and the spool's
record eraser: which rows a request erases, what legal holds keep, the key check, the speed
partitions an event counts in, the Kafka bound."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta

import pytest

from adclick.erasure import (
    ErasureError,
    check_user_key,
    kafka_bound,
    key_hash,
    scope_for,
    speed_days,
)
from adclick.retention import Hold
from adclick.spool_format import decode_records, erase_records
from ingestion.spool import Spool

KEY = "0123456789abcdef0123456789abcdef"
OTHER = "fedcba9876543210fedcba9876543210"


def test_the_key_must_be_a_pseudonym_not_a_raw_id() -> None:
    assert check_user_key(" " + KEY.upper() + "\n") == KEY
    for raw in ("alice@example.com", "user-42", KEY[:-1], KEY + "0", ""):
        with pytest.raises(ErasureError, match="32-hex-character pseudonym"):
            check_user_key(raw)


def test_the_log_keeps_a_hash_of_the_key_never_the_key() -> None:
    assert key_hash(KEY) == hashlib.sha256(KEY.encode()).hexdigest()
    assert KEY not in key_hash(KEY) and key_hash(KEY) != key_hash(OTHER)


def test_a_hold_on_the_user_refuses_the_request_and_other_holds_only_keep_their_rows() -> None:
    on_user = Hold("hold-u", "user", "litigation", "legal", user_key=KEY)
    on_other = Hold("hold-o", "user", "litigation", "legal", user_key=OTHER)
    days = Hold("hold-d", "dates", "audit", "legal", date(2026, 5, 1), date(2026, 5, 3))
    adv = Hold("hold-a", "advertiser", "dispute", "legal", advertiser_id="adv-1")
    with pytest.raises(ErasureError, match="hold-u"):
        scope_for(KEY, [on_other, on_user], {})
    scope = scope_for(KEY, [on_other, days, adv], {"adv-1": ["ad-b", "ad-a"], "adv-2": ["ad-c"]})
    assert scope.held_ads == ("ad-a", "ad-b")
    assert scope.held_by == ("hold-d", "hold-a")  # the other user's hold keeps none of these rows
    assert [scope.held_day(date(2026, 5, d)) for d in (1, 3, 4)] == [True, True, False]
    assert scope_for(KEY, [], {}).held_by == ()


def test_the_erased_rows_are_the_keys_rows_outside_every_hold(spark) -> None:
    from batch_layer.erasure import _erasable

    days = Hold("hold-d", "dates", "audit", "legal", date(2026, 5, 1), date(2026, 5, 1))
    adv = Hold("hold-a", "advertiser", "dispute", "legal", advertiser_id="adv-1")
    scope = scope_for(KEY, [days, adv], {"adv-1": ["ad-held"]})
    rows = [
        ("erased", KEY, "ad-x", date(2026, 5, 2)),
        ("no day", KEY, "ad-x", None),  # a null day or ad never shields a row
        ("no ad", KEY, None, date(2026, 5, 2)),
        ("held day", KEY, "ad-x", date(2026, 5, 1)),
        ("held ad", KEY, "ad-held", date(2026, 5, 2)),
        ("other user", OTHER, "ad-x", date(2026, 5, 2)),
        ("no user", None, "ad-x", date(2026, 5, 2)),
    ]
    frame = spark.createDataFrame(rows, "id string, user_key string, ad_id string, event_date date")
    erased = {r.id for r in frame.where(_erasable(scope, "silver.events")).collect()}
    assert erased == {"erased", "no day", "no ad"}
    kept = {r.id for r in frame.where(~_erasable(scope, "silver.events")).collect()}
    assert kept == {"held day", "held ad", "other user", "no user"}  # the predicate is never null

    payloads = spark.createDataFrame(
        [(f'{{"user_key":"{KEY}"}}'.encode(), date(2026, 5, 2)), (b"{}", date(2026, 5, 2)),
         (f'{{"user_key":"{KEY}"}}'.encode(), date(2026, 5, 1))],
        "raw_value binary, reject_date date",
    )  # fmt: skip
    assert payloads.where(_erasable(scope, "bronze.rejects")).count() == 1


def test_erasure_scan_takes_a_partitioned_files_day_from_its_path(spark, tmp_path) -> None:
    from batch_layer.erasure import _found

    held = scope_for(KEY, [Hold("h", "dates", "audit", "legal", date(2026, 5, 1), date(2026, 5, 1))], {})
    for day in ("2026-05-01", "2026-05-02"):
        spark.createDataFrame(
            [(KEY, "ad-1"), (OTHER, "ad-1")], "user_key string, ad_id string"
        ).write.parquet(str(tmp_path / f"event_date={day}"))
    files = [f"file://{p}" for p in tmp_path.rglob("*.parquet")]
    found = _found(spark, files, "bronze.events", held)
    assert len(found) == 1 and "event_date=2026-05-02" in next(iter(found)) and sum(found.values()) == 1


def test_speed_partitions_an_event_counts_in() -> None:
    day = date(2026, 5, 2)
    noon = datetime(2026, 5, 2, 12, 0, tzinfo=UTC)
    assert speed_days([noon]) == {day}
    # 00:03 is in the 5-minute windows starting from 23:59 the day before.
    assert speed_days([datetime(2026, 5, 2, 0, 3, tzinfo=UTC)]) == {day, day - timedelta(days=1)}
    assert speed_days([datetime(2026, 5, 2, 0, 4, tzinfo=UTC)]) == {day}
    assert speed_days([]) == set()


def test_kafka_bound_is_retention_plus_a_segment_roll() -> None:
    now = datetime(2026, 5, 2, tzinfo=UTC)
    assert kafka_bound(now, 3_600_000, 600_000) == now + timedelta(minutes=70)
    assert kafka_bound(now, 3_600_000, None) == now + timedelta(hours=1)
    assert kafka_bound(now, -1, 600_000) is None and kafka_bound(now, None, None) is None


def _records(slot) -> list:
    return [r for p in sorted(slot.glob("seg-*.log")) for r in decode_records(p.read_bytes())[0]]


def test_spool_erasure_drops_matching_records_and_leaves_a_running_apis_slot_alone(tmp_path) -> None:
    mine, other = f'{{"user_key":"{KEY}"}}'.encode(), f'{{"user_key":"{OTHER}"}}'.encode()
    idle = Spool(tmp_path / "0", max_bytes=1 << 20, segment_bytes=64)
    idle.append([(b"a", other), (b"b", mine)])
    idle.append([(b"c", mine)])  # a segment of the user only: removed
    idle.append([(b"d", other)])
    idle.close()
    running = Spool(tmp_path / "1", max_bytes=1 << 20)
    running.append([(b"e", mine), (b"f", other)])
    try:
        done = erase_records(tmp_path, lambda _k, v: KEY.encode() in v)
        assert (done.dropped, done.segments_rewritten) == (2, 2)
        assert (done.slots_in_use, done.in_use_matches) == (("1",), 1)
        assert _records(tmp_path / "0") == [(b"a", other), (b"d", other)]
        assert _records(tmp_path / "1") == [(b"e", mine), (b"f", other)]  # not rewritten under the API
    finally:
        running.close()
    reopened = Spool(tmp_path / "0", max_bytes=1 << 20)  # the rewritten slot still opens and drains
    assert reopened.depth().events == 2
    reopened.close()
    assert erase_records(tmp_path / "missing", lambda _k, _v: True).dropped == 0
