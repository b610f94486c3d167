"""The dead-letter topic, for operators: what ``adclick dlq export`` and ``adclick dlq replay`` do.

* export: reads ``settings.topic_dlq`` from its beginning up to the end offsets seen at the start
  (kafka-python, no consumer group, nothing committed) and writes one NDJSON line per rejected
  record (:func:`adclick.dlq.to_line`: raw payload, reason, lineage). The copies a replayed
  micro-batch re-sent (the topic is at least once) share their lineage and are written once.
* replay: reads such a file, fixed by hand, and POSTs each line's event
  (:func:`adclick.dlq.fixed_event`, made an IncomingEvent body by :func:`to_incoming`) to the
  ingestion API's batch endpoint (:func:`traffic.sinks.post_to_api`: retries, counts). Events
  keep their ``event_id``: a second replay is answered ``duplicate`` by the API's hint while it
  remembers them, and the batch layer's exact dedup by ``event_id`` covers the rest.

This is the edge (Kafka, files, HTTP); the record and line formats are :mod:`adclick.dlq`'s, the
command line is :mod:`traffic.dlq_commands`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from adclick.contract import Event, IncomingEvent
from adclick.dlq import DeadLetterError, fixed_event, from_line, from_record, to_line
from adclick.errors import AdclickError
from adclick.progress import Progress
from adclick.settings import Settings
from traffic.sinks import MAX_BATCH, ApiResult, post_to_api

# Event fields the ingestion API derives itself (from ts, country, user_id, ip, its own clock).
DERIVED = frozenset(Event.model_fields) - frozenset(IncomingEvent.model_fields)
PSEUDONYMS = ("user_key", "ip_key")


class DlqError(AdclickError):
    """The DLQ topic cannot be read, or an export file is not one."""


# --- export -----------------------------------------------------------------------------------


@dataclass
class ExportResult:
    written: int = 0
    copies: int = 0  # re-sent by a replayed micro-batch (same lineage), written once
    foreign: int = 0  # records without the DLQ headers (not written by the stream), skipped


def export_lines(records: Iterable[tuple[Any, bytes | None, Any]], out: IO[bytes]) -> ExportResult:
    """Write ``(key, value, headers)`` DLQ records as export lines, each source record once."""
    result = ExportResult()
    seen: set[str] = set()
    for _key, value, headers in records:
        try:
            letter = from_record(value, headers or ())
        except DeadLetterError:
            result.foreign += 1
            continue
        if letter.lineage in seen:
            result.copies += 1
            continue
        seen.add(letter.lineage)
        out.write(orjson.dumps(to_line(letter)) + b"\n")
        result.written += 1
    return result


def read_topic(settings: Settings, topic: str, *, idle_timeout_s: float = 30.0) -> Iterator[tuple]:
    """``(key, value, headers)`` of every record of ``topic`` up to its end offsets at the start."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    try:
        consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
            client_id="adclick-dlq-export",
            group_id=None,
            enable_auto_commit=False,
        )
    except KafkaError as exc:
        raise DlqError(f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc!r}") from exc
    try:
        partitions = sorted(consumer.partitions_for_topic(topic))
        if not partitions:
            raise DlqError(f"topic {topic} does not exist on {settings.kafka_bootstrap_servers}")
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        remaining = {tp for tp in tps if consumer.position(tp) < end[tp]}
        last_read = time.monotonic()
        while remaining:
            polled = consumer.poll(timeout_ms=1_000)
            if polled:
                last_read = time.monotonic()
            elif time.monotonic() - last_read > idle_timeout_s:
                raise DlqError(f"{topic}: nothing read for {idle_timeout_s:.0f}s before its end offsets")
            for tp, records in polled.items():
                for record in records:
                    if record.offset < end[tp]:
                        yield record.key, record.value, record.headers
                if consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
    finally:
        consumer.close()


# --- replay -----------------------------------------------------------------------------------


def to_incoming(event: dict[str, Any]) -> dict[str, Any]:
    """An event as the ingestion API takes it: the fields it derives dropped (``v``, ``region``,
    ``received_at``, and the pseudonyms, which it computes from ``user_id``/``ip`` and cannot
    take ready-made), ``attributes`` spread back as unknown fields (the API keeps them there).
    ``event_id`` and ``ts`` (epoch milliseconds are accepted) are kept as they are."""
    body = {k: v for k, v in event.items() if k not in DERIVED}
    attributes = event.get("attributes")
    if isinstance(attributes, dict):
        for name, value in attributes.items():
            body.setdefault(name, value)
    return body


def read_file(path: Path) -> list[dict[str, Any]]:
    """The lines of an export file (blank lines skipped); :class:`DlqError` names a bad line."""
    lines = []
    with path.open("rb") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                line = orjson.loads(text)
                from_line(line)  # the format is checked before anything is sent
            except (orjson.JSONDecodeError, DeadLetterError) as exc:
                raise DlqError(f"{path}:{number}: {exc}") from None
            lines.append(line)
    return lines


@dataclass
class ReplayResult:
    api: ApiResult
    unfixed: list[str] = field(default_factory=list)  # lineages of lines with no event to send
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (lineage, error), the first ones
    pseudonyms_dropped: int = 0  # events sent without the user_key/ip_key they had


def replay(
    lines: Iterable[dict[str, Any]],
    *,
    url: str,
    api_key: str | None = None,
    batch_size: int = MAX_BATCH,
    client: Any | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress | None = None,
) -> ReplayResult:
    """POST the fixed events of export ``lines`` to the ingestion API (base ``url``); a line
    without a JSON object event is not sent and is listed in ``unfixed``."""
    bodies: list[dict[str, Any]] = []
    origin: list[str] = []
    result = ReplayResult(api=ApiResult())
    for line in lines:
        lineage = from_line(line).lineage
        event = fixed_event(line)
        if event is None:
            result.unfixed.append(lineage)
            continue
        result.pseudonyms_dropped += any(event.get(name) for name in PSEUDONYMS)
        bodies.append(to_incoming(event))
        origin.append(lineage)
    if bodies:
        with progress or Progress("dlq replay", expected=len(bodies)) as shown:
            result.api = post_to_api(
                bodies,
                url=url,
                api_key=api_key,
                batch_size=batch_size,
                client=client,
                sleep=sleep,
                progress=shown,
            )
    result.rejected = [(origin[e["index"]], str(e.get("error"))) for e in result.api.errors]
    return result
