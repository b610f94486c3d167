"""Awaiting Kafka acknowledgements on the event loop (ingestion.producer.deliver)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ingestion.producer import DELIVERY_OBSERVER, deliver


class CallbackFuture:
    """kafka-python's future surface: callbacks run in the thread that settles it."""

    def __init__(self) -> None:
        self.callbacks: list[Any] = []
        self.errbacks: list[Any] = []
        self.outcome: tuple[str, Any] | None = None

    def add_callback(self, fn: Any) -> None:
        self.callbacks.append(fn)
        if self.outcome and self.outcome[0] == "ok":
            fn(self.outcome[1])

    def add_errback(self, fn: Any) -> None:
        self.errbacks.append(fn)
        if self.outcome and self.outcome[0] == "err":
            fn(self.outcome[1])

    def succeed(self) -> None:
        self.outcome = ("ok", "metadata")
        for fn in self.callbacks:
            fn("metadata")

    def fail(self, exc: BaseException) -> None:
        self.outcome = ("err", exc)
        for fn in self.errbacks:
            fn(exc)


class SubmitSink:
    def __init__(self, plan: list[str]) -> None:
        self.plan = plan
        self.futures: list[CallbackFuture] = []
        self.threads_used: set[str] = set()

    def submit(self, records: list[tuple[bytes, bytes]]) -> list[Any]:
        self.threads_used.add(threading.current_thread().name)
        handles: list[Any] = []
        for step in self.plan[: len(records)]:
            if step == "refused":
                handles.append(RuntimeError("buffer exhausted"))
                continue
            future = CallbackFuture()
            if step == "acked-before":
                future.succeed()
            self.futures.append(future)
            handles.append(future)
        return handles

    def settle_later(self, delay: float) -> None:
        def run() -> None:
            time.sleep(delay)
            for future, step in zip(self.futures, [s for s in self.plan if s != "refused"], strict=True):
                if step == "acked":
                    future.succeed()
                elif step == "failed":
                    future.fail(RuntimeError("NotEnoughReplicas"))

        threading.Thread(target=run, daemon=True).start()

    def send_many(self, records: Any, timeout: float) -> list[Any]:  # pragma: no cover - not used here
        raise AssertionError("the async path must not fall back to send_many")


def _run(sink: Any, n: int, timeout: float) -> tuple[list[Any], float]:
    executor = ThreadPoolExecutor(2, thread_name_prefix="io")

    async def main() -> list[Any]:
        return await deliver(sink, [(b"k", b"v")] * n, timeout, executor)

    started = time.perf_counter()
    results = asyncio.run(main())
    executor.shutdown()
    return results, time.perf_counter() - started


def test_results_follow_each_records_fate() -> None:
    sink = SubmitSink(["acked", "failed", "refused", "acked-before", "never"])
    sink.settle_later(0.05)
    results, elapsed = _run(sink, 5, timeout=0.5)
    assert results[0] is None and results[3] is None
    assert str(results[1]) == "NotEnoughReplicas"
    assert str(results[2]) == "buffer exhausted"
    assert isinstance(results[4], TimeoutError)  # never acknowledged: reported, not raised
    assert 0.5 <= elapsed < 5.0
    assert all(name.startswith("io") for name in sink.threads_used)  # submit ran off the event loop


def test_returns_as_soon_as_the_last_ack_arrives() -> None:
    sink = SubmitSink(["acked"] * 100)
    sink.settle_later(0.05)
    results, elapsed = _run(sink, 100, timeout=10.0)
    assert results == [None] * 100
    assert elapsed < 5.0  # far below the timeout: resolved by the callbacks, not by waiting it out


def test_all_refused_needs_no_waiting() -> None:
    results, _ = _run(SubmitSink(["refused"] * 3), 3, timeout=10.0)
    assert [str(r) for r in results] == ["buffer exhausted"] * 3


def test_a_sink_without_submit_runs_blocking_in_the_executor() -> None:
    class Blocking:
        def send_many(self, records: Any, timeout: float) -> list[Any]:
            return [None if threading.current_thread().name.startswith("io") else AssertionError()] * len(
                records
            )

    results, _ = _run(Blocking(), 4, timeout=1.0)
    assert results == [None] * 4


def test_the_delivery_observer_hears_each_wait_and_whether_all_were_acked() -> None:
    told: list[tuple[float, bool]] = []
    executor = ThreadPoolExecutor(2, thread_name_prefix="io")

    async def send(plan: list[str], settle_after: float) -> None:
        sink = SubmitSink(plan)
        sink.settle_later(settle_after)
        await deliver(sink, [(b"k", b"v")] * len(plan), 5.0, executor)

    async def main() -> None:
        await send(["acked"], 0.05)  # no observer set: nobody is told
        DELIVERY_OBSERVER.set(lambda seconds, ok: told.append((seconds, ok)))
        await send(["acked"] * 3, 0.2)
        await send(["acked", "failed"], 0.05)

    asyncio.run(main())
    executor.shutdown()
    assert [ok for _, ok in told] == [True, False]
    assert 0.15 <= told[0][0] < 5.0  # it waited for the acks (settled about 0.2 s later)
