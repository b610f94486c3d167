"""Bronze rejects -> the dead-letter topic ``settings.topic_dlq`` (Spark's batch Kafka sink).

Reads the ``bronze.rejects`` rows of one micro-batch (:func:`speed_layer.parse.to_reject_rows`);
writes one Kafka record per reject in the format of :mod:`adclick.dlq` (value = the raw bytes,
key = the source lineage, reason and lineage as headers). Called by the bronze sink after its
Delta appends, inside the same ``foreachBatch``: ``bronze.rejects`` stays the exactly-once record
and the topic is a copy for operators, at least once (Kafka writes are not transactional here, so
a replayed micro-batch re-sends its rejects, with the same keys).
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame

from adclick import dlq
from adclick.settings import Settings


def _header(name: str, value: Column) -> Column:
    return F.struct(F.lit(name).alias("key"), value.cast("string").cast("binary").alias("value"))


def to_dlq_records(rejects: DataFrame) -> DataFrame:
    """``key``, ``value``, ``headers`` rows for the Kafka sink, one per reject (pure transform)."""
    partition, offset = F.col("kafka_partition").cast("string"), F.col("kafka_offset").cast("string")
    headers = F.array(
        _header(dlq.REASON, F.col("reason")),
        _header(dlq.TOPIC, F.col("kafka_topic")),
        _header(dlq.PARTITION, partition),
        _header(dlq.OFFSET, offset),
        _header(dlq.TIMESTAMP, F.unix_millis(F.col("kafka_timestamp"))),
        _header(dlq.KEY, F.col("kafka_key")),
    )
    return rejects.select(
        F.concat_ws(":", F.col("kafka_topic"), partition, offset).alias("key"),
        F.col("raw_value").alias("value"),
        # A record without a key (or timestamp) has no such header, rather than an empty one.
        F.filter(headers, lambda h: h["value"].isNotNull()).alias("headers"),
    )


def send(settings: Settings, rejects: DataFrame) -> None:
    """Produce the rejects to the DLQ topic (``acks=all``); raises if Kafka refuses them, which
    fails the micro-batch so that its replay re-sends them."""
    (
        to_dlq_records(rejects)
        .write.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap_servers)
        .option("kafka.acks", "all")
        .option("topic", settings.topic_dlq)
        .save()
    )
