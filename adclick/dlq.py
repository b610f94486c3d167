"""The dead-letter topic's format (``settings.topic_dlq``), defined once for its writer and readers.

Written by the stream's bronze landing (``speed_layer/dlq_sink.py``), one Kafka record per
events-topic record it rejects (the same records as ``bronze.rejects``); read by ``adclick dlq``.

* value: the rejected record's bytes, unchanged (null for an empty record). Not wrapped in JSON:
  a reject may be invalid UTF-8, and the payload stays byte for byte what the producer sent.
* key: the lineage ``<topic>:<partition>:<offset>`` of the rejected record. It is unique per
  source record, so the copies a replayed micro-batch re-sends (the DLQ is at least once) carry
  the same key, value and headers and readers drop them by key.
* headers (UTF-8 text): :data:`REASON` (the first problem found, as in ``bronze.rejects``),
  :data:`TOPIC`, :data:`PARTITION`, :data:`OFFSET`, :data:`TIMESTAMP` (the source record's Kafka
  timestamp, epoch milliseconds) and :data:`KEY` (the source record's key; absent when it had
  none).

The export file of ``adclick dlq export`` (NDJSON, one line per source record) is built by
:func:`to_line` and read back by :func:`from_line`; :func:`fixed_event` is what a replay sends.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

REASON = "adclick.reason"
TOPIC = "adclick.source.topic"
PARTITION = "adclick.source.partition"
OFFSET = "adclick.source.offset"
TIMESTAMP = "adclick.source.timestamp"
KEY = "adclick.source.key"
HEADERS = (REASON, TOPIC, PARTITION, OFFSET, TIMESTAMP, KEY)


class DeadLetterError(ValueError):
    """A DLQ record or export line that does not follow this format."""


@dataclass(frozen=True)
class DeadLetter:
    """One rejected events-topic record: its bytes, why it was rejected and where it was."""

    reason: str
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None
    key: str | None = None
    raw: bytes | None = None

    @property
    def lineage(self) -> str:
        return lineage_key(self.topic, self.partition, self.offset)


def lineage_key(topic: str, partition: int, offset: int) -> str:
    """The DLQ record key: ``<topic>:<partition>:<offset>`` (Kafka topic names hold no ``:``)."""
    return f"{topic}:{partition}:{offset}"


def to_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    """The Kafka headers of a DLQ record (the stream's Spark writer builds the same columns)."""
    values = {
        REASON: letter.reason,
        TOPIC: letter.topic,
        PARTITION: str(letter.partition),
        OFFSET: str(letter.offset),
        TIMESTAMP: None if letter.timestamp_ms is None else str(letter.timestamp_ms),
        KEY: letter.key,
    }
    return [(name, value.encode()) for name, value in values.items() if value is not None]


def from_record(value: bytes | None, headers: Iterable[tuple[str, bytes | None]]) -> DeadLetter:
    """A DLQ record (its value and headers, as a Kafka consumer gives them) as a :class:`DeadLetter`."""
    text = {name: raw.decode("utf-8", "replace") for name, raw in headers if raw is not None}
    missing = [name for name in (REASON, TOPIC, PARTITION, OFFSET) if name not in text]
    if missing:
        raise DeadLetterError(f"not a DLQ record: header(s) {', '.join(missing)} missing")
    try:
        partition, offset = int(text[PARTITION]), int(text[OFFSET])
        timestamp = int(text[TIMESTAMP]) if TIMESTAMP in text else None
    except ValueError as exc:
        raise DeadLetterError(f"not a DLQ record: {exc}") from None
    return DeadLetter(text[REASON], text[TOPIC], partition, offset, timestamp, text.get(KEY), value)


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_object(raw: bytes | None) -> dict[str, Any] | None:
    try:
        value = orjson.loads(raw) if raw is not None else None
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def to_line(letter: DeadLetter) -> dict[str, Any]:
    """The export line of a dead letter.

    ``raw`` is the payload as text (``raw_base64`` instead when it is not UTF-8), ``event`` the
    payload parsed when it is a JSON object: the field an operator edits to fix the record.
    """
    line: dict[str, Any] = {
        "reason": letter.reason,
        "source": {
            "topic": letter.topic,
            "partition": letter.partition,
            "offset": letter.offset,
            "timestamp": None if letter.timestamp_ms is None else _rfc3339(letter.timestamp_ms),
        },
        "key": letter.key,
        "raw": None,
    }
    if letter.raw is not None:
        try:
            line["raw"] = letter.raw.decode("utf-8")
        except UnicodeDecodeError:
            line["raw_base64"] = base64.b64encode(letter.raw).decode("ascii")
    event = _json_object(letter.raw)
    if event is not None:
        line["event"] = event
    return line


def from_line(line: Any) -> DeadLetter:
    """A dead letter back from its export line (``event`` edits are not applied: see :func:`fixed_event`)."""
    try:
        source = line["source"]
        timestamp = source.get("timestamp")
        if "raw_base64" in line:
            raw = base64.b64decode(line["raw_base64"], validate=True)
        else:
            raw = None if line.get("raw") is None else str(line["raw"]).encode()
        return DeadLetter(
            reason=str(line["reason"]),
            topic=str(source["topic"]),
            partition=int(source["partition"]),
            offset=int(source["offset"]),
            timestamp_ms=None
            if timestamp is None
            else round(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000),
            key=line.get("key"),
            raw=raw,
        )
    except (KeyError, TypeError, AttributeError, ValueError, binascii.Error) as exc:
        raise DeadLetterError(f"not a DLQ export line: {exc!r}") from None


def fixed_event(line: dict[str, Any]) -> dict[str, Any] | None:
    """The event a replay sends for an export line: its ``event`` object when present (an
    operator's fix goes there), else ``raw`` if it parses as a JSON object, else None (unfixed)."""
    event = line.get("event")
    if isinstance(event, dict):
        return event
    raw = line.get("raw")
    return _json_object(raw.encode()) if isinstance(raw, str) else None
