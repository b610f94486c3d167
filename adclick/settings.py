"""The one settings object. Reads the environment (prefix ``ADCLICK_``) and ``.env``.

Local defaults run everything on this machine; a cluster changes only wiring: Kafka bootstrap
servers, Spark master, lake root (``file://`` or ``s3a://``), Trino host, S3 endpoint.
"""

from __future__ import annotations

import functools
import os
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
JVM_DIR = Path("/usr/lib/jvm")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ADCLICK_", env_file=".env", extra="ignore")

    env: Literal["local", "test", "staging", "prod"] = "local"
    home: Path = Field(default=PROJECT_ROOT / "var", description="All local state lives under here.")
    cache_dir: Path = Field(default=Path.home() / ".cache" / "adclick", description="JVM artifact cache.")
    bind_host: str = "127.0.0.1"
    stack_apps: bool = Field(default=True, description="`up` also runs the ingestion API and the stream app.")
    stack_profile: Literal["local", "cluster"] = Field(
        default="local",
        description="local: one Kafka broker, Spark in-process (local[2]), a file:// lake; cluster: "
        "three brokers (replication factor 3), a Spark standalone master and workers that Spark work "
        "submits to, and the lake on the S3 store (s3a://adclick-lake/lake) (docs/cluster.md).",
    )

    # Kafka
    kafka_bootstrap_servers: str = Field(
        default="", description="Brokers clients connect to; empty: the local stack's brokers."
    )
    kafka_port: int = Field(default=9092, description="Local broker 1's port; broker n's is this + 2(n-1).")
    kafka_controller_port: int = Field(default=9093, description="Local broker 1's KRaft controller port.")
    kafka_brokers: int = Field(
        default=0,
        ge=0,
        le=5,
        description="Brokers the local stack runs (KRaft, each broker and controller); 0: 1, or 3 in "
        "the cluster profile.",
    )
    kafka_replication_factor: int = Field(
        default=0, ge=0, description="Replicas of each topic `up` creates; 0: the local brokers, at most 3."
    )
    kafka_min_insync_replicas: int = Field(
        default=0,
        ge=0,
        description="Replicas that must have a record before an acks=all producer hears back; 0: the "
        "replication factor less one (at least 1).",
    )
    kafka_heap: str = Field(default="1g", description="Heap of each local broker.")
    kafka_compression: Literal["none", "lz4", "gzip", "zstd"] = "lz4"
    kafka_cpu_weight: int = Field(
        default=400,
        ge=0,
        le=10_000,
        description="cgroup cpu.weight of the local Kafka broker (100 = an equal share; 0 = none).",
    )
    topic_events: str = "adclick.events"
    topic_dlq: str = "adclick.events.dlq"
    topic_partitions: int = 12
    kafka_retention_hours: int = Field(default=8 * 24, description="Must cover the late-arrival horizon.")

    # Event contract
    late_horizon_days: int = 7
    future_skew_minutes: int = 5

    # Spark
    spark_master: str = "local[2]"
    spark_driver_memory: str = "4g"
    spark_shuffle_partitions: int = 4
    spark_broadcast_threshold_mb: int = Field(
        default=64,
        ge=-1,
        description="Joins with a side estimated below this many MiB broadcast it (-1: never).",
    )
    spark_ui: bool = False
    spark_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="CPU niceness of the stream app and batch jobs (the APIs are latency-critical).",
    )
    spark_cpu_weight: int = Field(
        default=10,
        ge=0,
        le=10_000,
        description="cgroup cpu.weight of all Spark work together (100 = an equal share; 0 = niceness only).",
    )
    java17_home: Path | None = None
    # Spark on a cluster (any master but local[...]); the cluster profile's standalone cluster
    spark_executor_memory: str = Field(default="1536m", description="Heap of each executor on a cluster.")
    spark_executor_cores: int = Field(default=1, ge=1, description="Cores of each executor on a cluster.")
    spark_cores_max: int = Field(
        default=2,
        ge=0,
        description="Cores one application (the stream app, a batch job) takes on a cluster at most, "
        "so that they run side by side (0: Spark's default, all it can get).",
    )
    spark_standalone_port: int = 7077
    spark_standalone_ui_port: int = Field(
        default=8082, description="Web UI of the standalone master; worker n's is this port + n."
    )
    spark_workers: int = Field(default=2, ge=1, le=8, description="Workers of the cluster profile.")
    spark_worker_cores: int = Field(
        default=2, ge=1, description="Cores each worker offers (two apps at a time on a 2-core box)."
    )
    spark_worker_memory: str = Field(default="4g", description="Memory each worker offers its executors.")

    # Stream application (bronze landing + speed layer)
    stream_trigger_seconds: float = 2.0
    stream_max_offsets_per_trigger: int = 500_000
    stream_starting_offsets: Literal["earliest", "latest"] = "earliest"
    stream_bronze_trigger_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Seconds between bronze landing micro-batches (speed: stream_trigger_seconds).",
    )
    stream_write_tasks: int = Field(
        default=0,
        ge=0,
        description="Tasks (so files per partition) of each bronze micro-batch write; 0: the executor cores.",
    )
    speed_watermark: str = Field(default="10 minutes", description="Event-time watermark of the speed layer.")
    speed_windows_refresh_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Seconds between refreshes of speed.ad_clicks_5min (0: after every micro-batch).",
    )
    stream_metrics_port: int = Field(
        default=9101,
        ge=0,
        le=65535,
        description="Port of the stream app's Prometheus /metrics (on bind_host); 0: not served.",
    )

    # Lake
    lake_root: str = ""
    maintenance_vacuum_hours: int = Field(
        default=168,
        ge=0,
        description="lake_maintenance's VACUUM keeps removed files this long (Delta time travel).",
    )
    maintenance_min_files: int = Field(
        default=4,
        ge=2,
        description="lake_maintenance compacts a closed partition once it has at least this many files.",
    )

    # Batch layer
    batch_start_date: date = Field(
        default=date(2026, 11, 1), description="First day daily_batch schedules (catch-up starts here)."
    )
    batch_catchup: bool = Field(default=True, description="daily_batch runs each missed day since the start.")
    batch_pool: str = Field(
        default="adclick_batch",
        description="Airflow pool of one slot (made by the stack) that daily_batch's recompute_day runs in: "
        "one day's Spark work at a time across scheduled, catch-up and backfill runs.",
    )
    batch_grace_hours: float = Field(
        default=2.0, description="Late-arrival grace after a day closes before daily_batch recomputes it."
    )
    reconcile_max_drift: float = Field(
        default=0.02, description="Speed vs gold click drift (share of gold clicks) above which a day fails."
    )
    fraud_model_threshold: float = Field(default=0.5, description="Model score from which a click is fraud.")
    fraud_model_version: str = Field(
        default="pinned",
        pattern=r"^(pinned|latest|fm-\d{14}-[0-9a-f]{8})$",
        description="Fraud model of silver: pinned (a rerun keeps the day's model), latest, or a version.",
    )
    dq_row_count_tolerance: float = Field(
        default=0.9,
        description=(
            "Silver's row-count gate: a day needs at least (1 - this) x the median of the previous 7 "
            "days' rows, and at most (1 + this) x their maximum once those days are steady."
        ),
    )

    # Data lifecycle (adclick/retention.py, batch_layer/archive.py, docs/lifecycle.md)
    retention_hot_days: int = Field(
        default=30, ge=1, description="Days a partition stays as written (hot) before it is compacted (warm)."
    )
    retention_warm_days: int = Field(
        default=365, ge=1, description="Days a partition stays in the lake; older ones are archived (cold)."
    )
    retention_cold_storage_class: Literal["STANDARD", "STANDARD_IA", "GLACIER", "DEEP_ARCHIVE"] = Field(
        default="GLACIER", description="S3 storage class of archived partitions."
    )
    retention_overrides: dict[str, dict[str, int | str | None]] = Field(
        default_factory=dict,
        description=(
            'Per table (or layer) policy: {"bronze.events": {"warm_days": 90}, "speed": {"hot_days": 7}}; '
            "keys hot_days, warm_days, storage_class; warm_days null keeps the table in the lake."
        ),
    )
    retention_restored_days: int = Field(
        default=7, ge=1, description="Days restored partitions stay queryable before they expire again."
    )
    retention_vacuum_hours: int = Field(
        default=168, ge=0, description="VACUUM keeps removed files this long (Delta time travel)."
    )
    erasure_vacuum_hours: int = Field(
        default=168,
        ge=0,
        description=(
            "VACUUM after an erasure keeps the rewritten tables' removed files this long; the erased "
            "rows are physically gone from the lake once it has passed (0: at once, no time travel)."
        ),
    )
    archive_prefix: str = Field(default="archive", description="Key prefix of archived partitions.")
    archive_max_rows_per_object: int = Field(default=5_000_000, ge=1, description="Rows per archive object.")
    archive_restore_timeout_s: float = Field(
        default=12 * 3600.0, gt=0, description="Wait this long for a cold object's restore."
    )
    archive_restore_poll_s: float = Field(
        default=60.0, gt=0, description="Poll a pending restore this often."
    )

    # Alerts (adclick/alerts.py): failed DAG tasks and runs, failed data-quality gates
    alert_webhook_url: SecretStr = Field(
        default=SecretStr(""), description="POST a JSON alert here on a failure; empty = off."
    )
    alert_webhook_timeout_s: float = Field(default=3.0, gt=0, description="Give up on the webhook then.")

    # Serving
    k_anonymity: int = Field(default=5, description="Smaller demographic groups are hidden.")
    query_cache_ttl_seconds: float = 30.0
    trino_analyst_user: str = "analyst"
    trino_ingest_user: str = "ingest"

    # Trino
    trino_host: str = "127.0.0.1"
    trino_port: int = 8081
    trino_user: str = "admin"
    trino_catalog: str = "delta"
    trino_heap: str = "3g"
    trino_java_home: Path | None = None

    # Airflow
    airflow_port: int = 8080
    airflow_admin_user: str = "admin"
    airflow_admin_password: SecretStr = SecretStr("admin")
    airflow_parallelism: int = 2

    # S3-compatible store (cold tier)
    s3_port: int = 9000
    s3_endpoint: str = ""
    s3_access_key: str = "adclick"
    s3_secret_key: SecretStr = SecretStr("adclick-local-secret")
    s3_region: str = "us-east-1"
    s3_bucket: str = "adclick-cold"

    # HTTP services
    ingest_port: int = 8000
    query_port: int = 8001

    # Ingestion API
    api_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description="Publisher -> API key (X-Api-Key); empty = no authentication."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list, description="Peer IPs whose X-Forwarded-For is believed; empty = none."
    )
    rate_limit_per_ip: float = Field(default=60_000.0, description="Events/s refilled per client IP.")
    rate_limit_per_ip_burst: int = Field(default=120_000, description="Events a client IP may send at once.")
    rate_limit_per_key: float = Field(default=60_000.0, description="Events/s refilled per API key.")
    rate_limit_per_key_burst: int = Field(default=120_000, description="Events an API key may send at once.")
    max_body_bytes: int = Field(default=5 * 1024 * 1024, description="Request body as sent (compressed).")
    max_decompressed_bytes: int = Field(default=32 * 1024 * 1024, description="Body after gunzip.")
    max_batch_events: int = 10_000
    max_json_depth: int = Field(default=8, description="Nesting depth of one event (an event object = 1).")
    edge_country_header: str = "CloudFront-Viewer-Country"
    ingest_workers: int = Field(
        default=0,
        ge=0,
        description="Ingestion API worker processes; 0 = half the CPU cores (at least 1), the rest "
        "left to Kafka and the producer's threads.",
    )
    ingest_cpu_weight: int = Field(
        default=400,
        ge=0,
        le=10_000,
        description="cgroup cpu.weight of the ingestion API's processes (100 = an equal share; 0 = none).",
    )
    ingest_producer: Literal["librdkafka", "kafka-python"] = Field(
        default="librdkafka",
        description="Kafka client of the ingestion hot path: librdkafka (confluent-kafka) or kafka-python.",
    )
    produce_timeout_seconds: float = Field(default=5.0, description="Wait for Kafka acks, then spool.")
    spool_max_bytes: int = Field(default=1024 * 1024 * 1024, description="Local spool cap; full -> 503.")
    spool_segment_bytes: int = 64 * 1024 * 1024
    spool_fsync: Literal["always", "never"] = Field(
        default="always", description="always: fsync before answering 202 (durable); never: page cache only."
    )
    dedup_window_seconds: int = Field(default=600, description="Duplicate hint remembers ids this long.")
    dedup_expected_rate: int = Field(default=5_000, description="Events/s the dedup filters are sized for.")
    dedup_false_positive_rate: float = Field(
        default=1e-6, description="Per filter; a false positive drops a genuine event, so keep it tiny."
    )
    hot_key_share: float = Field(default=0.05, description="Share of recent traffic that makes an ad hot.")
    hot_key_salts: int = Field(default=8, description="Kafka keys a hot ad is spread over (ad_id#0..n-1).")
    hot_key_window_seconds: float = Field(default=10.0, description="Half-life of the heavy-hitter sketch.")
    redirect_key: SecretStr | None = Field(
        default=None, description="HMAC key of click-redirect tokens; required outside local/test."
    )
    redirect_ttl_seconds: int = Field(default=30 * 24 * 3600, description="How long a click URL stays valid.")
    click_user_cookie: str = Field(default="adclick_uid", description="Cookie holding the user id on clicks.")

    # Privacy: the key of the HMACs that replace user_id and ip. Required outside local/test.
    hash_key: SecretStr | None = None

    @model_validator(mode="after")
    def _derive(self) -> Settings:
        self.home = self.home.expanduser().resolve()
        self.cache_dir = self.cache_dir.expanduser().resolve()
        if not self.lake_root:
            local = self.stack_profile == "local"
            self.lake_root = (self.home / "lake").as_uri() if local else "s3a://adclick-lake/lake"
        if not self.s3_endpoint:
            self.s3_endpoint = f"http://{self.bind_host}:{self.s3_port}"
        if self.stack_profile == "cluster" and "spark_master" not in self.model_fields_set:
            self.spark_master = f"spark://{self.bind_host}:{self.spark_standalone_port}"
        if not self.kafka_brokers:
            self.kafka_brokers = 3 if self.stack_profile == "cluster" else 1
        if not self.kafka_bootstrap_servers:
            self.kafka_bootstrap_servers = ",".join(
                f"{self.bind_host}:{self.kafka_broker_port(n)}" for n in range(1, self.kafka_brokers + 1)
            )
        if not self.kafka_replication_factor:
            self.kafka_replication_factor = min(3, self.kafka_brokers)
        if not self.kafka_min_insync_replicas:
            self.kafka_min_insync_replicas = max(1, self.kafka_replication_factor - 1)
        if self.kafka_min_insync_replicas > self.kafka_replication_factor:
            raise ValueError(
                f"kafka_min_insync_replicas ({self.kafka_min_insync_replicas}) exceeds "
                f"kafka_replication_factor ({self.kafka_replication_factor}): no acks=all write could succeed"
            )
        return self

    def kafka_broker_port(self, n: int) -> int:
        """Client port of local broker ``n`` (1-based); its controller port is the next one."""
        return self.kafka_port + 2 * (n - 1)

    @property
    def lake_bucket(self) -> str | None:
        """The bucket of an ``s3a://`` lake root (None for another lake)."""
        if not self.lake_root.startswith("s3a://"):
            return None
        return self.lake_root.removeprefix("s3a://").split("/", 1)[0]

    @property
    def lake_is_local(self) -> bool:
        return self.lake_root.startswith("file:")

    @property
    def lake_local_path(self) -> Path:
        """The lake root as a local path (only for a ``file://`` lake)."""
        if not self.lake_is_local:
            raise ValueError(f"lake root {self.lake_root} is not a local file:// path")
        return Path(self.lake_root.removeprefix("file://"))

    @property
    def trino_url(self) -> str:
        return f"http://{self.trino_host}:{self.trino_port}"

    @property
    def airflow_url(self) -> str:
        return f"http://{self.bind_host}:{self.airflow_port}"

    @property
    def ingest_worker_count(self) -> int:
        """``ingest_workers``, or half the CPU cores (at least one) when it is 0."""
        return self.ingest_workers or max(1, (os.cpu_count() or 1) // 2)

    def path(self, *parts: str) -> Path:
        """A path under the data directory."""
        return self.home.joinpath(*parts)


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()
