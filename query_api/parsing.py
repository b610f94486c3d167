"""Parsing of the values a request sends: names from a whitelist, filter values, ids.

Reads and writes nothing: each function takes the text a caller sent and returns it checked, or
raises :class:`BadParameter` naming the parameter (the API answers HTTP 400 with that name). The
whitelists themselves (dimensions, metrics, filters per view) are in :mod:`query_api.queries`,
beside the SQL they become; times and ranges are in :mod:`query_api.timerange`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

MAX_VALUE_CHARS = 128
MAX_FILTER_VALUES = 100


class BadParameter(ValueError):
    """A request parameter the API refuses (HTTP 400 naming ``parameter``)."""

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(f"{parameter}: {reason}")
        self.parameter = parameter
        self.reason = reason


def parse_names(parameter: str, text: str | None, allowed: Sequence[str], *, default: str) -> list[str]:
    """A comma-separated list of names, each one of ``allowed``; no repeats, at least one."""
    raw = default if text is None else text
    names = [n.strip() for n in raw.split(",")]
    if not names or any(not n for n in names):
        raise BadParameter(parameter, "an empty name in the list")
    for name in names:
        if name not in allowed:
            shown = name if len(name) <= 40 else name[:40] + "..."
            raise BadParameter(parameter, f"unknown name {shown!r}; allowed: {', '.join(allowed)}")
    if len(set(names)) != len(names):
        raise BadParameter(parameter, "a name is repeated")
    return names


def parse_values(parameter: str, text: str) -> list[str]:
    """A filter's values: one value, or several separated by commas (matched with IN)."""
    values = [v.strip() for v in text.split(",")]
    if any(not v for v in values):
        raise BadParameter(parameter, "an empty value")
    if len(values) > MAX_FILTER_VALUES:
        raise BadParameter(parameter, f"at most {MAX_FILTER_VALUES} values")
    if any(len(v) > MAX_VALUE_CHARS for v in values):
        raise BadParameter(parameter, f"a value longer than {MAX_VALUE_CHARS} characters")
    return values


def check_value(parameter: str, value: str) -> str:
    """A single id (path parameter): non-empty, at most MAX_VALUE_CHARS."""
    if not value or len(value) > MAX_VALUE_CHARS:
        raise BadParameter(parameter, f"must be 1 to {MAX_VALUE_CHARS} characters")
    return value


def parse_filters(given: Mapping[str, str | None], allowed: Sequence[str]) -> dict[str, list[str]]:
    """The filters that were given (name -> values); a filter not in ``allowed`` is refused."""
    filters: dict[str, list[str]] = {}
    for name, text in given.items():
        if text is None:
            continue
        if name not in allowed:
            raise BadParameter(name, f"not a filter here; allowed: {', '.join(allowed)}")
        filters[name] = parse_values(name, text)
    return filters
