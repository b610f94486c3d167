"""Serving-test data on the running stack's own lake (a pytest plugin: ``pytest_plugins``).

Trino's metastore is the stack's, and its serving views read ``delta.gold.*``, ``delta.speed.*``
and ``delta.ops.*``: a private lake would not be seen, so this data lives in the stack's lake.

Writes, once per test session: generated traffic (through Kafka, landed by the stack's stream
application) for every day the batch runs plus D2 = today - 1, the users dimension of that traffic,
and a few marker clicks for the current minute on an ad of its own (so the speed layer has rows
after the watermark, and they can be told apart); then runs the batch layer in-process for every
day from the current watermark + 1 to D1 = today - 2 (the watermark only moves one day at a time,
and other tests may have left it anywhere before D1), and registers the tables and views in Trino.

What it does not control: the stream application drops events behind its event-time watermark, so
D1/D2 rows reach the speed layer only when no newer event was streamed before (a fresh stack).
The tests compare the views with the tables they merge, so they hold either way.

The batch runs with the silver row-count tolerance and the speed/gold drift limit opened wide:
those gates judge volumes and timings that other tests sharing this lake decide (a backfill of
~150 clicks a day, a replay of 100k rows over the last days), and they have tests of their own
(``test_batch_layer.py``). Every other gate runs as configured.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from adclick.settings import Settings

CLICKS_PER_DAY = 300  # D1 and D2: ~20k events each (impressions, clicks, conversions)
GAP_DAY_CLICKS = 30  # days between the old watermark and D1, batched only to keep the chain
MARKER_CLICKS = 12
SEED_BASE = 70_000  # + the day's ordinal: the same day always gets the same events
LANDING_TIMEOUT_S = 900
POLL_S = 5
# Gates opened wide for the test's own batch runs (see the module docstring).
OPEN_GATES = {"dq_row_count_tolerance": 1e9, "reconcile_max_drift": 1e9}


@dataclass(frozen=True)
class ServingData:
    settings: Settings  # the stack's settings (its lake, Kafka topic and Trino)
    d1: date  # today - 2: final (the watermark is at least D1)
    d2: date  # today - 1: after the watermark (unless another run batched it)
    today: date
    watermark: date  # read back from delta.serving.batch_watermark
    days_run: tuple[date, ...]  # the days this fixture ran the batch layer for
    marker_ad: str  # the ad of the marker clicks (no other event has it)
    marker_clicks: int
    marker_minute: datetime  # the minute (UTC) the marker clicks fall in


def trino_rows(
    settings: Settings, sql: str, params: Sequence[Any] | None = None, *, user: str | None = None
) -> list[list[Any]]:
    """The rows of one statement (``?`` parameters bound), as ``user`` (default: the admin user)."""
    from serving.trino_client import query

    return query(settings, sql, list(params) if params else None, user=user)[1]


def days_to_run(watermark: date | None, d1: date) -> list[date]:
    """The days to batch so the watermark reaches ``d1`` without a gap (``[d1]`` when it already
    has: recomputing a final day leaves the watermark where it is)."""
    if watermark is None or watermark >= d1:
        return [d1]
    return [watermark + timedelta(days=n) for n in range(1, (d1 - watermark).days + 1)]


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def generated_traffic(
    days: Sequence[tuple[date, int]], key: bytes
) -> tuple[list[tuple[datetime, dict[str, Any]]], set[str], list[dict[str, Any]]]:
    """``(sent_at, event)`` pairs of whole days of traffic, their event ids and their users."""
    from traffic.generator import GeneratorConfig, generate_timed
    from traffic.truth import Truth

    timed: list[tuple[datetime, dict[str, Any]]] = []
    users: list[dict[str, Any]] = []
    for day, clicks in days:
        truth = Truth()
        config = GeneratorConfig(
            start=_day_start(day),
            duration=timedelta(days=1),
            clicks=clicks,
            seed=SEED_BASE + day.toordinal(),
        )
        timed.extend(generate_timed(config, truth, key=key))
        users.extend(truth.users)
    return timed, {event["event_id"] for _, event in timed}, users


def send_clicks(settings: Settings, ad_id: str, n: int) -> tuple[datetime, set[str]]:
    """``n`` clicks on ``ad_id`` one second ago (no user, no IP: no fraud rule can fire on them),
    through Kafka; returns their minute and their event ids."""
    from adclick.contract import now_utc
    from traffic.sinks import send_to_kafka

    now = now_utc()
    at = now - timedelta(seconds=1)
    ts = at.isoformat().replace("+00:00", "Z")
    click = {"event_type": "click", "ad_id": ad_id, "ts": ts, "country": "DE"}
    events = [(now, {**click, "event_id": str(uuid.uuid4())}) for _ in range(n)]
    result = send_to_kafka(events, settings=settings)
    assert result.produced == n and result.failed == 0 and result.invalid == 0, result.errors
    return at.replace(second=0, microsecond=0), {e["event_id"] for _, e in events}


def _wait(what: str, done: Callable[[], tuple[bool, Any]], timeout_s: float = LANDING_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        ok, last = done()
        if ok:
            return
        time.sleep(POLL_S)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what} (last seen: {last})")


def _landed_in_bronze(spark, settings: Settings, ids: set[str], days: Sequence[date]):
    import pyspark.sql.functions as F

    from adclick.catalog import table

    wanted = spark.createDataFrame([(i,) for i in ids], "event_id string")

    def check() -> tuple[bool, int]:
        bronze = spark.read.format("delta").load(table("bronze.events").path(settings))
        found = (
            bronze.where(F.col("event_date").isin(list(days)))
            .join(wanted.hint("broadcast"), "event_id")
            .select("event_id")
            .distinct()
            .count()
        )
        return found >= len(ids), f"{found} of {len(ids)}"

    return check


def _speed_clicks_spark(spark, settings: Settings, ad_id: str, day: date, want: int):
    import pyspark.sql.functions as F

    from adclick.catalog import table

    def check() -> tuple[bool, Any]:
        try:
            minutes = spark.read.format("delta").load(table("speed.ad_clicks_minute").path(settings))
        except Exception as exc:  # the speed table is created by the stream's first micro-batch
            return False, type(exc).__name__
        got = (
            minutes.where((F.col("window_date") == F.lit(day)) & (F.col("ad_id") == ad_id))
            .agg(F.sum(F.col("clicks") + F.col("fraud_clicks")))
            .first()[0]
        )
        return (got or 0) >= want, got

    return check


def _speed_clicks_trino(settings: Settings, ad_id: str, day: date, want: int):
    minutes = f"{settings.trino_catalog}.speed.ad_clicks_minute"
    sql = f"SELECT coalesce(sum(clicks + fraud_clicks), 0) FROM {minutes} WHERE window_date = ? AND ad_id = ?"

    def check() -> tuple[bool, Any]:
        got = trino_rows(settings, sql, [day, ad_id])[0][0]
        return got >= want, got

    return check


def prepare(spark, stack: Settings) -> ServingData:
    """Send, land, batch and register (see the module docstring); the facts the tests rely on."""
    from adclick import dims
    from adclick.contract import now_utc
    from adclick.privacy import hash_key
    from batch_layer.ops import batch_watermark
    from batch_layer.pipeline import register, run_step
    from traffic.sinks import send_to_kafka

    today = now_utc().date()
    d1, d2 = today - timedelta(days=2), today - timedelta(days=1)
    run = days_to_run(batch_watermark(spark, stack), d1)
    traffic_days = [(day, CLICKS_PER_DAY if day == d1 else GAP_DAY_CLICKS) for day in run]
    traffic_days.append((d2, CLICKS_PER_DAY))

    timed, ids, users = generated_traffic(traffic_days, hash_key(stack))
    dims.load(spark, stack, users=users)  # silver's age_group / segment for these users
    sent = send_to_kafka(timed, settings=stack)
    assert sent.failed == 0 and sent.invalid == 0, sent.errors
    marker_ad = f"ad-serving-{uuid.uuid4().hex[:8]}"
    marker_minute, marker_ids = send_clicks(stack, marker_ad, MARKER_CLICKS)

    landed_days = [day for day, _ in traffic_days] + [today, marker_minute.date()]
    _wait("the generated events in bronze", _landed_in_bronze(spark, stack, ids, landed_days))
    _wait("the marker clicks in bronze", _landed_in_bronze(spark, stack, marker_ids, landed_days))
    _wait(
        "the marker clicks in speed.ad_clicks_minute",
        _speed_clicks_spark(spark, stack, marker_ad, marker_minute.date(), MARKER_CLICKS),
    )

    batch = stack.model_copy(update=OPEN_GATES)
    for day in run:
        run_step(spark, batch, "day", day)
    done = register(stack)
    assert f"{stack.trino_catalog}.serving.ad_clicks_daily" in done["views"], done
    _wait(
        "Trino to see the marker clicks",
        _speed_clicks_trino(stack, marker_ad, marker_minute.date(), MARKER_CLICKS),
        timeout_s=120,
    )

    watermark = trino_rows(stack, f"SELECT day FROM {stack.trino_catalog}.serving.batch_watermark")[0][0]
    assert watermark is not None and d1 <= watermark < today, f"batch watermark {watermark}, D1 {d1}"
    return ServingData(
        settings=stack,
        d1=d1,
        d2=d2,
        today=today,
        watermark=watermark,
        days_run=tuple(run),
        marker_ad=marker_ad,
        marker_clicks=MARKER_CLICKS,
        marker_minute=marker_minute,
    )


@pytest.fixture(scope="session")
def serving_data(stack: Settings, spark) -> ServingData:
    """The stack's lake with two days of traffic, the batch watermark at D1 and the views applied."""
    return prepare(spark, stack)
