"""Errors of the query API: the one error body, its OpenAPI description, and the exception handlers.

Every error is ``{"error": "parameter: reason", "parameter", "reason"}``: 400 for a bad parameter
(:class:`query_api.parsing.BadParameter`, or a value the endpoint's parameter model refuses), 503
when Trino or a serving view is not there (yet), 500 when Trino fails the statement. An unknown
query parameter (the models forbid extra fields) takes precedence over the other errors of the
request, and its reason lists the parameters the endpoint knows.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field

from query_api.executor import QueryFailed, QueryUnavailable
from query_api.formats import json_response
from query_api.params import Params
from query_api.parsing import BadParameter

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    error: str = Field(description="'parameter: reason'")
    parameter: str
    reason: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "A bad parameter (named in 'parameter')."},
    500: {"model": ErrorBody, "description": "Trino failed the statement."},
    503: {"model": ErrorBody, "description": "Trino unreachable, or the serving view not created yet."},
}


def error_response(status: int, parameter: str, reason: str) -> Response:
    return json_response(
        status, {"error": f"{parameter}: {reason}", "parameter": parameter, "reason": reason}
    )


def unknown_parameter(name: str, known: list[str]) -> BadParameter:
    """The refusal of a query parameter the endpoint does not take (a long name is cut to 40)."""
    shown = name if len(name) <= 40 else name[:40] + "..."
    return BadParameter(shown, f"unknown parameter; known: {', '.join(known)}")


def _known_parameters(request: Request) -> list[str]:
    """The query parameters of the request's route: the fields of its parameter model."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    names: set[str] = set()
    for field in getattr(dependant, "query_params", ()):
        model = field.field_info.annotation
        if isinstance(model, type) and issubclass(model, Params):
            names.update(model.known())
        else:
            names.add(field.alias)
    return sorted(names)


async def _bad_parameter(request: Request, exc: BadParameter) -> Response:
    return error_response(400, exc.parameter, exc.reason)


async def _invalid(request: Request, exc: RequestValidationError) -> Response:
    errors = exc.errors()
    extra = next((e for e in errors if e.get("type") == "extra_forbidden"), None)
    if extra is not None:
        refused = unknown_parameter(str(extra["loc"][-1]), _known_parameters(request))
        return error_response(400, refused.parameter, refused.reason)
    first = errors[0] if errors else {"loc": ("request",), "msg": "invalid"}
    loc = [str(part) for part in first.get("loc", ()) if part not in ("query", "path", "body")]
    return error_response(400, loc[0] if loc else "request", str(first.get("msg", "invalid")))


async def _unavailable(request: Request, exc: QueryUnavailable) -> Response:
    return error_response(503, "trino", str(exc))


async def _failed(request: Request, exc: QueryFailed) -> Response:
    log.warning("Trino failed a statement: %s", exc)
    return error_response(500, "trino", str(exc))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BadParameter, _bad_parameter)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(QueryUnavailable, _unavailable)
    app.add_exception_handler(QueryFailed, _failed)
