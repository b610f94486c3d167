"""Properties of the ingestion API's compiled validator and record builder (hypothesis).

* Any valid event (a strategy over the contract's fields) round-trips: validated, written as the
  Kafka record and parsed back, it holds the same values (normalised as the contract says:
  canonical UUIDs, upper-case country, ts in epoch ms), ``user_id`` / ``ip`` replaced by their
  keyed hashes and unknown fields kept as strings in ``attributes``; and the bytes are the
  reference path's.
* On any dict (wrong types, missing fields, out-of-range ts, bad country or UUID, padded strings,
  lenient numbers, unknown fields), the compiled path and the reference one agree: the same record
  bytes, or the same refusal (field and reason).
"""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from contract_cases import NOW
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingestion_validator_support import RECEIVED_MS, compiled, reference

from adclick.contract import COUNTRIES, MAX_ATTRIBUTE_VALUE, IncomingEvent
from adclick.geo import region_of
from adclick.privacy import LOCAL_DEV_KEY, pseudonymise
from ingestion.validator import TRIMMED

PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIELDS = list(IncomingEvent.model_fields)
ID_CHARS = string.ascii_letters + string.digits + "._:-"

# --- valid events -------------------------------------------------------------------------------

ids = st.text(ID_CHARS, min_size=1, max_size=128)
texts = st.text(max_size=300).filter(lambda s: s == s.strip())  # padded strings are stripped
uuids = st.uuids().map(str).flatmap(lambda u: st.sampled_from([u, u.upper()]))
window_ms = st.integers(
    int((NOW - timedelta(days=7)).timestamp() * 1000), int((NOW + timedelta(minutes=5)).timestamp() * 1000)
)


def _rfc3339(ms: int, offset_minutes: int, zulu: bool) -> str:
    """Epoch ``ms`` as RFC 3339 text, in UTC with ``Z`` or at another offset."""
    at = datetime.fromtimestamp(ms / 1000, tz=UTC)
    if zulu:
        return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return at.astimezone(timezone(timedelta(minutes=offset_minutes))).isoformat()


timestamps = window_ms | st.builds(_rfc3339, window_ms, st.integers(-12 * 60, 14 * 60), st.booleans())
attribute_names = st.text(min_size=1, max_size=20).filter(lambda k: k not in FIELDS)
attribute_values = (
    st.text(max_size=MAX_ATTRIBUTE_VALUE)
    | st.integers(-(2**63), 2**63 - 1)
    | st.booleans()
    | st.none()
    | st.lists(st.integers(0, 99), max_size=5)
)
OPTIONAL = {
    "event_type": st.sampled_from(["click", "impression", "conversion"]),
    "campaign_id": ids | st.none(),
    "country": st.sampled_from(sorted(COUNTRIES)).flatmap(lambda c: st.sampled_from([c, c.lower()])),
    "user_agent": texts.filter(lambda s: len(s) <= 2048),
    "referrer": texts,
    "page_url": texts,
    "placement_id": ids,
    "x": st.floats(0, 100_000) | st.integers(0, 100_000),
    "y": st.floats(0, 100_000),
    "experiment_id": ids,
    "variant": ids,
    "click_id": uuids | st.none(),
    "cost_micros": st.integers(0, 10**15),
    "revenue_micros": st.integers(0, 10**15),
    "user_id": texts.filter(bool),
    "ip": texts.filter(lambda s: 0 < len(s) <= 64),
}
valid_events = st.fixed_dictionaries(
    {"event_id": uuids, "ad_id": ids, "ts": timestamps}, optional=OPTIONAL
).flatmap(
    lambda event: st.dictionaries(attribute_names, attribute_values, max_size=5).map(
        lambda extras: {**event, **extras}
    )
)


