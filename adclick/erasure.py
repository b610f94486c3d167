"""GDPR/CCPA erasure: what an erasure request covers and what it must keep (pure; no I/O).

A request names one ``user_key`` (the HMAC pseudonym of the user id, :mod:`adclick.privacy`; the
raw id is never stored, not even here). :class:`Scope` says which rows of that user are erased:
every row of the key, except those an active legal hold keeps (a date hold covering the row's
day, or an advertiser hold on the row's ad); a user hold on the key itself refuses the whole
request. :mod:`batch_layer.erasure` carries it out.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pyspark.sql.functions as F
from pyspark.sql import Column

from adclick.errors import AdclickError
from adclick.retention import Hold

USER_KEY = re.compile(r"^[0-9a-f]{32}$")
# Tables whose rows carry a user_key column, with the date column their days are judged by.
KEYED = {
    "bronze.events": "event_date",
    "silver.events": "event_date",
    "restored.bronze_events": "event_date",
    "restored.silver_events": "event_date",
    "dims.users": None,
}
# Tables holding the key inside a text or binary payload: the raw Kafka value of a rejected
# record, the example values of a data-quality result.
PAYLOAD = {
    "bronze.rejects": ("raw_value", "reject_date"),
    "restored.bronze_rejects": ("raw_value", "reject_date"),
    "ops.dq_results": ("details", "day"),
}
# The 5-minute sliding windows start up to 4 minutes before an event.
SLIDE_SPAN = timedelta(minutes=4)


class ErasureError(AdclickError):
    """An erasure request is not valid, or a legal hold refuses it."""


def check_user_key(user_key: str) -> str:
    """``user_key`` lower-cased, if it is a pseudonym (32 hex characters); else a clear error
    (a raw user id given where the key is expected would otherwise erase nothing, silently)."""
    key = user_key.strip().lower()
    if not USER_KEY.match(key):
        raise ErasureError(
            "user_key must be the 32-hex-character pseudonym of the user id "
            "(`adclick erase --user-id ID` computes it with ADCLICK_HASH_KEY)"
        )
    return key


def key_hash(user_key: str) -> str:
    """What ``ops.erasure_log`` stores of the key: its SHA-256, so the log itself holds no key."""
    return hashlib.sha256(user_key.encode()).hexdigest()


@dataclass(frozen=True)
class Scope:
    """One request's user key and the holds that keep some of its rows."""

    user_key: str
    date_holds: tuple[Hold, ...] = ()
    held_ads: tuple[str, ...] = ()  # the ads of the advertisers under a hold
    held_by: tuple[str, ...] = field(default=())  # ids of the holds that keep rows

    def held_day(self, day: date) -> bool:
        return any(h.covers_day(day) for h in self.date_holds)

    def kept(self, day_column: str | None, *, ad_column: str | None = "ad_id") -> Column:
        """True for the rows a hold keeps (compared against the table's day and ad columns)."""
        kept = F.lit(False)
        if day_column is not None:
            for h in self.date_holds:
                kept = kept | F.col(day_column).between(F.lit(h.date_from), F.lit(h.date_to))
        if ad_column is not None and self.held_ads:
            kept = kept | F.col(ad_column).isin(*self.held_ads)
        return F.coalesce(kept, F.lit(False))  # a null day or ad is covered by no hold

    def user_rows(self) -> Column:
        return F.col("user_key") == F.lit(self.user_key)

    def payload_rows(self, column: str) -> Column:
        return F.instr(F.col(column).cast("string"), self.user_key) > 0


def scope_for(user_key: str, holds: Iterable[Hold], ads_of: dict[str, list[str]]) -> Scope:
    """The scope of erasing ``user_key`` under the active ``holds`` (``ads_of``: advertiser ->
    its ad ids, from ``dims.ads``). Raises :class:`ErasureError` when a hold is on the user."""
    holds = list(holds)
    on_user = [h for h in holds if h.kind == "user" and h.user_key == user_key]
    if on_user:
        raise ErasureError(
            "a legal hold keeps this user's data; nothing was erased: "
            + "; ".join(h.describe() for h in on_user)
        )
    dates = tuple(h for h in holds if h.kind == "dates")
    advertisers = [h for h in holds if h.kind == "advertiser"]
    ads = tuple(sorted({ad for h in advertisers for ad in ads_of.get(str(h.advertiser_id), [])}))
    return Scope(user_key, dates, ads, tuple(h.hold_id for h in (*dates, *advertisers)))


def speed_days(event_times: Iterable[datetime]) -> set[date]:
    """The ``window_date`` partitions of the speed tables that events at ``event_times`` count in
    (the minute's day, and the day of the earliest 5-minute window holding the event)."""
    return {d for t in event_times for d in (t.date(), (t - SLIDE_SPAN).date())}


def kafka_bound(now: datetime, retention_ms: int | None, segment_ms: int | None) -> datetime | None:
    """The time until which the topic may still hold a record written before ``now``: Kafka deletes
    a record once its whole segment is older than ``retention.ms``, and the active segment rolls
    every ``segment.ms``. None when the topic keeps records for ever (``retention.ms`` -1)."""
    if retention_ms is None or retention_ms < 0:
        return None
    return now + timedelta(milliseconds=retention_ms + max(segment_ms or 0, 0))
