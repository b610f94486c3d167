"""Bronze landing on the real broker and Delta: every Kafka record lands exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adclick.catalog import table
from adclick.contract import now_utc
from adclick.settings import Settings

pytestmark = pytest.mark.integration


def _send_generated(settings: Settings, clicks: int = 300):
    from traffic.generator import GeneratorConfig, generate_timed
    from traffic.sinks import send_to_kafka
    from traffic.truth import Truth

    truth = Truth()
    config = GeneratorConfig(
        start=now_utc() - timedelta(hours=2), duration=timedelta(minutes=30), clicks=clicks
    )
    result = send_to_kafka(generate_timed(config, truth), settings=settings)
    assert result.invalid == 0 and result.failed == 0
    return truth, result.produced


def _send_raw(settings: Settings, values: list[bytes]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    for value in values:
        producer.send(settings.topic_events, value=value)
    producer.flush()
    producer.close()


def test_every_record_lands_once_and_garbage_goes_to_rejects(isolated: Settings, spark) -> None:
    import pyspark.sql.functions as F

    from speed_layer import app

    truth, produced = _send_generated(isolated)
    _send_raw(
        isolated, [b"{broken", b'{"event_id": "x", "ad_id": "a", "ts": 1, "region": "eu", "received_at": 2}']
    )

    app.run(isolated, available_now=True, log=lambda _: None)
    bronze = spark.read.format("delta").load(table("bronze.events").path(isolated))
    rejects = spark.read.format("delta").load(table("bronze.rejects").path(isolated))

    assert bronze.count() == produced
    lineage = bronze.select("kafka_partition", "kafka_offset").distinct().count()
    assert lineage == produced  # one row per Kafka record
    exact = {
        r.event_type: r.n
        for r in bronze.groupBy("event_type").agg(F.countDistinct("event_id").alias("n")).collect()
    }
    assert exact == {t: n for t, n in truth.distinct.items() if n}
    assert sorted(r.reason for r in rejects.collect()) == [
        "event_id: must be a UUID",
        "value is not valid JSON",
    ]

    # Running again over the same checkpoint lands nothing twice.
    app.run(isolated, available_now=True, log=lambda _: None)
    assert spark.read.format("delta").load(table("bronze.events").path(isolated)).count() == produced
