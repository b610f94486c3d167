"""Local durable spool: where accepted events wait while Kafka is unreachable, and its drainer.

Writes ``settings.path("spool")/<slot>/seg-<n>.log``; one record per event, the same
``(key, value)`` the producer would have sent (no raw personal data). Reads them back in order
and produces them to Kafka when it is reachable again.

Format (:mod:`adclick.spool_format`): append-only segment files of records ``[u32 length][u32
crc32][u16 key length][key][value]`` (little endian; length and CRC cover everything after the
8-byte header). A crash can leave a torn
last record; opening a segment scans it and truncates it at the first record whose header,
length or CRC does not check out, keeping every record before it.

Durability (``spool_fsync``): with ``always`` (default) every :meth:`Spool.append` (one per
request, whatever its event count) ends with ``fsync`` of the segment, and a new segment's
directory entry is fsynced too, before the API answers 202: that is what makes a spooled 202
survive a power loss. ``never`` leaves the data in the page cache (survives a process crash, not
a machine crash; for benchmarks and tests).

Drain (:class:`SpoolDrainer`, a daemon thread): oldest segment first; records go out in
chunks, in file order, each chunk sent in full and all its acks awaited before the next; a
segment is deleted only once every record in it was acknowledged. Delivery is at least once: a
chunk that fails part-way is sent again whole (Kafka may then hold a record twice; the exact
dedup on ``event_id`` downstream removes it). Segments found on start-up (a previous run that
could not drain) are drained the same way.

A directory is owned by one process at a time (an exclusive ``flock`` on its ``LOCK`` file);
with several API workers each takes the first free slot directory (``0``, ``1``, ...).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adclick.spool_format import (
    LOCK,
    MAX_RECORD_BYTES,
    SEGMENT_GLOB,
    decode_records,
    encode_record,
    fsync_dir,
)
from ingestion.producer import EventSink, Record, SendResult, SinkState

log = logging.getLogger(__name__)

ROOM_BYTES = 4096  # "has room" = space for at least one more typical event


class SpoolFull(RuntimeError):
    """Appending would exceed ``spool_max_bytes``."""


class SpoolLocked(RuntimeError):
    """Another process owns this spool directory."""


@dataclass
class Segment:
    seq: int
    path: Path
    events: int
    bytes: int


@dataclass(frozen=True)
class SpoolDepth:
    events: int
    bytes: int
    segments: int
    max_bytes: int

    @property
    def has_room(self) -> bool:
        return self.bytes + ROOM_BYTES <= self.max_bytes


class Spool:
    """Append-only segmented log of records in one directory (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        segment_bytes: int = 64 * 1024 * 1024,
        fsync: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self._lock = threading.Lock()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.directory / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._lock_fd)
            raise SpoolLocked(f"spool {self.directory} is in use by another process") from exc
        self._segments: dict[int, Segment] = {}
        self._active: Segment | None = None
        self._active_fd: int | None = None
        self.truncated_bytes = 0
        for path in sorted(self.directory.glob(SEGMENT_GLOB)):
            self._recover(path)
        self._next_seq = max(self._segments, default=0) + 1
        self.appended = threading.Event()  # set on every append: wakes the drainer

    @classmethod
    def open_slot(cls, root: Path, **kwargs: Any) -> Spool:
        """The first slot directory under ``root`` no other process holds (one per API worker)."""
        for slot in range(1024):
            try:
                return cls(Path(root) / str(slot), **kwargs)
            except SpoolLocked:
                continue
        raise SpoolLocked(f"no free spool slot under {root}")

    def _recover(self, path: Path) -> None:
        try:
            seq = int(path.stem.removeprefix("seg-"))
        except ValueError:
            log.warning("ignoring unexpected file in spool: %s", path.name)
            return
        data = path.read_bytes()
        records, valid = decode_records(data)
        if valid < len(data):
            self.truncated_bytes += len(data) - valid
            log.warning(
                "spool segment %s: torn or corrupt tail, truncated %d bytes after %d good records",
                path.name,
                len(data) - valid,
                len(records),
            )
            with path.open("r+b") as f:
                f.truncate(valid)
                f.flush()
                os.fsync(f.fileno())
        if not records:
            path.unlink()
            return
        self._segments[seq] = Segment(seq, path, len(records), valid)

    # --- appending ---------------------------------------------------------------------------

    def append(
        self, records: Sequence[Record], placed: Callable[[int, int], None] | None = None
    ) -> tuple[int, int]:
        """Write ``records`` durably (per the fsync policy) or raise :class:`SpoolFull`; returns
        where they are: (segment seq, index of the first record in that segment). ``placed`` gets
        the same before the drainer can see the records (under the spool's lock)."""
        if not records:
            return (0, 0)
        buf = b"".join(encode_record(key, value) for key, value in records)
        with self._lock:
            total = sum(s.bytes for s in self._segments.values())
            if total + len(buf) > self.max_bytes:
                raise SpoolFull(f"spool full ({total} of {self.max_bytes} bytes used)")
            active = self._active
            if active is None or (active.bytes > 0 and active.bytes + len(buf) > self.segment_bytes):
                active = self._new_segment()
            assert self._active_fd is not None
            view = memoryview(buf)
            written = 0
            try:
                while written < len(buf):
                    written += os.write(self._active_fd, view[written:])
                if self.fsync:
                    os.fsync(self._active_fd)
            except OSError:
                # A partial write would leave a torn record mid-file; cut back to the last good one.
                os.ftruncate(self._active_fd, active.bytes)
                raise
            first = active.events
            active.bytes += len(buf)
            active.events += len(records)
            if placed is not None:
                placed(active.seq, first)
        self.appended.set()
        return (active.seq, first)

    def _new_segment(self) -> Segment:
        self._seal_locked()
        seq = self._next_seq
        self._next_seq += 1
        path = self.directory / f"seg-{seq:012d}.log"
        self._active_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if self.fsync:
            fsync_dir(self.directory)
        segment = Segment(seq, path, 0, 0)
        self._segments[seq] = segment
        self._active = segment
        return segment

    def _seal_locked(self) -> None:
        if self._active_fd is not None:
            os.close(self._active_fd)
        self._active_fd = None
        self._active = None

    # --- draining ----------------------------------------------------------------------------

    def oldest(self) -> Segment | None:
        """The oldest segment, sealed (no more appends go to it), or ``None`` when empty."""
        with self._lock:
            if not self._segments:
                return None
            segment = self._segments[min(self._segments)]
            if segment is self._active:
                self._seal_locked()
            if segment.events == 0:
                segment.path.unlink(missing_ok=True)
                del self._segments[segment.seq]
                return None
            return segment

    def read(self, segment: Segment) -> list[Record]:
        records, _ = decode_records(segment.path.read_bytes())
        return records

    def remove(self, segment: Segment) -> None:
        with self._lock:
            if self._segments.get(segment.seq) is segment:
                del self._segments[segment.seq]
            segment.path.unlink(missing_ok=True)

    # --- state -------------------------------------------------------------------------------

    def depth(self) -> SpoolDepth:
        with self._lock:
            segments = list(self._segments.values())
        return SpoolDepth(
            events=sum(s.events for s in segments),
            bytes=sum(s.bytes for s in segments),
            segments=len(segments),
            max_bytes=self.max_bytes,
        )

    def close(self) -> None:
        with self._lock:
            self._seal_locked()
            if self._lock_fd >= 0:
                with contextlib.suppress(OSError):
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
                self._lock_fd = -1


