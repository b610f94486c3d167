"""The five engines of the local stack, used for real: Kafka, Spark+Delta, Trino, Airflow, S3."""

from __future__ import annotations

import csv
import io
import subprocess
import uuid

import httpx
import orjson
import pytest

from adclick.catalog import Table
from adclick.settings import Settings

pytestmark = pytest.mark.integration


def _produce(settings: Settings, topic: str, values: list[dict]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    for value in values:
        producer.send(topic, key=str(value["n"] % 7).encode(), value=orjson.dumps(value))
    producer.flush()
    producer.close()


def test_kafka_produce_and_consume(stack: Settings, topic: str) -> None:
    from kafka import KafkaConsumer

    sent = [{"n": i, "id": str(uuid.uuid4())} for i in range(200)]
    _produce(stack, topic, sent)
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=stack.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
        enable_auto_commit=False,
    )
    received = [orjson.loads(m.value) for m in consumer]
    consumer.close()
    assert sorted(received, key=lambda v: v["n"]) == sent


def test_event_topics_exist_with_partitions(stack: Settings) -> None:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap_servers)
    described = {
        t["name"]: len(t["partitions"]) for t in admin.describe_topics([stack.topic_events, stack.topic_dlq])
    }
    admin.close()
    assert described == {stack.topic_events: stack.topic_partitions, stack.topic_dlq: stack.topic_partitions}


def test_spark_stream_to_delta_then_trino(stack: Settings, spark, topic: str) -> None:
    import pyspark.sql.functions as F

    from serving.trino_client import query, register_table

    sent = [{"n": i, "id": str(uuid.uuid4())} for i in range(300)]
    _produce(stack, topic, sent)
    table = Table("ops", f"stack_check_{uuid.uuid4().hex[:8]}")
    stream = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", stack.kafka_bootstrap_servers)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .load()
        .select(F.get_json_object(F.col("value").cast("string"), "$.id").alias("id"), "partition", "offset")
        .writeStream.format("delta")
        .option("checkpointLocation", str(stack.path("checkpoints", "tests", table.name)))
        .trigger(availableNow=True)
        .start(table.path(stack))
    )
    stream.awaitTermination(180)
    landed = spark.read.format("delta").load(table.path(stack))
    assert sorted(r.id for r in landed.collect()) == sorted(v["id"] for v in sent)

    assert register_table(stack, table) is True
    assert register_table(stack, table) is False  # idempotent
    _, rows = query(stack, f"SELECT count(*), count(DISTINCT id) FROM {table.trino_name(stack)}")
    assert rows == [[300, 300]]

    # The same table through the trino-cli jar, as a person at a terminal would query it.
    from infra.artifacts import trino_cli_jar
    from infra.java import trino_java_home

    out = subprocess.run(
        [
            str(trino_java_home(stack) / "bin" / "java"),
            "-jar",
            str(trino_cli_jar(stack)),
            "--server",
            stack.trino_url,
            "--user",
            stack.trino_user,
            "--output-format",
            "CSV_HEADER",
            "--execute",
            f"SELECT count(*) AS n, min(id) AS first_id FROM {table.trino_name(stack)}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    row = next(csv.DictReader(io.StringIO(out)))
    assert int(row["n"]) == 300
    assert row["first_id"] == min(v["id"] for v in sent)


def _airflow_token(settings: Settings) -> str:
    r = httpx.post(
        f"{settings.airflow_url}/auth/token",
        json={
            "username": settings.airflow_admin_user,
            "password": settings.airflow_admin_password.get_secret_value(),
        },
        timeout=10,
    )
    r.raise_for_status()
    return r.json()["access_token"]


def test_airflow_healthy_and_dag_folder_imports(stack: Settings) -> None:
    import time

    health = httpx.get(f"{stack.airflow_url}/api/v2/monitor/health", timeout=10).json()
    assert health["metadatabase"]["status"] == "healthy"
    assert health["scheduler"]["status"] == "healthy"

    headers = {"Authorization": f"Bearer {_airflow_token(stack)}"}
    deadline = time.monotonic() + 120
    dag_ids: set[str] = set()
    while time.monotonic() < deadline:  # the dag-processor parses the folder on its own schedule
        dags = httpx.get(f"{stack.airflow_url}/api/v2/dags", headers=headers, timeout=10).json()
        dag_ids = {d["dag_id"] for d in dags["dags"]}
        if "trino_catalog" in dag_ids:
            break
        time.sleep(2)
    errors = httpx.get(f"{stack.airflow_url}/api/v2/importErrors", headers=headers, timeout=10).json()
    assert errors["import_errors"] == []
    assert "trino_catalog" in dag_ids


def test_s3_store_keeps_glacier_storage_class(stack: Settings) -> None:
    from infra.stack import s3_client

    client = s3_client(stack)
    key = f"tests/{uuid.uuid4()}.parquet"
    body = uuid.uuid4().bytes * 100
    client.put_object(Bucket=stack.s3_bucket, Key=key, Body=body, StorageClass="GLACIER")
    head = client.head_object(Bucket=stack.s3_bucket, Key=key)
    assert head["StorageClass"] == "GLACIER"
    assert client.get_object(Bucket=stack.s3_bucket, Key=key)["Body"].read() == body
    listed = client.list_objects_v2(Bucket=stack.s3_bucket, Prefix=key)["Contents"]
    assert [(o["Key"], o["StorageClass"]) for o in listed] == [(key, "GLACIER")]
    client.delete_object(Bucket=stack.s3_bucket, Key=key)
