"""The Kafka record of an accepted event, built straight from the validated values.

Reads a :class:`ingestion.validator.Valid` event, the keyed hasher and the receive time; writes
nothing. The value is the JSON of :class:`adclick.contract.Event` exactly as
:meth:`adclick.contract.Event.to_json` writes it after :func:`adclick.contract.to_event` (same
keys, in the model's field order, nulls left out, same bytes), without building the pydantic
model and validating the event a second time: ``user_id`` / ``ip`` replaced by their keyed
hashes (:class:`adclick.privacy.Pseudonymiser`), ``ts`` as epoch milliseconds, ``region`` from
the country (or the edge's country header when the event has none), unknown fields as
``attributes`` (:func:`adclick.contract.attributes_of`, which may refuse them), their names and
values trimmed of whitespace after the length checks, as the reference's second validation
(``Event``'s ``str_strip_whitespace``) leaves them.
"""

from __future__ import annotations

from typing import NamedTuple

import orjson

from adclick.contract import SCHEMA_VERSION, Event, attributes_of
from adclick.geo import COUNTRIES, region_of
from adclick.privacy import Pseudonymiser
from ingestion.validator import FIELDS, TRIMMED, Valid

# Event = the incoming fields without ts / user_id / ip, then what the API adds, in this order.
SHARED: tuple[str, ...] = tuple(name for name in FIELDS if name not in ("ts", "user_id", "ip"))
ADDED = ("v", "ts", "user_key", "ip_key", "region", "attributes", "received_at")
if tuple(Event.model_fields) != SHARED + ADDED or FIELDS[len(SHARED) :] != ("ts", "user_id", "ip"):
    raise TypeError("adclick.contract.Event changed shape: teach ingestion.event_record its field order")
_EVENT_ID = FIELDS.index("event_id")
_AD_ID = FIELDS.index("ad_id")
_COUNTRY = FIELDS.index("country")
_TS, _USER_ID, _IP = (FIELDS.index(name) for name in ("ts", "user_id", "ip"))


class PreparedEvent(NamedTuple):
    """What the API keeps of an accepted event: its id (duplicate hint), ad (Kafka key), record value."""

    event_id: str
    ad_id: str
    value: bytes


def build_record(
    valid: Valid, *, hasher: Pseudonymiser, received_at_ms: int, edge_country: str | None = None
) -> PreparedEvent:
    """The record of ``valid``; :class:`adclick.contract.ContractError` for unknown fields too many
    or too long (checked last, as :func:`adclick.contract.to_event` does)."""
    values = valid.values
    country = values[_COUNTRY]
    if country is None and edge_country and edge_country.upper() in COUNTRIES:
        country = values[_COUNTRY] = edge_country.upper()
    # values go on with ts, user_id and ip after the shared fields: zip stops before them.
    record = {name: value for name, value in zip(SHARED, values, strict=False) if value is not None}
    record["v"] = SCHEMA_VERSION
    record["ts"] = int(values[_TS].timestamp() * 1000)
    user_key = hasher.user(values[_USER_ID])
    if user_key is not None:
        record["user_key"] = user_key
    ip_key = hasher.ip(values[_IP])
    if ip_key is not None:
        record["ip_key"] = ip_key
    record["region"] = region_of(country)
    attributes = attributes_of(valid.extras) if valid.extras else {}
    if attributes:
        attributes = {name.strip(TRIMMED): text.strip(TRIMMED) for name, text in attributes.items()}
    record["attributes"] = attributes
    record["received_at"] = received_at_ms
    return PreparedEvent(values[_EVENT_ID], values[_AD_ID], orjson.dumps(record))
