"""The data lifecycle policy: which tier a partition is in, and what the retention run does to it.

Pure: no Spark, no S3. :func:`policy_for` resolves a table's :class:`Policy` from settings (layer
defaults, then ``ADCLICK_RETENTION_OVERRIDES`` by layer, then by table); :func:`plan` turns the
day partitions a table holds, the batch watermark, the restores and the legal holds into
:class:`Action` s, which :mod:`batch_layer.lifecycle` carries out.

Tiers, by a partition's age in days (today minus its day):

* **hot** (age < ``hot_days``): as written by the stream or the batch; nothing is done.
* **warm** (``hot_days`` <= age < ``warm_days``): still in the lake, compacted once (OPTIMIZE,
  Z-order by ``ad_id``) so old days cost few files to read.
* **cold** (age >= ``warm_days``): exported as Parquet (zstd) to the S3 store with the policy's
  storage class, verified, then deleted from the lake. ``warm_days`` None keeps the table in the
  lake for good (gold: small, queryable for the whole retention; ops; dims).

Speed tables are never archived: a speed partition expires (is deleted) once the batch watermark
has passed its day and it is older than ``hot_days``, since gold then serves that day. Restored
partitions (``restored.*``) expire ``ADCLICK_RETENTION_RESTORED_DAYS`` after their restore.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Literal

from adclick.errors import AdclickError
from adclick.settings import Settings

Tier = Literal["hot", "warm", "cold"]
Kind = Literal["compact", "archive", "expire", "skip_held"]
COLD_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})

# What the retention run manages, and how the end of a partition's life looks for each layer.
ARCHIVED = ("bronze.events", "bronze.rejects", "silver.events")
EXPIRED_BY_WATERMARK = ("speed.ad_clicks_minute", "speed.ad_clicks_5min")
KEPT = ("gold.ad_clicks_hourly", "gold.ad_clicks_daily", "gold.audience_daily", "gold.experiments_daily")
MANAGED = (*ARCHIVED, *EXPIRED_BY_WATERMARK, *KEPT)
# Restored copies of archived tables: restored.<layer>_<name>, partitioned like the original.
RESTORED_OF = {name: f"restored.{name.replace('.', '_')}" for name in ARCHIVED}


class PolicyError(AdclickError):
    """The retention policy in settings is not usable."""


@dataclass(frozen=True)
class Policy:
    table: str
    hot_days: int
    warm_days: int | None  # None: never leaves the lake
    storage_class: str
    end: Literal["archive", "expire", "keep"]


@dataclass(frozen=True)
class Hold:
    """A legal hold: data matching it is never deleted, archived away or erased while it is active.

    ``kind`` ``dates`` covers every table's partitions from ``date_from`` to ``date_to``
    (inclusive); ``advertiser`` and ``user`` cover every day whose partition holds a row of that
    advertiser or ``user_key`` (the pseudonymised id; the raw id is never stored).
    """

    hold_id: str
    kind: Literal["dates", "advertiser", "user"]
    reason: str
    created_by: str
    date_from: date | None = None
    date_to: date | None = None
    advertiser_id: str | None = None
    user_key: str | None = None

    def covers_day(self, day: date) -> bool:
        return (
            self.kind == "dates"
            and self.date_from is not None
            and self.date_to is not None
            and (self.date_from <= day <= self.date_to)
        )

    def describe(self) -> str:
        what = {
            "dates": f"days {self.date_from}..{self.date_to}",
            "advertiser": f"advertiser {self.advertiser_id}",
            "user": f"user_key {str(self.user_key)[:12]}...",
        }[self.kind]
        return f"hold {self.hold_id} ({what}, by {self.created_by}: {self.reason})"


@dataclass(frozen=True)
class Action:
    kind: Kind
    table: str
    day: date
    why: str
    holds: tuple[str, ...] = field(default=())


def _layer_default(settings: Settings, name: str) -> Policy:
    base = Policy(
        name,
        settings.retention_hot_days,
        settings.retention_warm_days,
        settings.retention_cold_storage_class,
        "keep",
    )
    if name in ARCHIVED:
        return replace(base, end="archive")
    if name in EXPIRED_BY_WATERMARK:
        # Within the late horizon a backfill still reconciles a day against its speed rows.
        return replace(base, hot_days=settings.late_horizon_days, warm_days=None, end="expire")
    return replace(base, warm_days=None)


def policy_for(settings: Settings, name: str) -> Policy:
    """The policy of table ``name`` (``layer.table``): the layer's default, then the overrides of
    ``ADCLICK_RETENTION_OVERRIDES`` for its layer, then for the table itself."""
    policy = _layer_default(settings, name)
    layer = name.split(".", 1)[0]
    for key in (layer, name):
        override = settings.retention_overrides.get(key)
        if not override:
            continue
        unknown = set(override) - {"hot_days", "warm_days", "storage_class"}
        if unknown:
            raise PolicyError(f"retention override {key!r}: unknown keys {sorted(unknown)}")
        policy = replace(policy, **override)  # type: ignore[arg-type]
    if policy.hot_days < 1:
        raise PolicyError(f"{name}: hot_days must be at least 1, got {policy.hot_days}")
    if policy.warm_days is not None and policy.warm_days < policy.hot_days:
        raise PolicyError(f"{name}: warm_days {policy.warm_days} is before hot_days {policy.hot_days}")
    if policy.end == "archive" and policy.storage_class not in {"STANDARD", "STANDARD_IA", *COLD_CLASSES}:
        raise PolicyError(f"{name}: unknown storage class {policy.storage_class!r}")
    return policy


def tier(policy: Policy, day: date, today: date) -> Tier:
    age = (today - day).days
    if age < policy.hot_days:
        return "hot"
    if policy.warm_days is None or age < policy.warm_days:
        return "warm"
    return "cold"


def holding(holds: Iterable[Hold], day: date, found: Mapping[str, bool] | None = None) -> tuple[str, ...]:
    """The ids of the holds that keep ``day``'s partition: date holds covering it, and advertiser
    or user holds whose id ``found`` says the partition contains (``{hold_id: True}``)."""
    found = found or {}
    return tuple(h.hold_id for h in holds if h.covers_day(day) or found.get(h.hold_id, False))


def plan(
    policy: Policy,
    days: Iterable[date],
    today: date,
    *,
    compacted: Iterable[date] = (),
    watermark: date | None = None,
    holds: Mapping[date, tuple[str, ...]] | None = None,
) -> list[Action]:
    """What the retention run does to each of the table's day partitions ``days``.

    ``compacted``: days whose partitions need no compaction (one file per directory already);
    ``watermark``: the batch watermark (speed days after it are still served from speed);
    ``holds``: per day, the ids of the holds that keep it. A held day that the policy would
    archive or expire gets a ``skip_held`` action instead (logged by the run); compaction of a
    held day goes ahead, since it deletes no data.
    """
    holds = holds or {}
    done = set(compacted)
    actions: list[Action] = []
    for day in sorted(set(days)):
        t = tier(policy, day, today)
        if t == "hot":
            continue
        removes = (policy.end == "archive" and t == "cold") or (
            policy.end == "expire" and watermark is not None and day <= watermark
        )
        if removes and holds.get(day):
            verb = "archive" if policy.end == "archive" else "expire"
            actions.append(Action("skip_held", policy.table, day, f"would {verb}; held", holds[day]))
        elif removes and policy.end == "archive":
            actions.append(Action("archive", policy.table, day, f"older than {policy.warm_days} days"))
        elif removes:
            actions.append(
                Action(
                    "expire",
                    policy.table,
                    day,
                    f"older than {policy.hot_days} days, batch final ({watermark})",
                )
            )
        elif day not in done and policy.end != "expire":
            actions.append(Action("compact", policy.table, day, f"older than {policy.hot_days} days"))
    return actions


def restored_expiry(restored_on: Mapping[date, date], today: date, keep_days: int) -> list[date]:
    """Days of a restored table whose latest restore (``{day: restore date}``) is ``keep_days`` old."""
    return sorted(day for day, on in restored_on.items() if (today - on).days >= keep_days)
