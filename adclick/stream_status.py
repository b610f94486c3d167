"""The stream application's heartbeat (its status file): ``var/stream/status.json``, rewritten every
few seconds by the stream app and read by the stack, the batch sensor and the demo.

Holds each query's latest progress (batch id, input rows, rate, the batch's duration in ms, Kafka
end offsets), so ``adclick status`` and the query API's ``/v1/pipeline`` can report health and
consumer lag without talking to Spark.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from adclick.settings import Settings

STALE_AFTER_S = 30.0


def path(settings: Settings) -> Path:
    return settings.path("stream", "status.json")


def write(settings: Settings, queries: dict[str, Any]) -> None:
    target = path(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps({"updated_at": time.time(), "pid": os.getpid(), "queries": queries}))
    tmp.replace(target)


def read(settings: Settings) -> dict[str, Any] | None:
    try:
        return json.loads(path(settings).read_text())
    except (OSError, ValueError):
        return None


def is_fresh(settings: Settings) -> bool:
    beat = read(settings)
    return bool(beat and beat["queries"] and time.time() - beat["updated_at"] < STALE_AFTER_S)


def kafka_end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """The topic's current end offset per partition (what a caught-up consumer has read)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        consumer.close()


def lag(settings: Settings, query: str = "bronze_landing") -> int | None:
    """Records in the events topic the query has not processed yet (None: no heartbeat)."""
    beat = read(settings)
    info = (beat or {}).get("queries", {}).get(query)
    if not info or not info.get("end_offsets"):
        return None
    first = info["end_offsets"][0] or {}
    done = (json.loads(first) if isinstance(first, str) else first).get(settings.topic_events, {})
    ends = kafka_end_offsets(settings, settings.topic_events)
    return sum(max(0, end - int(done.get(str(p), 0))) for p, end in ends.items())
