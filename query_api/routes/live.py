"""``WS /v1/live``: clicks per minute for the last ``minutes`` (default 30), sent when they change.

Reads ``serving.ad_clicks_minute`` every ``live_interval`` seconds (through the cache, whose live
results last that long) and sends ``{"type": "minutes", "from", "to", "minutes": [...]}`` when the
answer differs from the last one sent: ``[from, to)`` is the window of whole minutes asked for (the
newest still filling), so a client can draw every minute of it, those without a row as zero; a
minute moving on is a change too. A Trino failure is sent as ``{"type": "error"}`` and polling goes
on. A bad parameter is one error message, then the socket is closed with 1008 (policy violation).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from query_api.context import Ctx
from query_api.executor import QueryFailed, QueryUnavailable
from query_api.formats import dumps
from query_api.parsing import BadParameter, parse_filters
from query_api.queries import LIVE_FILTERS, live_query
from query_api.timerange import floor_to

router = APIRouter()

LIVE_MAX_MINUTES = 180
_KNOWN = sorted(("minutes", *LIVE_FILTERS))


@router.websocket("/v1/live")
async def live(ws: WebSocket, ctx: Ctx) -> None:
    """Clicks per minute for the last ``minutes`` (default 30), sent whenever they change."""
    await ws.accept()
    try:
        minutes, filters = _parameters(ws)
    except BadParameter as exc:
        await ws.send_text(dumps({"type": "error", "parameter": exc.parameter, "error": str(exc)}).decode())
        await ws.close(code=1008)
        return
    closed = asyncio.create_task(_wait_closed(ws))
    last: Any = None
    try:
        while not closed.done():
            since = floor_to(ctx.now(), "minute") - timedelta(minutes=minutes - 1)
            until = since + timedelta(minutes=minutes)
            try:
                result, _ = await ctx.fetch(live_query(ctx.views, since, filters), live=True)
                message: dict[str, Any] = {
                    "type": "minutes",
                    "from": since,
                    "to": until,
                    "minutes": result.records(),
                }
            except (QueryUnavailable, QueryFailed) as exc:
                message = {"type": "error", "error": str(exc)}
            if message != last:
                await ws.send_text(dumps(message).decode())
                last = message
            await asyncio.wait({closed}, timeout=ctx.live_interval)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the client left while a message was being sent
    finally:
        closed.cancel()


def _parameters(ws: WebSocket) -> tuple[int, dict[str, list[str]]]:
    """``minutes`` and the filters of the connection's query string; BadParameter if refused."""
    for name in ws.query_params:
        if name not in _KNOWN:
            raise BadParameter(name[:40], f"unknown parameter; known: {', '.join(_KNOWN)}")
    raw = ws.query_params.get("minutes", "30")
    if not raw.isdigit() or not 1 <= int(raw) <= LIVE_MAX_MINUTES:
        raise BadParameter("minutes", f"must be an integer from 1 to {LIVE_MAX_MINUTES}")
    filters = parse_filters({k: ws.query_params.get(k) for k in LIVE_FILTERS}, LIVE_FILTERS)
    return int(raw), filters


async def _wait_closed(ws: WebSocket) -> None:
    """Returns when the client goes away (messages it sends are ignored)."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
