"""The lake table catalog: logical name -> Delta path -> Trino name.

Every layer looks tables up here rather than building paths, so moving the lake from ``file://``
to ``s3a://`` is a settings change.
"""

from __future__ import annotations

from dataclasses import dataclass

from adclick.settings import Settings, get_settings


@dataclass(frozen=True)
class Table:
    layer: str
    name: str
    partition_by: tuple[str, ...] = ()
    description: str = ""
    # A release may add columns to it: writes merge the new columns into an existing table (old
    # ones stay, null in new rows) instead of failing on a lake written by an earlier release.
    evolves: bool = False
    # Columns Delta keeps min/max statistics of (its default, the first 32, costs CPU per row on
    # hashed keys, URLs and user agents whose statistics skip nothing); None: Delta's default.
    stats_columns: str | None = None

    @property
    def logical_name(self) -> str:
        return f"{self.layer}.{self.name}"

    def path(self, settings: Settings | None = None) -> str:
        root = (settings or get_settings()).lake_root.rstrip("/")
        return f"{root}/{self.layer}/{self.name}"

    def trino_name(self, settings: Settings | None = None) -> str:
        catalog = (settings or get_settings()).trino_catalog
        return f"{catalog}.{self.layer}.{self.name}"


LAYERS = ("bronze", "silver", "speed", "gold", "ops", "dims", "restored")

TABLES: dict[str, Table] = {
    t.logical_name: t
    for t in [
        # Bronze keeps statistics on time ranges, ads and the Kafka lineage (offset lookups).
        Table(
            "bronze",
            "events",
            ("event_date", "region"),
            "one row per Kafka record of a valid event",
            stats_columns="event_time,received_at,ad_id,kafka_partition,kafka_offset",
        ),
        Table(
            "bronze",
            "rejects",
            ("reject_date",),
            "one row per Kafka record that failed parsing or validation",
            stats_columns="kafka_partition,kafka_offset,kafka_timestamp",
        ),
        Table("speed", "ad_clicks_minute", ("window_date",), "minute x ad x campaign x country x device"),
        Table(
            "speed", "ad_clicks_5min", ("window_date",), "5-minute window (sliding by 1) x ad x dimensions"
        ),
        Table(
            "silver",
            "events",
            ("event_date",),
            "one row per distinct event_id: enriched, fraud-scored",
            stats_columns="event_time,ad_id,campaign_id,event_type",
        ),
        Table("gold", "ad_clicks_hourly", ("day",), "hour x ad x campaign x advertiser x country x device"),
        Table("gold", "ad_clicks_daily", ("day",), "day x ad x campaign x advertiser x country x device"),
        Table("gold", "ad_clicks_monthly", ("month",), "month x the daily dimensions; exact uniques"),
        Table("gold", "audience_daily", ("day",), "day x ad x campaign x region x age group x segment"),
        Table("gold", "experiments_daily", ("day",), "day x experiment x variant x ad"),
        Table("ops", "batch_watermark", (), "one row per day that passed its gates (latest = watermark)"),
        Table(
            "ops",
            "job_runs",
            (),
            "one row per batch job run: inputs, outputs, row counts, status, code version",
            evolves=True,
        ),
        Table("ops", "reconciliation", ("day",), "day x ad: speed vs gold clicks, reason", evolves=True),
        Table("ops", "reconciliation_summary", (), "one row per reconciled day", evolves=True),
        Table("ops", "dq_results", (), "one row per expectation checked"),
        Table("ops", "stream_progress", (), "one row per stream micro-batch: rows, late rows dropped"),
        Table("ops", "fraud_models", (), "one row per trained fraud model version, with its metrics"),
        Table(
            "ops", "archive_manifest", (), "one row per archived object: key, checksums, rows, source version"
        ),
        Table("ops", "legal_holds", (), "one row per hold added or released: who, why, when, what it covers"),
        Table(
            "ops",
            "lifecycle_log",
            (),
            "one row per lifecycle action: compact, archive, expire, restore, skip",
        ),
        Table(
            "ops",
            "erasure_log",
            (),
            "one row per erasure request: when, user key hash (never the id), tables, rows, files, proof",
        ),
        Table("restored", "bronze_events", ("event_date",), "bronze.events days restored from the archive"),
        Table(
            "restored", "bronze_rejects", ("reject_date",), "bronze.rejects days restored from the archive"
        ),
        Table("restored", "silver_events", ("event_date",), "silver.events days restored from the archive"),
        Table("dims", "ads", (), "ad -> campaign -> advertiser, CPC"),
        Table("dims", "users", (), "user_key -> age group, segment"),
    ]
}


def table(logical_name: str) -> Table:
    """Look a table up by ``layer.name``; a clear error names the known ones."""
    try:
        return TABLES[logical_name]
    except KeyError:
        raise KeyError(f"unknown table {logical_name!r}; known: {', '.join(sorted(TABLES))}") from None
