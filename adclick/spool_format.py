"""The ingestion spool's on-disk format, shared by the API that writes it (:mod:`ingestion.spool`)
and the erasure that rewrites it (:func:`erase_records`).

A slot directory (``<spool>/<n>/``) holds a ``LOCK`` file, exclusively ``flock``-ed by the
process that owns the slot, and append-only segments ``seg-<n>.log`` of records
``[u32 length][u32 crc32][u16 key length][key][value]`` (little endian; length and CRC cover
everything after the 8-byte header). A torn last record (a crash mid-write) ends a segment's
valid records.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

Record = tuple[bytes, bytes]
_HEADER = struct.Struct("<II")  # payload length, crc32(payload)
_KEYLEN = struct.Struct("<H")
MAX_RECORD_BYTES = 16 * 1024 * 1024
SEGMENT_GLOB = "seg-*.log"
LOCK = "LOCK"


def encode_record(key: bytes, value: bytes) -> bytes:
    payload = _KEYLEN.pack(len(key)) + key + value
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def decode_records(data: bytes | memoryview) -> tuple[list[Record], int]:
    """Records in ``data`` up to the first torn/corrupt one, and the byte length they cover."""
    view = memoryview(data)
    records: list[Record] = []
    pos = 0
    end = len(view)
    while pos + _HEADER.size <= end:
        length, crc = _HEADER.unpack_from(view, pos)
        start = pos + _HEADER.size
        if length < _KEYLEN.size or length > MAX_RECORD_BYTES or start + length > end:
            break
        payload = view[start : start + length]
        if zlib.crc32(payload) != crc:
            break
        (key_len,) = _KEYLEN.unpack_from(payload, 0)
        if _KEYLEN.size + key_len > length:
            break
        key = bytes(payload[_KEYLEN.size : _KEYLEN.size + key_len])
        records.append((key, bytes(payload[_KEYLEN.size + key_len :])))
        pos = start + length
    return records, pos


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class SpoolErasure:
    """What :func:`erase_records` did: records dropped, segments rewritten, and the slots a
    running API holds (not rewritten; ``in_use_matches`` of their records matched)."""

    dropped: int = 0
    segments_rewritten: int = 0
    slots_in_use: tuple[str, ...] = ()
    in_use_matches: int = 0


def _rewrite_segment(path: Path, keep: Sequence[Record]) -> None:
    """Replace segment ``path`` by one holding ``keep`` only (fsynced, then renamed over it)."""
    if not keep:
        path.unlink()
        fsync_dir(path.parent)
        return
    tmp = path.with_suffix(".erasing")
    with tmp.open("wb") as f:
        f.write(b"".join(encode_record(k, v) for k, v in keep))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _try_lock(slot: Path) -> int | None:
    """The slot's ``LOCK`` taken (its fd), or None when a running process holds it."""
    fd = os.open(slot / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def erase_records(root: Path, matches: Callable[[bytes, bytes], bool]) -> SpoolErasure:
    """Drop every spooled record ``matches(key, value)`` from the spool slots under ``root``.

    A slot is rewritten only while no API process holds it (its ``LOCK``, taken here for the
    rewrite); a slot in use is read, not rewritten, and reported: its records drain to Kafka as
    soon as Kafka is reachable, where the topic's retention bounds them. A torn tail is dropped
    with the rewrite, as the API's own recovery would.
    """
    dropped = rewritten = in_use_matches = 0
    in_use: list[str] = []
    slots = sorted(p for p in Path(root).glob("*") if p.is_dir()) if Path(root).is_dir() else []
    for slot in slots:
        fd = _try_lock(slot)
        segments = sorted(slot.glob(SEGMENT_GLOB))
        if fd is None:
            in_use.append(slot.name)
            for path in segments:
                in_use_matches += sum(1 for k, v in decode_records(path.read_bytes())[0] if matches(k, v))
            continue
        try:
            for path in segments:
                records = decode_records(path.read_bytes())[0]
                keep = [(k, v) for k, v in records if not matches(k, v)]
                if len(keep) < len(records):
                    _rewrite_segment(path, keep)
                    dropped += len(records) - len(keep)
                    rewritten += 1
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
    return SpoolErasure(dropped, rewritten, tuple(in_use), in_use_matches)
