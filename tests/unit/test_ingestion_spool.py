"""The durable spool and its drainer: torn tails, ordering, size cap, replay after restart."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ingestion.producer import Record, SendResult, SinkState
from ingestion.spool import (
    InFlight,
    Spool,
    SpoolDrainer,
    SpoolFull,
    SpoolLocked,
    decode_records,
    encode_record,
)


class FlakySink:
    """Acknowledges records unless ``fail``; ``fail_after`` acks that many records, then fails."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.fail = False
        self.fail_after: int | None = None
        self.calls = 0

    def send_many(self, records: Any, timeout: float) -> list[SendResult]:
        self.calls += 1
        results: list[SendResult] = []
        for record in records:
            if self.fail or (self.fail_after is not None and self.fail_after <= 0):
                results.append(TimeoutError("no ack"))
                continue
            if self.fail_after is not None:
                self.fail_after -= 1
            self.records.append(record)
            results.append(None)
        return results

    def reachable(self) -> bool:
        return not self.fail

    def close(self) -> None:
        pass


def recs(start: int, n: int) -> list[Record]:
    return [(f"ad-{i % 3}".encode(), f'{{"n":{i}}}'.encode()) for i in range(start, start + n)]


def open_spool(path: Path, **kwargs: Any) -> Spool:
    kwargs.setdefault("max_bytes", 10 * 1024 * 1024)
    kwargs.setdefault("fsync", False)
    return Spool(path, **kwargs)


def test_record_encoding_roundtrip_and_torn_tail() -> None:
    data = b"".join(encode_record(k, v) for k, v in recs(0, 3))
    assert decode_records(data) == (recs(0, 3), len(data))
    for cut in range(1, len(encode_record(*recs(2, 1)[0]))):
        records, _ = decode_records(data[:-cut])
        assert records == recs(0, 2)
    flipped = bytearray(data)
    flipped[-1] ^= 0xFF  # corrupt the last record's value: its CRC fails
    assert decode_records(bytes(flipped))[0] == recs(0, 2)
    assert decode_records(b"\xff" * 8 + data)[0] == []  # absurd length field


def test_append_depth_and_read_in_order(tmp_path: Path) -> None:
    spool = open_spool(tmp_path, fsync=True)
    spool.append(recs(0, 3))
    spool.append(recs(3, 2))
    depth = spool.depth()
    assert (depth.events, depth.segments) == (5, 1)
    assert depth.bytes == sum(len(encode_record(k, v)) for k, v in recs(0, 5))
    segment = spool.oldest()
    assert segment is not None
    assert spool.read(segment) == recs(0, 5)
    spool.append(recs(5, 1))  # the drained segment was sealed: a new one takes this
    assert spool.depth().segments == 2
    spool.close()


def test_segments_roll_over_at_the_segment_size(tmp_path: Path) -> None:
    spool = open_spool(tmp_path, segment_bytes=50)  # records are 21 bytes: two per segment
    for i in range(6):
        spool.append(recs(i, 1))
    assert spool.depth().segments == 3
    assert sorted(p.name for p in tmp_path.glob("seg-*.log"))[0] == "seg-000000000001.log"
    spool.close()


def test_spool_full_refuses_and_keeps_what_it_has(tmp_path: Path) -> None:
    one = len(encode_record(*recs(0, 1)[0]))
    spool = open_spool(tmp_path, max_bytes=one * 3)
    spool.append(recs(0, 2))
    with pytest.raises(SpoolFull):
        spool.append(recs(2, 2))
    spool.append(recs(2, 1))
    assert spool.depth().events == 3
    spool.close()


