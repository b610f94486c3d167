"""Helpers the integration and cluster tiers share: clients that keep posting until answered 202,
and the generator's truth per ad and day in the shape the tests compare gold and serving with."""

from __future__ import annotations

import time
from collections.abc import Iterable

import httpx


def post_until_accepted(
    base: str, batches: list[list[dict]], accepted: set[str], statuses: list[int]
) -> None:
    """Post each batch until it is answered 202 (a client retrying after a dropped connection or
    an error); adds the ids of the events it accepted to ``accepted``, every status to ``statuses``."""
    for batch in batches:
        for _attempt in range(30):
            try:
                r = httpx.post(f"{base}/v1/events/batch", json=batch, timeout=60)
            except httpx.HTTPError:
                time.sleep(0.5)
                continue
            statuses.append(r.status_code)
            if r.status_code == 202:
                rejected = {x["index"] for x in r.json()["rejected"]}
                accepted.update(e["event_id"] for i, e in enumerate(batch) if i not in rejected)
                break
            time.sleep(0.5)
        time.sleep(0.2)


def truth_counts(truth, days: Iterable[str]) -> dict[tuple[str, str, str], int]:
    """``{(event type, ad_id, ISO day): distinct events}`` of the generator's truth on ``days``."""
    wanted = set(days)
    return {
        (kind, ad, day): n
        for kind, per_ad in truth.by_ad_day.items()
        for ad, per_day in per_ad.items()
        for day, n in per_day.items()
        if day in wanted and n
    }
