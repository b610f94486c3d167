"""Where accepted events go: the :class:`EventSink` interface and its Kafka implementation.

Writes ``(key, value)`` records to the events topic (``settings.topic_events``); one record per
accepted event, value = :meth:`adclick.contract.Event.to_json` (no raw personal data), key =
``ad_id`` or its salted form (:mod:`ingestion.hot_keys`).

Producer tuning (:func:`producer_config`), for "202 means durable" at high throughput:

* ``acks="all"``: a record counts as written only once every in-sync replica has it.
* ``enable_idempotence=True`` (kafka-python >= 2.1 supports it; dropped if the installed
  client does not know the option): broker-side sequence numbers, so the producer's own retries
  never duplicate or reorder records within a partition. Requires ``max_in_flight <= 5``.
* ``max_in_flight_requests_per_connection=5``: pipelining without giving up ordering (idempotence).
* ``retries`` unbounded, bounded instead by ``delivery_timeout_ms`` (30 s): transient broker
  errors (leader moves) are retried by the client, not surfaced as request failures.
* ``linger_ms=5``, ``batch_size=256 KiB``: a request's events (up to 10,000) go out as a few
  large batches; 5 ms of linger is small next to the ack round trip the request waits for anyway.
* ``compression_type`` from ``settings.kafka_compression``: ``lz4`` by default (cheap on CPU,
  about 5x on JSON, worth it across a network), ``gzip`` if the lz4 library is missing, ``none``
  when broker and API share a machine (compression then only costs CPU: the producer compresses
  under the partition lock that every ``send`` takes).
* ``max_block_ms=5 s`` and ``bootstrap_timeout_ms=5 s``: a send never blocks a worker thread for
  the client's default 60 s when Kafka is down; the request falls back to the spool instead.

kafka-python is blocking: records are handed to the producer from a thread pool (never on the
event loop), every record of a request first, then all acknowledgements are awaited under one
deadline, so a batch costs one round of broker acks, not one per event. The API awaits the acks
on the event loop (:func:`deliver`: the producer's callbacks resolve one asyncio future per
request), so no thread is held while the broker works; a thread per waiting request would cap
the API at pool size / ack latency requests per second.
The producer is created lazily, so the API starts (and spools) while Kafka is still down.

A record whose ack does not arrive within the request's timeout is spooled, yet the client may
still deliver it later: Kafka can then hold it twice. That is accepted by design (at least once);
the exact dedup on ``event_id`` downstream removes the copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from contextvars import ContextVar
from functools import partial
from typing import Any, Protocol

from adclick.settings import Settings

log = logging.getLogger(__name__)

DELIVERY_TIMEOUT_SECONDS = 30.0
"""How long a producer retries a record before its delivery report says it failed."""
DRAIN_TIMEOUT_SECONDS = DELIVERY_TIMEOUT_SECONDS + 5.0
"""The spool drainer's wait: past the producer's own timeout, so every record has its final report."""

Record = tuple[bytes, bytes]
"""A Kafka record: (key, value)."""

SendResult = BaseException | None
"""Per record: ``None`` when the broker acknowledged it, else why it was not."""

DELIVERY_OBSERVER: ContextVar[Callable[[float, bool], None] | None] = ContextVar(
    "adclick_delivery_observer", default=None
)
"""Told after each :func:`deliver`: its seconds, and whether every record was acknowledged.

Set per request by :mod:`ingestion.metrics` (a context variable follows the request into this
call, so each app's deliveries reach that app's metrics and no caller has to pass it along)."""


class EventSink(Protocol):
    """Where the API sends records. Blocking; the API calls it from worker threads.

    ``send_many`` sends all records, then waits (up to ``timeout`` seconds in total) until each
    is acknowledged; it returns one result per record, in order, and does not raise for delivery
    failures. ``reachable`` is a cheap liveness probe for ``/v1/health`` and the spool drainer.
    """

    def send_many(self, records: Sequence[Record], timeout: float) -> list[SendResult]: ...

    def reachable(self) -> bool: ...

    def close(self) -> None: ...


class SinkUnavailable(RuntimeError):
    """The sink cannot take records at all right now (e.g. no broker reachable)."""


class SinkState:
    """Circuit breaker shared by requests and the spool drainer.

    A failed produce marks the sink down: later requests then spool directly instead of each
    waiting out the produce timeout. The drainer probes and marks it up again when Kafka takes
    records (spooled ones first).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.up = True
        self.last_error: str | None = None
        self.changed_at = clock()

    def mark_down(self, reason: str) -> None:
        if self.up:
            log.warning("event sink down, spooling: %s", reason)
            self.changed_at = self.clock()
        self.up = False
        self.last_error = reason

    def mark_up(self) -> None:
        if not self.up:
            log.info("event sink back up")
            self.changed_at = self.clock()
        self.up = True


