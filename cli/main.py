"""``adclick``: the one entry point, for people and for DAGs.

Subcommands import their implementation lazily, so ``adclick status`` does not load Spark.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date, timedelta

from adclick.settings import get_settings


def _install(args: argparse.Namespace) -> int:
    from infra.artifacts import install_all

    install_all(get_settings())
    print("JVM artifacts installed in", get_settings().cache_dir)
    return 0


def _profile_settings(args: argparse.Namespace):
    """The settings, with ``--profile`` (if given) as ``ADCLICK_STACK_PROFILE`` for this process
    and everything it starts."""
    import os

    if getattr(args, "profile", None):
        os.environ["ADCLICK_STACK_PROFILE"] = args.profile
        get_settings.cache_clear()
    return get_settings()


def _up(args: argparse.Namespace) -> int:
    from infra.stack import up

    up(_profile_settings(args))
    return 0


def _down(args: argparse.Namespace) -> int:
    from infra.stack import down

    down(_profile_settings(args))
    return 0


def _status(args: argparse.Namespace) -> int:
    from infra.stack import status

    return 0 if status(_profile_settings(args)) else 1


def _query(args: argparse.Namespace) -> int:
    from serving.trino_client import print_query

    print_query(get_settings(), args.sql)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from cli.demo import run

    run(get_settings(), clicks=args.clicks)
    return 0


def _stream(args: argparse.Namespace) -> int:
    from adclick.priority import join_spark_cgroup
    from speed_layer.app import run

    join_spark_cgroup(get_settings())  # the stack starts it niced; the JVM it starts joins too
    run(get_settings(), queries=tuple(args.queries.split(",")), available_now=args.available_now)
    return 0


def _query_api(args: argparse.Namespace) -> int:
    from query_api.server import run

    run(get_settings(), port=args.port, workers=args.workers)
    return 0


def _airflow(args: argparse.Namespace) -> int:
    from infra.airflow_service import airflow_cli

    return airflow_cli(get_settings(), *args.args, capture=False).returncode


def _batch(args: argparse.Namespace) -> int:
    from adclick.progress import Progress
    from adclick.spark import get_spark
    from batch_layer.pipeline import register, run_step

    settings = get_settings()
    days = [
        args.date + timedelta(days=i)
        for i in range((args.to or args.date).toordinal() - args.date.toordinal() + 1)
    ]
    if not days:
        print("error: --to is before --date", file=sys.stderr)
        return 2
    from adclick.priority import yield_cpu

    yield_cpu(settings)  # Spark work yields the CPU to the APIs (niceness + CPU cgroup)
    spark = get_spark(f"adclick-batch-{args.job}", settings=settings)
    try:
        with Progress(f"batch {args.job}", expected=len(days), unit="days") as progress:
            for day in days:
                run_step(
                    spark,
                    settings,
                    args.job,
                    day,
                    log=progress.write,  # stderr, above the bar
                    fraud_model=args.fraud_model,
                )
                progress.tick()
    finally:
        spark.stop()
    if args.job == "day" and not args.no_register:
        try:
            print(f"batch: registered in Trino: {register(settings)}", file=sys.stderr)
        except Exception as exc:  # Trino not running: the lake is written, registration can wait
            print(
                f"warning: could not register the tables in Trino ({exc}); `make up` then rerun",
                file=sys.stderr,
            )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adclick", description="Ad-click counting and aggregation backend.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("install", help="fetch JVM artifacts into the cache (idempotent)").set_defaults(
        func=_install
    )
    for name, func, text in (
        ("up", _up, "start the local stack and wait until it is healthy"),
        ("down", _down, "stop everything `up` started"),
        ("status", _status, "each service's PID, port, health and log"),
    ):
        stack = sub.add_parser(name, help=text)
        stack.add_argument(
            "--profile",
            choices=["local", "cluster"],
            help="local (Spark in-process) or cluster (a Spark standalone master and workers; "
            "docs/cluster.md); default: ADCLICK_STACK_PROFILE, else local",
        )
        stack.set_defaults(func=func)
    d = sub.add_parser("demo", help="the whole flow on this machine, narrated (leaves the stack running)")
    d.add_argument("--clicks", type=int, default=3000, help="synthetic clicks to generate (default 3000)")
    d.set_defaults(func=_demo)
    st = sub.add_parser("stream", help="run the stream application (bronze landing, speed layer)")
    st.add_argument("--queries", default="bronze,speed", help="queries to run (default: bronze,speed)")
    st.add_argument("--available-now", action="store_true", help="process what Kafka holds, then stop")
    st.set_defaults(func=_stream)
    qa = sub.add_parser("query-api", help="serve the query API and live dashboard (port ADCLICK_QUERY_PORT)")
    qa.add_argument("--port", type=int, default=None)
    qa.add_argument("--workers", type=int, default=1)
    qa.set_defaults(func=_query_api)
    af = sub.add_parser(
        "airflow", help="the airflow CLI, wired to this stack (e.g. airflow backfill create ...)"
    )
    af.add_argument("args", nargs=argparse.REMAINDER)
    af.set_defaults(func=_airflow)
    b = sub.add_parser("batch", help="run a batch job for a day (or a range of days)")
    b.add_argument(
        "job",
        choices=[
            "day",
            "silver",
            "quality",
            "gold",
            "reconcile",
            "watermark",
            "monthly",
            "train-fraud-model",
            "dq-report",
        ],
        help="day = silver, quality, gold, reconcile, watermark in order (then registers in Trino)",
    )
    b.add_argument("--date", required=True, type=date.fromisoformat, help="the UTC day (YYYY-MM-DD)")
    b.add_argument("--to", type=date.fromisoformat, help="last day of a range (inclusive), one day at a time")
    b.add_argument("--no-register", action="store_true", help="with `day`: do not register in Trino")
    b.add_argument(
        "--fraud-model",
        metavar="VERSION|latest|pinned",
        help="fraud model for silver: pinned (default: a rerun keeps the day's model), latest, or a version",
    )
    b.set_defaults(func=_batch)
    q = sub.add_parser("query", help="run SQL on Trino and print the result")
    q.add_argument("sql")
    q.set_defaults(func=_query)
    try:
        from traffic.commands import add_generate_parser, add_replay_parser

        add_generate_parser(sub)
        add_replay_parser(sub)
    except ImportError:  # pragma: no cover - traffic package is part of the project
        pass
    from cli.lifecycle_commands import add_lifecycle_parsers
    from cli.lineage_commands import add_lineage_parser
    from ingestion.commands import add_ingest_parser
    from traffic.dlq_commands import add_dlq_parser

    add_ingest_parser(sub)
    add_dlq_parser(sub)
    add_lifecycle_parsers(sub)
    add_lineage_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from adclick.errors import AdclickError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except AdclickError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