class InFlight:
    """Spooled records whose first send the producer may still complete.

    When a request's acks take longer than the API waits, its records are spooled (so the 202 is
    durable) while the producer keeps retrying them. Each such record is held here by its place in
    the spool (segment seq, index) until the producer's verdict comes: delivered, and the drainer
    skips the spooled copy; failed, and the drainer sends it. The drainer leaves a segment alone
    while any of its records waits for a verdict, at most until that record's deadline (the
    producer's own delivery timeout, after which its report must have come). A crash forgets
    them: a restarted API sends the whole spool, and such a record may reach Kafka twice.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting: dict[tuple[int, int], float] = {}  # place -> deadline
        self._delivered: dict[int, set[int]] = {}  # segment seq -> indices delivered late

    def ticket(self, deadline_s: float) -> Ticket:
        """A request's in-flight records, before they have their places in the spool."""
        return Ticket(self, self._clock() + deadline_s)

    def _settle(self, place: tuple[int, int], delivered: bool) -> None:
        self._waiting.pop(place, None)
        if delivered:
            self._delivered.setdefault(place[0], set()).add(place[1])

    def waiting(self, seq: int) -> bool:
        """Does a record of segment ``seq`` still wait for its producer's verdict?"""
        now = self._clock()
        with self._lock:
            return any(s == seq and deadline > now for (s, _), deadline in self._waiting.items())

    def delivered(self, seq: int) -> set[int]:
        """Indices of segment ``seq`` whose first send was acknowledged after they were spooled."""
        with self._lock:
            return set(self._delivered.get(seq, ()))

    def forget(self, seq: int) -> None:
        with self._lock:
            self._delivered.pop(seq, None)
            for place in [p for p in self._waiting if p[0] == seq]:
                del self._waiting[place]


