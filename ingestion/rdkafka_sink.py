"""The ingestion hot path's Kafka producer: librdkafka through ``confluent-kafka``.

Writes ``(key, value)`` records to ``settings.topic_events``, the same records, partitions and
guarantees as :class:`ingestion.producer.KafkaSink` (kafka-python), at a fraction of its CPU:
kafka-python appends each record to its batches in Python (about 30 us of the GIL per event on
this machine's cores, measured with py-spy under load), librdkafka does it in C on its own
threads. Chosen with ``ADCLICK_INGEST_PRODUCER`` (``librdkafka``, the default, or
``kafka-python``); see ``docs/architecture.md`` for the measurements behind the choice.

Configuration (:func:`rdkafka_config`), the same durability as kafka-python's:

* ``acks=all`` and ``enable.idempotence=true`` (which also bounds in-flight requests to 5 and
  retries without duplicates or reordering within a partition);
* ``message.timeout.ms`` 30 s (kafka-python's ``delivery_timeout_ms``): a record is retried by
  the client that long, while the API waits only ``produce_timeout_seconds`` before spooling it;
* ``partitioner=murmur2_random``: the Java client's (and kafka-python's) murmur2 of the key, so
  an ad's records land on the same partition whichever client produced them;
* ``linger.ms=5``, ``batch.size`` 1 MiB, compression from ``settings.kafka_compression``.

:meth:`RdKafkaSink.begin` hands a request's records to librdkafka without blocking (``produce``
only copies into librdkafka's queue) and returns a :class:`Pending` whose asyncio future resolves
once every record has its delivery report. The reports are served on the event loop itself, by
``poll(0)`` every millisecond while any record is in flight (nothing runs when idle): no poller
thread, so no GIL hand-over and no cross-thread wake-up per report. A poller thread cost about
220 us of CPU per single-event request, measured in process; the loop pump a fraction of it. A full
local queue (``BufferError``) is waited out briefly, then reported per record like any other
failure, and the caller spools those records. A fatal producer error (possible with idempotence)
drops the producer; the next request builds a new one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from adclick.settings import Settings
from ingestion.producer import (
    DELIVERY_TIMEOUT_SECONDS,
    LazyProducer,
    Pending,
    Record,
    SendResult,
    SinkUnavailable,
    tcp_reachable,
)

log = logging.getLogger(__name__)

_QUEUE_FULL_WAIT_SECONDS = 1.0
PUMP_SECONDS = 0.001
"""How often the event loop serves delivery reports while records are in flight."""


class DeliveryFailed(RuntimeError):
    """librdkafka reported that a record was not written (its error text)."""


def rdkafka_config(settings: Settings, *, client_id: str = "adclick-ingest") -> dict[str, Any]:
    """The librdkafka producer configuration (see the module docstring for the why)."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "client.id": client_id,
        "acks": "all",
        "enable.idempotence": True,
        "max.in.flight.requests.per.connection": 5,
        "message.timeout.ms": int(DELIVERY_TIMEOUT_SECONDS * 1000),
        "request.timeout.ms": 10_000,
        "linger.ms": 5,
        "batch.size": 1024 * 1024,
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 512 * 1024,
        "compression.type": settings.kafka_compression,
        "partitioner": "murmur2_random",
        "socket.connection.setup.timeout.ms": 5_000,
    }


def _is_fatal(error: Any) -> bool:
    """A librdkafka error that leaves the producer unusable (idempotence state lost)."""
    if error is None:
        return False
    fatal = getattr(error, "fatal", None)
    if callable(fatal) and fatal():
        return True
    code = getattr(error, "code", None)
    try:
        from confluent_kafka import KafkaError
    except ImportError:  # pragma: no cover - confluent-kafka is a dependency
        return False
    return callable(code) and code() == KafkaError._FATAL


