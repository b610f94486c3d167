"""Guards on request bodies: size as sent, size after gunzip, JSON nesting depth, parse errors.

Reads raw body chunks (as they arrive from the socket), writes nothing. Every guard fails early
and cheaply: the declared ``Content-Length`` is checked before a byte is read, the running size
while reading, and a gzip body is decompressed incrementally with a hard output cap, so a gzip
bomb (1 MiB expanding to 1 GiB) costs at most ``max_decompressed_bytes`` of work, never the
whole expansion. JSON is parsed with orjson (which itself refuses depth > 1024); the configured,
much smaller depth limit is then checked per event by an iterative walk.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson

GZIP_MAGIC = b"\x1f\x8b"
MAX_GZIP_MEMBERS = 1_000  # concatenated members; each costs a fresh inflater
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip container only (no raw zlib, no auto-detect)
_CONTAINERS = (dict, list)  # a tuple, not `dict | list`: that builds a new union on every call
_SCALARS = frozenset((str, int, float, bool, type(None)))


class BodyError(ValueError):
    """A request body refused as a whole. ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.status = status
        self.field = field
        self.reason = reason


def too_large(reason: str) -> BodyError:
    return BodyError(413, "body", reason)


def check_content_length(value: str | None, max_bytes: int) -> None:
    """Refuse a declared length over the cap before reading anything (413), or a bad header (400)."""
    if value is None:
        return
    text = value.strip()
    if not text.isdigit() or len(text) > 19:
        raise BodyError(400, "Content-Length", "must be a non-negative integer")
    if int(text) > max_bytes:
        raise too_large(f"larger than {max_bytes} bytes")


class BodyReader:
    """Accumulates body chunks, gunzipping on the fly, enforcing both size caps.

    ``feed`` each chunk as it arrives, then ``finish`` for the (decompressed) bytes. Raises
    :class:`BodyError` (413 too large, 400 bad gzip stream) as soon as a cap is crossed.
    Concatenated gzip members (``cat a.gz b.gz``) are accepted, as gzip itself does.
    """

    def __init__(self, *, max_bytes: int, max_decompressed_bytes: int, gzip: bool) -> None:
        self.max_bytes = max_bytes
        self.max_decompressed_bytes = max_decompressed_bytes
        self.gzip = gzip
        self.received = 0
        self._out = bytearray()
        self._inflater: Any = zlib.decompressobj(_GZIP_WBITS) if gzip else None
        self._member_done = False  # the current gzip member ended; more input starts a new one
        self._members = 1

    @property
    def size(self) -> int:
        return len(self._out)

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.received += len(chunk)
        if self.received > self.max_bytes:
            raise too_large(f"larger than {self.max_bytes} bytes")
        if not self.gzip:
            self._out += chunk
            return
        self._inflate(chunk)

    def _inflate(self, data: bytes) -> None:
        while data:
            if self._member_done:
                self._members += 1
                if self._members > MAX_GZIP_MEMBERS:
                    raise BodyError(400, "body", f"bad gzip stream (more than {MAX_GZIP_MEMBERS} members)")
                self._inflater = zlib.decompressobj(_GZIP_WBITS)
                self._member_done = False
            room = self.max_decompressed_bytes - len(self._out)
            try:
                # max_length=room+1: producing one byte over the cap proves the body is too big,
                # without inflating the rest of the stream.
                out = self._inflater.decompress(data, room + 1)
            except zlib.error as exc:
                raise BodyError(400, "body", f"bad gzip stream ({exc})") from None
            if len(out) > room:
                raise too_large(f"decompresses to more than {self.max_decompressed_bytes} bytes")
            self._out += out
            if self._inflater.unconsumed_tail:
                data = self._inflater.unconsumed_tail
                continue
            if self._inflater.eof:
                self._member_done = True
                data = self._inflater.unused_data
                if data and not data.startswith(GZIP_MAGIC[: len(data)]):
                    raise BodyError(400, "body", "bad gzip stream (trailing garbage after the gzip data)")
                continue
            data = b""

    def finish(self) -> bytes:
        if self.gzip:
            if self.received == 0:
                raise BodyError(400, "body", "bad gzip stream (empty)")
            if not self._member_done:
                raise BodyError(400, "body", "bad gzip stream (truncated)")
        return bytes(self._out)


def gunzip_capped(data: bytes, *, max_bytes: int, max_decompressed_bytes: int) -> bytes:
    """Decompress a whole gzip body with the same caps (for callers that already hold the bytes)."""
    reader = BodyReader(max_bytes=max_bytes, max_decompressed_bytes=max_decompressed_bytes, gzip=True)
    reader.feed(data)
    return reader.finish()


# --- JSON -------------------------------------------------------------------------------------


def describe_json_error(exc: orjson.JSONDecodeError) -> str:
    """A reason naming the problem (NaN, Infinity, UTF-8, ...) without echoing the input."""
    msg = exc.msg
    doc = exc.doc if isinstance(exc.doc, str) else ""
    pos = exc.pos
    at = doc[pos : pos + 8]
    before = doc[pos - 1 : pos + 8] if pos > 0 else ""
    if at.startswith("NaN") or at.startswith("Infinity") or before.startswith("-Infinity"):
        return "NaN and Infinity are not valid JSON numbers"
    if "infinity when parsed" in msg:
        return "number out of range (NaN and Infinity are not valid JSON numbers)"
    if "UTF-8" in msg:
        return "is not valid UTF-8"
    if "depth limit" in msg or "recursion" in msg:
        return "JSON nested too deeply"
    if "empty" in msg:
        return "is empty"
    line_col = str(exc).rsplit(": ", 1)[-1] if ": line " in str(exc) else ""
    where = f" at {line_col.split(' (')[0]}" if line_col.startswith("line ") else ""
    return f"invalid JSON ({msg}{where})"


def parse_json(data: bytes) -> Any:
    """orjson.loads, with :class:`BodyError` (400, field ``body``) naming what is wrong."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BodyError(400, "body", describe_json_error(exc)) from None


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """True if ``value`` nests containers deeper than ``limit`` (a flat object has depth 1).

    Iterative (no recursion), stops at the first path over the limit, and skips scalars fast,
    so a normal flat event costs one pass over its values.
    """
    if not isinstance(value, _CONTAINERS):
        return False
    if limit >= 1 and type(value) is dict and _SCALARS.issuperset(map(type, value.values())):
        return False  # the usual flat event, checked in C
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, _CONTAINERS):
                stack.append((child, depth + 1))
    return False
