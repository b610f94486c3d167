"""Ground truth of a generated run, accumulated while the generator emits events.

What the generator knows and the pipeline has to rediscover: distinct ``event_id``s per event type,
distinct events per (event type, ad, UTC day), distinct clicks per (ad, UTC minute) and per country,
the number of duplicate (retried) sends, late events, bot clicks, per-variant funnel counts, and the
dimension rows (``ads``: ad -> campaign -> advertiser + CPC; ``users``: pseudonymised user key ->
age group, segment). Counts are exact; tests and the acceptance checks compare the lake with them.

A duplicate send (client retry) counts only in ``events_sent`` and ``duplicate_sends``; a late event
is a distinct event first sent at least ``min_lateness`` after its event time; bot clicks are
distinct clicks of the bot bursts (described in ``bots``).

Keys: days are ``YYYY-MM-DD`` and minutes ``YYYY-MM-DDTHH:MM`` (UTC, the minute the event time
falls in). Serialised with :meth:`Truth.to_json` / :meth:`Truth.from_json`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from adclick.contract import EVENT_TYPES


def _zero_per_type() -> dict[str, int]:
    return dict.fromkeys(EVENT_TYPES, 0)


def _empty_per_type() -> dict[str, dict[str, dict[str, int]]]:
    return {t: {} for t in EVENT_TYPES}


@dataclass
class Truth:
    """Exact counts of one generated run (see the module docstring for the grain of each field)."""

    seed: int | None = None
    start: str | None = None
    end: str | None = None
    events_sent: int = 0
    distinct: dict[str, int] = field(default_factory=_zero_per_type)
    duplicate_sends: int = 0
    late_events: int = 0
    bot_clicks: int = 0
    # event type -> ad_id -> day -> distinct events
    by_ad_day: dict[str, dict[str, dict[str, int]]] = field(default_factory=_empty_per_type)
    # ad_id -> minute -> distinct clicks
    clicks_by_ad_minute: dict[str, dict[str, int]] = field(default_factory=dict)
    # country -> distinct clicks
    clicks_by_country: dict[str, int] = field(default_factory=dict)
    # experiment_id -> variant -> {"impressions", "clicks", "conversions"}
    variants: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    cost_micros: int = 0
    revenue_micros: int = 0
    bots: list[dict[str, Any]] = field(default_factory=list)
    ads: list[dict[str, Any]] = field(default_factory=list)
    users: list[dict[str, Any]] = field(default_factory=list)

    def record(
        self, event: dict[str, Any], *, duplicate: bool = False, late: bool = False, bot: bool = False
    ) -> None:
        """Count one send. A duplicate send only bumps ``events_sent`` and ``duplicate_sends``."""
        self.events_sent += 1
        if duplicate:
            self.duplicate_sends += 1
            return
        event_type: str = event["event_type"]
        ad_id: str = event["ad_id"]
        ts: str = event["ts"]  # RFC 3339 UTC "YYYY-MM-DDTHH:MM:SS.mmmZ"
        day = ts[:10]
        self.distinct[event_type] += 1
        per_day = self.by_ad_day[event_type].setdefault(ad_id, {})
        per_day[day] = per_day.get(day, 0) + 1
        if late:
            self.late_events += 1
        if event_type == "click":
            minute = ts[:16]
            per_minute = self.clicks_by_ad_minute.setdefault(ad_id, {})
            per_minute[minute] = per_minute.get(minute, 0) + 1
            country = event.get("country") or "unknown"
            self.clicks_by_country[country] = self.clicks_by_country.get(country, 0) + 1
            self.cost_micros += event.get("cost_micros") or 0
            if bot:
                self.bot_clicks += 1
        elif event_type == "conversion":
            self.revenue_micros += event.get("revenue_micros") or 0
        experiment = event.get("experiment_id")
        if experiment is not None:
            funnel = self.variants.setdefault(experiment, {}).setdefault(
                event["variant"], {"impressions": 0, "clicks": 0, "conversions": 0}
            )
            funnel[event_type + "s"] += 1

    def count(self, event_type: str, ad_id: str | None = None, day: str | None = None) -> int:
        """Distinct events of a type, optionally for one ad and/or one UTC day (``YYYY-MM-DD``)."""
        per_ad = self.by_ad_day[event_type]
        ads = [per_ad.get(ad_id, {})] if ad_id is not None else list(per_ad.values())
        return sum(n for days in ads for d, n in days.items() if day is None or d == day)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Truth:
        data = json.loads(text)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def write(self, path: Path) -> None:
        path.write_text(self.to_json() + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> Truth:
        return cls.from_json(path.read_text(encoding="utf-8"))
