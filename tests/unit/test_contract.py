"""The event contract: what is accepted, what is refused (and which field is named), to_event."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from contract_cases import CLICK_ID, EVENT_ID, INVALID, NOT_OBJECTS, NOW, full, minimal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adclick.contract import (
    MAX_ATTRIBUTES,
    ContractError,
    Event,
    IncomingEvent,
    json_schema,
    spark_schema,
    to_event,
    validate_incoming,
)
from adclick.privacy import LOCAL_DEV_KEY, Pseudonymiser, pseudonymise


def field_of(obj: Any, **kwargs: Any) -> str:
    with pytest.raises(ContractError) as info:
        validate_incoming(obj, now=NOW, **kwargs)
    return info.value.field


# --- valid ------------------------------------------------------------------------------------


def test_minimal_event_defaults_to_click() -> None:
    event = validate_incoming(minimal(), now=NOW)
    assert event.event_type == "click"
    assert event.ts == datetime(2025, 3, 1, 11, 0, 0, 250_000, tzinfo=UTC)
    assert event.user_id is None
    assert event.country is None


def test_full_event_is_normalised() -> None:
    event = validate_incoming(full(), now=NOW)
    assert event.event_type == "conversion"
    assert event.country == "US"  # upper-cased
    assert event.click_id == CLICK_ID
    assert event.x == 12.5
    assert event.y == 0
    assert event.revenue_micros == 12_340_000


def test_epoch_milliseconds_ts() -> None:
    ms = int(datetime(2025, 3, 1, 11, 30, tzinfo=UTC).timestamp() * 1000) + 123
    event = validate_incoming(minimal(ts=ms), now=NOW)
    assert event.ts == datetime(2025, 3, 1, 11, 30, 0, 123_000, tzinfo=UTC)


def test_rfc3339_with_offset_is_converted_to_utc() -> None:
    event = validate_incoming(minimal(ts="2025-03-01T13:00:00+02:00"), now=NOW)
    assert event.ts == datetime(2025, 3, 1, 11, 0, tzinfo=UTC)
    assert event.ts.utcoffset() == timedelta(0)


def test_horizon_edges_are_inclusive() -> None:
    assert validate_incoming(minimal(ts="2025-02-22T12:00:00Z"), now=NOW).ts == NOW - timedelta(days=7)
    assert validate_incoming(minimal(ts="2025-03-01T12:05:00Z"), now=NOW).ts == NOW + timedelta(minutes=5)


def test_uuid_is_normalised_to_canonical_text() -> None:
    event = validate_incoming(minimal(event_id=EVENT_ID.upper()), now=NOW)
    assert event.event_id == EVENT_ID


def test_unknown_fields_are_kept() -> None:
    event = validate_incoming(minimal(device=1, channel="497"), now=NOW)
    assert event.extra_attributes() == {"device": "1", "channel": "497"}


# --- invalid: each names the offending field --------------------------------------------------


@pytest.mark.parametrize(("obj", "field"), INVALID)
def test_invalid_event_names_the_field(obj: dict[str, Any], field: str) -> None:
    assert field_of(obj) == field


@pytest.mark.parametrize("obj", NOT_OBJECTS)
def test_non_object_is_refused_as_event(obj: Any) -> None:
    assert field_of(obj) == "event"


def test_horizon_and_skew_are_configurable() -> None:
    old = minimal(ts="2025-02-27T12:00:00Z")  # 2 days old
    assert field_of(old, late_horizon_days=1) == "ts"
    assert validate_incoming(old, now=NOW, late_horizon_days=3).ts.day == 27
    ahead = minimal(ts="2025-03-01T12:10:00Z")
    assert field_of(ahead) == "ts"
    assert validate_incoming(ahead, now=NOW, future_skew_minutes=15).ts.minute == 10


def test_error_reason_is_readable() -> None:
    with pytest.raises(ContractError) as info:
        validate_incoming(minimal(ts="2025-01-01T00:00:00Z"), now=NOW)
    assert "late-arrival horizon" in info.value.reason
    assert str(info.value).startswith("ts: ")
    with pytest.raises(ContractError) as info:
        validate_incoming(minimal(ad_id=...), now=NOW)
    assert info.value.reason == "is required"


# --- to_event ---------------------------------------------------------------------------------


def kafka_record(obj: dict[str, Any], **kwargs: Any) -> Event:
    return to_event(
        validate_incoming(obj, now=NOW), key=LOCAL_DEV_KEY, received_at_ms=1_740_830_400_000, **kwargs
    )


def test_to_event_hashes_personal_data() -> None:
    event = kafka_record(full())
    assert event.user_key == pseudonymise(LOCAL_DEV_KEY, "user-123", domain="user")
    assert event.ip_key == pseudonymise(LOCAL_DEV_KEY, "203.0.113.7", domain="ip")
    assert event.user_key is not None
    assert len(event.user_key) == 32
    assert event.user_key != event.ip_key
    other = to_event(validate_incoming(full(), now=NOW), key=b"another-key", received_at_ms=0)
    assert other.user_key != event.user_key  # keyed: a different secret gives different keys


@pytest.mark.parametrize("key", [b"", b"k", LOCAL_DEV_KEY, bytes(64), bytes(range(65)), b"x" * 200])
@pytest.mark.parametrize("value", ["", "user-123", "203.0.113.7", "é中😀", "x" * 5000])
def test_pseudonymiser_is_the_keyed_hmac(key: bytes, value: str) -> None:
    hasher = Pseudonymiser(key)
    assert hasher.user(value) == hmac.new(key, f"user\x00{value}".encode(), hashlib.sha256).hexdigest()[:32]
    assert hasher.ip(value) == hmac.new(key, f"ip\x00{value}".encode(), hashlib.sha256).hexdigest()[:32]
    assert hasher.user(value) == pseudonymise(key, value, domain="user")
    assert hasher.user(None) is None
    assert hasher.ip(None) is None


def test_to_event_output_has_no_raw_personal_data() -> None:
    payload = kafka_record(full()).to_json()
    decoded = orjson.loads(payload)
    assert "user_id" not in decoded
    assert "ip" not in decoded
    assert b"user-123" not in payload
    assert b"203.0.113.7" not in payload


def test_to_event_fields() -> None:
    event = kafka_record(full())
    assert event.v == 1
    assert event.ts == int(datetime(2025, 3, 1, 11, 0, 0, 250_000, tzinfo=UTC).timestamp() * 1000)
    assert event.received_at == 1_740_830_400_000
    assert event.region == "na"
    assert event.country == "US"
    assert event.event_type == "conversion"
    assert event.click_id == CLICK_ID
    assert event.attributes == {}
    assert "attributes" in orjson.loads(event.to_json())


@pytest.mark.parametrize(
    ("country", "region"), [("US", "na"), ("de", "eu"), ("JP", "apac"), ("BR", "other"), (None, "unknown")]
)
def test_to_event_region(country: str | None, region: str) -> None:
    assert kafka_record(minimal(country=country if country else ...)).region == region


def test_edge_country_fills_a_missing_country_only() -> None:
    assert kafka_record(minimal(), edge_country="de").country == "DE"
    assert kafka_record(minimal(), edge_country="de").region == "eu"
    assert kafka_record(minimal(country="US"), edge_country="DE").country == "US"
    unknown = kafka_record(minimal(), edge_country="ZZ")
    assert unknown.country is None
    assert unknown.region == "unknown"


def test_to_event_keeps_unknown_fields_in_attributes() -> None:
    event = kafka_record(minimal(device=1, os=13, channel="497", tags={"a": [1, 2]}))
    assert event.attributes == {"device": "1", "os": "13", "channel": "497", "tags": '{"a":[1,2]}'}
    decoded = orjson.loads(event.to_json())
    assert "device" not in decoded
    assert decoded["attributes"]["channel"] == "497"


def test_too_many_or_too_long_unknown_fields_are_refused() -> None:
    crowded = minimal(**{f"f{i}": i for i in range(MAX_ATTRIBUTES + 1)})
    with pytest.raises(ContractError) as info:
        kafka_record(crowded)
    assert info.value.field == "attributes"
    with pytest.raises(ContractError) as info:
        kafka_record(minimal(note="n" * 600))
    assert info.value.field == "note"


def test_event_json_omits_nulls() -> None:
    decoded = orjson.loads(kafka_record(minimal()).to_json())
    assert "user_key" not in decoded
    assert "campaign_id" not in decoded
    assert decoded["event_type"] == "click"


# --- schemas derived from the one definition --------------------------------------------------


def test_spark_schema_matches_event_model() -> None:
    import pyspark.sql.types as T

    schema = spark_schema()
    assert [f.name for f in schema.fields] == list(Event.model_fields)
    by_name = {f.name: f for f in schema.fields}
    assert by_name["ts"].dataType == T.LongType()
    assert by_name["x"].dataType == T.DoubleType()
    assert by_name["attributes"].dataType == T.MapType(T.StringType(), T.StringType())
    assert by_name["event_type"].dataType == T.StringType()
    assert not by_name["event_id"].nullable
    assert by_name["user_key"].nullable


def test_json_schema_requires_the_contract_fields() -> None:
    schema = json_schema()
    assert set(schema["required"]) == {"event_id", "ad_id", "ts"}
    assert set(IncomingEvent.model_fields) <= set(schema["properties"])


# --- property: anything a client can send is either accepted or refused with a ContractError ----

_json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
)
_field_names = st.sampled_from([*IncomingEvent.model_fields, "extra", "device"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.fixed_dictionaries({}, optional={"event_id": st.just(EVENT_ID), "ad_id": st.just("ad-1")}),
    noise=st.dictionaries(_field_names, _json_values, max_size=6),
)
def test_any_json_object_is_accepted_or_refused_cleanly(base: dict[str, Any], noise: dict[str, Any]) -> None:
    obj = {"ts": "2025-03-01T11:00:00Z", **base, **noise}
    try:
        incoming = validate_incoming(obj, now=NOW)
        to_event(incoming, key=LOCAL_DEV_KEY, received_at_ms=0).to_json()
    except ContractError as exc:
        assert exc.field
