"""The ingestion HTTP API (FastAPI): validates events, pseudonymises them and makes them durable.

Reads HTTP requests from ad servers and CDN edges (single events, JSON-array or NDJSON batches,
click redirects); writes one Kafka record per accepted event to ``settings.topic_events``
(:mod:`ingestion.producer`), or to the local spool (:mod:`ingestion.spool`) when Kafka does not
acknowledge in time. ``202`` is only answered once every accepted event of the request is
acknowledged by Kafka (``acks=all``) or fsynced to the spool.

The hot path avoids pydantic in the request signature: the raw body is read with size caps
(:mod:`ingestion.limits`), parsed with orjson, validated with
:func:`adclick.contract.validate_incoming` and answered with orjson bytes. Blocking kafka-python
calls and spool writes run in a thread pool, never on the event loop; so does the validation of
large batches (to keep ``/v1/health`` and small requests responsive).

Order of checks per request: client IP bucket not empty (429), API key (401), content type and
encoding (415), body size as declared, as read and after gunzip (413), JSON (400), batch size
(400 empty / 413 too many), rate limit for the number of events (429), then per event: nesting
depth, contract, duplicate hint, hot-key salting, delivery (503 only if neither Kafka nor the
spool took the events).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect

from adclick.contract import MAX_TEXT, ContractError, Event, IncomingEvent, to_event, validate_incoming
from adclick.privacy import hash_key
from adclick.settings import Settings
from ingestion.auth import HEADER as API_KEY_HEADER
from ingestion.auth import REFUSAL, ApiKeys
from ingestion.dedup_hint import DuplicateHint
from ingestion.hot_keys import HotKeys
from ingestion.limits import BodyError, BodyReader, check_content_length, json_depth_exceeds, parse_json
from ingestion.producer import EventSink, KafkaSink, Record, SinkState, deliver
from ingestion.rate_limit import RateLimiter
from ingestion.redirect import MissingRedirectKeyError, TokenError, redirect_key, verify_token
from ingestion.spool import Spool, SpoolDrainer, SpoolFull

log = logging.getLogger(__name__)

JSON = "application/json"
NDJSON = "application/x-ndjson"
_OFFLOAD_EVENTS = 200  # batches at least this large are validated in a worker thread
_IO_THREADS = 32
_MAX_FIELD_CHARS = 128
_UNAVAILABLE_RETRY_AFTER = 5


# --- documentation-only models (the handlers never build them) ----------------------------------


class Accepted(BaseModel):
    event_id: str
    status: Literal["accepted", "duplicate"] = Field(
        description="duplicate: the event id was seen within the duplicate-hint window; not produced "
        "again. A hint only: exact dedup on event_id happens downstream."
    )


class Rejection(BaseModel):
    index: int = Field(description="Position in the JSON array, or 0-based line number in NDJSON.")
    error: str = Field(description="'field: reason'")


class BatchAccepted(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[Rejection]


class ErrorBody(BaseModel):
    error: str = Field(description="'field: reason'")
    field: str
    reason: str


class SpoolHealth(BaseModel):
    events: int
    bytes: int
    segments: int
    max_bytes: int


class Health(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    kafka: dict[str, Any]
    spool: SpoolHealth


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed body or an event breaking the contract."},
    401: {"model": ErrorBody, "description": "Missing or invalid X-Api-Key (when keys are configured)."},
    413: {"model": ErrorBody, "description": "Body too large (as sent or after gunzip), or too many events."},
    415: {"model": ErrorBody, "description": "Unsupported Content-Type or Content-Encoding."},
    429: {"model": ErrorBody, "description": "Rate limit (events/s per IP and per key); see Retry-After."},
    503: {"model": ErrorBody, "description": "Kafka unreachable and the local spool full: nothing was kept."},
}


# --- helpers -----------------------------------------------------------------------------------


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def _field_text(field: str) -> str:
    return field if len(field) <= _MAX_FIELD_CHARS else field[:_MAX_FIELD_CHARS] + "..."


def error_response(status: int, field: str, reason: str, headers: dict[str, str] | None = None) -> Response:
    field = _field_text(field)
    return _json(status, {"error": f"{field}: {reason}", "field": field, "reason": reason}, headers)


def _scrub(text: str, obj: Any) -> str:
    """Never echo a raw user_id / ip in an error message, whatever the validator wrote."""
    if isinstance(obj, dict):
        for name in ("user_id", "ip"):
            raw = obj.get(name)
            if isinstance(raw, str) and len(raw.strip()) >= 4 and raw.strip() in text:
                text = text.replace(raw.strip(), "<redacted>")
    return text


def _media_type(header: str | None, allowed: Sequence[str]) -> str | None:
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


class _Refusal(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


# --- the ingestion core ------------------------------------------------------------------------


class Ingestor:
    """Everything a request needs, built once per process from the settings."""

    def __init__(self, settings: Settings, sink: EventSink | None, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        self.key = hash_key(settings)  # raises MissingHashKeyError outside local/test without a key
        try:
            self.redirect_key: bytes | None = redirect_key(settings)
        except MissingRedirectKeyError as exc:
            log.warning("click redirects disabled: %s", exc)
            self.redirect_key = None
        self.own_sink = sink is None
        self.sink: EventSink = sink if sink is not None else KafkaSink(settings)
        self.state = SinkState(clock)
        self.spool = Spool.open_slot(
            settings.path("spool"),
            max_bytes=settings.spool_max_bytes,
            segment_bytes=settings.spool_segment_bytes,
            fsync=settings.spool_fsync == "always",
        )
        self.drainer = SpoolDrainer(
            self.spool, self.sink, self.state, timeout=settings.produce_timeout_seconds
        )
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
        self.limiter = RateLimiter(
            per_ip=settings.rate_limit_per_ip,
            per_ip_burst=settings.rate_limit_per_ip_burst,
            per_key=settings.rate_limit_per_key,
            per_key_burst=settings.rate_limit_per_key_burst,
            clock=clock,
        )
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
        """Client IP and publisher, or :class:`_Refusal` (429 on an empty IP bucket, 401)."""
        ip = client_ip(request, self.trusted_proxies)
        wait = self.limiter.precheck(ip=ip)
        if wait is not None:
            raise _Refusal(self.too_many(wait, "this client IP"))
        if not self.auth.enabled:
            return ip, None
        publisher = self.auth.publisher(request.headers.get(API_KEY_HEADER))
        if publisher is None:
            self.limiter.try_take(1, ip=ip)  # failed attempts cost: no free key guessing
            raise _Refusal(error_response(401, API_KEY_HEADER, REFUSAL))
        wait = self.limiter.precheck(ip=ip, key=publisher)
        if wait is not None:
            raise _Refusal(self.too_many(wait, "this API key"))
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
            raise _Refusal(self.too_many(wait, "this client IP or API key"))

    async def read_body(self, request: Request, allowed: Sequence[str]) -> tuple[bytes, str]:
        media = _media_type(request.headers.get("content-type"), allowed)
        if media is None:
            raise _Refusal(
                error_response(415, "Content-Type", f"must be {' or '.join(allowed)} (charset utf-8)")
            )
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip", ""):
            raise _Refusal(error_response(415, "Content-Encoding", "must be gzip or identity"))
        s = self.settings
        try:
            check_content_length(request.headers.get("content-length"), s.max_body_bytes)
            reader = BodyReader(
                max_bytes=s.max_body_bytes,
                max_decompressed_bytes=s.max_decompressed_bytes,
                gzip=encoding == "gzip",
            )
            async for chunk in request.stream():
                reader.feed(chunk)
            return reader.finish(), media
        except BodyError as exc:
            raise _Refusal(error_response(exc.status, exc.field, exc.reason)) from None
        except ClientDisconnect:
            raise _Refusal(error_response(400, "body", "client disconnected")) from None

    # events
    def prepare(self, obj: Any, now: datetime, received_ms: int, edge_country: str | None) -> Event:
        """One decoded JSON value -> the Kafka event, or :class:`ContractError` (raw PII scrubbed)."""
        if json_depth_exceeds(obj, self.settings.max_json_depth):
            raise ContractError("event", f"nested deeper than {self.settings.max_json_depth} levels")
        try:
            incoming: IncomingEvent = validate_incoming(
                obj,
                now=now,
                late_horizon_days=self.settings.late_horizon_days,
                future_skew_minutes=self.settings.future_skew_minutes,
            )
            return to_event(incoming, key=self.key, received_at_ms=received_ms, edge_country=edge_country)
        except ContractError as exc:
            raise ContractError(exc.field, _scrub(exc.reason, obj)) from None

    def prepare_many(
        self, items: Sequence[tuple[int, Any]], now: datetime, received_ms: int, edge_country: str | None
    ) -> tuple[list[tuple[int, Event]], list[dict[str, Any]]]:
        events: list[tuple[int, Event]] = []
        rejected: list[dict[str, Any]] = []
        for index, obj in items:
            if isinstance(obj, BodyError):
                rejected.append({"index": index, "error": f"{obj.field}: {obj.reason}"})
                continue
            try:
                events.append((index, self.prepare(obj, now, received_ms, edge_country)))
            except ContractError as exc:
                rejected.append({"index": index, "error": f"{_field_text(exc.field)}: {exc.reason}"})
        return events, rejected

    def records(self, events: Sequence[Event]) -> list[Record]:
        keys = self.hot.keys_for([(e.ad_id, e.event_id) for e in events])
        return [(key.encode(), event.to_json()) for key, event in zip(keys, events, strict=True)]

    async def deliver(self, records: Sequence[Record]) -> list[bool]:
        """Per record: durable (acknowledged by Kafka or fsynced to the spool)?"""
        loop = asyncio.get_running_loop()
        durable = [False] * len(records)
        pending = list(range(len(records)))
        if self.state.up:
            try:
                results = await deliver(self.sink, records, self.settings.produce_timeout_seconds, self.io)
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
        if pending:
            try:
                await loop.run_in_executor(self.io, self.spool.append, [records[i] for i in pending])
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

    async def accept(self, events: Sequence[Event]) -> tuple[int, int, bool]:
        """Dedup hint, keys, delivery. (accepted, duplicates, all durable)."""
        fresh: list[Event] = []
        batch_ids: set[str] = set()
        duplicates = 0
        for event in events:
            if event.event_id in batch_ids or self.dedup.seen(event.event_id):
                duplicates += 1
                continue
            batch_ids.add(event.event_id)
            fresh.append(event)
        if not fresh:
            return 0, duplicates, True
        durable = await self.deliver(self.records(fresh))
        for event, ok in zip(fresh, durable, strict=True):
            if ok:  # only what is kept may make a retry a "duplicate"
                self.dedup.add(event.event_id)
        self.stats["accepted"] += sum(durable)
        self.stats["duplicates"] += duplicates
        return len(fresh), duplicates, all(durable)


# --- the app -----------------------------------------------------------------------------------


def _parse_batch(body: bytes, media: str, max_events: int) -> list[tuple[int, Any]]:
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


def _openapi_schema(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    event_schema = IncomingEvent.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(event_schema.pop("$defs", {}))
    components["IncomingEvent"] = event_schema
    app.openapi_schema = schema
    return schema


_EVENT_REF = {"$ref": "#/components/schemas/IncomingEvent"}
_BODY_DOC = (
    "Required: event_id (UUID, the dedup key), ad_id, ts (RFC 3339 with zone or epoch ms, from "
    "late_horizon_days ago to future_skew_minutes ahead). Ids are strings (a number is refused). "
    "user_id and ip are replaced by keyed hashes and never stored. Unknown fields are kept in "
    "attributes. Content-Encoding: gzip is accepted."
)


def create_app(
    settings: Settings,
    producer: EventSink | None = None,
    clock: Callable[[], float] | None = None,
) -> FastAPI:
    """The ingestion API. ``producer`` defaults to :class:`ingestion.producer.KafkaSink`;
    ``clock`` (epoch seconds) to ``time.time``. Raises
    :class:`adclick.privacy.MissingHashKeyError` outside local/test without ``ADCLICK_HASH_KEY``.
    The spool drainer thread runs during the app's lifespan; ``app.state.ingestor`` holds the core.
    """
    ingestor = Ingestor(settings, producer, clock or time.time)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ingestor.start()
        try:
            yield
        finally:
            await asyncio.to_thread(ingestor.close)

    app = FastAPI(
        title="adclick ingestion API",
        version="1",
        description="Ad servers and CDN edges send click, impression and conversion events here. "
        "202 means durable: acknowledged by Kafka (acks=all) or fsynced to the local spool, which is "
        "replayed to Kafka when it is back. The 'duplicate' answer is a hint from a short window "
        "(Bloom filters); exact deduplication on event_id happens downstream.",
        lifespan=lifespan,
        # No automatic trailing-slash redirects: they echo the Host header into a Location.
        redirect_slashes=False,
    )
    app.state.ingestor = ingestor
    app.openapi = lambda: _openapi_schema(app)  # type: ignore[method-assign]
    edge_header = settings.edge_country_header

    @app.post(
        "/v1/events",
        status_code=202,
        response_model=None,
        responses={202: {"model": Accepted, "description": "Durable (or a duplicate)."}, **_ERRORS},
        summary="Send one event",
        description=_BODY_DOC,
        openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": _EVENT_REF}}}},
    )
    async def post_event(request: Request) -> Response:
        try:
            ip, publisher = ingestor.gate(request)
            body, _ = await ingestor.read_body(request, (JSON,))
            try:
                obj = parse_json(body)
            except BodyError as exc:
                ingestor.take(1, ip, publisher)
                return error_response(exc.status, exc.field, exc.reason)
            ingestor.take(1, ip, publisher)
        except _Refusal as refusal:
            return refusal.response
        now, received_ms = ingestor.now()
        try:
            event = ingestor.prepare(obj, now, received_ms, request.headers.get(edge_header))
        except ContractError as exc:
            ingestor.stats["rejected"] += 1
            return error_response(400, exc.field, exc.reason)
        accepted, _, durable = await ingestor.accept([event])
        if not durable:
            return ingestor.unavailable()
        status = "accepted" if accepted else "duplicate"
        return _json(202, {"event_id": event.event_id, "status": status})

    @app.post(
        "/v1/events/batch",
        status_code=202,
        response_model=None,
        responses={
            202: {"model": BatchAccepted, "description": "Every accepted event is durable."},
            **_ERRORS,
        },
        summary="Send a batch of events (JSON array or NDJSON)",
        description=_BODY_DOC
        + f" At most max_batch_events ({settings.max_batch_events}) events. One bad event never "
        "rejects its neighbours: it is listed in 'rejected' by index (array position, or 0-based line "
        "number for NDJSON; blank lines are skipped). A repeated event_id within the batch counts as a "
        "duplicate.",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    JSON: {"schema": {"type": "array", "items": _EVENT_REF}},
                    NDJSON: {"schema": {"type": "string", "description": "One event object per line."}},
                },
            }
        },
    )
    async def post_batch(request: Request) -> Response:
        try:
            ip, publisher = ingestor.gate(request)
            body, media = await ingestor.read_body(request, (JSON, NDJSON))
            try:
                items = _parse_batch(body, media, settings.max_batch_events)
            except BodyError as exc:
                ingestor.take(1, ip, publisher)
                return error_response(exc.status, exc.field, exc.reason)
            if not items:
                ingestor.take(1, ip, publisher)
                return error_response(400, "body", "empty batch")
            ingestor.take(len(items), ip, publisher)
        except _Refusal as refusal:
            return refusal.response
        now, received_ms = ingestor.now()
        edge = request.headers.get(edge_header)
        if len(items) >= _OFFLOAD_EVENTS:
            events, rejected = await asyncio.to_thread(ingestor.prepare_many, items, now, received_ms, edge)
        else:
            events, rejected = ingestor.prepare_many(items, now, received_ms, edge)
        ingestor.stats["rejected"] += len(rejected)
        accepted, duplicates, durable = await ingestor.accept([e for _, e in events])
        if not durable:
            return ingestor.unavailable()
        return _json(202, {"accepted": accepted, "duplicates": duplicates, "rejected": rejected})

    @app.get(
        "/v1/health",
        response_model=None,
        responses={200: {"model": Health}, 503: {"model": Health}},
        summary="Can the API accept events? (Kafka reachable or spool room)",
    )
    async def health() -> Response:
        loop = asyncio.get_running_loop()
        reachable = False
        if ingestor.state.up:
            try:
                reachable = bool(
                    await asyncio.wait_for(loop.run_in_executor(ingestor.io, ingestor.sink.reachable), 2.0)
                )
            except Exception:
                reachable = False
        depth = ingestor.spool.depth()
        if reachable and depth.events == 0:
            status = "ok"
        elif reachable or depth.has_room:
            status = "degraded"
        else:
            status = "unavailable"
        body = {
            "status": status,
            "kafka": {"reachable": reachable, "last_error": None if reachable else ingestor.state.last_error},
            "spool": {
                "events": depth.events,
                "bytes": depth.bytes,
                "segments": depth.segments,
                "max_bytes": depth.max_bytes,
            },
            "stats": ingestor.stats,
        }
        return _json(503 if status == "unavailable" else 200, body)

    @app.get(
        "/v1/c/{token}",
        status_code=302,
        response_model=None,
        responses={
            302: {"description": "Click recorded; Location is the ad's destination."},
            400: {"model": ErrorBody, "description": "Tampered, expired or malformed token (no redirect)."},
            404: {"model": ErrorBody, "description": "Click redirects not configured."},
        },
        summary="Signed click redirect: record a click, then 302 to the destination",
    )
    async def click(token: str, request: Request) -> Response:
        no_store = {"Cache-Control": "no-store"}
        if ingestor.redirect_key is None:
            return error_response(404, "token", "click redirects are not configured", headers=no_store)
        seconds = ingestor.clock()
        try:
            claims = verify_token(
                ingestor.redirect_key, token, now=seconds, ttl_seconds=settings.redirect_ttl_seconds
            )
        except TokenError as exc:
            return error_response(400, "token", exc.reason, headers=no_store)
        ip = client_ip(request, ingestor.trusted_proxies)
        # The user always gets to the destination; a click over the IP's rate is just not counted.
        if ingestor.limiter.try_take(1, ip=ip) is None:
            await _record_click(ingestor, request, claims, ip, edge_header)
        return Response(status_code=302, headers={"Location": claims.destination, **no_store})

    return app


async def _record_click(ingestor: Ingestor, request: Request, claims: Any, ip: str, edge_header: str) -> None:
    now, received_ms = ingestor.now()
    user = request.cookies.get(ingestor.settings.click_user_cookie)
    obj: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_type": "click",
        "ad_id": claims.ad_id,
        "campaign_id": claims.campaign_id,
        "placement_id": claims.placement_id,
        "ts": received_ms,
        "user_id": user if user and len(user) <= MAX_TEXT else None,
        "ip": ip[:64],
        "user_agent": (request.headers.get("user-agent") or "")[:MAX_TEXT] or None,
        "referrer": (request.headers.get("referer") or "")[:MAX_TEXT] or None,
    }
    try:
        event = ingestor.prepare(obj, now, received_ms, request.headers.get(edge_header))
    except ContractError as exc:
        log.warning("click not recorded: %s", exc)
        return
    _, _, durable = await ingestor.accept([event])
    if not durable:
        log.error("click not recorded: Kafka unreachable and the spool full")
