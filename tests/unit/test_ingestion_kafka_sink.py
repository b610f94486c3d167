"""The ingestion Kafka sink with a fake kafka-python producer: config, send-then-wait, per-record
failures, the total timeout, no brokers, the reachability probe, thread-safe creation."""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

from ingestion_component_support import settings

from ingestion.producer import KafkaSink, SinkUnavailable, producer_config

# --- Kafka sink ---------------------------------------------------------------------------------


class FakeFuture:
    def __init__(self, error: BaseException | None = None, delay: float = 0.0) -> None:
        self.error = error
        self.delay = delay

    def get(self, timeout: float | None = None) -> Any:
        if self.delay:
            time.sleep(min(self.delay, self.delay if timeout is None else timeout))
            if timeout is not None and self.delay > timeout:
                raise TimeoutError("no ack in time")
        if self.error is not None:
            raise self.error
        return "metadata"


class FakeProducer:
    """Stands in for kafka-python's KafkaProducer (records sends; futures resolve as configured)."""

    instances: ClassVar[list[FakeProducer]] = []

    def __init__(self, **config: Any) -> None:
        self.config = config
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.log: list[str] = []
        self.fail_from: int | None = None
        self.raise_on_send: int | None = None
        self.delay = 0.0
        self.closed = False
        FakeProducer.instances.append(self)

    def send(self, topic: str, key: bytes, value: bytes) -> FakeFuture:
        if self.raise_on_send is not None and len(self.sent) >= self.raise_on_send:
            raise TimeoutError("metadata not available")
        self.sent.append((topic, key, value))
        self.log.append("send")
        failed = self.fail_from is not None and len(self.sent) > self.fail_from
        return _LoggedFuture(self.log, RuntimeError("NotEnoughReplicas") if failed else None, self.delay)

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


class _LoggedFuture(FakeFuture):
    def __init__(self, log: list[str], error: BaseException | None, delay: float) -> None:
        super().__init__(error, delay)
        self.log = log

    def get(self, timeout: float | None = None) -> Any:
        self.log.append("wait")
        return super().get(timeout)


def test_producer_config_is_durable_and_batched() -> None:
    config = producer_config(settings(kafka_bootstrap_servers="k1:9092, k2:9092"))
    assert config["bootstrap_servers"] == ["k1:9092", "k2:9092"]
    assert config["acks"] == "all"
    assert config["enable_idempotence"] is True  # kafka-python 3 supports it
    assert config["max_in_flight_requests_per_connection"] == 5
    assert config["linger_ms"] == 5
    assert config["batch_size"] == 256 * 1024
    assert config["compression_type"] in ("lz4", "gzip")
    assert config["delivery_timeout_ms"] >= config["linger_ms"] + config["request_timeout_ms"]
    from kafka import KafkaProducer

    assert set(config) <= set(KafkaProducer.DEFAULT_CONFIG)


def test_kafka_sink_sends_everything_then_waits() -> None:
    sink = KafkaSink(settings(), factory=FakeProducer)
    records = [(f"ad-{i}".encode(), b"{}") for i in range(5)]
    assert sink.send_many(records, timeout=1.0) == [None] * 5
    producer = FakeProducer.instances[-1]
    assert producer.log == ["send"] * 5 + ["wait"] * 5
    assert [(t, k) for t, k, _ in producer.sent] == [("adclick.events", k) for k, _ in records]
    sink.close()
    assert producer.closed


def test_kafka_sink_reports_failures_per_record() -> None:
    sink = KafkaSink(settings(), factory=FakeProducer)
    sink.send_many([(b"k", b"v")], timeout=1.0)
    producer = FakeProducer.instances[-1]
    producer.fail_from = 3
    results = sink.send_many([(b"k", b"v")] * 4, timeout=1.0)
    assert [r is None for r in results] == [True, True, False, False]
    producer.raise_on_send = len(producer.sent) + 1
    results = sink.send_many([(b"k", b"v")] * 3, timeout=1.0)
    assert [type(r) for r in results] == [RuntimeError, TimeoutError, TimeoutError]


def test_kafka_sink_waits_at_most_the_timeout_in_total() -> None:
    sink = KafkaSink(settings(), factory=FakeProducer)
    sink.send_many([(b"k", b"v")], timeout=1.0)
    FakeProducer.instances[-1].delay = 5.0
    started = time.perf_counter()
    results = sink.send_many([(b"k", b"v")] * 4, timeout=0.2)
    assert time.perf_counter() - started < 1.0
    assert all(isinstance(r, TimeoutError) for r in results)


def test_kafka_sink_without_brokers_fails_fast_and_retries_later() -> None:
    attempts: list[int] = []

    def no_brokers(**config: Any) -> Any:
        attempts.append(1)
        raise ConnectionError("NoBrokersAvailable")

    sink = KafkaSink(settings(), factory=no_brokers, retry_create_seconds=60)
    results = sink.send_many([(b"k", b"v")] * 2, timeout=1.0)
    assert all(isinstance(r, SinkUnavailable) for r in results)
    sink.send_many([(b"k", b"v")], timeout=1.0)
    assert len(attempts) == 1  # not retried before retry_create_seconds
    sink.close()


def test_kafka_sink_reachability_is_a_tcp_probe() -> None:
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        assert KafkaSink(settings(kafka_bootstrap_servers=f"127.0.0.1:{port}")).reachable()
    finally:
        server.close()
    assert not KafkaSink(settings(kafka_bootstrap_servers=f"127.0.0.1:{port}")).reachable()


def test_kafka_sink_is_thread_safe_on_creation() -> None:
    created: list[int] = []

    def slow_factory(**config: Any) -> FakeProducer:
        created.append(1)
        time.sleep(0.05)
        return FakeProducer(**config)

    sink = KafkaSink(settings(), factory=slow_factory)
    threads = [threading.Thread(target=sink.send_many, args=([(b"k", b"v")], 1.0)) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(created) == 1
