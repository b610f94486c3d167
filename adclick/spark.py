"""SparkSession factory: Delta and Kafka jars from the local cache, master from settings.

Jars come from the artifact cache that ``adclick install`` fills and records (:mod:`adclick.runtime`),
never downloaded at run time; the same code runs on a cluster by setting ``ADCLICK_SPARK_MASTER``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from adclick.runtime import RuntimeMissing, spark_runtime
from adclick.settings import Settings, get_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def spark_jars(settings: Settings) -> list[Path]:
    return list(spark_runtime(settings).jars)


S3A_CREDENTIALS = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"  # fs.s3a.access.key / secret.key
S3A_LOG_STORE = "io.delta.storage.S3SingleDriverLogStore"
"""Delta's log store for ``s3a://`` (its default there, stated): safe with one writer per table."""


def s3a_conf(settings: Settings) -> dict[str, str]:
    """Spark settings for an ``s3a://`` lake on ``ADCLICK_S3_ENDPOINT`` (none for another lake):
    hadoop-aws and the AWS SDK on the driver's and executors' class path (the same paths on every
    host), path-style addressing, and Delta's S3 log store. No key is here: :func:`get_spark`
    sets them on the running context, so they never appear on a command line."""
    if not settings.lake_root.startswith("s3a://"):
        return {}
    classpath = ":".join(str(p) for p in spark_runtime(settings).s3a_jars)
    if not classpath:
        raise RuntimeMissing("the lake root is s3a:// but no s3a jars are recorded: run `adclick install`")
    return {
        "spark.driver.extraClassPath": classpath,
        "spark.executor.extraClassPath": classpath,
        "spark.hadoop.fs.s3a.endpoint": settings.s3_endpoint,
        "spark.hadoop.fs.s3a.endpoint.region": settings.s3_region,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": str(settings.s3_endpoint.startswith("https")).lower(),
        "spark.hadoop.fs.s3a.aws.credentials.provider": S3A_CREDENTIALS,
        "spark.delta.logStore.s3a.impl": S3A_LOG_STORE,
    }


def set_s3a_keys(spark: SparkSession, settings: Settings) -> None:
    """The S3 keys on the running context's Hadoop configuration, which tasks receive with their job."""
    if settings.lake_root.startswith("s3a://"):
        conf = spark.sparkContext._jsc.hadoopConfiguration()
        conf.set("fs.s3a.access.key", settings.s3_access_key)
        conf.set("fs.s3a.secret.key", settings.s3_secret_key.get_secret_value())


def java_env(settings: Settings) -> dict[str, str]:
    """JAVA_HOME for Spark (Java 17), the loopback binding, and this environment's Python for
    the Python workers (the executors' too, on a cluster)."""
    return {
        "JAVA_HOME": str(spark_runtime(settings).java17_home),
        "SPARK_LOCAL_IP": settings.bind_host,
        "PYSPARK_PYTHON": sys.executable,
    }


def _broadcast_threshold(settings: Settings) -> str:
    mb = settings.spark_broadcast_threshold_mb
    return "-1" if mb < 0 else f"{mb}m"


def get_spark(
    app_name: str = "adclick",
    *,
    settings: Settings | None = None,
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """A SparkSession with Delta Lake and the Kafka source; reuses the active one if any."""
    settings = settings or get_settings()
    os.environ.update(java_env(settings))
    from pyspark.sql import SparkSession

    jars = ",".join(str(p) for p in spark_jars(settings))
    builder = (
        SparkSession.builder.appName(app_name)
        .master(settings.spark_master)
        .config("spark.jars", jars)
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.driver.memory", settings.spark_driver_memory)
        # On a cluster (ignored by local[...]): executor size, and a cap on one application's cores.
        .config("spark.executor.memory", settings.spark_executor_memory)
        .config("spark.executor.cores", str(settings.spark_executor_cores))
        .config("spark.driver.host", settings.bind_host)
        .config("spark.driver.bindAddress", settings.bind_host)
        .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        # The dimension joins (dims.users of a few hundred thousand users) broadcast the dimension
        # instead of shuffling a day of events; a dimension larger than this is sort-merge joined.
        .config("spark.sql.autoBroadcastJoinThreshold", _broadcast_threshold(settings))
        .config("spark.ui.enabled", str(settings.spark_ui).lower())
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.databricks.delta.snapshotPartitions", str(settings.spark_shuffle_partitions))
        # Delta's VACUUM lists and deletes files in this many tasks (Spark's default: 10,000, which
        # costs about a minute per VACUUM on 2 cores, whatever the table's size).
        .config(
            "spark.sql.sources.parallelPartitionDiscovery.parallelism", str(settings.spark_shuffle_partitions)
        )
        # Partitioned writes (bronze: day x region) keep a few files open instead of sorting first.
        .config("spark.sql.maxConcurrentOutputFileWriters", "16")
        .config("spark.sql.warehouse.dir", str(settings.path("spark-warehouse")))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={settings.path('spark-derby')}")
        .config("spark.databricks.delta.schema.autoMerge.enabled", "false")
        .config(
            "spark.sql.streaming.stateStore.providerClass",
            "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
        )
        # Each micro-batch uploads only the state changes it made (a changelog), not a snapshot.
        .config("spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled", "true")
    )
    if settings.spark_cores_max:
        builder = builder.config("spark.cores.max", str(settings.spark_cores_max))
    for key, value in {**s3a_conf(settings), **(extra_conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    set_s3a_keys(spark, settings)
    return spark