def test_torn_last_record_is_truncated_on_reopen_and_earlier_records_survive(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    spool.append(recs(0, 4))
    spool.close()
    [path] = tmp_path.glob("seg-*.log")
    size = path.stat().st_size
    with path.open("ab") as f:  # a crash in the middle of the next append
        f.write(encode_record(b"ad-9", b'{"n":99}')[:11])
    reopened = open_spool(tmp_path)
    assert reopened.truncated_bytes == 11
    assert path.stat().st_size == size
    assert reopened.depth().events == 4
    segment = reopened.oldest()
    assert segment is not None
    assert reopened.read(segment) == recs(0, 4)
    reopened.append(recs(4, 1))  # appends after recovery are readable too
    reopened.close()
    again = open_spool(tmp_path)
    assert again.depth().events == 5
    again.close()


def test_corrupt_record_in_the_middle_truncates_there(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    spool.append(recs(0, 3))
    spool.close()
    [path] = tmp_path.glob("seg-*.log")
    data = bytearray(path.read_bytes())
    second = len(encode_record(*recs(0, 1)[0]))
    data[second + 9] ^= 0x01
    path.write_bytes(bytes(data))
    reopened = open_spool(tmp_path)
    assert reopened.depth().events == 1
    reopened.close()


def test_a_spool_directory_has_one_owner(tmp_path: Path) -> None:
    first = open_spool(tmp_path / "0")
    with pytest.raises(SpoolLocked):
        open_spool(tmp_path / "0")
    second = Spool.open_slot(tmp_path, max_bytes=1000, fsync=False)
    assert second.directory == tmp_path / "1"
    first.close()
    third = Spool.open_slot(tmp_path, max_bytes=1000, fsync=False)
    assert third.directory == tmp_path / "0"
    second.close()
    third.close()


def test_drainer_sends_in_order_and_deletes_acknowledged_segments(tmp_path: Path) -> None:
    spool = open_spool(tmp_path, segment_bytes=200)
    for i in range(0, 12, 3):
        spool.append(recs(i, 3))
    sink = FlakySink()
    state = SinkState()
    drainer = SpoolDrainer(spool, sink, state, timeout=1.0, chunk=2)
    while spool.depth().events:
        assert drainer.drain_once() > 0
    assert sink.records == recs(0, 12)
    assert not list(tmp_path.glob("seg-*.log"))
    assert drainer.drain_once() == 0
    spool.close()


def test_drainer_keeps_a_segment_until_every_record_is_acknowledged(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    spool.append(recs(0, 10))
    sink = FlakySink()
    sink.fail_after = 5
    state = SinkState()
    drainer = SpoolDrainer(spool, sink, state, timeout=1.0, chunk=4)
    assert drainer.drain_once() == 5  # chunk 1 acked; of chunk 2 only its first record
    assert not state.up
    assert spool.depth().events == 10  # the segment is still there
    assert len(list(tmp_path.glob("seg-*.log"))) == 1
    sink.fail_after = None
    assert drainer.drain_once() == 5  # only the records not acknowledged yet: 5-7 again, then 8-9
    assert state.up
    assert [v for _, v in sink.records] == [v for _, v in recs(0, 10)]  # none sent twice
    assert spool.depth().events == 0
    spool.close()


def test_drainer_probes_the_sink_when_nothing_is_spooled(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    sink = FlakySink()
    state = SinkState()
    state.mark_down("test")
    drainer = SpoolDrainer(spool, sink, state, timeout=1.0)
    sink.fail = True
    drainer.drain_once()
    assert not state.up
    sink.fail = False
    drainer.drain_once()
    assert state.up
    spool.close()


def test_restart_replays_the_spool(tmp_path: Path) -> None:
    spool = open_spool(tmp_path, segment_bytes=150)
    for i in range(0, 9, 3):
        spool.append(recs(i, 3))
    spool.close()  # "crash": nothing was drained
    restarted = open_spool(tmp_path)
    assert restarted.depth().events == 9
    sink = FlakySink()
    drainer = SpoolDrainer(restarted, sink, SinkState(), timeout=1.0, idle_seconds=0.01)
    drainer.start()
    try:
        deadline = time.monotonic() + 5
        while restarted.depth().events and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        drainer.stop()
    assert sink.records == recs(0, 9)
    restarted.close()


def test_drainer_thread_backs_off_while_kafka_is_down_then_catches_up(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    sink = FlakySink()
    sink.fail = True
    state = SinkState()
    drainer = SpoolDrainer(spool, sink, state, timeout=0.1, idle_seconds=0.01, max_backoff=0.05)
    drainer.start()
    try:
        spool.append(recs(0, 3))
        time.sleep(0.2)
        assert sink.records == []
        assert spool.depth().events == 3
        sink.fail = False
        spool.append(recs(3, 2))
        deadline = time.monotonic() + 5
        while spool.depth().events and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        drainer.stop()
    assert sink.records == recs(0, 5)
    assert state.up
    spool.close()


def test_concurrent_appends_are_not_interleaved(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)

    def writer(base: int) -> None:
        for i in range(20):
            spool.append(recs(base + i * 5, 5))

    threads = [threading.Thread(target=writer, args=(n * 1000,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    segment = spool.oldest()
    assert segment is not None
    records = spool.read(segment)
    assert len(records) == 400
    assert sorted(records) == sorted(
        r for n in range(4) for i in range(20) for r in recs(n * 1000 + i * 5, 5)
    )
    spool.close()


def test_fsync_always_calls_fsync_per_append(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    spool = open_spool(tmp_path, fsync=True)
    spool.append(recs(0, 100))  # new segment: file + directory
    first = len(calls)
    spool.append(recs(100, 100))  # one fsync for the whole append
    assert first >= 2
    assert len(calls) == first + 1
    spool.close()
    calls.clear()
    lazy = open_spool(tmp_path / "lazy", fsync=False)
    lazy.append(recs(0, 10))
    assert calls == []
    lazy.close()


def test_append_says_where_the_records_went(tmp_path: Path) -> None:
    spool = open_spool(tmp_path, segment_bytes=200)
    first = spool.append(recs(0, 3))
    seen: list[tuple[int, int]] = []
    second = spool.append(recs(3, 2), placed=lambda seq, index: seen.append((seq, index)))
    assert first[1] == 0 and second == (first[0], 3)  # same segment, after the first three
    assert seen == [second]  # told before append returned (and before the drainer could read them)
    spool.close()


def test_a_spooled_record_delivered_late_is_not_sent_again(tmp_path: Path) -> None:
    """The API stopped waiting for records 1-3 and spooled them; the producer delivered 1 and 3
    afterwards (one verdict before the records had their places, one after) and failed 2."""
    clock = [100.0]
    in_flight = InFlight(clock=lambda: clock[0])
    spool = open_spool(tmp_path)
    sink = FlakySink()
    drainer = SpoolDrainer(spool, sink, SinkState(), timeout=1.0, in_flight=in_flight)
    ticket = in_flight.ticket(35.0)
    ticket.report(1, None)  # delivered before the spool write finished
    seq, first = spool.append(recs(0, 4))
    ticket.place({i: (seq, first + i) for i in (1, 2, 3)})  # record 0 had failed outright
    assert drainer.drain_once() == 0 and drainer.held  # 2 and 3 still wait for their verdicts
    assert sink.records == []
    ticket.report(3, None)
    ticket.report(2, RuntimeError("broker gone"))
    assert drainer.drain_once() == 2
    assert [v for _, v in sink.records] == [v for _, v in recs(0, 1) + recs(2, 1)]  # 0 and 2 only
    assert spool.depth().events == 0 and not in_flight.delivered(seq)
    spool.close()


def test_a_record_without_a_verdict_is_sent_after_its_deadline(tmp_path: Path) -> None:
    clock = [0.0]
    in_flight = InFlight(clock=lambda: clock[0])
    spool = open_spool(tmp_path)
    sink = FlakySink()
    drainer = SpoolDrainer(spool, sink, SinkState(), timeout=1.0, in_flight=in_flight)
    ticket = in_flight.ticket(35.0)
    seq, first = spool.append(recs(0, 2))
    ticket.place({0: (seq, first)})
    assert drainer.drain_once() == 0
    clock[0] = 35.5  # the producer's own timeout passed: its report must have come; send it
    assert drainer.drain_once() == 2
    assert sink.records == recs(0, 2)
    spool.close()