def _expected(event: dict[str, Any]) -> dict[str, Any]:
    """The record the contract promises for a valid ``event`` (an oracle of its own, not the code)."""
    out: dict[str, Any] = {}
    normalise = {"event_id": str.lower, "click_id": str.lower, "country": str.upper, "x": float, "y": float}
    for name, value in event.items():
        if name in FIELDS and value is not None and name not in ("ts", "user_id", "ip"):
            out[name] = normalise.get(name, lambda v: v)(value)
    out.setdefault("event_type", "click")
    ts = event["ts"]
    if isinstance(ts, str):
        ts = int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)
    out["ts"] = int(datetime.fromtimestamp(ts / 1000.0, tz=UTC).timestamp() * 1000)
    if event.get("user_id") is not None:
        out["user_key"] = pseudonymise(LOCAL_DEV_KEY, event["user_id"], domain="user")
    if event.get("ip") is not None:
        out["ip_key"] = pseudonymise(LOCAL_DEV_KEY, event["ip"], domain="ip")
    out["v"] = 1
    out["region"] = region_of(event.get("country"))
    out["attributes"] = {  # as strings, names and values trimmed as pydantic trims (TRIMMED)
        k.strip(TRIMMED): (v if isinstance(v, str) else orjson.dumps(v).decode()).strip(TRIMMED)
        for k, v in event.items()
        if k not in FIELDS
    }
    out["received_at"] = RECEIVED_MS
    return out


@PROPERTY
@given(event=valid_events)
def test_any_valid_event_round_trips_through_the_record(event: dict[str, Any]) -> None:
    value = compiled(event)
    assert isinstance(value, bytes), value
    record = orjson.loads(value)
    assert record == _expected(event)
    assert "user_id" not in record
    assert "ip" not in record
    assert value == reference(event)


# --- any dict: the same verdict and message as the reference ------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=20)
    | st.text(" \t\n\x0b\x1c\u00a0\u3000" + ID_CHARS, max_size=12)  # padded, or whitespace only
)
anything = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
_UUID_FORMS = [
    str.upper,
    lambda u: f"{{{u}}}",
    lambda u: u.replace("-", ""),
    lambda u: f"urn:uuid:{u}",
    " {}".format,
]
_TS_TEXTS = [
    "2025-03-01T11:00:00",
    "2025-03-01",
    "yesterday",
    " 2025-03-01T11:00:00Z ",
    "2025-03-01t11:00:00z",
    "2025-02-22T11:59:59Z",
    "2025-03-01T12:05:01Z",
]
tricky = {
    "event_id": uuids | st.tuples(uuids, st.sampled_from(_UUID_FORMS)).map(lambda t: t[1](t[0])),
    "ts": timestamps | st.integers() | st.floats() | st.sampled_from(_TS_TEXTS),
    "country": st.sampled_from(["us", " US ", "USA", "XX", "ß", "u s", "", *sorted(COUNTRIES)]),
    "cost_micros": st.integers(-5, 10**16) | st.floats(-1, 1e16) | st.sampled_from([True, "12", "7 "]),
    "x": st.floats() | st.integers(-5, 200_000) | st.sampled_from([True, "12.5", "inf", "nan", "3 "]),
    "event_type": st.sampled_from(["click", "impression", "conversion", "view", " click", "CLICK"]),
    "ad_id": ids | st.sampled_from([" ad-1 ", "ad 1", "", "a" * 129, "ad-1\n"]),
    "user_id": texts | st.sampled_from([" ", " u ", "\x1cu", "u" * 2049]),
}  # fmt: skip
noise = st.dictionaries(
    st.sampled_from([*FIELDS, "extra", "_private", "v", "attributes", "region", "user_key"]),
    anything,
    max_size=5,
)


@PROPERTY
@given(
    base=st.fixed_dictionaries({}, optional={"event_id": uuids, "ad_id": ids, "ts": timestamps}),
    twisted=st.fixed_dictionaries({}, optional=tricky),
    noise=noise,
    valid_extra=st.fixed_dictionaries({}, optional=OPTIONAL),
    edge=st.none() | st.sampled_from(["de", "DE", " de", "ZZ", ""]),
)
def test_compiled_and_reference_paths_agree_on_any_dict(
    base: dict[str, Any],
    twisted: dict[str, Any],
    noise: dict[str, Any],
    valid_extra: dict[str, Any],
    edge: str | None,
) -> None:
    obj = {**base, **valid_extra, **twisted, **noise}
    assert compiled(obj, edge) == reference(obj, edge)


@PROPERTY
@given(base=valid_events, twisted=st.fixed_dictionaries({}, optional=tricky))
def test_one_twisted_field_of_a_valid_event_gets_the_same_verdict(
    base: dict[str, Any], twisted: dict[str, Any]
) -> None:
    obj = {**base, **twisted}
    assert compiled(obj) == reference(obj)
