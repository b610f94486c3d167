"""What the ingestion API answers with: orjson JSON responses and the one error body.

Reads nothing; builds Starlette responses. Every refusal has the body
``{"error": "field: reason", "field", "reason"}``; :class:`Refusal` carries a ready response out
of a request gate to the route, which answers it as is.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response

from ingestion.request_parsing import JSON

_MAX_FIELD_CHARS = 128


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def field_text(field: str) -> str:
    """The field name as echoed in an error (cut, since it may come from an unknown key)."""
    return field if len(field) <= _MAX_FIELD_CHARS else field[:_MAX_FIELD_CHARS] + "..."


def error_response(status: int, field: str, reason: str, headers: dict[str, str] | None = None) -> Response:
    field = field_text(field)
    return json_response(status, {"error": f"{field}: {reason}", "field": field, "reason": reason}, headers)


class Refusal(Exception):
    """A request refused before its events are looked at; ``response`` is the answer."""

    def __init__(self, response: Response) -> None:
        self.response = response
