"""The librdkafka ingestion sink with a fake confluent-kafka producer: config, queue-then-wait,
per-record failures, the total timeout, a full local queue, fatal errors, no brokers, delivery on
the event loop, closing."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ingestion_component_support import settings

from ingestion.producer import SinkUnavailable, deliver
from ingestion.rdkafka_sink import DeliveryFailed, RdKafkaSink, rdkafka_config


class FakeError:
    """Stands in for confluent-kafka's KafkaError in a delivery report."""

    def __init__(self, text: str, *, fatal: bool = False) -> None:
        self.text = text
        self.is_fatal = fatal

    def __str__(self) -> str:
        return self.text

    def fatal(self) -> bool:
        return self.is_fatal


class FakeRdProducer:
    """Stands in for confluent_kafka.Producer: ``produce`` queues a delivery report that the next
    ``poll``/``flush`` serves (each report calls its record's ``on_delivery(err, msg)``).

    Records are numbered by the order they were accepted. ``failures`` maps a number to the error
    its report carries, ``silent`` never get a report, and ``full_calls`` produce calls raise
    ``BufferError`` once ``full_from`` records have been accepted.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.produced: list[tuple[str, bytes, bytes]] = []
        self.produce_threads: list[str] = []
        self.failures: dict[int, FakeError] = {}
        self.silent: set[int] = set()
        self.full_from = 0
        self.full_calls = 0
        self.buffer_errors_raised = 0
        self.flushes: list[float] = []
        self._reports: list[tuple[Any, FakeError | None, tuple[str, bytes, bytes]]] = []
        self._held: list[tuple[Any, FakeError | None, tuple[str, bytes, bytes]]] = []
        self._lock = threading.Lock()

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Any = None) -> None:
        with self._lock:
            if self.full_calls > 0 and len(self.produced) >= self.full_from:
                self.full_calls -= 1
                self.buffer_errors_raised += 1
                raise BufferError("Local: Queue full")
            number = len(self.produced)
            record = (topic, key, value)
            self.produced.append(record)
            self.produce_threads.append(threading.current_thread().name)
            report = (on_delivery, self.failures.get(number), record)
            (self._held if number in self.silent else self._reports).append(report)

    def release(self) -> None:
        """The silent records' reports come after all (the next poll serves them)."""
        with self._lock:
            self._reports.extend(self._held)
            self._held.clear()
            self.silent.clear()

    def _serve(self) -> int:
        served = 0
        while True:
            with self._lock:
                if not self._reports:
                    return served
                callback, error, record = self._reports.pop(0)
            callback(error, record)
            served += 1

    def poll(self, timeout: float | None = None) -> int:
        served = self._serve()
        if not served and timeout:
            time.sleep(min(timeout, 0.05))
        return served

    def __len__(self) -> int:
        """Records without a served report (confluent_kafka.Producer's len)."""
        with self._lock:
            return len(self._reports) + len(self.silent & set(range(len(self.produced))))

    def flush(self, timeout: float | None = None) -> int:
        self.flushes.append(timeout if timeout is not None else -1)
        self._serve()
        with self._lock:
            return len(self.silent & set(range(len(self.produced))))


class Factory:
    """The sink's producer factory: records each call, hands out fakes (``prepare`` sets them up)."""

    def __init__(self, prepare: Any = None) -> None:
        self.prepare = prepare
        self.producers: list[FakeRdProducer] = []

    def __call__(self, config: dict[str, Any]) -> FakeRdProducer:
        producer = FakeRdProducer(config)
        if self.prepare is not None:
            self.prepare(producer, len(self.producers))
        self.producers.append(producer)
        return producer


