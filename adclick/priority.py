"""CPU priority of Spark work on a machine it shares with the APIs: niceness and a CPU cgroup.

The ingestion API is latency-critical, Spark is not. Niceness alone does not hold Spark back:
it weighs each thread, and a Spark JVM runs dozens of them (at ``nice 10`` each thread weighs
110 against the API's 1,024, and thirty of them outweigh it), and on Linux with autogroups a
process started from another session competes as a group of its own whatever its niceness.
So Spark work also joins one CPU cgroup, ``adclick-spark``, whose weight
(``ADCLICK_SPARK_CPU_WEIGHT``, cgroup v2 ``cpu.weight`` semantics: 100 is an equal share; v1's
``cpu.shares`` gets weight x 10.24) counts for all its threads together. Where cgroups are not
writable (no root, no cgroup file system) only the niceness applies, and nothing fails.

The ingestion API goes the other way: its processes join ``adclick-api`` with
``ADCLICK_INGEST_CPU_WEIGHT`` (400: four equal shares). On a desktop or container with
autogroups, the stack's whole session otherwise counts as one group, and the API shares it with
Kafka, Trino and Airflow's four processes; in its own cgroup it counts on its own.

The Kafka broker is on the same path as every click (the 202 waits for its ack) and starts in
``adclick-kafka`` (``ADCLICK_KAFKA_CPU_WEIGHT``, 400) through :func:`main`:
``python -m adclick.priority CGROUP WEIGHT -- COMMAND...`` joins the cgroup, then execs the
command (same PID, so the supervisor's signals reach it).

Reads and writes ``/sys/fs/cgroup`` (``root`` in the tests).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from adclick.settings import Settings

log = logging.getLogger(__name__)

SPARK_CGROUP = "adclick-spark"
API_CGROUP = "adclick-api"
KAFKA_CGROUP = "adclick-kafka"
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _group(name: str, weight: int, root: Path) -> Path | None:
    """The CPU cgroup ``name`` with ``weight``, created if needed (v2 first, then v1 cpu)."""
    controllers = root / "cgroup.controllers"
    if controllers.exists():  # cgroup v2: cpu.weight, 1..10000
        if "cpu" not in controllers.read_text().split():
            return None
        group = root / name
        group.mkdir(exist_ok=True)
        (group / "cpu.weight").write_text(f"{max(1, min(10_000, weight))}\n")
        return group
    v1 = root / "cpu"
    if not (v1 / "cgroup.procs").exists():
        return None
    group = v1 / name
    group.mkdir(exist_ok=True)
    (group / "cpu.shares").write_text(f"{max(2, weight * 1024 // 100)}\n")
    return group


def join_cgroup(name: str, weight: int, pids: Iterable[int] = (0,), *, root: Path = CGROUP_ROOT) -> bool:
    """Move ``pids`` (0 = this process; every thread of each, and what they start later) into
    the CPU cgroup ``name`` with ``weight``. False, with nothing changed, where that is not
    possible or ``weight`` is 0."""
    if weight <= 0:
        return False
    try:
        group = _group(name, weight, root)
        if group is None:
            return False
        for pid in pids:
            (group / "cgroup.procs").write_text(f"{pid or os.getpid()}\n")
    except OSError as exc:  # read-only /sys, not root, a controller not enabled for children
        log.debug("no CPU cgroup %s: %s", name, exc)
        return False
    return True


def join_spark_cgroup(settings: Settings, pids: Iterable[int] = (0,), *, root: Path = CGROUP_ROOT) -> bool:
    """:func:`join_cgroup` ``adclick-spark`` with ``spark_cpu_weight``."""
    return join_cgroup(SPARK_CGROUP, settings.spark_cpu_weight, pids, root=root)


def join_api_cgroup(settings: Settings, *, root: Path = CGROUP_ROOT) -> bool:
    """This API process (and the workers it starts) into ``adclick-api`` with ``ingest_cpu_weight``."""
    return join_cgroup(API_CGROUP, settings.ingest_cpu_weight, root=root)


def yield_cpu(settings: Settings) -> bool:
    """This process and everything it starts (the Spark JVM) below the APIs: ``spark_nice`` more
    niceness and the Spark cgroup. Returns whether the cgroup was joined."""
    if settings.spark_nice:
        os.nice(settings.spark_nice)
    return join_spark_cgroup(settings)


def in_cgroup(name: str, weight: int, command: Sequence[str]) -> list[str]:
    """``command`` started inside the CPU cgroup ``name`` (unchanged when ``weight`` is 0)."""
    if weight <= 0:
        return list(command)
    return [sys.executable, "-m", "adclick.priority", name, str(weight), "--", *command]


def main(argv: Sequence[str]) -> int:
    """``CGROUP WEIGHT -- COMMAND...``: join the cgroup (if possible), then exec the command."""
    if len(argv) < 4 or argv[2] != "--":
        print("usage: python -m adclick.priority CGROUP WEIGHT -- COMMAND...", file=sys.stderr)
        return 2
    join_cgroup(argv[0], int(argv[1]))
    os.execvp(argv[3], list(argv[3:]))  # noqa: S606 - the supervisor's own command, exec'd as is
    return 0  # pragma: no cover - exec does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
