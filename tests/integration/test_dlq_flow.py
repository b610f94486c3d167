"""The dead-letter topic on the real broker: a record bronze landing rejects reaches the DLQ with its
reason and lineage; exported, fixed and replayed through the stack's ingestion API, it lands in
bronze once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import orjson
import pytest

from adclick.catalog import table
from adclick.contract import now_utc
from adclick.settings import Settings

pytestmark = pytest.mark.integration

LANDING_TIMEOUT_S = 240


@pytest.fixture
def dlq_settings(isolated: Settings) -> Iterator[Settings]:
    """The isolated stream settings with a fresh DLQ topic of its own, deleted afterwards."""
    from kafka.admin import KafkaAdminClient, NewTopic

    name = f"test.dlq.{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=isolated.kafka_bootstrap_servers)
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
    yield isolated.model_copy(update={"topic_dlq": name})
    admin.delete_topics([name])
    admin.close()


def _produce_raw(settings: Settings, value: bytes) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    producer.send(settings.topic_events, key=b"ad-dlq", value=value)
    producer.flush()
    producer.close()


def _bronze_count(spark, settings: Settings, event_id: str) -> int:
    bronze = spark.read.format("delta").load(table("bronze.events").path(settings))
    return bronze.where(bronze.event_id == event_id).count()


def test_rejected_record_reaches_the_dlq_and_a_fixed_replay_lands_once(
    stack: Settings, dlq_settings: Settings, spark, tmp_path
) -> None:
    from speed_layer import app
    from traffic.dlq import export_lines, read_file, read_topic, replay

    now_ms = int(now_utc().timestamp() * 1000)
    broken = {"event_id": "not-a-uuid", "ad_id": "ad-dlq", "ts": now_ms - 60_000, "country": "DE",
              "region": "eu", "received_at": now_ms, "v": 1}  # fmt: skip
    _produce_raw(dlq_settings, orjson.dumps(broken))

    app.run(dlq_settings, queries=("bronze",), available_now=True, log=lambda _: None)

    export = tmp_path / "dlq.ndjson"
    with export.open("wb") as out:
        result = export_lines(read_topic(dlq_settings, dlq_settings.topic_dlq), out)
    assert (result.written, result.foreign) == (1, 0)
    (line,) = read_file(export)
    assert line["reason"] == "event_id: must be a UUID"
    assert line["source"]["topic"] == dlq_settings.topic_events
    assert line["source"]["offset"] == 0 and line["key"] == "ad-dlq"
    assert orjson.loads(line["raw"]) == broken == line["event"]

    # A second run over the same checkpoint sends nothing new to the DLQ.
    app.run(dlq_settings, queries=("bronze",), available_now=True, log=lambda _: None)
    with (tmp_path / "again.ndjson").open("wb") as out:
        assert export_lines(read_topic(dlq_settings, dlq_settings.topic_dlq), out).written == 1

    fixed_id = str(uuid.uuid4())
    line["event"]["event_id"] = fixed_id
    api = f"http://{stack.bind_host}:{stack.ingest_port}"
    first = replay([line], url=api)
    assert (first.api.accepted, first.api.duplicates, first.api.rejected, first.unfixed) == (1, 0, 0, [])

    # The stack's own stream lands what its API produced: exactly one bronze row.
    deadline = time.monotonic() + LANDING_TIMEOUT_S
    while _bronze_count(spark, stack, fixed_id) == 0 and time.monotonic() < deadline:
        time.sleep(3)
    assert _bronze_count(spark, stack, fixed_id) == 1

    again = replay([line], url=api)  # idempotent: the same event_id is a duplicate, not produced
    assert (again.api.accepted, again.api.duplicates) == (0, 1)
    assert _bronze_count(spark, stack, fixed_id) == 1
