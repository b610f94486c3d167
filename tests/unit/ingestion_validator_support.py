"""What the compiled-validator tests share: one event through the reference path (pydantic:
``validate_incoming`` then ``to_event(...).to_json()``) and through the ingestion API's compiled
path (``EventValidator`` then ``build_record``), each as the record bytes or the refusal."""

from __future__ import annotations

from typing import Any

from contract_cases import NOW

from adclick.contract import ContractError, to_event, validate_incoming
from adclick.privacy import LOCAL_DEV_KEY, Pseudonymiser
from ingestion.event_record import build_record
from ingestion.validator import EventValidator

RECEIVED_MS = 1_740_830_400_000
VALIDATOR = EventValidator()
HASHER = Pseudonymiser(LOCAL_DEV_KEY)

Outcome = bytes | tuple[str, str]
"""The record value of an accepted event, the (field, reason) of its refusal, or, for an input
JSON cannot carry (e.g. an int beyond 64 bits in an unknown field), the exception type and text."""


def reference(obj: Any, edge_country: str | None = None) -> Outcome:
    try:
        incoming = validate_incoming(obj, now=NOW)
        event = to_event(incoming, key=LOCAL_DEV_KEY, received_at_ms=RECEIVED_MS, edge_country=edge_country)
        return event.to_json()
    except ContractError as exc:
        return exc.field, exc.reason
    except Exception as exc:  # the same crash on both paths is agreement too
        return type(exc).__name__, str(exc)


def compiled(obj: Any, edge_country: str | None = None) -> Outcome:
    try:
        valid = VALIDATOR.validate(obj, NOW)
        return build_record(valid, hasher=HASHER, received_at_ms=RECEIVED_MS, edge_country=edge_country).value
    except ContractError as exc:
        return exc.field, exc.reason
    except Exception as exc:
        return type(exc).__name__, str(exc)
