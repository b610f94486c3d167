"""Kafka record -> bronze / rejects split (speed_layer.parse), on inline rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest

from adclick.contract import to_event, validate_incoming
from speed_layer.parse import to_bronze_rows, to_reject_rows, with_parsed_event

KAFKA_COLS = "key binary, value binary, topic string, partition int, offset long, timestamp timestamp"
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _event(**overrides) -> bytes:
    raw = {"event_id": str(uuid.uuid4()), "ad_id": "ad-7", "ts": "2026-11-27T11:59:30.250Z", "country": "FR",
           "user_id": "u-1", "ip": "10.1.2.3", "colour": "blue", **overrides}  # fmt: skip
    incoming = validate_incoming(raw, now=T0)
    return to_event(incoming, key=b"k", received_at_ms=int(T0.timestamp() * 1000)).to_json()


def _kafka_rows(spark, values: list[bytes | None]):
    rows = [(b"ad-7", v, "adclick.events", 3, 100 + i, T0) for i, v in enumerate(values)]
    return spark.createDataFrame(rows, KAFKA_COLS)


@pytest.fixture(scope="module")
def split(spark):
    good = _event()
    conversion = _event(event_type="conversion", revenue_micros=5_000_000)
    missing_ad = orjson.loads(_event())
    del missing_ad["ad_id"]
    bad_uuid = {**orjson.loads(_event()), "event_id": "not-a-uuid"}
    wrong_type = {**orjson.loads(_event()), "ts": "yesterday"}
    values = [
        good,
        conversion,
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        orjson.dumps(missing_ad),
        orjson.dumps(bad_uuid),
        orjson.dumps(wrong_type),
        None,
    ]
    parsed = with_parsed_event(_kafka_rows(spark, values))
    bronze = {r.kafka_offset: r for r in to_bronze_rows(parsed).collect()}
    rejects = {r.kafka_offset: r for r in to_reject_rows(parsed).collect()}
    return good, bronze, rejects


def test_every_record_lands_in_exactly_one_output(split) -> None:
    _, bronze, rejects = split
    assert set(bronze) == {100, 101}
    assert set(rejects) == {102, 103, 104, 105, 106, 107, 108}


def test_reject_reasons_name_the_problem(split) -> None:
    _, _, rejects = split
    assert {o: r.reason for o, r in rejects.items()} == {
        102: "value is not valid JSON",
        103: "value is not valid UTF-8",
        104: "value is not a JSON object",
        105: "ad_id: is required or has the wrong type",
        106: "event_id: must be a UUID",
        107: "ts: is required or has the wrong type",
        108: "empty record",
    }
    assert rejects[103].raw_value == b"\xff\xfe\x00garbage"  # the raw payload is kept as bytes
    assert rejects[102].kafka_partition == 3


def test_bronze_row_keeps_contract_fields_and_lineage(split) -> None:
    good, bronze, _ = split
    row = bronze[100]
    sent = orjson.loads(good)
    assert row.event_id == sent["event_id"]
    assert row.event_type == "click"
    assert row.event_time == datetime(2026, 11, 27, 11, 59, 30, 250000)
    assert row.event_date.isoformat() == "2026-11-27"
    assert (row.country, row.region) == ("FR", "eu")
    assert row.user_key == sent["user_key"] and row.user_key != "u-1"
    assert row.attributes == {"colour": "blue"}
    assert (row.kafka_topic, row.kafka_partition, row.kafka_offset) == ("adclick.events", 3, 100)
    assert row.schema_version == 1
    assert bronze[101].event_type == "conversion" and bronze[101].revenue_micros == 5_000_000


def test_no_raw_personal_data_in_bronze(split) -> None:
    _, bronze, _ = split
    for row in bronze.values():
        assert "u-1" not in str(row.asDict()) and "10.1.2.3" not in str(row.asDict())


def test_narrow_frame_gives_the_same_outputs_and_drops_valid_payloads(spark) -> None:
    from speed_layer.parse import narrow

    values = [_event(), b"{broken", _event(event_type="impression")]
    parsed = with_parsed_event(_kafka_rows(spark, values))
    slim = narrow(parsed)
    assert sorted(map(tuple, to_bronze_rows(slim).collect())) == sorted(
        map(tuple, to_bronze_rows(parsed).collect())
    )
    assert [tuple(r) for r in to_reject_rows(slim).collect()] == [
        tuple(r) for r in to_reject_rows(parsed).collect()
    ]
    kept = {r.offset: r.value for r in slim.collect()}
    assert kept == {100: None, 101: b"{broken", 102: None}  # raw bytes kept only where needed
