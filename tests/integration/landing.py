"""Shared by the ingestion integration tests: generated traffic and waiting for it in bronze."""

from __future__ import annotations

import time
from datetime import timedelta

from adclick.catalog import table
from adclick.contract import now_utc
from adclick.settings import Settings

LANDING_TIMEOUT_S = 240


def generated(clicks: int, seed: int) -> list[dict]:
    from traffic.generator import GeneratorConfig, generate

    config = GeneratorConfig(
        start=now_utc() - timedelta(hours=3), duration=timedelta(minutes=20), clicks=clicks, seed=seed
    )
    return list(generate(config))


def bronze_rows(spark, settings: Settings, ids: set[str]):
    """Bronze rows (event_id, kafka_partition, kafka_offset) of the given event ids."""
    wanted = spark.createDataFrame([(i,) for i in ids], "event_id string")
    bronze = spark.read.format("delta").load(table("bronze.events").path(settings))
    return bronze.join(wanted.hint("broadcast"), "event_id").select(
        "event_id", "kafka_partition", "kafka_offset"
    )


def wait_landed(spark, settings: Settings, ids: set[str]) -> list:
    """Poll bronze until every id has landed (or time out), then return the matching rows."""
    deadline = time.monotonic() + LANDING_TIMEOUT_S
    while True:
        rows = bronze_rows(spark, settings, ids).collect()
        if {r.event_id for r in rows} >= ids or time.monotonic() > deadline:
            return rows
        time.sleep(3)
