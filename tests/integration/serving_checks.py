"""What the serving integration tests share: Trino rows, grouped comparisons of two sources in one
statement, the lambda boundary, an in-process query API client."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from adclick.settings import Settings

if TYPE_CHECKING:
    from serving_data import ServingData

KEYS = ("ad_id", "campaign_id", "country", "device_type")
MEASURES = ("impressions", "clicks", "fraud_clicks", "conversions", "cost_micros", "revenue_micros")
LIVE_CLICKS = 4
INJECTIONS = (
    "x' OR '1'='1",
    "1; DROP TABLE delta.gold.ad_clicks_daily --",
    "') UNION SELECT event_id FROM delta.silver.events --",
)


def trino_rows(
    settings: Settings, sql: str, params: Sequence[Any] | None = None, *, user: str | None = None
) -> list[list[Any]]:
    """The rows of one statement (``?`` parameters bound), as ``user`` (default: the admin user)."""
    from serving.trino_client import query

    return query(settings, sql, list(params) if params else None, user=user)[1]


def tbl(settings: Settings, name: str) -> str:
    """``layer.name`` in the configured catalog."""
    return f"{settings.trino_catalog}.{name}"


def grouped(source: str, bucket: str, where: str) -> str:
    """Per (bucket, ad, campaign, country, device): the summed measures (null keys as '')."""
    keys = ", ".join(f"coalesce({k}, '') AS {k}" for k in KEYS)
    sums = ", ".join(f"coalesce(sum({m}), 0) AS {m}" for m in MEASURES)
    return f"SELECT {bucket} AS bucket, {keys}, {sums} FROM {source} WHERE {where} GROUP BY 1, 2, 3, 4, 5"


def compare(settings: Settings, left: str, right: str, params: Sequence[Any]) -> dict[str, Any]:
    """Full outer join of two ``_grouped`` results in one statement: how many keys, how many on one
    side only, how many with different measures, and a few examples when anything differs."""
    on = " AND ".join(f"l.{k} = r.{k}" for k in ("bucket", *KEYS))
    differ = " OR ".join(f"l.{m} IS DISTINCT FROM r.{m}" for m in MEASURES)
    both = "l.bucket IS NOT NULL AND r.bucket IS NOT NULL"
    head = f"WITH l AS ({left}), r AS ({right}) "
    joined = f" FROM l FULL OUTER JOIN r ON {on}"
    counts = (
        head + "SELECT count(*), count(*) FILTER (WHERE r.bucket IS NULL), "
        f"count(*) FILTER (WHERE l.bucket IS NULL), count(*) FILTER (WHERE {both} AND ({differ}))" + joined
    )
    keys, only_left, only_right, different = trino_rows(settings, counts, params)[0]
    result = {"keys": keys, "only_left": only_left, "only_right": only_right, "different": different}
    if only_left or only_right or different:
        sample = (
            head
            + "SELECT l.*, r.*"
            + joined
            + f" WHERE r.bucket IS NULL OR l.bucket IS NULL OR {differ} LIMIT 5"
        )
        result["examples"] = trino_rows(settings, sample, params)
    return result


def live_from(watermark: date) -> datetime:
    """The first instant after the watermark's day (UTC): live rows start here."""
    after = watermark + timedelta(days=1)
    return datetime(after.year, after.month, after.day, tzinfo=UTC)


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@contextlib.contextmanager
def api_client(settings: Settings, **kwargs: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from query_api.app import create_app

    with TestClient(create_app(settings, **kwargs)) as client:
        yield client


def analyst(data: ServingData) -> str:
    return data.settings.trino_analyst_user
