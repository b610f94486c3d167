"""``adclick lineage <table> --date D [--json]``: where a table's partition came from (argparse
wiring and the handler; the work is in :mod:`batch_layer.lineage`, imported by the handler).

The table and the date are checked before Spark starts; an error is one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import date
from typing import Any

from adclick.settings import get_settings


def _with_spark(name: str, work: Callable[[Any], int]) -> int:
    from adclick.spark import get_spark

    settings = get_settings()
    from adclick.priority import yield_cpu

    yield_cpu(settings)  # Spark work yields the CPU to the APIs (niceness + CPU cgroup)
    spark = get_spark(f"adclick-{name}", settings=settings)
    try:
        return work(spark)
    finally:
        spark.stop()


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _lineage(args: argparse.Namespace) -> int:
    from batch_layer.lineage import LineageError, partition_day, render, to_dict, trace

    try:
        day = date.fromisoformat(args.date)
    except ValueError as exc:
        return _fail(f"--date {args.date!r} is not a day (YYYY-MM-DD): {exc}")
    try:
        day = partition_day(args.table, day)  # the table is checked here, before Spark starts
    except LineageError as exc:
        return _fail(str(exc))

    def work(spark: Any) -> int:
        try:
            root = trace(spark, get_settings(), args.table, day)
        except LineageError as exc:
            return _fail(str(exc))
        print(json.dumps(to_dict(root), indent=2) if args.json else render(root))
        return 0

    return _with_spark("lineage", work)


def add_lineage_parser(sub: Any) -> None:
    p = sub.add_parser(
        "lineage",
        help="where a table's day came from: the job runs, table versions, code, model, bronze files, "
        "Kafka offsets",
    )
    p.add_argument("table", help="a table a batch job writes, e.g. gold.ad_clicks_daily, silver.events")
    p.add_argument("--date", required=True, help="the day (YYYY-MM-DD; any day of the month for monthly)")
    p.add_argument("--json", action="store_true", help="print the tree as JSON")
    p.set_defaults(func=_lineage)
