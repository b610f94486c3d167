"""The ingestion API's compiled validator and record builder against the reference contract path:
the same refusals (field and reason) for every bad input of the contract's table, the same record
bytes for accepted events, the struct derived from the same field definitions, and the compiled
path actually taken by ordinary events (the reference one only for what it must decide)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import msgspec
import orjson
import pytest
from contract_cases import EVENT_ID, INVALID, NOT_OBJECTS, NOW, full, minimal
from ingestion_validator_support import RECEIVED_MS, VALIDATOR, compiled, reference
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

import ingestion.validator as validator_module
from adclick.contract import Event, IncomingEvent
from adclick.privacy import LOCAL_DEV_KEY, pseudonymise
from ingestion.validator import SPACES, SPECS, TRIMMED, IncomingStruct, _field_spec

# --- refusals: the same field and reason as the reference ----------------------------------------


@pytest.mark.parametrize(("obj", "field"), INVALID)
def test_every_invalid_event_is_refused_as_the_reference_refuses_it(obj: dict[str, Any], field: str) -> None:
    outcome = compiled(obj)
    assert outcome == reference(obj)
    assert isinstance(outcome, tuple)
    assert outcome[0] == field


@pytest.mark.parametrize("obj", NOT_OBJECTS)
def test_a_non_object_is_refused_as_event(obj: Any) -> None:
    assert compiled(obj) == reference(obj) == ("event", "must be a JSON object")


@pytest.mark.parametrize(
    ("obj", "refusal"),
    [
        (minimal(ad_id=42), ("ad_id", "Input should be a valid string")),
        (minimal(ad_id="ad 42/../x"), ("ad_id", "String should match pattern '^[A-Za-z0-9._:\\-]+$'")),
        (minimal(ad_id="ad-1\n"), None),  # stripped, so valid (a Python `$` would also match it)
        (minimal(ts=...), ("ts", "is required")),
        (minimal(event_id="not-a-uuid"), ("event_id", "must be a UUID")),
        (minimal(event_id=12345), ("event_id", "must be a UUID string")),
        (minimal(country="ZZ"), ("country", "must be an ISO 3166-1 alpha-2 country code")),
        (minimal(ts="2025-03-01T13:00:00Z"), ("ts", "is more than the allowed clock skew in the future "
                                                 "(2025-03-01T12:05:00+00:00)")),
        (minimal(ts=1740225600000 - 1), ("ts", "is older than the late-arrival horizon "
                                              "(2025-02-22T12:00:00+00:00)")),
        (minimal(ts="2025-03-01T11:59:00"), ("ts", "must be an RFC 3339 timestamp with zone "
                                                  "(e.g. 2026-01-02T03:04:05Z)")),
        (minimal(ts=True), ("ts", "must be an RFC 3339 timestamp with zone or epoch milliseconds")),
        (minimal(x=-1), ("x", "Input should be greater than or equal to 0")),
        (minimal(event_type="view"), ("event_type", "Input should be 'click', 'impression' or 'conversion'")),
        (minimal(user_agent="M" * 5000), ("user_agent", "String should have at most 2048 characters")),
        (minimal(user_id="   "), ("user_id", "String should have at least 1 character")),  # stripped first
        (minimal(ip="1" * 65), ("ip", "String should have at most 64 characters")),
        (minimal(note="n" * 600), ("note", "unknown field too long (name <= 128, value <= 512)")),
        (minimal(**{f"f{i}": i for i in range(33)}), ("attributes", "at most 32 unknown fields are kept")),
        # the first bad field in the contract's field order wins, whatever the input order
        ({"ts": "yesterday", "country": "ZZ", **minimal(ts=...)},
         ("country", "must be an ISO 3166-1 alpha-2 country code")),
        (minimal(ip="1" * 65, ad_id=5), ("ad_id", "Input should be a valid string")),
    ],
)  # fmt: skip
def test_refusal_messages(obj: dict[str, Any], refusal: tuple[str, str] | None) -> None:
    outcome = compiled(obj)
    assert outcome == reference(obj)
    if refusal is None:
        assert isinstance(outcome, bytes)
    else:
        assert outcome == refusal


# --- accepted: the same record bytes ------------------------------------------------------------


@pytest.mark.parametrize("edge", [None, "de", "DE", " de", "ZZ", ""])
@pytest.mark.parametrize(
    "obj",
    [
        minimal(),
        full(),
        minimal(event_id=EVENT_ID.upper(), country=" gb ", ts=1740826800123, cost_micros=0, x=5),
        minimal(click_id="{FD43FDDE-E6E1-4380-B592-903A835CFE05}", y=100_000, revenue_micros=10**15),
        minimal(device=1, os=13, channel="497", tags={"a": [1, 2]}, note=None, _private=True),
        minimal(**{" padded ": " value\x1c ", "\r": None, "padded": "last wins, first place"}),
        minimal(user_agent="  padded  ", campaign_id=" cmp-1 ", cost_micros=True, x="12.5"),  # lenient
    ],
)
def test_accepted_events_give_the_reference_record_bytes(obj: dict[str, Any], edge: str | None) -> None:
    outcome = compiled(obj, edge)
    assert isinstance(outcome, bytes)
    assert outcome == reference(obj, edge)


def test_record_fields() -> None:
    record = orjson.loads(compiled(full(), "de"))
    assert record["event_id"] == EVENT_ID
    assert record["country"] == "US"  # the event's own country beats the edge's
    assert record["region"] == "na"
    assert record["user_key"] == pseudonymise(LOCAL_DEV_KEY, "user-123", domain="user")
    assert record["ip_key"] == pseudonymise(LOCAL_DEV_KEY, "203.0.113.7", domain="ip")
    assert "user_id" not in record
    assert "ip" not in record
    assert record["ts"] == 1740826800250
    assert record["received_at"] == RECEIVED_MS
    assert record["v"] == 1
    assert record["attributes"] == {}
    assert list(record) == [name for name in Event.model_fields if name in record]  # the model's order


# --- which path decides -------------------------------------------------------------------------


def test_ordinary_events_never_take_the_reference_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the reference validator was called")

    monkeypatch.setattr(validator_module, "validate_incoming", refuse)
    for obj in (minimal(), full(), minimal(device=1, channel="497"), minimal(ts="2025-02-22T12:00:00Z")):
        VALIDATOR.validate(obj, NOW)
    for obj, _ in INVALID:  # errors found by the contract's own checks are worded without it too
        if obj.get("ts") in ("yesterday", "2025-03-01") or obj.get("country") == "XX":
            with pytest.raises(validator_module.ContractError):
                VALIDATOR.validate(obj, NOW)


@pytest.mark.parametrize(
    "obj", [minimal(cost_micros=True), minimal(x="12.5"), minimal(user_id=" u "), minimal(ad_id=" a ")]
)
def test_lenient_input_is_decided_by_the_reference(
    obj: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []
    original = validator_module.validate_incoming
    monkeypatch.setattr(
        validator_module, "validate_incoming", lambda o, **kw: calls.append(o) or original(o, **kw)
    )
    assert isinstance(compiled(obj), bytes)
    assert calls == [obj]


# --- one definition: the struct is derived from the contract's fields ----------------------------


def _variants(prop: dict[str, Any]) -> list[dict[str, Any]]:
    """A JSON-schema property as comparable variants (msgspec and pydantic spell a few keys apart)."""
    out = []
    for variant in prop.get("anyOf", [prop]):
        v = {k: val for k, val in variant.items() if k not in ("title", "default", "anyOf")}
        v = {{"ge": "minimum", "le": "maximum"}.get(k, k): val for k, val in v.items()}
        if "pattern" in v:
            v["pattern"] = v["pattern"].removesuffix(r"\Z").removesuffix("$")
        if "enum" in v:
            v.pop("type", None)
            v["enum"] = sorted(v["enum"])
        out.append(v)
    return out


def test_struct_has_the_contracts_fields_types_constraints_and_defaults() -> None:
    struct = msgspec.json.schema(IncomingStruct)["$defs"]["IncomingStruct"]
    model = IncomingEvent.model_json_schema()
    assert list(struct["properties"]) == list(model["properties"]) == list(IncomingEvent.model_fields)
    assert struct["required"] == model["required"] == ["event_id", "ad_id", "ts"]
    differ = set()
    for name in IncomingEvent.model_fields:
        ours, theirs = struct["properties"][name], model["properties"][name]
        assert ours.get("default") == theirs.get("default"), name
        if _variants(ours) != _variants(theirs):
            differ.add(name)
    # Only where the contract's own Python checks decide: country_code upper-cases and checks the
    # code before any length applies; the event time takes RFC 3339 text or epoch ms.
    assert differ == {"country", "ts"}
    assert {name: spec.check for name, spec in SPECS.items() if spec.check} == {
        "event_id": "uuid", "country": "country", "click_id": "uuid", "ts": "ts"
    }  # fmt: skip
    assert [n for n, spec in SPECS.items() if spec.stripped] == [
        "user_agent",
        "referrer",
        "page_url",
        "user_id",
        "ip",
    ]


def test_a_constraint_the_derivation_does_not_know_fails_loudly() -> None:
    unknown = FieldInfo.from_annotation(Annotated[str, AfterValidator(str.lower)])
    with pytest.raises(TypeError, match="does not know"):
        _field_spec("z", unknown, {})
    with pytest.raises(TypeError, match="does not know"):
        _field_spec("z", FieldInfo.from_annotation(Annotated[str, Field(multiple_of=2)]), {})
    with pytest.raises(TypeError, match="does not know the type"):
        _field_spec("z", FieldInfo.from_annotation(list[int]), {})


def test_trimmed_is_exactly_what_pydantic_strips() -> None:
    class Stripping(BaseModel):
        model_config = ConfigDict(str_strip_whitespace=True)
        text: str

    candidates = SPACES + "\x00\u180e\u200b\u2060\ufeff"
    stripped = "".join(c for c in candidates if Stripping(text=f"{c}x{c}").text == "x")
    assert stripped == TRIMMED


def test_spaces_are_exactly_what_str_strip_removes() -> None:
    computed = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
    assert computed == SPACES
