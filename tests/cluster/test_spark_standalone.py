"""The batch layer on the cluster profile's Spark standalone cluster (a master and two workers).

A bronze day with known truth (the ``batch_recompute`` generator: duplicates, late arrivals, bots)
is written through the cluster, then the daily DAG's ``silver`` and ``gold`` steps run exactly as
its tasks do (``spark-submit --master spark://127.0.0.1:7077``, client mode). One worker is
SIGKILLed while silver runs: its executors die with it, Spark reruns their tasks on the other
worker, supervisord restarts the worker, and gold still equals the truth.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from datetime import date

import pyspark.sql.functions as F
import pytest

from adclick.settings import Settings

pytestmark = pytest.mark.cluster

ROWS = 400_000
KILLED = "spark-worker-1"


class Submitted:
    """A ``spark-submit`` of one batch step, its output collected as it comes."""

    def __init__(self, settings: Settings, step: str, day: date) -> None:
        from batch_layer.submit import command
        from infra.app_services import app_env

        env = {**os.environ, **app_env(settings)}
        self.proc = subprocess.Popen(
            ["bash", "-c", command(settings, step, day)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.output():
            assert self.proc.poll() is None, f"step ended before {text!r}:\n{self.output()[-4000:]}"
            assert time.monotonic() < deadline, f"no {text!r} after {timeout_s}s:\n{self.output()[-4000:]}"
            time.sleep(0.2)

    def finish(self, timeout_s: float = 600) -> str:
        code = self.proc.wait(timeout=timeout_s)
        self._reader.join(timeout=10)
        assert code == 0, f"spark-submit exited {code}:\n{self.output()[-6000:]}"
        return self.output()


def _kill_worker_once_running(settings: Settings, app: str, timeout_s: float = 180) -> int:
    """SIGKILL the worker once the master has granted ``app`` its cores (executors on both
    workers) and it has had a few seconds to start tasks; returns the worker's PID."""
    from infra import supervisor
    from infra.spark_service import master_state

    deadline = time.monotonic() + timeout_s
    while True:
        apps = (master_state(settings) or {}).get("activeapps", [])
        if any(a.get("name") == app and a.get("cores", 0) >= settings.spark_cores_max for a in apps):
            break
        assert time.monotonic() < deadline, f"{app} got no executors within {timeout_s}s: {apps}"
        time.sleep(0.2)
    time.sleep(5)
    pid = supervisor.process_info(settings)[KILLED]["pid"]
    os.kill(pid, signal.SIGKILL)
    return pid


def _gold_totals(spark, settings: Settings, day: date) -> dict[str, int]:
    from adclick.catalog import table

    daily = spark.read.format("delta").load(table("gold.ad_clicks_daily").path(settings))
    sums = ("impressions", "clicks", "fraud_clicks", "conversions")
    row = daily.where(F.col("day") == F.lit(day)).agg(*[F.sum(c).alias(c) for c in sums]).first()
    return {c: int(row[c] or 0) for c in sums}


def test_a_day_on_the_standalone_cluster_survives_a_killed_worker(
    cluster: Settings, private: Settings, cluster_spark
) -> None:
    from adclick.catalog import table
    from bench.batch_recompute import DAY, expected_counts, write_day
    from infra.spark_service import alive_workers

    assert private.spark_master == f"spark://{private.bind_host}:{private.spark_standalone_port}"
    write_day(cluster_spark, private, ROWS, DAY)
    expected = expected_counts(cluster_spark, ROWS)

    silver = Submitted(private, "silver", DAY)
    silver.wait_for("batch: silver", timeout_s=180)
    killed = _kill_worker_once_running(cluster, "adclick-batch-silver")
    out = silver.finish()
    assert "ExecutorLostFailure" in out or "Lost executor" in out, out[-4000:]
    Submitted(private, "gold", DAY).finish()

    silver_day = (
        cluster_spark.read.format("delta").load(table("silver.events").path(private))
        .where(F.col("event_date") == F.lit(DAY))
    )  # fmt: skip
    assert silver_day.count() == expected["events"]  # each event once: no task's rows twice, none lost
    assert silver_day.select("event_id").distinct().count() == expected["events"]
    gold = _gold_totals(cluster_spark, private, DAY)
    assert gold["clicks"] + gold["fraud_clicks"] == expected["click"]
    assert sum(gold.values()) == expected["events"]
    assert gold["fraud_clicks"] > 0  # the bot users' clicks, judged on the cluster

    deadline = time.monotonic() + 90
    while len(alive_workers(cluster)) < 2:  # supervisord restarted the killed worker
        assert time.monotonic() < deadline, f"worker (PID {killed} killed) not back: {alive_workers(cluster)}"
        time.sleep(1)
