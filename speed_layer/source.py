"""The Kafka source of the stream application (the only place it reads Kafka)."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from adclick.settings import Settings


def kafka_events(spark: SparkSession, settings: Settings, topic: str | None = None) -> DataFrame:
    """A streaming DataFrame over the events topic, bounded per micro-batch."""
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap_servers)
        .option("subscribe", topic or settings.topic_events)
        .option("startingOffsets", settings.stream_starting_offsets)
        .option("maxOffsetsPerTrigger", settings.stream_max_offsets_per_trigger)
        .option("failOnDataLoss", "true")
        .load()
    )
