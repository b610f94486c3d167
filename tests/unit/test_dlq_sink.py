"""Bronze rejects -> DLQ records (speed_layer.dlq_sink) and their place in the bronze landing batch."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adclick import dlq
from adclick.catalog import table
from adclick.settings import Settings
from speed_layer import bronze_sink
from speed_layer.dlq_sink import to_dlq_records
from speed_layer.parse import to_reject_rows, with_parsed_event

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
GOOD = (
    b'{"event_id": "0b9e7e4e-9d3c-4a8e-8f55-2b6f0f7b6f01", "ad_id": "ad-7", "ts": 1795780790000,'
    b' "region": "eu", "received_at": 1795780800000}'
)


def _kafka(spark, rows: list[tuple[bytes | None, bytes | None, int]]):
    return spark.createDataFrame(
        [(key, value, "adclick.events", 3, offset, T0, 0) for key, value, offset in rows],
        bronze_sink.KAFKA_SOURCE_SCHEMA,
    )


def test_every_reject_becomes_a_dead_letter_with_reason_and_lineage(spark) -> None:
    batch = _kafka(
        spark, [(b"ad-7", b"{broken", 100), (None, b"\xff\xfe", 101), (None, None, 102), (b"k", GOOD, 103)]
    )
    records = to_dlq_records(to_reject_rows(with_parsed_event(batch))).collect()
    assert sorted(r.key for r in records) == [
        "adclick.events:3:100",
        "adclick.events:3:101",
        "adclick.events:3:102",
    ]
    letters = {r.key: dlq.from_record(r.value, [(h.key, h.value) for h in r.headers]) for r in records}
    assert letters == {
        "adclick.events:3:100": dlq.DeadLetter(
            "value is not valid JSON", "adclick.events", 3, 100, T0_MS, "ad-7", b"{broken"
        ),
        "adclick.events:3:101": dlq.DeadLetter(
            "value is not valid UTF-8", "adclick.events", 3, 101, T0_MS, None, b"\xff\xfe"
        ),
        "adclick.events:3:102": dlq.DeadLetter("empty record", "adclick.events", 3, 102, T0_MS, None, None),
    }
    for r in records:  # the Spark writer and the Python format agree header for header
        assert [(h.key, h.value) for h in r.headers] == dlq.to_headers(letters[r.key])


@pytest.fixture
def sent(monkeypatch) -> list[list]:
    """What the bronze sink hands to the DLQ, per call (no Kafka in unit tests)."""
    calls: list[list] = []
    monkeypatch.setattr(
        bronze_sink, "send_dead_letters", lambda settings, rejects: calls.append(rejects.collect())
    )
    return calls


def test_land_batch_sends_the_rejects_after_bronze_rejects_and_nothing_for_a_clean_batch(
    spark, tmp_path, sent
) -> None:
    settings = Settings(home=tmp_path)
    bronze_sink.ensure_tables(spark, settings)
    bronze_sink.land_batch(settings, _kafka(spark, [(b"k", GOOD, 1)]), 0)
    assert sent == []  # no rejects: no DLQ job

    bronze_sink.land_batch(settings, _kafka(spark, [(b"k", GOOD, 2), (None, b"{broken", 3)]), 1)
    assert [[(r.kafka_offset, r.reason) for r in call] for call in sent] == [[(3, "value is not valid JSON")]]
    rejects = spark.read.format("delta").load(table("bronze.rejects").path(settings)).collect()
    assert [r.kafka_offset for r in rejects] == [3]

    # A replayed batch (same id): Delta skips the append, the DLQ gets the same record again.
    bronze_sink.land_batch(settings, _kafka(spark, [(b"k", GOOD, 2), (None, b"{broken", 3)]), 1)
    assert len(spark.read.format("delta").load(table("bronze.rejects").path(settings)).collect()) == 1
    assert sent[1] == sent[0]
