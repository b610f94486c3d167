"""Time parameters and the aligned ranges they give: ``from``/``to``, grains, bucket starts.

Reads and writes nothing. ``from``/``to`` are ISO 8601 / RFC 3339 (no zone = UTC), ``now``, or
relative to now (``-15m``, ``-2h``, ``-7d``, ``-1w``). A bucket (minute, hour, day) is served when
it overlaps [from, to): ``from`` is floored and ``to`` ceiled to the grain, and the aligned bounds
are echoed. Bad input raises :class:`query_api.parsing.BadParameter` naming the parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from adclick.times import parse_time
from query_api.parsing import BadParameter

Granularity = Literal["minute", "hour", "day"]
GRAIN: dict[str, timedelta] = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}
# The most buckets one request may ask for: a week of minutes, a quarter of hours, three years of days.
MAX_BUCKETS = {"minute": 7 * 24 * 60, "hour": 92 * 24, "day": 3 * 366}
_RELATIVE = re.compile(r"^-(\d{1,7})([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(parameter: str, text: str, now: datetime) -> datetime:
    """``now``, ``-<n><s|m|h|d|w>`` before now, or an ISO 8601 time (no zone = UTC); aware UTC."""
    value = text.strip()
    match = _RELATIVE.match(value)
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        return parse_time(value, now)
    except Exception:
        raise BadParameter(
            parameter, "not a time (ISO 8601 such as 2026-01-02T03:04:05Z, 'now', or relative such as -15m)"
        ) from None


def floor_to(moment: datetime, granularity: str) -> datetime:
    moment = moment.astimezone(UTC)
    if granularity == "minute":
        return moment.replace(second=0, microsecond=0)
    if granularity == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def ceil_to(moment: datetime, granularity: str) -> datetime:
    floored = floor_to(moment, granularity)
    return floored if floored == moment else floored + GRAIN[granularity]


@dataclass(frozen=True)
class Range:
    """[start, end) aligned to ``granularity`` (``start``/``end`` are bucket starts, end exclusive)."""

    start: datetime
    end: datetime
    granularity: str

    @property
    def buckets(self) -> int:
        return int((self.end - self.start) / GRAIN[self.granularity])

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        """The day of the last instant in the range (inclusive)."""
        return (self.end - timedelta(microseconds=1)).date()

    @property
    def end_day(self) -> date:
        """The first day after the range (exclusive bound for day grains)."""
        return (
            self.end.date() if self.end == floor_to(self.end, "day") else self.end.date() + timedelta(days=1)
        )

    def previous(self) -> Range:
        """The period of the same length just before this one."""
        return Range(self.start - (self.end - self.start), self.start, self.granularity)

    def bucket_starts(self) -> list[datetime]:
        step = GRAIN[self.granularity]
        return [self.start + i * step for i in range(self.buckets)]


def time_range(
    granularity: str,
    now: datetime,
    *,
    start: str | None,
    end: str | None,
    default: timedelta,
    minutes: int | None = None,
) -> Range:
    """The aligned range of a request; ``minutes`` (if given) means from = to - minutes."""
    if granularity not in GRAIN:
        raise BadParameter("granularity", f"must be one of {', '.join(GRAIN)}")
    to = parse_when("to", end, now) if end is not None else now
    if minutes is not None:
        if start is not None:
            raise BadParameter("minutes", "give either from or minutes, not both")
        if minutes < 1:
            raise BadParameter("minutes", "must be at least 1")
        begin = to - timedelta(minutes=minutes)
    else:
        begin = parse_when("from", start, now) if start is not None else to - default
    if begin >= to:
        raise BadParameter("from", "must be before to")
    aligned = Range(floor_to(begin, granularity), ceil_to(to, granularity), granularity)
    if aligned.buckets > MAX_BUCKETS[granularity]:
        raise BadParameter(
            "from", f"range too long: at most {MAX_BUCKETS[granularity]} {granularity} buckets per request"
        )
    return aligned
