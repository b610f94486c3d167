"""``python -m bench [name ...]``: run the benchmarks under bench/ against the local stack.

Starts the stack when it is not running (and stops it afterwards); a benchmark module is any
``bench/*.py`` with a ``run(settings, context)`` function; ``context`` holds the results
of the benchmarks already run, so a peer can come from the same run.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from adclick.settings import get_settings

HERE = Path(__file__).resolve().parent
NOT_BENCHMARKS = {"__init__", "__main__", "result", "load"}
FIRST = "kafka_producer_baseline"  # the ceiling the ingestion figures are compared to, same run


def discover() -> list[str]:
    names = sorted(p.stem for p in HERE.glob("*.py") if p.stem not in NOT_BENCHMARKS)
    return sorted(names, key=lambda n: n != FIRST)


def main(argv: list[str]) -> int:
    from infra.stack import down, status, up

    names = argv or discover()
    unknown = sorted(set(names) - set(discover()))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(discover())}", file=sys.stderr)
        return 2
    # A stack the runner starts has no daily_batch catch-up: a catch-up from ADCLICK_BATCH_START_DATE
    # would recompute every day since it beside the benchmarks (backfill_7_days needs it off).
    os.environ.setdefault("ADCLICK_BATCH_CATCHUP", "false")
    get_settings.cache_clear()
    settings = get_settings()
    started = False
    if not status(settings, log=lambda _line: None):
        up(settings)
        started = True
    context: dict[str, dict] = {}  # results so far in this run, for peers measured in the same run
    failed: list[str] = []
    try:
        for name in sorted(names, key=lambda n: n != FIRST):
            print(f"== {name}", flush=True)
            try:
                context[name] = importlib.import_module(f"bench.{name}").run(settings, context)
            except Exception as exc:  # one benchmark's failure is reported; the others still run
                print(f"{name}: FAILED: {exc}", file=sys.stderr, flush=True)
                failed.append(name)
    finally:
        if started:
            down(settings)
    if failed:
        print(f"failed benchmark(s): {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
