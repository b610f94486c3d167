"""The ingestion API's compiled event validator, derived from the contract at import.

Reads one decoded JSON value (orjson's output: no lone surrogates) and the server clock; writes
nothing. Gives the same verdicts and the same :class:`adclick.contract.ContractError` (field,
reason) as the reference :func:`adclick.contract.validate_incoming`, in one pass:

1. :func:`msgspec.convert` into a struct built from :class:`adclick.contract.IncomingEvent`'s
   fields (types, lengths, patterns, bounds, literals, required fields and defaults), in C;
2. a whitespace guard on the strings pydantic would strip (``str_strip_whitespace``);
3. the contract's own Python checks, in field order, by the very functions the pydantic model
   calls (:func:`adclick.contract.uuid_text`, :func:`~adclick.contract.country_code`,
   :func:`~adclick.contract.parse_event_time` and :func:`~adclick.contract.check_event_time`);
   an already canonical UUID skips the ``uuid.UUID`` round trip;
4. unknown fields collected in input order (they become ``attributes``).

Whatever msgspec refuses, or the guard flags, goes to the reference validator instead: pydantic
then decides and words the message (it accepts some values msgspec's strict mode does not, e.g.
``True`` for an integer, ``"12.5"`` for a float, ``" ad-1 "`` stripped). That is the error path
and rare lenient input; valid events as clients normally send them never take it.

A contract change the derivation does not know (a new validator, constraint or type) fails at
import, not silently: :func:`_field_spec` raises ``TypeError``.
"""

from __future__ import annotations

import re
import types
import typing
from datetime import datetime
from typing import Annotated, Any, Literal, NamedTuple, get_args, get_origin

import annotated_types as at
import msgspec
from pydantic import BeforeValidator
from pydantic.fields import FieldInfo

from adclick.contract import (
    ContractError,
    IncomingEvent,
    check_event_time,
    country_code,
    event_time_window,
    finite,
    parse_event_time,
    uuid_text,
    validate_incoming,
)
from adclick.geo import COUNTRIES

FIELDS: tuple[str, ...] = tuple(IncomingEvent.model_fields)
KNOWN: frozenset[str] = frozenset(FIELDS)
# Every character str.isspace() (so str.strip()) treats as whitespace (a unit test recomputes it).
SPACES = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# What pydantic's str_strip_whitespace removes (Rust's str::trim: Unicode White_Space), i.e. the
# above without the information separators \x1c-\x1f (a unit test checks it against pydantic).
TRIMMED = SPACES.replace("\x1c\x1d\x1e\x1f", "")
_ONE_CLASS = re.compile(r"\^(\[(?:[^\]\\]|\\.)+\])\+\$")  # ^[...]+$
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").fullmatch


class Valid(NamedTuple):
    """An accepted event: the contract's field values in :data:`FIELDS` order, normalised
    (``ts`` as an aware UTC datetime), and its unknown fields in input order."""

    values: list[Any]
    extras: dict[str, Any]


class _Spec(NamedTuple):
    type: Any  # the msgspec type of the field
    check: str | None  # "uuid", "country", "ts": the contract's Python check to run after msgspec
    stripped: bool  # a plain string pydantic strips before its constraints


