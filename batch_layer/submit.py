"""Batch jobs through ``spark-submit``: the command the DAGs run, and the script it runs.

``command(settings, step, day)`` builds ``spark-submit --master <ADCLICK_SPARK_MASTER> ...
batch_layer/submit.py <step> --date <day>``, so pointing ``ADCLICK_SPARK_MASTER`` at a cluster
(``spark://``, ``yarn``, ``k8s://``) moves every batch job there without touching a DAG. The jars
(Delta, Kafka) come from the artifact cache, like every other Spark process of the project.
Run as a script, it runs one step of :mod:`batch_layer.pipeline`, or ``day`` for the five steps
of a day in one Spark session (``--fraud-model`` chooses the model silver scores with), and exits
non-zero with the step's error message when it fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from adclick.settings import Settings

SCRIPT = Path(__file__).resolve()


def spark_submit_bin() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent / "bin" / "spark-submit"


def command(settings: Settings, step: str, day: date, extra: Sequence[str] = ()) -> str:
    """The shell command running ``step`` for ``day`` through spark-submit (quoted, for a bash task);
    ``extra``: more arguments of the script (``--to``, ``--dry-run``)."""
    from adclick.spark import java_env, s3a_conf, spark_jars

    jars = ",".join(str(p) for p in spark_jars(settings))
    env = {**java_env(settings), "PYSPARK_DRIVER_PYTHON": sys.executable}
    # Below the APIs in CPU priority: a running batch day must not push click latency up.
    nice = ["nice", "-n", str(settings.spark_nice)] if settings.spark_nice else []
    args = [
        *nice,
        "env",
        *[f"{k}={v}" for k, v in env.items()],
        str(spark_submit_bin()),
        "--master",
        settings.spark_master,
        "--driver-memory",
        settings.spark_driver_memory,
        "--jars",
        jars,
        "--conf",
        f"spark.driver.host={settings.bind_host}",
        "--conf",
        f"spark.pyspark.python={sys.executable}",
        "--conf",
        f"spark.pyspark.driver.python={sys.executable}",
        # an s3a:// lake: the class path must be set before the driver's JVM starts
        *[arg for key, value in s3a_conf(settings).items() for arg in ("--conf", f"{key}={value}")],
        str(SCRIPT),
        step,
        "--date",
        day.isoformat(),
        *extra,
    ]
    return " ".join(shlex.quote(a) for a in args)


def _retention(spark: Any, settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    from batch_layer.lifecycle import run_retention

    return run_retention(
        spark, settings, args.date, dry_run=args.dry_run, log=lambda line: print(line, flush=True)
    )


def _maintenance(spark: Any, settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    from batch_layer.maintenance import run_maintenance

    return run_maintenance(
        spark, settings, args.date, dry_run=args.dry_run, log=lambda line: print(line, flush=True)
    )


def _restore(spark: Any, settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    from batch_layer.lifecycle import restore

    return restore(spark, settings, args.date, args.to or args.date, log=lambda line: print(line, flush=True))


def _erase(spark: Any, settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    from batch_layer.erasure import run_erasure

    if not args.user_key:
        from adclick.erasure import ErasureError

        raise ErasureError("erase needs --user-key (the pseudonymised user id)")
    result = run_erasure(
        spark,
        settings,
        args.user_key,
        by=args.by,
        reason=args.reason,
        request_id=args.request_id,
        log=lambda line: print(line, flush=True),
    )
    return {k: v for k, v in result.items() if k != "user_key"}


# The lifecycle jobs (batch_layer.lifecycle, batch_layer.maintenance, batch_layer.erasure): ``--date``
# is the run's "today" (retention, maintenance), the first day to restore, or the request's day (erase).
LIFECYCLE = {"retention": _retention, "maintenance": _maintenance, "restore": _restore, "erase": _erase}


def main(argv: list[str] | None = None) -> int:
    from adclick.errors import AdclickError
    from adclick.priority import join_spark_cgroup
    from adclick.settings import get_settings
    from adclick.spark import get_spark
    from batch_layer.pipeline import run_step

    parser = argparse.ArgumentParser(prog="batch_layer/submit.py")
    parser.add_argument("step")
    parser.add_argument("--date", required=True, type=date.fromisoformat)
    parser.add_argument(
        "--fraud-model",
        metavar="VERSION|latest|pinned",
        help="fraud model silver scores with (default: ADCLICK_FRAUD_MODEL_VERSION, else pinned)",
    )
    parser.add_argument("--to", type=date.fromisoformat, help="restore: last day (default: --date)")
    parser.add_argument(
        "--dry-run", action="store_true", help="retention, maintenance: log the plan, change nothing"
    )
    parser.add_argument("--user-key", help="erase: the user key (pseudonymised user id) to erase")
    parser.add_argument("--by", default="unknown", help="erase: who asks (recorded in ops.erasure_log)")
    parser.add_argument("--reason", default="", help="erase: why (the request's reference)")
    parser.add_argument("--request-id", help="erase: the request's id (default: a new one)")
    args = parser.parse_args(argv)
    settings = get_settings()
    # Under spark-submit the JVM is this driver's parent (it set PYSPARK_GATEWAY_PORT): both go
    # into the Spark CPU cgroup, as the `nice` of the command already holds them back.
    join_spark_cgroup(settings, (0, os.getppid()) if "PYSPARK_GATEWAY_PORT" in os.environ else (0,))
    spark = get_spark(f"adclick-batch-{args.step}", settings=settings)
    try:
        if args.step in LIFECYCLE:
            result = LIFECYCLE[args.step](spark, settings, args)
            print(f"{args.step}: {json.dumps(result, default=str)}", flush=True)
            return 0
        run_step(
            spark,
            settings,
            args.step,
            args.date,
            log=lambda line: print(line, flush=True),
            fraud_model=args.fraud_model,
            log_groups="AIRFLOW_CTX_DAG_ID" in os.environ,  # one log section per step in the UI
        )
    except AdclickError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(SCRIPT.parent.parent))  # spark-submit puts only this file's folder on the path
    sys.exit(main())
