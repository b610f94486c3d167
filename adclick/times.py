"""Times given on the command line: ``now`` or RFC 3339 / ISO 8601 (no zone means UTC)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime


def parse_time(text: str, now: datetime) -> datetime:
    """``now`` or an RFC 3339 / ISO 8601 time (``Z`` or an offset; no zone means UTC), in UTC."""
    value = text.strip()
    if value.lower() == "now":
        return now
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (use 'now' or e.g. 2026-01-02T03:04:05Z)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