def _python_pattern(pattern: str) -> str:
    """A pydantic (Rust regex) pattern for Python's ``re``: a final ``$`` must not match before a
    trailing newline, as it does in Python."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern[:-1] + r"\Z"
    return pattern


def _spaceless(pattern: str | None) -> bool:
    """Whether every string ``pattern`` accepts is free of whitespace (so stripping is a no-op):
    proven for the one shape ``^[class]+$`` whose class holds no whitespace character."""
    shape = _ONE_CLASS.fullmatch(pattern or "")
    if shape is None:
        return False
    one = re.compile(shape.group(1))
    return not any(one.fullmatch(c) for c in SPACES)


def _flat(metadata: list[Any]) -> list[Any]:
    """Constraint objects, with nested ``Field(...)`` infos expanded."""
    out: list[Any] = []
    for item in metadata:
        out.extend(_flat(list(item.metadata)) if isinstance(item, FieldInfo) else [item])
    return out


def _meta(base: Any, metadata: list[Any], name: str) -> tuple[Any, str | None]:
    """``base`` with the constraints in ``metadata`` as a msgspec ``Meta``, and its Python check."""
    kwargs: dict[str, Any] = {}
    check = None
    for item in metadata:
        if isinstance(item, at.MinLen):
            kwargs["min_length"] = item.min_length
        elif isinstance(item, at.MaxLen):
            kwargs["max_length"] = item.max_length
        elif isinstance(item, at.Ge):
            kwargs["ge"] = item.ge
        elif isinstance(item, at.Le):
            kwargs["le"] = item.le
        elif isinstance(item, BeforeValidator) and item.func is uuid_text:
            check = "uuid"
        elif isinstance(item, BeforeValidator) and item.func is finite:
            check = "finite"
        elif type(item).__name__ == "_PydanticGeneralMetadata" and set(vars(item)) == {"pattern"}:
            kwargs["pattern"] = _python_pattern(item.pattern)
        else:
            raise TypeError(f"{name}: the compiled validator does not know the constraint {item!r}")
    if check == "finite":
        # msgspec refuses NaN and infinities only through bounds; without both it would let them in.
        if "ge" not in kwargs or "le" not in kwargs:
            raise TypeError(f"{name}: a finite number needs both bounds in the compiled validator")
        check = None
    if check == "uuid" and kwargs:
        raise TypeError(f"{name}: a UUID field takes no further constraints")
    return (Annotated[base, msgspec.Meta(**kwargs)] if kwargs else base), check


def _field_spec(name: str, field: FieldInfo, field_checks: dict[str, str]) -> _Spec:
    annotation: Any = field.annotation
    metadata = list(field.metadata)
    optional = False
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) != 1 or len(args) == len(get_args(annotation)):
            raise TypeError(f"{name}: only `X | None` unions are compiled, not {annotation!r}")
        optional, annotation = True, args[0]
    if get_origin(annotation) is Annotated:
        annotation, *extra = get_args(annotation)
        metadata = [*extra, *metadata]
    metadata = _flat(metadata)
    check = field_checks.get(name)
    if check == "ts":
        if metadata or annotation is not datetime:
            raise TypeError(f"{name}: the event-time check expects a plain datetime field")
        base: Any = Any  # parse_event_time takes any JSON value and words its own refusals
    elif check == "country":
        if annotation is not str:
            raise TypeError(f"{name}: the country check expects a string field")
        # country_code runs first and returns a code of COUNTRIES, so its constraints must pass
        # every code: only lengths are understood here.
        if not all(isinstance(m, at.MinLen | at.MaxLen) for m in metadata) or not all(
            getattr(m, "min_length", 0) <= len(code) <= getattr(m, "max_length", len(code))
            for m in metadata
            for code in COUNTRIES
        ):
            raise TypeError(f"{name}: country codes would not all pass the field's constraints")
        base = str
    elif get_origin(annotation) is Literal or annotation in (str, int, float):
        base, check = _meta(annotation, metadata, name)
    else:
        raise TypeError(f"{name}: the compiled validator does not know the type {annotation!r}")
    # A string pydantic strips before its checks takes the reference path if stripping would change
    # it; a pattern that admits no whitespace at all makes that impossible.
    pattern = next((m.pattern for m in metadata if type(m).__name__ == "_PydanticGeneralMetadata"), None)
    stripped = (
        annotation is str
        and check is None
        and bool(IncomingEvent.model_config.get("str_strip_whitespace"))
        and not _spaceless(pattern)
    )
    return _Spec(base | None if optional else base, check, stripped)


def _field_checks() -> dict[str, str]:
    """Field -> Python check, from the model's ``@field_validator``s (each must be known)."""
    decorators = IncomingEvent.__pydantic_decorators__
    for kind in (
        "model_validators",
        "validators",
        "root_validators",
        "field_serializers",
        "model_serializers",
    ):
        if getattr(decorators, kind):
            raise TypeError(f"IncomingEvent has {kind} the compiled validator does not know")
    known = {"_country": ("country", "before"), "_ts": ("ts", "before")}
    checks: dict[str, str] = {}
    for attr, decorator in decorators.field_validators.items():
        if attr not in known or known[attr][1] != decorator.info.mode:
            raise TypeError(f"IncomingEvent.{attr}: the compiled validator does not know this validator")
        for name in decorator.info.fields:
            checks[name] = known[attr][0]
    return checks


