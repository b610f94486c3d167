"""Replay the TalkingData AdTracking CSV as IncomingEvent dicts (real clicks, real skew).

Reads ``ip, app, device, os, channel, click_time, attributed_time, is_attributed`` (UTC times,
``YYYY-MM-DD HH:MM:SS``) and yields, in file order, one click per row and, for a row with
``is_attributed=1``, a conversion right after it:

* ``ad_id = "app-{app}"``, ``campaign_id = "ch-{channel}"``;
* ``event_id`` = UUIDv5 of the row's full content, so an exact duplicate row is a retry of the
  same event (same ``event_id``); the conversion's id is derived the same way;
* ``ts`` = the row's time shifted by one constant so the file's latest event time lands at
  ``end`` (relative spacing kept; the API refuses events older than its late-arrival horizon);
* ``ip`` = dotted IPv4 of the integer (the dataset's ips are already encoded, not real
  addresses), ``user_id = "{ip}-{device}-{os}"`` (the dataset's usual user proxy);
* ``device``, ``os``, ``channel`` are kept as unknown fields (they land in ``attributes``);
* conversions: ``ts`` = shifted ``attributed_time``, ``click_id`` = the click's ``event_id``.

The file is read twice (once for the time range, once to yield), so memory stays constant and a
malformed row fails before anything is yielded. :class:`ReplayError` names the line.
"""

from __future__ import annotations

import csv
import ipaddress
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from traffic.generator import rfc3339_ms, to_ms

COLUMNS: tuple[str, ...] = (
    "ip",
    "app",
    "device",
    "os",
    "channel",
    "click_time",
    "attributed_time",
    "is_attributed",
)
# Fixed namespace of replayed event ids: the same row always yields the same event_id.
REPLAY_NAMESPACE = uuid.UUID("6f1d3c3e-6b8a-5d7e-9c43-2f0a7f5b1c11")
_EPOCH_NAIVE = datetime(1970, 1, 1)  # the file's times are naive UTC


class ReplayError(ValueError):
    """A malformed CSV row or header; the message names the file and line."""


@dataclass
class ReplayStats:
    """What a replay read and produced (filled while events are yielded)."""

    rows: int = 0
    clicks: int = 0
    conversions: int = 0
    first_time: str | None = None  # earliest event time in the file, original clock
    last_time: str | None = None  # latest event time in the file, original clock
    shift: timedelta | None = None  # added to every original time
    expected_events: int | None = None  # clicks + conversions the file holds, known after the first read


@dataclass(frozen=True)
class _Row:
    content: str
    ip: int
    app: int
    device: int
    os: int
    channel: int
    click_ms: int
    attributed_ms: int | None


def _time_ms(text: str) -> int:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return (parsed - _EPOCH_NAIVE) // timedelta(milliseconds=1)


def _rows(path: Path) -> Iterator[_Row]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise ReplayError(f"{path}:1: empty file, expected a header with {', '.join(COLUMNS)}")
        names = [h.strip() for h in header]
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise ReplayError(f"{path}:1: header lacks column(s) {', '.join(missing)}")
        index = [names.index(c) for c in COLUMNS]
        width = len(names)
        for fields in reader:
            line = reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            if len(fields) != width:
                raise ReplayError(f"{path}:{line}: expected {width} fields, found {len(fields)}")
            values = [fields[i].strip() for i in index]
            ip_s, app_s, device_s, os_s, channel_s, click_s, attributed_s, flag_s = values
            try:
                ip, app, device, os_, channel = (int(v) for v in (ip_s, app_s, device_s, os_s, channel_s))
            except ValueError:
                raise ReplayError(
                    f"{path}:{line}: ip, app, device, os and channel must be integers"
                ) from None
            if min(ip, app, device, os_, channel) < 0 or ip >= 2**32:
                raise ReplayError(f"{path}:{line}: ip, app, device, os or channel out of range")
            try:
                click_ms = _time_ms(click_s)
            except ValueError:
                raise ReplayError(f"{path}:{line}: bad click_time {click_s!r}") from None
            if flag_s not in ("0", "1"):
                raise ReplayError(f"{path}:{line}: is_attributed must be 0 or 1, not {flag_s!r}")
            attributed_ms = None
            if flag_s == "1":
                try:
                    attributed_ms = _time_ms(attributed_s)
                except ValueError:
                    raise ReplayError(
                        f"{path}:{line}: is_attributed=1 needs an attributed_time, got {attributed_s!r}"
                    ) from None
            yield _Row(
                ",".join(f.strip() for f in fields), ip, app, device, os_, channel, click_ms, attributed_ms
            )


def replay_events(
    path: Path | str,
    *,
    end: datetime,
    stats: ReplayStats | None = None,
    country: str | None = None,
) -> Iterator[dict[str, Any]]:
    """IncomingEvent dicts of the TalkingData CSV at ``path``, in file order, shifted to end at ``end``.

    ``country`` (ISO alpha-2), when given, is set on every event (the dataset has none).
    Raises :class:`ReplayError` (naming the line) before yielding anything if a row is malformed.
    """
    if end.tzinfo is None:
        raise ValueError("end must be timezone-aware")
    path = Path(path)
    stats = stats if stats is not None else ReplayStats()
    first = last = None
    expected = 0
    for row in _rows(path):
        expected += 1 if row.attributed_ms is None else 2
        latest = row.click_ms if row.attributed_ms is None else max(row.click_ms, row.attributed_ms)
        first = row.click_ms if first is None else min(first, row.click_ms)
        last = latest if last is None else max(last, latest)
    if first is None or last is None:
        return
    shift_ms = to_ms(end) - last
    stats.first_time, stats.last_time = rfc3339_ms(first), rfc3339_ms(last)
    stats.shift = timedelta(milliseconds=shift_ms)
    stats.expected_events = expected

    for row in _rows(path):
        stats.rows += 1
        click_id = str(uuid.uuid5(REPLAY_NAMESPACE, row.content))
        click: dict[str, Any] = {
            "event_id": click_id,
            "event_type": "click",
            "ad_id": f"app-{row.app}",
            "campaign_id": f"ch-{row.channel}",
            "ts": rfc3339_ms(row.click_ms + shift_ms),
            "ip": str(ipaddress.IPv4Address(row.ip)),
            "user_id": f"{row.ip}-{row.device}-{row.os}",
            "device": row.device,
            "os": row.os,
            "channel": row.channel,
        }
        if country is not None:
            click["country"] = country
        stats.clicks += 1
        yield click
        if row.attributed_ms is not None:
            conversion = dict(click)
            conversion["event_id"] = str(uuid.uuid5(REPLAY_NAMESPACE, "conversion:" + row.content))
            conversion["event_type"] = "conversion"
            conversion["ts"] = rfc3339_ms(row.attributed_ms + shift_ms)
            conversion["click_id"] = click_id
            stats.conversions += 1
            yield conversion
