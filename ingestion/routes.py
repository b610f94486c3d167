"""The ingestion API's HTTP routes: single events, batches, health and signed click redirects.

Reads HTTP requests; answers with orjson bytes (:mod:`ingestion.responses`) and hands the events
to the :class:`ingestion.ingestor.Ingestor` it is built on, which makes them durable. ``202`` is
only answered once every accepted event of the request is durable.

Order of checks per request: client IP bucket not empty (429), API key (401), content type and
encoding (415), body size as declared, as read and after gunzip (413), JSON (400), batch size
(400 empty / 413 too many), rate limit for the number of events (429), then per event: nesting
depth, contract, duplicate hint, hot-key salting, delivery (503 only if neither Kafka nor the
spool took the events). Large batches are validated in a worker thread, to keep ``/v1/health``
and small requests responsive.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request, Response

from adclick.contract import MAX_TEXT, ContractError
from adclick.settings import Settings
from ingestion.ingestor import Ingestor
from ingestion.limits import BodyError, parse_json
from ingestion.redirect import TokenError, verify_token
from ingestion.request_parsing import JSON, NDJSON, client_ip, parse_batch, read_body
from ingestion.responses import Refusal, error_response, json_response
from ingestion.schemas import BODY_DOC, ERRORS, EVENT_REF, Accepted, BatchAccepted, ErrorBody, Health

log = logging.getLogger(__name__)

_OFFLOAD_EVENTS = 200  # batches at least this large are validated in a worker thread


async def _read_body(request: Request, allowed: Sequence[str], settings: Settings) -> tuple[bytes, str]:
    """:func:`ingestion.request_parsing.read_body`, a refused body as a :class:`Refusal`."""
    try:
        return await read_body(request, allowed, settings)
    except BodyError as exc:
        raise Refusal(error_response(exc.status, exc.field, exc.reason)) from None


def build_router(ingestor: Ingestor) -> APIRouter:
    """The routes, all served by ``ingestor`` (and documented with its settings' limits)."""
    settings = ingestor.settings
    edge_header = settings.edge_country_header
    router = APIRouter()

    @router.post(
        "/v1/events",
        status_code=202,
        response_model=None,
        responses={202: {"model": Accepted, "description": "Durable (or a duplicate)."}, **ERRORS},
        summary="Send one event",
        description=BODY_DOC,
        openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": EVENT_REF}}}},
    )
    async def post_event(request: Request) -> Response:
        try:
            ip, publisher = ingestor.gate(request)
            body, _ = await _read_body(request, (JSON,), settings)
            try:
                obj = parse_json(body)
            except BodyError as exc:
                ingestor.take(1, ip, publisher)
                return error_response(exc.status, exc.field, exc.reason)
            ingestor.take(1, ip, publisher)
        except Refusal as refusal:
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
        return json_response(202, {"event_id": event.event_id, "status": status})

    @router.post(
        "/v1/events/batch",
        status_code=202,
        response_model=None,
        responses={
            202: {"model": BatchAccepted, "description": "Every accepted event is durable."},
            **ERRORS,
        },
        summary="Send a batch of events (JSON array or NDJSON)",
        description=BODY_DOC
        + f" At most max_batch_events ({settings.max_batch_events}) events. One bad event never "
        "rejects its neighbours: it is listed in 'rejected' by index (array position, or 0-based line "
        "number for NDJSON; blank lines are skipped). A repeated event_id within the batch counts as a "
        "duplicate.",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    JSON: {"schema": {"type": "array", "items": EVENT_REF}},
                    NDJSON: {"schema": {"type": "string", "description": "One event object per line."}},
                },
            }
        },
    )
    async def post_batch(request: Request) -> Response:
        try:
            ip, publisher = ingestor.gate(request)
            body, media = await _read_body(request, (JSON, NDJSON), settings)
            try:
                items = parse_batch(body, media, settings.max_batch_events)
            except BodyError as exc:
                ingestor.take(1, ip, publisher)
                return error_response(exc.status, exc.field, exc.reason)
            if not items:
                ingestor.take(1, ip, publisher)
                return error_response(400, "body", "empty batch")
            ingestor.take(len(items), ip, publisher)
        except Refusal as refusal:
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
        return json_response(202, {"accepted": accepted, "duplicates": duplicates, "rejected": rejected})

    @router.get(
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
        return json_response(503 if status == "unavailable" else 200, body)

    @router.get(
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

    return router


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
