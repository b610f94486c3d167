"""The ingestion core: one process's gates, event pipeline and delivery, shared by every route.

Reads decoded JSON values (one per event) and the request's client IP and API key; writes one
Kafka record per accepted event through the sink (:mod:`ingestion.producer`), or appends it to
the local spool (:mod:`ingestion.spool`) when Kafka does not acknowledge in time. Per event:
nesting depth, the contract (the compiled :mod:`ingestion.validator`, same verdicts and
messages as :func:`adclick.contract.validate_incoming`), the record value with the keyed hashes
(:mod:`ingestion.event_record`, the bytes :func:`adclick.contract.to_event` would give), the
duplicate hint (:mod:`ingestion.dedup_hint`), the record key with hot-ad salting
(:mod:`ingestion.hot_keys`), then delivery. An event counts as durable only once Kafka
acknowledged it (``acks=all``) or the spool append returned (fsynced with
``spool_fsync=always``); only durable events are remembered by the duplicate hint, so a retry of
an event that was not kept is accepted again.

Blocking kafka-python calls and spool writes run in the ingestor's thread pool, never on the
event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from fastapi import Request, Response

from adclick.contract import ContractError
from adclick.privacy import Pseudonymiser, hash_key
from adclick.settings import Settings
from ingestion.auth import HEADER as API_KEY_HEADER
from ingestion.auth import REFUSAL, ApiKeys
from ingestion.dedup_hint import DuplicateHint
from ingestion.event_record import PreparedEvent, build_record
from ingestion.hot_keys import HotKeys
from ingestion.limits import BodyError, json_depth_exceeds
from ingestion.producer import (
    DRAIN_TIMEOUT_SECONDS,
    EventSink,
    KafkaSink,
    Record,
    SinkState,
    deliver,
    has_late_reports,
)
from ingestion.rate_limit import RateLimiter
from ingestion.rdkafka_sink import RdKafkaSink
from ingestion.redirect import MissingRedirectKeyError, redirect_key
from ingestion.request_parsing import client_ip
from ingestion.responses import Refusal, error_response, field_text
from ingestion.spool import Spool, SpoolDrainer, SpoolFull
from ingestion.validator import EventValidator

log = logging.getLogger(__name__)

_IO_THREADS = 32
_UNAVAILABLE_RETRY_AFTER = 5


def _scrub(text: str, obj: Any) -> str:
    """Never echo a raw user_id / ip in an error message, whatever the validator wrote."""
    if isinstance(obj, dict):
        for name in ("user_id", "ip"):
            raw = obj.get(name)
            if isinstance(raw, str) and len(raw.strip()) >= 4 and raw.strip() in text:
                text = text.replace(raw.strip(), "<redacted>")
    return text


def event_sink(settings: Settings) -> EventSink:
    """The Kafka sink ``settings.ingest_producer`` names (librdkafka unless told otherwise)."""
    return RdKafkaSink(settings) if settings.ingest_producer == "librdkafka" else KafkaSink(settings)


def worker_limiter(settings: Settings, clock: Callable[[], float]) -> RateLimiter:
    """This worker's share of the rate limits: each of the ``ingest_worker_count`` workers
    refills and bursts at 1/N of the configured figures, so N workers together admit what the
    settings say (a client whose connections spread over the workers gets the full rate; a
    single keep-alive connection stays on one worker and gets 1/N)."""
    n = settings.ingest_worker_count
    return RateLimiter(
        per_ip=settings.rate_limit_per_ip / n,
        per_ip_burst=max(1, settings.rate_limit_per_ip_burst // n),
        per_key=settings.rate_limit_per_key / n,
        per_key_burst=max(1, settings.rate_limit_per_key_burst // n),
        clock=clock,
    )


class Ingestor:
    """Everything a request needs, built once per process from the settings."""

    def __init__(self, settings: Settings, sink: EventSink | None, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        self.key = hash_key(settings)  # raises MissingHashKeyError outside local/test without a key
        self.hasher = Pseudonymiser(self.key)
        self.validator = EventValidator(
            late_horizon_days=settings.late_horizon_days, future_skew_minutes=settings.future_skew_minutes
        )
        try:
            self.redirect_key: bytes | None = redirect_key(settings)
        except MissingRedirectKeyError as exc:
            log.warning("click redirects disabled: %s", exc)
            self.redirect_key = None
        self.own_sink = sink is None
        self.sink: EventSink = sink if sink is not None else event_sink(settings)
        self.state = SinkState(clock)
        self.spool = Spool.open_slot(
            settings.path("spool"),
            max_bytes=settings.spool_max_bytes,
            segment_bytes=settings.spool_segment_bytes,
            fsync=settings.spool_fsync == "always",
        )
        # No client waits on the drainer: it waits for each record's final delivery report (the
        # producer's own timeout), so a record it calls failed was not left in flight to land later.
        self.drainer = SpoolDrainer(self.spool, self.sink, self.state, timeout=DRAIN_TIMEOUT_SECONDS)
        self.dedup = DuplicateHint(
            window_seconds=settings.dedup_window_seconds,
            expected_rate=settings.dedup_expected_rate,
            fp_rate=settings.dedup_false_positive_rate,
            clock=clock,
        )
        self.hot = HotKeys(
            share=settings.hot_key_share,
            salts=settings.hot_key_salts,
            window_seconds=settings.hot_key_window_seconds,
            clock=clock,
        )
        self.limiter = worker_limiter(settings, clock)
        self.auth = ApiKeys(settings.api_keys)
        self.trusted_proxies = frozenset(settings.trusted_proxies)
        self.io = ThreadPoolExecutor(max_workers=_IO_THREADS, thread_name_prefix="ingest-io")
        self.stats = {"accepted": 0, "duplicates": 0, "rejected": 0, "spooled": 0, "unavailable": 0}

    # lifecycle
    def start(self) -> None:
        self.drainer.start()

    def close(self) -> None:
        self.drainer.stop()
        self.io.shutdown(wait=True)
        if self.own_sink:
            try:
                self.sink.close()
            except Exception:
                log.exception("closing the event sink failed")
        self.spool.close()

    # clock
    def now(self) -> tuple[datetime, int]:
        seconds = self.clock()
        return datetime.fromtimestamp(seconds, tz=UTC), int(seconds * 1000)

    # request gates
    def gate(self, request: Request) -> tuple[str, str | None]:
        """Client IP and publisher, or :class:`Refusal` (429 on an empty IP bucket, 401)."""
        ip = client_ip(request, self.trusted_proxies)
        wait = self.limiter.precheck(ip=ip)
        if wait is not None:
            raise Refusal(self.too_many(wait, "this client IP"))
        if not self.auth.enabled:
            return ip, None
        publisher = self.auth.publisher(request.headers.get(API_KEY_HEADER))
        if publisher is None:
            self.limiter.try_take(1, ip=ip)  # failed attempts cost: no free key guessing
            raise Refusal(error_response(401, API_KEY_HEADER, REFUSAL))
        wait = self.limiter.precheck(ip=ip, key=publisher)
        if wait is not None:
            raise Refusal(self.too_many(wait, "this API key"))
        return ip, publisher

    def too_many(self, seconds: int, who: str) -> Response:
        return error_response(
            429,
            "rate_limit",
            f"too many events from {who}; retry after {seconds} s",
            headers={"Retry-After": str(seconds)},
        )

    def take(self, n: int, ip: str, publisher: str | None) -> None:
        wait = self.limiter.try_take(n, ip=ip, key=publisher)
        if wait is not None:
            raise Refusal(self.too_many(wait, "this client IP or API key"))

    # events
    def prepare(self, obj: Any, now: datetime, received_ms: int, edge_country: str | None) -> PreparedEvent:
        """One decoded JSON value -> the Kafka event, or :class:`ContractError` (raw PII scrubbed)."""
        depth = self.settings.max_json_depth
        if json_depth_exceeds(obj, depth):
            raise ContractError("event", f"nested deeper than {depth} levels")
        try:
            valid = self.validator.validate(obj, now)
            return build_record(
                valid, hasher=self.hasher, received_at_ms=received_ms, edge_country=edge_country
            )
        except ContractError as exc:
            raise ContractError(exc.field, _scrub(exc.reason, obj)) from None

    def prepare_many(
        self, items: Sequence[tuple[int, Any]], now: datetime, received_ms: int, edge_country: str | None
    ) -> tuple[list[tuple[int, PreparedEvent]], list[dict[str, Any]]]:
        events: list[tuple[int, PreparedEvent]] = []
        rejected: list[dict[str, Any]] = []
        for index, obj in items:
            if isinstance(obj, BodyError):
                rejected.append({"index": index, "error": f"{obj.field}: {obj.reason}"})
                continue
            try:
                events.append((index, self.prepare(obj, now, received_ms, edge_country)))
            except ContractError as exc:
                rejected.append({"index": index, "error": f"{field_text(exc.field)}: {exc.reason}"})
        return events, rejected

    def records(self, events: Sequence[PreparedEvent]) -> list[Record]:
        keys = self.hot.keys_for([(e.ad_id, e.event_id) for e in events])
        return [(key.encode(), event.value) for key, event in zip(keys, events, strict=True)]

    async def deliver(self, records: Sequence[Record]) -> list[bool]:
        """Per record: durable (acknowledged by Kafka or fsynced to the spool)?"""
        loop = asyncio.get_running_loop()
        durable = [False] * len(records)
        pending = list(range(len(records)))
        ticket = None
        if self.state.up:
            # Records the producer still holds when the wait ends are spooled and may be delivered
            # later as well: their late verdicts go to the drainer's in-flight registry.
            ticket = self.drainer.in_flight.ticket(DRAIN_TIMEOUT_SECONDS)
            timeout = self.settings.produce_timeout_seconds
            try:
                results = await deliver(self.sink, records, timeout, self.io, late=ticket.report)
            except Exception as exc:
                results = [exc] * len(records)
            pending = []
            for i, result in enumerate(results):
                if result is None:
                    durable[i] = True
                else:
                    pending.append(i)
            if pending:
                self.state.mark_down(repr(results[pending[0]]))
        placed = None
        if pending and ticket is not None and has_late_reports(self.sink):
            # Only the records the wait ended (the snapshot's TimeoutError) await a verdict, and
            # their places are held before the drainer can read the segment they go to.
            unreported = [n for n, i in enumerate(pending) if isinstance(results[i], TimeoutError)]

            def placed(seq: int, first: int) -> None:
                ticket.place({pending[n]: (seq, first + n) for n in unreported})

        if pending:
            try:
                await loop.run_in_executor(self.io, self.spool.append, [records[i] for i in pending], placed)
            except SpoolFull as exc:
                log.error("cannot accept %d events: Kafka unreachable and %s", len(pending), exc)
                return durable
            except OSError:
                log.exception("cannot accept %d events: spool write failed", len(pending))
                return durable
            self.stats["spooled"] += len(pending)
            for i in pending:
                durable[i] = True
        return durable

    def unavailable(self) -> Response:
        self.stats["unavailable"] += 1
        return error_response(
            503,
            "service",
            "cannot store events now: Kafka unreachable and the local spool full",
            headers={"Retry-After": str(_UNAVAILABLE_RETRY_AFTER)},
        )

    async def accept(self, events: Sequence[PreparedEvent]) -> tuple[int, int, bool]:
        """Dedup hint, keys, delivery. (accepted, duplicates, all durable)."""
        fresh: list[PreparedEvent] = []
        rows: list[int] = []  # where each fresh event is in the hint's lookup
        batch_ids: set[str] = set()
        duplicates = 0
        hints = self.dedup.lookup([event.event_id for event in events])
        for row, (event, seen) in enumerate(zip(events, hints.seen, strict=True)):
            if seen or event.event_id in batch_ids:
                duplicates += 1
                continue
            batch_ids.add(event.event_id)
            fresh.append(event)
            rows.append(row)
        if not fresh:
            self.stats["duplicates"] += duplicates  # a request of duplicates only counts them too
            return 0, duplicates, True
        durable = await self.deliver(self.records(fresh))
        # Only what is kept may make a retry a "duplicate"; its bit positions are not computed again.
        self.dedup.remember(hints, [row for row, ok in zip(rows, durable, strict=True) if ok])
        self.stats["accepted"] += sum(durable)
        self.stats["duplicates"] += duplicates
        return len(fresh), duplicates, all(durable)
