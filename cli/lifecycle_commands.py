"""``adclick archive run|restore|list``, ``adclick maintain``, ``adclick hold add|list|release`` and
``adclick erase`` (argparse wiring and handlers; the work is in :mod:`batch_layer.lifecycle`,
:mod:`batch_layer.maintenance` and :mod:`batch_layer.erasure`, imported by the handlers)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from adclick.retention import ARCHIVED, MANAGED
from adclick.settings import get_settings
from batch_layer.maintenance import TABLES as MAINTAINED


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


def _print(result: dict[str, Any]) -> None:
    print(json.dumps(result, indent=2, default=str))


def _archive_run(args: argparse.Namespace) -> int:
    from batch_layer.lifecycle import run_retention

    today = args.date or datetime.now(UTC).date()

    def work(spark: Any) -> int:
        log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
        _print(
            run_retention(
                spark, get_settings(), today, tables=args.table or MANAGED, dry_run=args.dry_run, log=log
            )
        )
        return 0

    return _with_spark("retention", work)


def _maintain(args: argparse.Namespace) -> int:
    from batch_layer.maintenance import run_maintenance

    as_of = args.date or datetime.now(UTC).date()

    def work(spark: Any) -> int:
        log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
        tables = args.table or MAINTAINED
        _print(run_maintenance(spark, get_settings(), as_of, tables=tables, dry_run=args.dry_run, log=log))
        return 0

    return _with_spark("maintenance", work)


def _archive_restore(args: argparse.Namespace) -> int:
    from batch_layer.lifecycle import restore

    def work(spark: Any) -> int:
        log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
        _print(
            restore(
                spark,
                get_settings(),
                args.first,
                args.last or args.first,
                tables=args.table or ARCHIVED,
                log=log,
            )
        )
        return 0

    return _with_spark("restore", work)


def _archive_list(args: argparse.Namespace) -> int:
    from batch_layer.lifecycle import lifecycle_days

    def work(spark: Any) -> int:
        for name in args.table or ARCHIVED:
            days = lifecycle_days(spark, get_settings(), name)
            for day, where in days.items():
                print(f"{name}\t{day}\t{where}")
        return 0

    return _with_spark("archive-list", work)


def _hold_add(args: argparse.Namespace) -> int:
    from adclick.privacy import hash_key, pseudonymise
    from batch_layer.lifecycle import add_hold

    settings = get_settings()
    user_key = pseudonymise(hash_key(settings), args.user, domain="user") if args.user else None

    def work(spark: Any) -> int:
        hold = add_hold(
            spark,
            settings,
            reason=args.reason,
            by=args.by,
            date_from=args.first,
            date_to=args.last,
            advertiser_id=args.advertiser,
            user_key=user_key,
        )
        print(hold.hold_id)
        print(f"hold: added {hold.describe()}", file=sys.stderr)
        return 0

    return _with_spark("hold", work)


def _hold_list(args: argparse.Namespace) -> int:
    from batch_layer.lifecycle import active_holds

    def work(spark: Any) -> int:
        holds = active_holds(spark, get_settings())
        for h in holds:
            print(f"{h.hold_id}\t{h.describe()}")
        if not holds:
            print("no active legal holds", file=sys.stderr)
        return 0

    return _with_spark("hold", work)


def _hold_release(args: argparse.Namespace) -> int:
    from batch_layer.lifecycle import release_hold

    def work(spark: Any) -> int:
        hold = release_hold(spark, get_settings(), args.hold_id, by=args.by, reason=args.reason)
        print(f"hold: released {hold.describe()}", file=sys.stderr)
        return 0

    return _with_spark("hold", work)


def _erase(args: argparse.Namespace) -> int:
    from adclick.erasure import check_user_key
    from adclick.privacy import hash_key, pseudonymise

    settings = get_settings()
    key = check_user_key(
        args.user_key if args.user_key else pseudonymise(hash_key(settings), args.user_id, domain="user")
    )
    if args.key_only:
        print(key)
        return 0
    if not (args.reason or "").strip():
        from adclick.erasure import ErasureError

        raise ErasureError("adclick erase needs --reason (the request's reference, kept in ops.erasure_log)")

    def work(spark: Any) -> int:
        from batch_layer.erasure import run_erasure

        log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
        _print(run_erasure(spark, settings, key, by=args.by, reason=args.reason, log=log))
        return 0

    return _with_spark("erasure", work)


def _table_arg(p: argparse.ArgumentParser, choices: tuple[str, ...]) -> None:
    p.add_argument("--table", action="append", choices=choices, help="only this table (repeatable)")


def add_lifecycle_parsers(sub: Any) -> None:
    a = sub.add_parser("archive", help="the data lifecycle: retention run, restore, where days live")
    asub = a.add_subparsers(dest="archive_command", required=True, metavar="ACTION")
    run = asub.add_parser("run", help="one retention run: compact warm days, archive cold ones, expire")
    run.add_argument("--date", type=date.fromisoformat, help="as of this day (default: today, UTC)")
    run.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    _table_arg(run, MANAGED)
    run.set_defaults(func=_archive_run)
    r = asub.add_parser("restore", help="make archived days queryable again in restored.*")
    r.add_argument("--from", dest="first", required=True, type=date.fromisoformat, help="first day")
    r.add_argument("--to", dest="last", type=date.fromisoformat, help="last day (default: --from)")
    _table_arg(r, ARCHIVED)
    r.set_defaults(func=_archive_restore)
    ls = asub.add_parser("list", help="each day of the archived tables: lake, archive or restored")
    _table_arg(ls, ARCHIVED)
    ls.set_defaults(func=_archive_list)

    m = sub.add_parser(
        "maintain",
        help="compact closed days of bronze and speed (OPTIMIZE), then VACUUM (as the lake_maintenance DAG)",
    )
    m.add_argument(
        "--date",
        type=date.fromisoformat,
        help="as of this day: compacts days before it (default: today, UTC)",
    )
    m.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    _table_arg(m, MAINTAINED)
    m.set_defaults(func=_maintain)

    e = sub.add_parser(
        "erase",
        help="GDPR/CCPA erasure of one user everywhere, then a scan proving it (as the gdpr_erasure DAG)",
    )
    who = e.add_mutually_exclusive_group(required=True)
    who.add_argument("--user-id", help="the raw user id: pseudonymised here, never stored or sent on")
    who.add_argument("--user-key", help="the pseudonymised user id (32 hex), as in the lake")
    e.add_argument("--reason", help="the request's reference (required unless --key-only)")
    e.add_argument("--by", default=os.environ.get("USER", "unknown"), help="who asks (default: $USER)")
    e.add_argument(
        "--key-only", action="store_true", help="print the user key (for the DAG's user_key param) and stop"
    )
    e.set_defaults(func=_erase)

    h = sub.add_parser("hold", help="legal holds: data they cover is never deleted, archived or erased")
    hsub = h.add_subparsers(dest="hold_command", required=True, metavar="ACTION")
    add = hsub.add_parser("add", help="place a hold on a date range, an advertiser or a user")
    add.add_argument("--from", dest="first", type=date.fromisoformat, help="first day held")
    add.add_argument("--to", dest="last", type=date.fromisoformat, help="last day held (default: --from)")
    add.add_argument("--advertiser", help="hold every day with rows of this advertiser_id")
    add.add_argument("--user", help="hold every day with rows of this user id (stored pseudonymised only)")
    add.add_argument("--reason", required=True, help="why (case number, request)")
    add.add_argument("--by", default=os.environ.get("USER", "unknown"), help="who places it (default: $USER)")
    add.set_defaults(func=_hold_add)
    hsub.add_parser("list", help="the active holds").set_defaults(func=_hold_list)
    rel = hsub.add_parser("release", help="release a hold")
    rel.add_argument("hold_id")
    rel.add_argument("--reason", required=True, help="why it ends")
    rel.add_argument("--by", default=os.environ.get("USER", "unknown"), help="who releases it")
    rel.set_defaults(func=_hold_release)
