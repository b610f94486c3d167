"""The event contract, defined once.

Two shapes of one event:

* :class:`IncomingEvent`: what ad servers and CDN edges send (raw ``user_id`` / ``ip`` allowed).
* :class:`Event`: what the ingestion API produces to Kafka and the stream lands in bronze. Raw
  personal data is replaced by keyed hashes (``user_key``, ``ip_key``), ``ts`` is epoch
  milliseconds (UTC), ``region`` is derived from ``country``, unknown fields live in ``attributes``.

The Spark schema of the Kafka record (:func:`spark_schema`) is derived from :class:`Event`, the
JSON Schema (:func:`json_schema`, the API's OpenAPI) from :class:`IncomingEvent`, and so is the
ingestion API's compiled validator (:mod:`ingestion.validator`: a msgspec struct built from
:class:`IncomingEvent`'s fields, calling the same check functions defined here), so none of
them can drift apart. :func:`validate_incoming` and :func:`to_event` are the reference path
(pydantic): what the compiled validator must agree with, verdict and message.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, get_args, get_origin

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from adclick.geo import COUNTRIES, region_of
from adclick.privacy import pseudonymise

EVENT_TYPES = ("click", "impression", "conversion")
SCHEMA_VERSION = 1
MAX_ID = 128
MAX_TEXT = 2048
MAX_ATTRIBUTES = 32
MAX_ATTRIBUTE_VALUE = 512


class ContractError(ValueError):
    """An event that breaks the contract. ``field`` names the offending field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def parse_event_time(value: Any) -> datetime:
    """RFC 3339 with an explicit zone, or epoch milliseconds."""
    if isinstance(value, bool):
        raise ValueError("must be an RFC 3339 timestamp with zone or epoch milliseconds")
    if isinstance(value, (int, float)):  # a tuple: `int | float` would build a union per call
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number of epoch milliseconds")
        try:
            return datetime.fromtimestamp(value / 1000.0, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError("epoch milliseconds out of range") from exc
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError("must be an RFC 3339 timestamp with zone or epoch milliseconds") from exc
        if "T" not in text.upper() or parsed.tzinfo is None:
            raise ValueError("must be an RFC 3339 timestamp with zone (e.g. 2026-01-02T03:04:05Z)")
        return parsed.astimezone(UTC)
    raise ValueError("must be an RFC 3339 timestamp with zone or epoch milliseconds")


def event_time_window(
    now: datetime, late_horizon_days: int = 7, future_skew_minutes: int = 5
) -> tuple[datetime, datetime]:
    """The accepted event times around the server clock ``now``: (earliest, latest), inclusive."""
    return now - timedelta(days=late_horizon_days), now + timedelta(minutes=future_skew_minutes)


def check_event_time(parsed: datetime, earliest: datetime, latest: datetime) -> datetime:
    """``parsed`` if inside the window of :func:`event_time_window`, else :class:`ValueError`."""
    if parsed < earliest:
        raise ValueError(f"is older than the late-arrival horizon ({earliest.isoformat()})")
    if parsed > latest:
        raise ValueError(f"is more than the allowed clock skew in the future ({latest.isoformat()})")
    return parsed


def uuid_text(value: Any) -> str:
    """The canonical (lower-case, hyphenated) text of a UUID string."""
    if not isinstance(value, str):
        raise ValueError("must be a UUID string")
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise ValueError("must be a UUID") from exc


def finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def country_code(value: Any) -> Any:
    """An ISO 3166-1 alpha-2 code, upper-cased; a non-string passes (the type check refuses it)."""
    if isinstance(value, str):
        code = value.strip().upper()
        if code not in COUNTRIES:
            raise ValueError("must be an ISO 3166-1 alpha-2 country code")
        return code
    return value


def _json_text(value: Any) -> str:
    """Compact JSON of an unknown field's value; the stdlib takes what orjson refuses (integers
    beyond 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def attributes_of(extras: Mapping[str, Any]) -> dict[str, str]:
    """Unknown fields, kept (not dropped) as a string map; :class:`ContractError` if too many or long."""
    if len(extras) > MAX_ATTRIBUTES:
        raise ContractError("attributes", f"at most {MAX_ATTRIBUTES} unknown fields are kept")
    out: dict[str, str] = {}
    for key, value in extras.items():
        text = value if isinstance(value, str) else _json_text(value)
        if len(key) > MAX_ID or len(text) > MAX_ATTRIBUTE_VALUE:
            raise ContractError(
                key, f"unknown field too long (name <= {MAX_ID}, value <= {MAX_ATTRIBUTE_VALUE})"
            )
        out[key] = text
    return out


Id = Annotated[str, Field(min_length=1, max_length=MAX_ID, pattern=r"^[A-Za-z0-9._:\-]+$")]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
Uuid = Annotated[str, BeforeValidator(uuid_text)]
Coordinate = Annotated[float, BeforeValidator(finite), Field(ge=0, le=100_000)]
Micros = Annotated[int, Field(ge=0, le=10**15)]


class _Common(BaseModel):
    """Fields both shapes share, with their validation."""

    model_config = ConfigDict(extra="forbid", strict=False, str_strip_whitespace=True)

    event_id: Uuid
    event_type: Literal["click", "impression", "conversion"] = "click"
    ad_id: Id
    campaign_id: Id | None = None
    country: Annotated[str, Field(min_length=2, max_length=2)] | None = None
    user_agent: Text | None = None
    referrer: Text | None = None
    page_url: Text | None = None
    placement_id: Id | None = None
    x: Coordinate | None = None
    y: Coordinate | None = None
    experiment_id: Id | None = None
    variant: Id | None = None
    click_id: Uuid | None = None
    cost_micros: Micros | None = None
    revenue_micros: Micros | None = None

    @field_validator("country", mode="before")
    @classmethod
    def _country(cls, value: Any) -> Any:
        return country_code(value)


class IncomingEvent(_Common):
    """One event as sent by an ad server or CDN edge. Unknown fields go to ``attributes``.

    Validate with ``IncomingEvent.model_validate(obj, context={"now": datetime, ...})`` so the
    accepted event-time range is checked against the server's clock.
    """

    model_config = ConfigDict(extra="allow", strict=False, str_strip_whitespace=True)

    ts: datetime
    user_id: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)] | None = None
    ip: Annotated[str, Field(min_length=1, max_length=64)] | None = None

    @field_validator("ts", mode="before")
    @classmethod
    def _ts(cls, value: Any, info: ValidationInfo) -> datetime:
        parsed = parse_event_time(value)
        ctx = info.context or {}
        now: datetime | None = ctx.get("now")
        if now is None:
            return parsed
        window = event_time_window(now, ctx.get("late_horizon_days", 7), ctx.get("future_skew_minutes", 5))
        return check_event_time(parsed, *window)

    def extra_attributes(self) -> dict[str, str]:
        """Unknown fields, kept (not dropped) as a string map."""
        return attributes_of(self.model_extra or {})


class Event(_Common):
    """One event as produced to Kafka and landed in bronze (no raw personal data)."""

    v: int = SCHEMA_VERSION
    ts: int = Field(description="Event time, epoch milliseconds UTC.")
    user_key: str | None = Field(default=None, description="Keyed HMAC-SHA256 of user_id.")
    ip_key: str | None = Field(default=None, description="Keyed HMAC-SHA256 of ip.")
    region: str = Field(description="Region derived from country (na, eu, apac, other, unknown).")
    attributes: dict[str, str] = Field(default_factory=dict)
    received_at: int = Field(description="Server receive time, epoch milliseconds UTC.")

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(exclude_none=True))


def json_schema() -> dict[str, Any]:
    """JSON Schema of the incoming event (what clients send)."""
    return IncomingEvent.model_json_schema()


def _spark_type(annotation: Any) -> Any:
    import pyspark.sql.types as T

    origin = get_origin(annotation)
    args = [a for a in get_args(annotation) if a is not type(None)]
    if origin is Annotated:
        return _spark_type(args[0])
    if origin is Literal:
        return T.StringType()
    if origin is dict:
        return T.MapType(T.StringType(), T.StringType())
    if args and origin is not None:  # Optional[X] / X | None
        return _spark_type(args[0])
    mapping = {str: T.StringType(), int: T.LongType(), float: T.DoubleType(), bool: T.BooleanType()}
    if annotation in mapping:
        return mapping[annotation]
    raise TypeError(f"no Spark type for {annotation!r}")


def spark_schema() -> Any:
    """The Spark ``StructType`` of a Kafka record value, derived from :class:`Event`."""
    import pyspark.sql.types as T

    return T.StructType(
        [
            T.StructField(name, _spark_type(field.annotation), nullable=not field.is_required())
            for name, field in Event.model_fields.items()
        ]
    )


def now_utc() -> datetime:
    return datetime.now(tz=UTC)


def validate_incoming(
    obj: Any, *, now: datetime, late_horizon_days: int = 7, future_skew_minutes: int = 5
) -> IncomingEvent:
    """Validate one decoded JSON value; raise :class:`ContractError` naming the first bad field."""
    if not isinstance(obj, dict):
        raise ContractError("event", "must be a JSON object")
    context = {"now": now, "late_horizon_days": late_horizon_days, "future_skew_minutes": future_skew_minutes}
    try:
        return IncomingEvent.model_validate(obj, context=context)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in err["loc"]) or "event"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "is required"
        raise ContractError(field, msg) from None


def to_event(
    incoming: IncomingEvent,
    *,
    key: bytes,
    received_at_ms: int,
    edge_country: str | None = None,
) -> Event:
    """The Kafka record of an accepted event: hashes personal data, derives region, keeps extras."""
    data = incoming.model_dump(exclude={"ts", "user_id", "ip"}, exclude_none=True)
    for extra in incoming.model_extra or {}:
        data.pop(extra, None)
    country = incoming.country
    if country is None and edge_country and edge_country.upper() in COUNTRIES:
        country = edge_country.upper()
        data["country"] = country
    return Event(
        **data,
        ts=int(incoming.ts.timestamp() * 1000),
        user_key=pseudonymise(key, incoming.user_id, domain="user"),
        ip_key=pseudonymise(key, incoming.ip, domain="ip"),
        region=region_of(country),
        attributes=incoming.extra_attributes(),
        received_at=received_at_ms,
    )
