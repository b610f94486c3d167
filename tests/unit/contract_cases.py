"""What the contract tests share: a fixed server clock, a minimal and a full event, and the table of
invalid events with the field each must be refused on (the reference validator and the ingestion
API's compiled one are both held to it)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EVENT_ID = "4e26177e-cf45-4e6f-93a6-3c2b68aaf461"
CLICK_ID = "fd43fdde-e6e1-4380-b592-903a835cfe05"


def minimal(**overrides: Any) -> dict[str, Any]:
    """The smallest valid event, with ``overrides`` (``...`` drops a field)."""
    event: dict[str, Any] = {"event_id": EVENT_ID, "ad_id": "ad-00001", "ts": "2025-03-01T11:00:00.250Z"}
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not ...}


def full() -> dict[str, Any]:
    return minimal(
        event_type="conversion",
        campaign_id="cmp-0001",
        user_id="user-123",
        ip="203.0.113.7",
        country="us",
        user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X)",
        referrer="https://news.example.org/a/1",
        page_url="https://shop.example.com/thanks",
        placement_id="pl-news-300x250",
        x=12.5,
        y=0,
        experiment_id="exp-01",
        variant="B",
        click_id=CLICK_ID,
        revenue_micros=12_340_000,
    )


INVALID: list[tuple[dict[str, Any], str]] = [
    (minimal(ad_id=...), "ad_id"),
    (minimal(event_id=...), "event_id"),
    (minimal(ts=...), "ts"),
    (minimal(event_id="not-a-uuid"), "event_id"),
    (minimal(event_id=12345), "event_id"),
    (minimal(click_id="nope"), "click_id"),
    (minimal(country="XX"), "country"),
    (minimal(country="USA"), "country"),
    (minimal(ts="2025-02-22T11:59:59Z"), "ts"),  # older than 7 days
    (minimal(ts="2025-03-01T12:05:01Z"), "ts"),  # more than 5 minutes ahead
    (minimal(ts="2025-03-01T11:00:00"), "ts"),  # no zone
    (minimal(ts="2025-03-01"), "ts"),  # no time
    (minimal(ts="yesterday"), "ts"),
    (minimal(ts=True), "ts"),
    (minimal(ts=float("nan")), "ts"),
    (minimal(ts=10**20), "ts"),
    (minimal(x=-1), "x"),
    (minimal(y=-0.5), "y"),
    (minimal(x=float("nan")), "x"),
    (minimal(y=math.inf), "y"),
    (minimal(x=100_001), "x"),
    (minimal(x="left"), "x"),
    (minimal(cost_micros=-1), "cost_micros"),
    (minimal(event_type="view"), "event_type"),
    (minimal(ad_id=""), "ad_id"),
    (minimal(ad_id="ad 1"), "ad_id"),
    (minimal(ad_id="a" * 129), "ad_id"),
    (minimal(user_agent="M" * 2049), "user_agent"),
    (minimal(user_id="u" * 2049), "user_id"),
    (minimal(ip="1" * 65), "ip"),
    (minimal(page_url="https://x/" + "p" * 3000), "page_url"),
]
NOT_OBJECTS: list[Any] = [[], [minimal()], "event", None, 42, b"{}"]