def records(n: int) -> list[tuple[bytes, bytes]]:
    return [(f"ad-{i}".encode(), f'{{"n":{i}}}'.encode()) for i in range(n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- configuration ------------------------------------------------------------------------------


def test_rdkafka_config_is_durable_and_murmur2_partitioned() -> None:
    config = rdkafka_config(settings(kafka_bootstrap_servers="k1:9092,k2:9092", kafka_compression="zstd"))
    assert config["bootstrap.servers"] == "k1:9092,k2:9092"
    assert config["acks"] == "all"
    assert config["enable.idempotence"] is True
    assert config["partitioner"] == "murmur2_random"
    assert config["compression.type"] == "zstd"
    assert config["message.timeout.ms"] == 30_000
    assert rdkafka_config(settings(kafka_compression="gzip"))["compression.type"] == "gzip"


# --- sending ------------------------------------------------------------------------------------


def test_send_many_delivers_every_record_in_order_on_the_events_topic() -> None:
    factory = Factory()
    sink = RdKafkaSink(settings(topic_events="test.events"), factory=factory)
    batch = records(7)
    try:
        assert sink.send_many(batch, timeout=2.0) == [None] * 7
    finally:
        sink.close()
    assert len(factory.producers) == 1
    assert factory.producers[0].produced == [("test.events", k, v) for k, v in batch]
    assert factory.producers[0].config == rdkafka_config(settings(topic_events="test.events"))


def test_send_many_reports_failures_per_record() -> None:
    def prepare(producer: FakeRdProducer, _n: int) -> None:
        producer.failures = {2: FakeError("NOT_ENOUGH_REPLICAS"), 4: FakeError("MSG_SIZE_TOO_LARGE")}

    sink = RdKafkaSink(settings(), factory=Factory(prepare))
    try:
        results = sink.send_many(records(6), timeout=2.0)
    finally:
        sink.close()
    assert [type(r) for r in results] == [
        type(None),
        type(None),
        DeliveryFailed,
        type(None),
        DeliveryFailed,
        type(None),
    ]
    assert str(results[2]) == "NOT_ENOUGH_REPLICAS"
    assert str(results[4]) == "MSG_SIZE_TOO_LARGE"


def test_a_record_without_a_report_times_out_within_the_timeout() -> None:
    def prepare(producer: FakeRdProducer, _n: int) -> None:
        producer.silent = {1}

    sink = RdKafkaSink(settings(), factory=Factory(prepare))
    try:
        started = time.perf_counter()
        results = sink.send_many(records(4), timeout=0.3)
        elapsed = time.perf_counter() - started
    finally:
        sink.close()
    assert 0.2 <= elapsed < 3.0
    assert results[0] is None and results[2] is None and results[3] is None
    assert isinstance(results[1], TimeoutError)
    assert "0.3s" in str(results[1])


def test_a_full_local_queue_is_waited_out_then_retried() -> None:
    def prepare(producer: FakeRdProducer, _n: int) -> None:
        producer.full_from = 1  # the first record goes in, then three produce calls find it full
        producer.full_calls = 3

    factory = Factory(prepare)
    sink = RdKafkaSink(settings(), factory=factory)
    batch = records(5)
    try:
        started = time.perf_counter()
        assert sink.send_many(batch, timeout=2.0) == [None] * 5
        assert time.perf_counter() - started < 1.5
    finally:
        sink.close()
    producer = factory.producers[0]
    assert producer.buffer_errors_raised == 3
    assert producer.produced == [("adclick.events", k, v) for k, v in batch]  # each exactly once


def test_a_queue_that_stays_full_fails_the_rest_with_buffer_error() -> None:
    def prepare(producer: FakeRdProducer, _n: int) -> None:
        producer.full_from = 2
        producer.full_calls = 10**9

    factory = Factory(prepare)
    sink = RdKafkaSink(settings(), factory=factory)
    try:
        started = time.perf_counter()
        results = sink.send_many(records(5), timeout=3.0)
        elapsed = time.perf_counter() - started
    finally:
        sink.close()
    assert elapsed < 3.0  # about the sink's ~1 s wait for room, not the 3 s timeout
    assert results[:2] == [None, None]
    assert all(type(r) is BufferError for r in results[2:]), results
    assert len(factory.producers[0].produced) == 2


def test_a_fatal_error_drops_the_producer_and_the_next_request_builds_a_new_one() -> None:
    def prepare(producer: FakeRdProducer, n: int) -> None:
        if n == 0:
            producer.failures = {0: FakeError("fatal idempotence error", fatal=True)}

    factory = Factory(prepare)
    sink = RdKafkaSink(settings(), factory=factory)
    try:
        first = sink.send_many(records(1), timeout=2.0)
        assert isinstance(first[0], DeliveryFailed)
        assert len(factory.producers) == 1
        second = sink.send_many(records(2), timeout=2.0)
    finally:
        sink.close()
    assert second == [None, None]
    assert len(factory.producers) == 2
    assert len(factory.producers[1].produced) == 2  # the new producer took the second request


def test_a_non_fatal_error_keeps_the_producer() -> None:
    def prepare(producer: FakeRdProducer, _n: int) -> None:
        producer.failures = {0: FakeError("REQUEST_TIMED_OUT")}

    factory = Factory(prepare)
    sink = RdKafkaSink(settings(), factory=factory)
    try:
        assert isinstance(sink.send_many(records(1), timeout=2.0)[0], DeliveryFailed)
        assert sink.send_many(records(1), timeout=2.0) == [None]
    finally:
        sink.close()
    assert len(factory.producers) == 1
    assert len(factory.producers[0].produced) == 2


def test_without_brokers_every_record_is_sink_unavailable_fast() -> None:
    sink = RdKafkaSink(settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}"))
    try:
        started = time.perf_counter()
        results = sink.send_many(records(3), timeout=2.0)
        assert time.perf_counter() - started < 1.5
        assert len(results) == 3
        assert all(isinstance(r, SinkUnavailable) for r in results), results
        assert not sink.reachable()
    finally:
        sink.close()


# --- on the event loop, closing ----------------------------------------------------------------


def test_deliver_queues_through_begin_on_the_event_loop() -> None:
    factory = Factory()
    sink = RdKafkaSink(settings(), factory=factory)
    batch = records(4)

    async def main() -> tuple[list[Any], str]:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="deliver-pool") as executor:
            results = await deliver(sink, batch, 2.0, executor)
        return results, threading.current_thread().name

    try:
        results, loop_thread = asyncio.run(main())
    finally:
        sink.close()
    assert results == [None] * 4
    producer = factory.producers[0]
    assert [(k, v) for _, k, v in producer.produced] == batch
    assert producer.produce_threads == [loop_thread] * 4  # begin() on the loop, not send_many in the pool


def test_a_report_after_the_wait_ended_reaches_the_late_callback() -> None:
    def prepare(producer: FakeRdProducer, _n: int) -> None:
        producer.silent = {1, 2}
        producer.failures = {2: FakeError("Local: Message timed out")}

    factory = Factory(prepare)
    sink = RdKafkaSink(settings(), factory=factory)
    late: list[tuple[int, Any]] = []

    async def main() -> list[Any]:
        with ThreadPoolExecutor(max_workers=2) as executor:
            return await deliver(sink, records(3), 0.2, executor, late=lambda i, r: late.append((i, r)))

    try:
        results = asyncio.run(main())
        assert results[0] is None and isinstance(results[1], TimeoutError) and late == []
        factory.producers[0].release()
        factory.producers[0].poll(0)
    finally:
        sink.close()
    assert [i for i, _ in late] == [1, 2]
    assert late[0][1] is None and isinstance(late[1][1], DeliveryFailed)  # delivered late; failed late


def test_close_flushes_the_producer() -> None:
    factory = Factory()
    sink = RdKafkaSink(settings(produce_timeout_seconds=1.5), factory=factory)
    assert sink.send_many(records(2), timeout=2.0) == [None, None]
    sink.close()
    assert factory.producers[0].flushes == [1.5]
    assert sink.send_many(records(1), timeout=2.0) == [None]  # a new producer after close
    assert len(factory.producers) == 2
    sink.close()


def test_the_event_loop_serves_reports_while_records_are_in_flight_then_stops() -> None:
    """No poller thread: deliver() on the loop is answered by the loop's own pump, which keeps
    running while a record is in flight and stops once none is."""

    def prepare(producer: FakeRdProducer, _n: int) -> None:
        producer.silent = {1}  # record 1 stays in flight until the request times out

    sink = RdKafkaSink(settings(), factory=Factory(prepare))
    before = {t.name for t in threading.enumerate()}

    async def main() -> tuple[list[Any], bool, bool]:
        with ThreadPoolExecutor(max_workers=1) as executor:
            results = await deliver(sink, records(3), 0.3, executor)
            pumping = asyncio.get_running_loop() in sink._pumping
            sink._producer.silent = set()  # the late report is served ...
            sink._producer._reports.append((lambda *_: None, None, ("t", b"k", b"v")))
            await asyncio.sleep(0.05)
            return results, pumping, asyncio.get_running_loop() in sink._pumping

    try:
        results, pumping_while_in_flight, pumping_after = asyncio.run(main())
    finally:
        sink.close()
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], TimeoutError)
    assert pumping_while_in_flight and not pumping_after
    assert {t.name for t in threading.enumerate()} - before == set()  # no thread of the sink's own


def test_a_fatal_kafka_exception_from_the_real_client_drops_the_producer() -> None:
    """confluent-kafka raises fatal errors out of produce()/poll() as KafkaException (its delivery
    reports never say fatal): the sink must still build a new producer."""
    from confluent_kafka import KafkaError, KafkaException

    class FatalProducer(FakeRdProducer):
        def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Any = None) -> None:
            raise KafkaException(KafkaError(KafkaError._FATAL, "producer fenced"))

    built: list[FakeRdProducer] = []

    def factory(config: dict[str, Any]) -> FakeRdProducer:
        built.append(FatalProducer(config) if not built else FakeRdProducer(config))
        return built[-1]

    sink = RdKafkaSink(settings(), factory=factory)
    try:
        first = sink.send_many(records(2), timeout=2.0)
        second = sink.send_many(records(2), timeout=2.0)
    finally:
        sink.close()
    assert all(isinstance(r, KafkaException) for r in first)
    assert second == [None, None]
    assert len(built) == 2 and len(built[1].produced) == 2
