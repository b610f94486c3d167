"""``speed.ad_clicks_5min``: the 5-minute windows (sliding by 1 minute), recomputed from
``speed.ad_clicks_minute`` for the minutes the stream touched, off the micro-batch's path.

The minute table is the speed layer's one exactly-once MERGE; every 5-minute window is a pure
function of the five minute rows it holds (counts summed, sketches unioned:
:func:`adclick.aggregates.sliding_from_minutes`). So the windows are *recomputed*, never
added to: :func:`refresh_windows` reads the minute rows of the touched range and replaces those
windows (Delta ``replaceWhere``). A refresh run twice, or after a crash, writes the same rows, so
it needs no transaction id, and a micro-batch's latency does not include it.

:class:`WindowRefresh` collects the range of minutes the micro-batches touched and refreshes it in
a background thread at most every ``ADCLICK_SPEED_WINDOWS_REFRESH_SECONDS`` (30 s; 0: after every
micro-batch, in its thread). At start it refreshes the minutes a crash may have left behind (the
latest minute of the minute table back by the watermark and one window); :meth:`flush` refreshes
what is left when the stream stops. A failed refresh is logged and its range kept for the next.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, datetime, timedelta

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession
from pyspark.util import inheritable_thread_target

from adclick import table_properties
from adclick.aggregates import sliding_from_minutes, with_partition_date
from adclick.catalog import table
from adclick.settings import Settings
from adclick.table_properties import TXN_APP, TXN_VERSION

MINUTES = "speed.ad_clicks_minute"
WINDOWS = "speed.ad_clicks_5min"
SIZE = timedelta(minutes=5)
STEP = timedelta(minutes=1)


def _days(first: datetime, last: datetime) -> list[date]:
    return [first.date() + timedelta(days=n) for n in range((last.date() - first.date()).days + 1)]


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


def _window_starts(first: datetime, last: datetime) -> tuple[datetime, datetime]:
    """The first and last start of the 5-minute windows that hold a minute in [first, last]."""
    return first - (SIZE - STEP), last


def windows_of(minutes: DataFrame, first: datetime, last: datetime) -> DataFrame:
    """The 5-minute windows holding a minute in [``first``, ``last``], from minute rows that cover
    [``first`` - 4 min, ``last`` + 4 min] (pure). Columns: those of ``speed.ad_clicks_5min``."""
    lo, hi = _window_starts(first, last)
    windows = sliding_from_minutes(minutes).where(
        (F.col("window_start") >= F.lit(lo)) & (F.col("window_start") <= F.lit(hi))
    )
    return with_partition_date(windows)


def refresh_windows(spark: SparkSession, settings: Settings, first: datetime, last: datetime) -> None:
    """Replace the windows of ``speed.ad_clicks_5min`` that hold a minute in [``first``, ``last``]
    (UTC, naive) with their recomputation from ``speed.ad_clicks_minute``."""
    from delta.tables import DeltaTable

    source = table(MINUTES).path(settings)
    if not DeltaTable.isDeltaTable(spark, source):
        return
    lo, hi = _window_starts(first, last)
    read_to = hi + (SIZE - STEP)
    minutes = (
        spark.read.format("delta")
        .load(source)
        .where(
            F.col("window_date").isin(*_days(lo, read_to))
            & (F.col("window_start") >= F.lit(lo))
            & (F.col("window_start") <= F.lit(read_to))
        )
    )
    rows = windows_of(minutes, first, last)
    target = table(WINDOWS)
    writer = rows.write.format("delta").partitionBy(*target.partition_by)
    if not DeltaTable.isDeltaTable(spark, target.path(settings)):
        for key, value in table_properties.SPEED.items():
            writer = writer.option(key, value)
        writer.save(target.path(settings))
        return
    days = ", ".join(f"DATE'{d}'" for d in _days(lo, hi))
    condition = (
        f"window_date IN ({days}) "
        f"AND window_start >= TIMESTAMP'{_stamp(lo)}' AND window_start <= TIMESTAMP'{_stamp(hi)}'"
    )
    writer.mode("overwrite").option("replaceWhere", condition).save(target.path(settings))


def _session_of_its_own(spark: SparkSession) -> SparkSession:
    """A clone of ``spark`` (same context, cache and settings; its own SQL conf) without the
    idempotent-write settings the minute MERGE sets on the query's session while it runs: a
    refresh in another thread must never write under the MERGE's transaction id."""
    own = SparkSession(spark.sparkContext, spark._jsparkSession.cloneSession())
    own.conf.unset(TXN_APP)
    own.conf.unset(TXN_VERSION)
    return own


class WindowRefresh:
    """The minutes touched since the last refresh, and the background thread that refreshes them."""

    def __init__(self, settings: Settings, *, log: Callable[[str], None] = print) -> None:
        self.settings, self.log = settings, log
        self.every = settings.speed_windows_refresh_seconds
        self._lock = threading.Lock()
        self._pending: tuple[datetime, datetime] | None = None
        self._running: Future[None] | None = None
        self._last_start = float("-inf")
        self._session: SparkSession | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="speed-5min")

    def touched(self, first: datetime, last: datetime) -> None:
        """Minutes [``first``, ``last``] of the minute table changed."""
        with self._lock:
            if self._pending is None:
                self._pending = (first, last)
            else:
                self._pending = (min(self._pending[0], first), max(self._pending[1], last))

    def pending(self) -> tuple[datetime, datetime] | None:
        with self._lock:
            return self._pending

    def catch_up(self, spark: SparkSession) -> None:
        """Mark the minutes a crash between a minute MERGE and its refresh can have left: from the
        minute table's latest minute back by the watermark and one window."""
        from delta.tables import DeltaTable

        path = table(MINUTES).path(self.settings)
        if not DeltaTable.isDeltaTable(spark, path):
            return
        back = F.expr(f"INTERVAL {self.settings.speed_watermark}")
        last = F.max("window_start")
        minutes = spark.read.format("delta").load(path)
        row = minutes.agg(last.alias("last"), (last - back).alias("first")).first()
        if row is None or row.last is None:
            return
        self.touched(row.first - SIZE, row.last)

    def after_batch(self, spark: SparkSession) -> None:
        """Start a refresh of the pending minutes if the last one started ``every`` seconds ago
        and none is running (``every`` 0: refresh now, in the caller's thread)."""
        if self.every <= 0:
            self._refresh(spark)
            return
        with self._lock:
            if self._session is None:
                self._session = _session_of_its_own(spark)
            spark = self._session
            if self._pending is None or (self._running is not None and not self._running.done()):
                return
            if time.monotonic() - self._last_start < self.every:
                return
            self._last_start = time.monotonic()
            self._running = self._pool.submit(inheritable_thread_target(spark)(self._refresh_logged), spark)

    def flush(self, spark: SparkSession) -> None:
        """Wait for a running refresh, then refresh what is still pending (raises its error)."""
        with self._lock:
            running = self._running
        if running is not None:
            running.result()
        self._refresh(spark)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _refresh_logged(self, spark: SparkSession) -> None:
        try:
            self._refresh(spark)
        except Exception as exc:  # kept pending: the next refresh covers the range again
            self.log(f"stream: 5-minute windows refresh failed, retried with the next one: {exc}")

    def _refresh(self, spark: SparkSession) -> None:
        with self._lock:
            taken, self._pending = self._pending, None
        if taken is None:
            return
        try:
            refresh_windows(spark, self.settings, *taken)
        except BaseException:
            self.touched(*taken)
            raise