def _build() -> tuple[type[msgspec.Struct], dict[str, _Spec]]:
    if IncomingEvent.model_config.get("extra") != "allow":
        raise TypeError(
            "the compiled validator keeps unknown fields as attributes: IncomingEvent must allow extras"
        )
    checks = _field_checks()
    specs = {name: _field_spec(name, field, checks) for name, field in IncomingEvent.model_fields.items()}
    fields: list[tuple[Any, ...]] = []
    for (name, spec), field in zip(specs.items(), IncomingEvent.model_fields.values(), strict=True):
        if field.default_factory is not None:
            raise TypeError(f"{name}: the compiled validator does not know default factories")
        fields.append((name, spec.type) if field.is_required() else (name, spec.type, field.default))
    return msgspec.defstruct("IncomingStruct", fields, kw_only=True), specs


IncomingStruct, SPECS = _build()
_STRIPPED = tuple(i for i, spec in enumerate(SPECS.values()) if spec.stripped)
_CHECKS = tuple((i, name, spec.check) for i, (name, spec) in enumerate(SPECS.items()) if spec.check)


class _Lenient(Exception):
    """Not decided by the compiled path: the reference validator decides."""


class EventValidator:
    """Validates decoded events against the contract, with the server clock of each call."""

    def __init__(self, *, late_horizon_days: int = 7, future_skew_minutes: int = 5) -> None:
        self.late_horizon_days = late_horizon_days
        self.future_skew_minutes = future_skew_minutes
        # (now, window) in one tuple: batches validated in worker threads swap it atomically.
        self._cached: tuple[datetime | None, tuple[datetime, datetime]] = (None, (datetime.min, datetime.max))

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """(earliest, latest) event time for ``now``; computed once per server clock reading."""
        cached = self._cached
        if cached[0] is not now:
            cached = (now, event_time_window(now, self.late_horizon_days, self.future_skew_minutes))
            self._cached = cached
        return cached[1]

    def validate(self, obj: Any, now: datetime) -> Valid:
        """:class:`Valid`, or :class:`ContractError` naming the first bad field (as pydantic would)."""
        try:
            return self._compiled(obj, now)
        except (_Lenient, msgspec.ValidationError):
            pass
        incoming = validate_incoming(
            obj,
            now=now,
            late_horizon_days=self.late_horizon_days,
            future_skew_minutes=self.future_skew_minutes,
        )
        return Valid([getattr(incoming, name) for name in FIELDS], dict(incoming.model_extra or {}))

    def _compiled(self, obj: Any, now: datetime) -> Valid:
        values = list(msgspec.structs.astuple(msgspec.convert(obj, IncomingStruct)))
        for i in _STRIPPED:
            value = values[i]
            if value is not None and value.strip() is not value:
                raise _Lenient
        for i, name, check in _CHECKS:
            value = values[i]
            try:
                if check == "ts":
                    values[i] = check_event_time(parse_event_time(value), *self.window(now))
                elif value is None:
                    continue
                elif check == "uuid":
                    if not _CANONICAL_UUID(value):
                        values[i] = uuid_text(value)
                else:
                    values[i] = country_code(value)
            except ValueError as exc:
                raise ContractError(name, str(exc)) from None
        extras = {} if KNOWN.issuperset(obj) else {k: v for k, v in obj.items() if k not in KNOWN}
        return Valid(values, extras)
