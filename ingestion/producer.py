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
* ``compression_type="lz4"`` (cheap on CPU, good on JSON), ``gzip`` if the lz4 library is missing.
* ``max_block_ms=5 s`` and ``bootstrap_timeout_ms=5 s``: a send never blocks a worker thread for
  the client's default 60 s when Kafka is down; the request falls back to the spool instead.

kafka-python is blocking: :class:`KafkaSink` is called from a thread pool (never on the event
loop). It sends every record of a request first and only then waits for all the futures (one
deadline for the whole request), so a batch costs one round of broker acks, not one per event.
The producer is created lazily, so the API starts (and spools) while Kafka is still down.

A record whose ack does not arrive within the request's timeout is spooled, yet the client may
still deliver it later: Kafka can then hold it twice. That is accepted by design (at least once);
the exact dedup on ``event_id`` downstream removes the copy.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from adclick.settings import Settings

log = logging.getLogger(__name__)

Record = tuple[bytes, bytes]
"""A Kafka record: (key, value)."""

SendResult = BaseException | None
"""Per record: ``None`` when the broker acknowledged it, else why it was not."""


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
        "delivery_timeout_ms": 30_000,
        "request_timeout_ms": 10_000,
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        "compression_type": "lz4" if has_lz4() else "gzip",
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


def _tcp_reachable(servers: Sequence[str], timeout: float) -> bool:
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port or 9092)), timeout):
                return True
        except (OSError, ValueError):
            continue
    return False


class KafkaSink:
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
        self._producer: Any = None
        self._lock = threading.Lock()
        self._retry_create_seconds = retry_create_seconds
        self._next_create = 0.0

    def _ensure(self) -> Any:
        if self._producer is not None:
            return self._producer
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
                if self._factory is not None:
                    self._producer = self._factory(**self.config)
                else:
                    from kafka import KafkaProducer

                    self._producer = KafkaProducer(**self.config)
            except Exception as exc:  # NoBrokersAvailable, KafkaTimeoutError, ...
                self._next_create = time.monotonic() + self._retry_create_seconds
                raise SinkUnavailable(f"cannot create a Kafka producer: {exc!r}") from exc
            return self._producer

    def send_many(self, records: Sequence[Record], timeout: float) -> list[SendResult]:
        results: list[SendResult] = [None] * len(records)
        if not records:
            return results
        try:
            producer = self._ensure()
        except SinkUnavailable as exc:
            return [exc] * len(records)
        futures: list[Any] = []
        for i, (key, value) in enumerate(records):
            try:
                futures.append(producer.send(self.topic, key=key, value=value))
            except Exception as exc:  # KafkaTimeoutError on metadata, buffer exhausted, closed producer
                for j in range(i, len(records)):
                    results[j] = exc
                break
        deadline = time.monotonic() + timeout
        for i, future in enumerate(futures):
            try:
                future.get(timeout=max(0.0, deadline - time.monotonic()))
            except Exception as exc:  # KafkaTimeoutError when the deadline passes, broker errors
                results[i] = exc
        return results

    def reachable(self) -> bool:
        """A broker accepts TCP connections (cheap; no metadata round trip)."""
        return _tcp_reachable(self.config["bootstrap_servers"], timeout=1.0)

    def close(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.flush(timeout=self.settings.produce_timeout_seconds)
            finally:
                producer.close(timeout=self.settings.produce_timeout_seconds)