class Ticket:
    """One request's records still in the producer: verdicts may come before or after their places."""

    def __init__(self, registry: InFlight, deadline: float) -> None:
        self.registry = registry
        self.deadline = deadline
        self._early: dict[int, bool] = {}
        self._places: dict[int, tuple[int, int]] | None = None

    def report(self, i: int, result: object) -> None:
        """The producer's verdict on the request's record ``i`` (None: delivered)."""
        with self.registry._lock:
            if self._places is None:
                self._early[i] = result is None
            elif i in self._places:
                self.registry._settle(self._places[i], result is None)

    def place(self, places: dict[int, tuple[int, int]]) -> None:
        """Where the records (request index -> spool place) were spooled."""
        with self.registry._lock:
            self._places = places
            for i, place in places.items():
                if i in self._early:
                    self.registry._settle(place, self._early[i])
                else:
                    self.registry._waiting[place] = self.deadline


class SpoolDrainer:
    """Sends spooled records to the sink in order; a daemon thread once :meth:`start` ed.

    :meth:`drain_once` does one step (one segment, or one probe) synchronously: the thread
    loops over it, tests call it directly.
    """

    def __init__(
        self,
        spool: Spool,
        sink: EventSink,
        state: SinkState,
        *,
        timeout: float,
        chunk: int = 1_000,
        idle_seconds: float = 1.0,
        max_backoff: float = 30.0,
        in_flight: InFlight | None = None,
    ) -> None:
        self.spool = spool
        self.sink = sink
        self.state = state
        self.timeout = timeout
        self.chunk = chunk
        self.idle_seconds = idle_seconds
        self.max_backoff = max_backoff
        self.in_flight = in_flight or InFlight()
        self.held = False  # the last step found the oldest segment waiting for producer verdicts
        self.failures = 0
        self.drained = 0
        # The segment being drained and the indices of its records already acknowledged: a retry
        # sends only the others (a record acked once and sent again would be in Kafka twice).
        self._acked: tuple[int, set[int]] = (0, set())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def drain_once(self) -> int:
        """Drain the oldest segment (or probe the sink when nothing is spooled); records acked."""
        segment = self.spool.oldest()
        if segment is None:
            if not self.state.up and self.sink.reachable():
                self.state.mark_up()
            self.failures = 0
            return 0
        self.held = self.in_flight.waiting(segment.seq)
        if self.held:
            return 0
        records = self.spool.read(segment)
        if self._acked[0] != segment.seq:
            self._acked = (segment.seq, self.in_flight.delivered(segment.seq))
        done = self._acked[1]
        todo = [i for i in range(len(records)) if i not in done]
        acked = 0
        for start in range(0, len(todo), self.chunk):
            part = todo[start : start + self.chunk]
            try:
                results: list[SendResult] = self.sink.send_many([records[i] for i in part], self.timeout)
            except Exception as exc:
                results = [exc] * len(part)
            ok = [i for i, result in zip(part, results, strict=True) if result is None]
            done.update(ok)
            acked += len(ok)
            self.drained += len(ok)
            failed = next((r for r in results if r is not None), None)
            if failed is not None:
                self.failures += 1
                self.state.mark_down(f"spool drain: {failed!r}")
                return acked
        self.spool.remove(segment)
        self.in_flight.forget(segment.seq)
        self._acked = (0, set())
        self.failures = 0
        self.state.mark_up()
        if acked:
            log.info("spool: drained %d records from segment %d", acked, segment.seq)
        return acked

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                acked = self.drain_once()
            except Exception:  # never let the drainer die (e.g. disk error); retry later
                log.exception("spool drainer step failed")
                self.failures += 1
                acked = 0
            if acked:
                continue
            if self.held:  # the oldest segment waits for late acknowledgements
                self._stop.wait(min(self.idle_seconds, 0.5))
                continue
            if self.failures:
                wait = min(self.max_backoff, 0.5 * 2 ** min(self.failures, 10))
            else:
                wait = self.idle_seconds
            self.spool.appended.clear()
            if self.spool.depth().events and not self.failures:
                continue
            if self.failures:
                self._stop.wait(wait)
            else:
                # Idle: wake on a new append, on stop, or after the probe interval.
                self.spool.appended.wait(wait)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="spool-drainer", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.spool.appended.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


__all__ = [
    "MAX_RECORD_BYTES",
    "Spool",
    "SpoolDrainer",
    "SpoolFull",
    "SpoolLocked",
    "decode_records",
    "encode_record",
]