def producer_config(settings: Settings, *, client_id: str = "adclick-ingest") -> dict[str, Any]:
    """The kafka-python producer configuration (see the module docstring for the why)."""
    from kafka import KafkaProducer
    from kafka.codec import has_lz4

    config: dict[str, Any] = {
        "bootstrap_servers": [s.strip() for s in settings.kafka_bootstrap_servers.split(",") if s.strip()],
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "max_in_flight_requests_per_connection": 5,
        "retries": 2_147_483_647,
        "delivery_timeout_ms": int(DELIVERY_TIMEOUT_SECONDS * 1000),
        "request_timeout_ms": 10_000,
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        "compression_type": _compression(settings.kafka_compression, has_lz4()),
        "max_block_ms": 5_000,
        "bootstrap_timeout_ms": 5_000,
    }
    known = getattr(KafkaProducer, "DEFAULT_CONFIG", None)
    if known is not None:
        # An older client without an option (e.g. idempotence) gets the rest, not a crash.
        dropped = sorted(set(config) - set(known))
        if dropped:
            log.warning("kafka-python does not support %s; producing without", ", ".join(dropped))
        config = {k: v for k, v in config.items() if k in known}
    return config


def _compression(wanted: str, lz4_available: bool) -> str | None:
    if wanted == "none":
        return None
    if wanted == "lz4" and not lz4_available:
        return "gzip"
    return wanted


def tcp_reachable(servers: Sequence[str], timeout: float) -> bool:
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port or 9092)), timeout):
                return True
        except (OSError, ValueError):
            continue
    return False


class LazyProducer:
    """A sink's producer, built on first use (so the API starts, and spools, while Kafka is down).

    While no broker accepts connections, or building fails, requests are refused at once with
    :class:`SinkUnavailable` and the next try waits ``_retry_create_seconds``. Subclasses set
    ``settings``, ``_factory`` (tests inject a fake), ``_retry_create_seconds`` and
    ``reachable``, and build the client in ``_build``.
    """

    settings: Settings
    _factory: Callable[..., Any] | None
    _retry_create_seconds: float
    _producer: Any = None
    _next_create: float = 0.0

    def _init_lazy(self) -> None:
        self._producer = None
        self._lock = threading.Lock()
        self._next_create = 0.0

    def _build(self) -> Any:
        raise NotImplementedError

    def reachable(self) -> bool:
        raise NotImplementedError

    def _ensure(self) -> Any:
        producer = self._producer
        if producer is not None:
            return producer
        with self._lock:
            if self._producer is not None:
                return self._producer
            if time.monotonic() < self._next_create:
                raise SinkUnavailable("Kafka unreachable (retrying shortly)")
            if self._factory is None and not self.reachable():
                # Refused connections fail here at once, not after the client's bootstrap timeout.
                self._next_create = time.monotonic() + self._retry_create_seconds
                raise SinkUnavailable(f"no Kafka broker reachable at {self.settings.kafka_bootstrap_servers}")
            try:
                self._producer = self._build()
            except Exception as exc:  # NoBrokersAvailable, KafkaTimeoutError, KafkaException, ...
                self._next_create = time.monotonic() + self._retry_create_seconds
                raise SinkUnavailable(f"cannot create a Kafka producer: {exc!r}") from exc
            return self._producer


