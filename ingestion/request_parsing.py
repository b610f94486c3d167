"""Reading an ingestion request: media type, body (size caps, gzip), batch framing, client IP.

Reads the request's headers and streamed body; writes nothing. Every refusal is a
:class:`ingestion.limits.BodyError` carrying the status to answer (415 media type or encoding,
413 too large, 400 malformed); the size and gzip guards themselves are :mod:`ingestion.limits`.
A batch is split into ``(index, decoded value or BodyError)`` per event, so one bad NDJSON line
is rejected on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from starlette.requests import ClientDisconnect

from adclick.settings import Settings
from ingestion.limits import BodyError, BodyReader, check_content_length, parse_json

JSON = "application/json"
NDJSON = "application/x-ndjson"


def media_type(header: str | None, allowed: Sequence[str]) -> str | None:
    """The media type if allowed (a utf-8 charset parameter is fine), else ``None``."""
    if not header:
        return None
    media, _, params = header.partition(";")
    media = media.strip().lower()
    if media not in allowed:
        return None
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return None
    return media


def client_ip(request: Request, trusted_proxies: frozenset[str]) -> str:
    """The socket peer; behind a listed trusted proxy, the last untrusted X-Forwarded-For hop."""
    peer = request.client.host if request.client else "unknown"
    if trusted_proxies and peer in trusted_proxies:
        forwarded = request.headers.get("x-forwarded-for", "")
        for hop in reversed([h.strip() for h in forwarded.split(",")]):
            if hop and hop not in trusted_proxies:
                return hop[:64]
    return peer


async def read_body(request: Request, allowed: Sequence[str], settings: Settings) -> tuple[bytes, str]:
    """The (gunzipped) body and its media type, or :class:`BodyError` (415, 413, 400).

    Checks in this order: content type, content encoding, declared length, then the size while
    reading and after gunzip.
    """
    media = media_type(request.headers.get("content-type"), allowed)
    if media is None:
        raise BodyError(415, "Content-Type", f"must be {' or '.join(allowed)} (charset utf-8)")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", ""):
        raise BodyError(415, "Content-Encoding", "must be gzip or identity")
    try:
        check_content_length(request.headers.get("content-length"), settings.max_body_bytes)
        reader = BodyReader(
            max_bytes=settings.max_body_bytes,
            max_decompressed_bytes=settings.max_decompressed_bytes,
            gzip=encoding == "gzip",
        )
        async for chunk in request.stream():
            reader.feed(chunk)
        return reader.finish(), media
    except ClientDisconnect:
        raise BodyError(400, "body", "client disconnected") from None


def parse_batch(body: bytes, media: str, max_events: int) -> list[tuple[int, Any]]:
    """(index, decoded value or BodyError) per event; BodyError for the whole body when it is bad."""
    if media == NDJSON:
        items: list[tuple[int, Any]] = []
        for index, line in enumerate(body.split(b"\n")):
            if not line.strip():
                continue
            if len(items) >= max_events:
                raise BodyError(413, "body", f"more than {max_events} events in one batch")
            try:
                items.append((index, parse_json(line)))
            except BodyError as exc:
                items.append((index, exc))
        return items
    value = parse_json(body)
    if not isinstance(value, list):
        raise BodyError(
            400, "body", f"must be a JSON array of events (or NDJSON with Content-Type: {NDJSON})"
        )
    if len(value) > max_events:
        raise BodyError(413, "body", f"more than {max_events} events in one batch")
    return list(enumerate(value))
