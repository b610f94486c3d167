"""cluster_profile: the cluster profile's engines beside the single-node ones, in the same run.

- **batch**: ``run_silver`` + ``run_gold`` of one bronze day (``batch_recompute``'s generator and
  correctness checks, ``BENCH_CLUSTER_BATCH_ROWS``, default 1M) on Spark ``local[2]`` in this
  process, then on the cluster profile's standalone master with two workers (client mode: the
  driver here, one 1-core executor on each worker, two cores in all, as ``local[2]`` has). A
  small day runs first on each, unreported (JIT warm-up).
- **ingest**: ``ingest_batch_throughput``'s measurement (one API worker, 1,000-event batches,
  librdkafka, ``acks=all``, idempotence) against the cluster profile's three brokers (replication
  factor 3, ``min.insync.replicas=2``: each batch waits for two replicas) and against the stack's
  single broker.

Each figure's ratio is cluster / single node. The cluster's engines run on the second stack's
ports (``infra.services.SECOND_STACK_PORTS``) in ``ADCLICK_HOME/bench-cluster`` and are stopped at
the end; the stack's stream application is paused throughout. On one 2-core machine the cluster
pays for its separation (executors in other JVMs, shuffles over loopback, three brokers'
replication on the same cores) and gains nothing: the ratios say what the cluster path costs, not
what a cluster of real machines would do.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from adclick.settings import Settings
from bench.batch_recompute import WARMUP_ROWS, _one_size
from bench.ingest_batch_throughput import _measure
from bench.load import paused
from bench.result import write_result

ROWS = int(os.environ.get("BENCH_CLUSTER_BATCH_ROWS", "1000000"))
ENGINES = ("kafka", "kafka-2", "kafka-3", "spark-master", "spark-worker-1", "spark-worker-2")


def _batch(settings: Settings, name: str, work: Path) -> dict[str, Any]:
    """Warm-up day, then the measured day, in a Spark session on ``settings``' master."""
    from adclick.spark import get_spark

    spark = get_spark(f"bench-cluster-profile-{name}", settings=settings)
    try:
        _one_size(spark, settings, WARMUP_ROWS, work / f"{name}-warmup", peer=False)
        return _one_size(spark, settings, ROWS, work / f"{name}-{ROWS}", peer=False)
    finally:
        spark.stop()


def run(settings: Settings, context: dict | None = None) -> dict:
    from infra.services import SECOND_STACK_PORTS
    from infra.stack import down, up

    cluster = Settings(
        home=settings.path("bench-cluster"), stack_profile="cluster", stack_apps=False, **SECOND_STACK_PORTS
    )
    cluster = cluster.model_copy(update={"lake_root": settings.lake_root})  # the lake is not what is compared
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-", dir=settings.home))
    try:
        with paused(settings, "stream"):
            local_batch = _batch(settings, "local", work)
            ingest_one = _measure(settings, 1, seed=7301)
            down(cluster, log=lambda _line: None)
            up(cluster, only=ENGINES)
            try:
                cluster_batch = _batch(cluster, "cluster", work)
                ingest_three = _measure(cluster, 1, seed=7301)
            finally:
                down(cluster)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    batch_ratio = round(cluster_batch["seconds"] / local_batch["seconds"], 3)
    ingest_ratio = round(ingest_three["events_per_s"] / ingest_one["events_per_s"], 3)
    return write_result(
        "cluster_profile",
        metric=f"seconds of run_silver + run_gold for a {ROWS:,}-event day on the Spark standalone cluster",
        value=cluster_batch["seconds"],
        unit="s",
        peer={"name": "the same day on Spark local[2], same run", "value": round(local_batch["seconds"], 3)},
        params={
            "rows": ROWS,
            "cluster_master": cluster.spark_master,
            "executor_cores": cluster.spark_executor_cores,
            "executor_memory": cluster.spark_executor_memory,
            "cores_max": cluster.spark_cores_max,
            "workers": cluster.spark_workers,
            "brokers": cluster.kafka_brokers,
            "replication_factor": cluster.kafka_replication_factor,
            "min_insync_replicas": cluster.kafka_min_insync_replicas,
        },
        summary=(
            f"batch {ROWS:,} events: standalone cluster {cluster_batch['seconds']:.1f}s vs local[2] "
            f"{local_batch['seconds']:.1f}s (ratio {batch_ratio}); ingest, one API worker: 3 brokers "
            f"{ingest_three['events_per_s']:,.0f} events/s vs 1 broker {ingest_one['events_per_s']:,.0f} "
            f"(ratio {ingest_ratio})"
        ),
        batch={
            "cluster_s": round(cluster_batch["seconds"], 2),
            "local_s": round(local_batch["seconds"], 2),
            "ratio": batch_ratio,
            "cluster_phases": {k: round(cluster_batch[k], 2) for k in ("silver_s", "gold_s")},
            "local_phases": {k: round(local_batch[k], 2) for k in ("silver_s", "gold_s")},
        },
        ingest={
            "three_brokers_events_per_s": round(ingest_three["events_per_s"], 1),
            "one_broker_events_per_s": round(ingest_one["events_per_s"], 1),
            "ratio": ingest_ratio,
            "three_brokers_us_per_event": round(ingest_three["us_per_event"], 2),
            "one_broker_us_per_event": round(ingest_one["us_per_event"], 2),
            "spooled_after": [ingest_three["spool_events_after"], ingest_one["spool_events_after"]],
        },
    )