class KafkaSink(LazyProducer):
    """:class:`EventSink` over a kafka-python ``KafkaProducer`` on ``settings.topic_events``.

    ``factory`` builds the producer from :func:`producer_config` (tests inject a fake).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        factory: Callable[..., Any] | None = None,
        retry_create_seconds: float = 2.0,
    ) -> None:
        self.settings = settings
        self.topic = settings.topic_events
        self.config = producer_config(settings)
        self._factory = factory
        self._retry_create_seconds = retry_create_seconds
        self._init_lazy()

    def _build(self) -> Any:
        if self._factory is not None:
            return self._factory(**self.config)
        from kafka import KafkaProducer

        return KafkaProducer(**self.config)

    def submit(self, records: Sequence[Record]) -> list[Any]:
        """Hand every record to the producer; per record its future, or why it was not taken."""
        try:
            producer = self._ensure()
        except SinkUnavailable as exc:
            return [exc] * len(records)
        handles: list[Any] = []
        for i, (key, value) in enumerate(records):
            try:
                handles.append(producer.send(self.topic, key=key, value=value))
            except Exception as exc:  # KafkaTimeoutError on metadata, buffer exhausted, closed producer
                handles.extend([exc] * (len(records) - i))
                break
        return handles

    def send_many(self, records: Sequence[Record], timeout: float) -> list[SendResult]:
        handles = self.submit(records) if records else []
        deadline = time.monotonic() + timeout
        results: list[SendResult] = []
        for handle in handles:
            if isinstance(handle, BaseException):
                results.append(handle)
                continue
            try:
                handle.get(timeout=max(0.0, deadline - time.monotonic()))
                results.append(None)
            except Exception as exc:  # KafkaTimeoutError when the deadline passes, broker errors
                results.append(exc)
        return results

    def reachable(self) -> bool:
        """A broker accepts TCP connections (cheap; no metadata round trip)."""
        return tcp_reachable(self.config["bootstrap_servers"], timeout=1.0)

    def close(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.flush(timeout=self.settings.produce_timeout_seconds)
            finally:
                producer.close(timeout=self.settings.produce_timeout_seconds)


class Pending:
    """One request's records in flight: per record its result, and a signal for the last report.

    With an event loop the signal is the future ``done`` (resolved directly when the report is
    served on the loop's own thread, else through ``call_soon_threadsafe``); without one it is the
    threading event ``finished``.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None, size: int) -> None:
        self.loop = loop
        self.thread = threading.get_ident()
        self.results: list[SendResult] = [None] * size
        self.settled = [False] * size
        self.remaining = size
        self.lock = threading.Lock()
        self.finished = threading.Event()
        self.done: asyncio.Future[None] | None = loop.create_future() if loop is not None else None
        self.late: Callable[[int, SendResult], None] | None = None
        if size == 0:
            self._resolve()

    def fail(self, i: int, error: BaseException) -> None:
        self.report(i, error)

    def report(self, i: int, error: BaseException | None) -> None:
        with self.lock:
            if self.settled[i]:
                return
            self.settled[i] = True
            self.results[i] = error
            self.remaining -= 1
            last = self.remaining == 0
            late = self.late
        if late is not None:
            late(i, error)
        if not last:
            return
        if self.loop is None or threading.get_ident() == self.thread:
            self._resolve()
        elif not self.loop.is_closed():  # a report after the waiter gave up finds no loop
            with contextlib.suppress(RuntimeError):  # closed between the check and the call
                self.loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        self.finished.set()
        if self.done is not None and not self.done.done():
            self.done.set_result(None)

    def snapshot(
        self, timeout: float, late: Callable[[int, SendResult], None] | None = None
    ) -> list[SendResult]:
        """The results, with every record still without a report marked as timed out; ``late``
        (if given) then receives each of those records' report when it comes: ``(index, result)``."""
        with self.lock:
            self.late = late
            return [
                r if settled else TimeoutError(f"no acknowledgement within {timeout:g}s")
                for r, settled in zip(self.results, self.settled, strict=True)
            ]


class _Acks(Pending):
    """A request's kafka-python futures, their callbacks (on the producer's thread) reporting into
    one :class:`Pending`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, handles: Sequence[Any]) -> None:
        super().__init__(loop, len(handles))
        for i, handle in enumerate(handles):
            if isinstance(handle, BaseException):
                self.fail(i, handle)
            else:
                handle.add_callback(partial(self._settle, i))
                handle.add_errback(partial(self.report, i))

    def _settle(self, i: int, _metadata: Any) -> None:
        self.report(i, None)


def has_late_reports(sink: EventSink) -> bool:
    """Does :func:`deliver` pass on this sink's reports after its wait ended (``begin``/``submit``)?"""
    return hasattr(sink, "begin") or hasattr(sink, "submit")


async def deliver(
    sink: EventSink,
    records: Sequence[Record],
    timeout: float,
    executor: Executor,
    late: Callable[[int, SendResult], None] | None = None,
) -> list[SendResult]:
    """Send ``records`` and await every acknowledgement (up to ``timeout`` seconds in all).

    ``late(index, result)`` receives the report of each record still in the producer at the
    timeout, when it comes (not for a sink with only ``send_many``, whose wait ends its records).

    A sink with ``begin`` (librdkafka) queues on the loop, one with ``submit`` (kafka-python) in
    ``executor``, and both are awaited on the event loop; any other sink's blocking
    ``send_many`` runs in ``executor``. The time it took goes to :data:`DELIVERY_OBSERVER`.
    """
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    begin = getattr(sink, "begin", None)
    submit = getattr(sink, "submit", None)
    if begin is not None:  # librdkafka: queueing never blocks, so it runs on the loop
        acks: _Acks | Any = begin(records, loop)
    elif submit is not None:  # kafka-python: send() may block on metadata, so a worker thread
        acks = _Acks(loop, await loop.run_in_executor(executor, submit, records))
    else:
        acks = None
    if acks is None:
        results = await loop.run_in_executor(executor, sink.send_many, records, timeout)
    else:
        with contextlib.suppress(TimeoutError):  # unacknowledged records are reported, not raised
            await asyncio.wait_for(asyncio.shield(acks.done), timeout)
        results = acks.snapshot(timeout, late)
    observe = DELIVERY_OBSERVER.get()
    if observe is not None:
        observe(time.perf_counter() - started, all(r is None for r in results))
    return results
