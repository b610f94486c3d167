"""The ingestion API's OpenAPI documentation: response models, error table, request body schemas.

Documentation only: the handlers never build these models (they answer with orjson bytes, see
:mod:`ingestion.responses`), so the models cost nothing on the hot path. The request bodies are
documented as :class:`adclick.contract.IncomingEvent`, whose JSON schema
:func:`openapi_schema` adds to the generated components (the handlers take the raw body, so
FastAPI cannot infer it).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from adclick.contract import IncomingEvent


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


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed body or an event breaking the contract."},
    401: {"model": ErrorBody, "description": "Missing or invalid X-Api-Key (when keys are configured)."},
    413: {"model": ErrorBody, "description": "Body too large (as sent or after gunzip), or too many events."},
    415: {"model": ErrorBody, "description": "Unsupported Content-Type or Content-Encoding."},
    429: {"model": ErrorBody, "description": "Rate limit (events/s per IP and per key); see Retry-After."},
    503: {"model": ErrorBody, "description": "Kafka unreachable and the local spool full: nothing was kept."},
}

EVENT_REF = {"$ref": "#/components/schemas/IncomingEvent"}
BODY_DOC = (
    "Required: event_id (UUID, the dedup key), ad_id, ts (RFC 3339 with zone or epoch ms, from "
    "late_horizon_days ago to future_skew_minutes ahead). Ids are strings (a number is refused). "
    "user_id and ip are replaced by keyed hashes and never stored. Unknown fields are kept in "
    "attributes. Content-Encoding: gzip is accepted."
)


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI schema with :class:`IncomingEvent` in its components (built once)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    event_schema = IncomingEvent.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(event_schema.pop("$defs", {}))
    components["IncomingEvent"] = event_schema
    app.openapi_schema = schema
    return schema
