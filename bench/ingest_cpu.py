"""ingest_cpu: CPU per event of the ingestion API's batch pipeline, in process, without Kafka.

Method: ``BENCH_CPU_EVENTS`` generated valid events (``traffic.generator``, distinct ids, event
times an hour or two old) plus ``BENCH_CPU_INVALID_SHARE`` of invalid ones (a bad ts, UUID,
country, a number as ad_id, a missing field, an unknown field too long, in turn) are pushed
through the :class:`ingestion.ingestor.Ingestor` of a fresh in-process API (its own spool
directory, a sink that takes the records and acknowledges them at once: no broker, no
kafka-python), ``BENCH_CPU_BATCH`` events a call, as ``POST /v1/events/batch`` hands them over
after parsing the body. Three stages are timed with the process CPU clock (all threads), the
best of ``BENCH_CPU_REPEATS`` runs (stages interleaved, so a noisy neighbour on the shared
machine hits them alike), each with a fresh ingestor (an empty duplicate hint):

* ``validate``: the contract check of each decoded event;
* ``validate_pseudonymise``: the per-event preparation (nesting depth, contract, keyed hashes,
  region, unknown fields to attributes);
* ``pipeline``: preparation, duplicate hint, hot-key salting, record bytes and the hand-over
  to the sink (what the batch endpoint spends per event, minus HTTP, body parsing and Kafka);
* ``reference_validate`` and ``reference_validate_pseudonymise``, in the same run: the pydantic
  reference path the compiled one must agree with (:func:`adclick.contract.validate_incoming`,
  then :func:`~adclick.contract.to_event` and ``to_json``), which is what the API ran before.

No peer: the figure is compared with the same benchmark before and after a change. A cProfile
run of the pipeline stage lists the top costs (by own time) in the result.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import os
import pstats
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adclick.settings import Settings
from bench.result import write_result

EVENTS = int(os.environ.get("BENCH_CPU_EVENTS", "50000"))
INVALID_SHARE = float(os.environ.get("BENCH_CPU_INVALID_SHARE", "0.05"))
BATCH = int(os.environ.get("BENCH_CPU_BATCH", "1000"))
REPEATS = int(os.environ.get("BENCH_CPU_REPEATS", "5"))
PROFILE_EVENTS = int(os.environ.get("BENCH_CPU_PROFILE_EVENTS", "10000"))
TOP = 15
STAGES = (
    "validate",
    "validate_pseudonymise",
    "pipeline",
    "reference_validate",
    "reference_validate_pseudonymise",
)

_BREAKERS: list[Callable[[dict[str, Any]], dict[str, Any]]] = [
    lambda e: {**e, "ts": "2000-01-01T00:00:00Z"},  # older than the late-arrival horizon
    lambda e: {**e, "event_id": "not-a-uuid"},
    lambda e: {**e, "country": "ZZ"},
    lambda e: {**e, "ad_id": 42},
    lambda e: {k: v for k, v in e.items() if k != "ad_id"},
    lambda e: {**e, "note": "n" * 600},
]


class _AckingSink:
    """An :class:`ingestion.producer.EventSink` that takes every record and acknowledges it."""

    def __init__(self) -> None:
        self.records = 0
        self.bytes = 0

    def send_many(self, records: Any, timeout: float) -> list[None]:
        self.records += len(records)
        self.bytes += sum(len(value) for _, value in records)
        return [None] * len(records)

    def reachable(self) -> bool:
        return True

    def close(self) -> None:
        pass


def _workload(n: int, invalid_share: float) -> tuple[list[dict[str, Any]], int]:
    """``n`` valid events with every ``1/invalid_share``-th one broken (in turn by each breaker)."""
    from bench.load import events

    valid = events(n, seed=4242)
    every = round(1 / invalid_share) if invalid_share > 0 else 0
    out: list[dict[str, Any]] = []
    broken = 0
    for i, event in enumerate(valid):
        if every and i % every == every - 1:
            out.append(_BREAKERS[broken % len(_BREAKERS)](event))
            broken += 1
        else:
            out.append(event)
    return out, broken


def _ingestor(settings: Settings, home: Path) -> Any:
    from ingestion.ingestor import Ingestor

    env = settings.env if settings.hash_key is not None else "test"
    local = settings.model_copy(update={"home": home, "env": env, "spool_fsync": "never"})
    return Ingestor(local, _AckingSink(), time.time)


def _stages(ingestor: Any, loop: asyncio.AbstractEventLoop) -> dict[str, Callable[[list[Any]], int]]:
    """Per stage: a function over one batch of decoded events, returning how many were accepted."""
    from adclick.contract import ContractError, to_event, validate_incoming

    settings = ingestor.settings

    def validate(batch: list[Any]) -> int:
        now, _ = ingestor.now()
        ok = 0
        for obj in batch:
            try:
                ingestor.validator.validate(obj, now)
                ok += 1
            except ContractError:
                pass
        return ok

    def validate_pseudonymise(batch: list[Any]) -> int:
        now, received_ms = ingestor.now()
        events, _ = ingestor.prepare_many(list(enumerate(batch)), now, received_ms, None)
        return len(events)

    def pipeline(batch: list[Any]) -> int:
        now, received_ms = ingestor.now()
        events, _ = ingestor.prepare_many(list(enumerate(batch)), now, received_ms, None)
        accepted, _, durable = loop.run_until_complete(ingestor.accept([e for _, e in events]))
        assert durable
        return accepted

    def reference(batch: list[Any], *, record: bool) -> int:
        now, received_ms = ingestor.now()
        ok = 0
        for obj in batch:
            try:
                incoming = validate_incoming(
                    obj,
                    now=now,
                    late_horizon_days=settings.late_horizon_days,
                    future_skew_minutes=settings.future_skew_minutes,
                )
                if record:
                    to_event(incoming, key=ingestor.key, received_at_ms=received_ms).to_json()
                ok += 1
            except ContractError:
                pass
        return ok

    return {
        "validate": validate,
        "validate_pseudonymise": validate_pseudonymise,
        "pipeline": pipeline,
        "reference_validate": lambda batch: reference(batch, record=False),
        "reference_validate_pseudonymise": lambda batch: reference(batch, record=True),
    }


def _warm(settings: Settings, home: Path, name: str, workload: list[Any]) -> None:
    """One batch through a throw-away ingestor: imports and caches, not the hint, are warm."""
    ingestor = _ingestor(settings, home / "warm")
    loop = asyncio.new_event_loop()
    try:
        _stages(ingestor, loop)[name](workload[:BATCH])
    finally:
        loop.close()
        ingestor.close()


def _time_stage(settings: Settings, name: str, workload: list[Any]) -> tuple[float, int]:
    """CPU seconds of one run of stage ``name`` over the workload, and the events it accepted."""
    with tempfile.TemporaryDirectory(prefix="bench-ingest-cpu-") as home:
        _warm(settings, Path(home), name, workload)
        ingestor = _ingestor(settings, Path(home) / "run")
        loop = asyncio.new_event_loop()
        try:
            stage = _stages(ingestor, loop)[name]
            started = time.process_time()
            accepted = sum(stage(workload[i : i + BATCH]) for i in range(0, len(workload), BATCH))
            return time.process_time() - started, accepted
        finally:
            loop.close()
            ingestor.close()


def _profile(settings: Settings, workload: list[Any]) -> list[str]:
    """The top entries (own time) of a cProfile run of the pipeline stage."""
    with tempfile.TemporaryDirectory(prefix="bench-ingest-cpu-") as home:
        _warm(settings, Path(home), "pipeline", workload)
        ingestor = _ingestor(settings, Path(home) / "run")
        loop = asyncio.new_event_loop()
        try:
            stage = _stages(ingestor, loop)["pipeline"]
            # CPU time: being preempted on a shared machine is not a cost of the code.
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            for i in range(0, len(workload), BATCH):
                stage(workload[i : i + BATCH])
            profiler.disable()
        finally:
            loop.close()
            ingestor.close()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(TOP)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    root = str(Path(__file__).resolve().parent.parent) + "/"
    return [
        " ".join(line.replace(root, "").split()) for line in lines[start : start + TOP + 1] if line.strip()
    ]


def run(settings: Settings, context: dict | None = None) -> dict:
    workload, invalid = _workload(EVENTS, INVALID_SHARE)
    best: dict[str, float] = {}
    accepted: dict[str, int] = {}
    for _ in range(REPEATS):  # stages interleaved: a noisy neighbour hits them all alike
        for name in STAGES:
            seconds, accepted[name] = _time_stage(settings, name, workload)
            best[name] = min(best.get(name, float("inf")), seconds)
    per_event = {name: best[name] / len(workload) * 1e6 for name in STAGES}
    assert accepted["pipeline"] == len(workload) - invalid, accepted
    assert accepted["validate"] == accepted["reference_validate"], accepted
    profile = _profile(settings, workload[:PROFILE_EVENTS])
    for line in profile:
        print("  " + line)
    us = per_event
    summary = (
        f"{us['pipeline']:.1f} us/event CPU for the whole pipeline without producing "
        f"(validate {us['validate']:.1f}, + pseudonymise {us['validate_pseudonymise']:.1f}; "
        f"{len(workload):,} events, {invalid:,} invalid; the pydantic reference path: validate "
        f"{us['reference_validate']:.1f}, + pseudonymise {us['reference_validate_pseudonymise']:.1f})"
    )
    return write_result(
        "ingest_cpu",
        metric="process CPU per event of the batch pipeline, in process, no Kafka",
        value=per_event["pipeline"],
        unit="us/event",
        peer=None,
        params={
            "events": len(workload),
            "invalid": invalid,
            "batch": BATCH,
            "repeats": REPEATS,
            "clock": "time.process_time (best run)",
        },
        summary=summary,
        us_per_event={k: round(v, 2) for k, v in per_event.items()},
        accepted=accepted,
        profile_top=profile,
    )


if __name__ == "__main__":
    from adclick.settings import get_settings

    run(get_settings())