class RdKafkaSink(LazyProducer):
    """:class:`ingestion.producer.EventSink` over a confluent-kafka ``Producer``.

    ``factory`` builds the producer from :func:`rdkafka_config` (tests inject a fake).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        factory: Callable[[dict[str, Any]], Any] | None = None,
        retry_create_seconds: float = 2.0,
    ) -> None:
        self.settings = settings
        self.topic = settings.topic_events
        self.config = rdkafka_config(settings)
        self.servers = [s.strip() for s in settings.kafka_bootstrap_servers.split(",") if s.strip()]
        self._factory = factory
        self._retry_create_seconds = retry_create_seconds
        self._init_lazy()
        self._pumping: set[asyncio.AbstractEventLoop] = set()

    def _build(self) -> Any:
        if self._factory is not None:
            return self._factory(dict(self.config))
        from confluent_kafka import Producer

        return Producer(self.config, logger=log)

    def _serve(self, producer: Any, timeout: float) -> None:
        """Serve delivery reports (each runs its record's callback) for up to ``timeout`` s."""
        try:
            producer.poll(timeout)
        except Exception as exc:  # a fatal producer error, or a callback that raised
            if not self._drop_if_fatal(producer, exc):
                log.exception("delivery report failed")

    def _pump(self, loop: asyncio.AbstractEventLoop, producer: Any) -> None:
        """On the event loop: serve the reports, again every ``PUMP_SECONDS`` while any is due."""
        self._serve(producer, 0)
        try:
            in_flight = len(producer) > 0  # queued, in flight, or reports not yet served
        except Exception:  # a closed producer
            in_flight = False
        if in_flight and self._producer is producer:
            loop.call_later(PUMP_SECONDS, self._pump, loop, producer)
        else:
            self._pumping.discard(loop)

    def _drop_if_fatal(self, producer: Any, exc: BaseException) -> bool:
        """Forget ``producer`` if ``exc`` is a fatal error of it (the next request builds anew)."""
        error = exc.args[0] if exc.args else None
        if not _is_fatal(error):
            return False
        log.error("fatal Kafka producer error, building a new producer: %s", error)
        with self._lock:
            if self._producer is producer:
                self._producer = None
        return True

    def _on_delivery(self, producer: Any, pending: Pending, i: int, error: Any, _message: Any) -> None:
        if error is None:
            pending.report(i, None)
            return
        if _is_fatal(error):
            self._drop_if_fatal(producer, RuntimeError(error))
        pending.report(i, DeliveryFailed(str(error)))

    # EventSink
    def begin(self, records: Sequence[Record], loop: asyncio.AbstractEventLoop | None) -> Pending:
        """Queue every record (waits at most ``_QUEUE_FULL_WAIT_SECONDS`` for room); with ``loop``
        (the running one) its reports are served there and arrive on ``Pending.done``."""
        pending = Pending(loop, len(records))
        try:
            producer = self._ensure()
        except SinkUnavailable as exc:
            for i in range(len(records)):
                pending.fail(i, exc)
            return pending
        produce = producer.produce
        topic = self.topic
        report = partial(self._on_delivery, producer, pending)
        room_deadline: float | None = None  # one wait for room per request, not one per record
        for i, (key, value) in enumerate(records):
            callback = partial(report, i)
            try:
                produce(topic, value, key, on_delivery=callback)
            except BufferError:
                if room_deadline is None:
                    room_deadline = time.monotonic() + _QUEUE_FULL_WAIT_SECONDS
                if not self._wait_for_room(producer, (topic, value, key), callback, room_deadline):
                    for j in range(i, len(records)):
                        pending.fail(j, BufferError("the producer's local queue is full"))
                    break
            except Exception as exc:  # KafkaException: producer unusable (fatal), bad topic, ...
                self._drop_if_fatal(producer, exc)
                for j in range(i, len(records)):
                    pending.fail(j, exc)
                break
        if loop is not None and loop not in self._pumping:
            self._pumping.add(loop)
            loop.call_later(PUMP_SECONDS, self._pump, loop, producer)
        return pending

    def _wait_for_room(
        self, producer: Any, message: tuple[str, bytes, bytes], callback: Any, deadline: float
    ) -> bool:
        """Serve delivery reports until the queue takes ``message`` (False once ``deadline`` passed)."""
        while time.monotonic() < deadline:
            try:
                producer.poll(0.01)
                producer.produce(*message, on_delivery=callback)
                return True
            except BufferError:
                continue
        return False

    def send_many(self, records: Sequence[Record], timeout: float) -> list[SendResult]:
        """Blocking form (the spool drainer): queue all, serve reports until each has one or
        ``timeout`` passed."""
        pending = self.begin(records, None)
        deadline = time.monotonic() + timeout
        while not pending.finished.is_set():
            left = deadline - time.monotonic()
            producer = self._producer
            if left <= 0 or producer is None:
                break
            self._serve(producer, min(left, 0.05))
        return pending.snapshot(timeout)

    def reachable(self) -> bool:
        """A broker accepts TCP connections (cheap; no metadata round trip)."""
        return tcp_reachable(self.servers, timeout=1.0)

    def close(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            remaining = producer.flush(self.settings.produce_timeout_seconds)
            if remaining:
                log.warning("%d records still unacknowledged when the producer closed", remaining)
            producer.poll(0)
