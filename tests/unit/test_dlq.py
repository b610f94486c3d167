"""The dead-letter format (adclick.dlq), the export file and `adclick dlq replay` (traffic.dlq) against
a fake ingestion API (httpx MockTransport) that validates and deduplicates like the real one."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from adclick import dlq
from adclick.contract import ContractError, to_event, validate_incoming
from adclick.dlq import DeadLetter, DeadLetterError
from cli.main import build_parser
from traffic.dlq import DlqError, export_lines, read_file, replay, to_incoming

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)


def _event_bytes(event_id: str) -> bytes:
    """A Kafka record value shaped as the ingestion API writes it (an Event, personal data hashed),
    with the given (possibly broken) ``event_id``."""
    raw = {"event_id": str(uuid.uuid4()), "ad_id": "ad-7", "ts": T0_MS - 60_000, "country": "FR",
           "user_id": "u-1", "colour": "blue"}  # fmt: skip
    event = to_event(validate_incoming(raw, now=T0), key=b"k", received_at_ms=T0_MS)
    return orjson.dumps({**orjson.loads(event.to_json()), "event_id": event_id})


def _letter(raw: bytes | None, *, reason: str = "event_id: must be a UUID", offset: int = 41) -> DeadLetter:
    return DeadLetter(reason, "adclick.events", 3, offset, T0_MS + 123, "ad-7", raw)


# --- the Kafka record and the export line -----------------------------------------------------


def test_headers_carry_reason_and_lineage_and_parse_back() -> None:
    letter = _letter(b"{broken")
    headers = dlq.to_headers(letter)
    assert dict(headers) == {
        "adclick.reason": b"event_id: must be a UUID",
        "adclick.source.topic": b"adclick.events",
        "adclick.source.partition": b"3",
        "adclick.source.offset": b"41",
        "adclick.source.timestamp": str(T0_MS + 123).encode(),
        "adclick.source.key": b"ad-7",
    }
    assert dlq.from_record(b"{broken", headers) == letter
    assert letter.lineage == dlq.lineage_key("adclick.events", 3, 41) == "adclick.events:3:41"


def test_a_record_without_key_or_timestamp_has_no_such_headers() -> None:
    letter = DeadLetter("empty record", "adclick.events", 0, 5)
    assert [name for name, _ in dlq.to_headers(letter)] == [
        "adclick.reason",
        "adclick.source.topic",
        "adclick.source.partition",
        "adclick.source.offset",
    ]
    assert dlq.from_record(None, dlq.to_headers(letter)) == letter


@pytest.mark.parametrize(
    "headers",
    [[], [("adclick.reason", b"x")], [(name, b"x") for name in dlq.HEADERS]],
    ids=["none", "reason only", "offset not a number"],
)
def test_a_record_that_is_not_a_dead_letter_is_refused(headers) -> None:
    with pytest.raises(DeadLetterError):
        dlq.from_record(b"{}", headers)


def test_export_line_round_trip_text_binary_and_empty() -> None:
    for raw in (b"{broken", b"\xff\xfe\x00garbage", None, _event_bytes(event_id="not-a-uuid")):
        letter = _letter(raw)
        line = orjson.loads(orjson.dumps(dlq.to_line(letter)))  # through the file's JSON
        assert dlq.from_line(line) == letter
    assert dlq.to_line(_letter(b"\xff\xfe"))["raw_base64"] == "//4="
    assert dlq.to_line(_letter(b"\xff\xfe"))["raw"] is None
    assert dlq.to_line(_letter(b"{broken"))["source"] == {
        "topic": "adclick.events",
        "partition": 3,
        "offset": 41,
        "timestamp": "2026-11-28T10:00:00.123Z",
    }


def test_the_event_field_appears_only_for_a_json_object() -> None:
    payload = _event_bytes(event_id="not-a-uuid")
    assert dlq.to_line(_letter(payload))["event"] == orjson.loads(payload)
    for raw in (b"[1, 2]", b"{broken", b"\xff", None):
        assert "event" not in dlq.to_line(_letter(raw))


def test_fixed_event_prefers_the_edited_event_then_raw() -> None:
    line = dlq.to_line(_letter(b'{"event_id": "x", "ad_id": "a"}'))
    line["event"]["event_id"] = "fixed"
    assert dlq.fixed_event(line) == {"event_id": "fixed", "ad_id": "a"}
    del line["event"]
    assert dlq.fixed_event(line) == {"event_id": "x", "ad_id": "a"}
    line["raw"] = "still broken"
    assert dlq.fixed_event(line) is None
    assert dlq.fixed_event(dlq.to_line(_letter(None))) is None


# --- export -----------------------------------------------------------------------------------


def test_export_writes_each_source_record_once_and_skips_foreign_records() -> None:
    first, second = (
        _letter(b"{broken", offset=1),
        _letter(b"\xff", reason="value is not valid UTF-8", offset=2),
    )
    records = [
        (first.lineage.encode(), first.raw, dlq.to_headers(first)),
        (second.lineage.encode(), second.raw, dlq.to_headers(second)),
        (first.lineage.encode(), first.raw, dlq.to_headers(first)),  # re-sent by a replayed batch
        (b"k", b"produced by something else", []),
    ]
    out = io.BytesIO()
    result = export_lines(records, out)
    assert (result.written, result.copies, result.foreign) == (2, 1, 1)
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [dlq.from_line(line) for line in lines] == [first, second]


def test_export_file_reads_back_and_a_bad_line_is_named(tmp_path) -> None:
    path = tmp_path / "dlq.ndjson"
    letters = [_letter(b"{broken", offset=1), _letter(None, reason="empty record", offset=2)]
    with path.open("wb") as out:
        export_lines([(None, d.raw, dlq.to_headers(d)) for d in letters], out)
    path.write_bytes(path.read_bytes() + b"\n")  # a trailing blank line is fine
    assert [dlq.from_line(line) for line in read_file(path)] == letters
    path.write_bytes(path.read_bytes() + b'{"reason": "x"}\n')
    with pytest.raises(DlqError, match=r"dlq.ndjson:4: not a DLQ export line"):
        read_file(path)


# --- replay -----------------------------------------------------------------------------------


def test_to_incoming_drops_what_the_api_derives_and_restores_unknown_fields() -> None:
    event = orjson.loads(_event_bytes(str(uuid.uuid4())))
    body = to_incoming(event)
    assert set(event) - set(body) == {"v", "region", "received_at", "user_key", "attributes"}
    assert body["colour"] == "blue"  # was attributes.colour: the API puts it back there
    assert body["ts"] == T0_MS - 60_000 and body["event_id"] == event["event_id"]
    validate_incoming(body, now=T0)  # an IncomingEvent the API accepts


class FakeApi:
    """The batch endpoint: validates each event, answers a seen event_id ``duplicate``."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.bodies: list[list[dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/events/batch"
        batch = orjson.loads(request.content)
        self.bodies.append(batch)
        accepted = duplicates = 0
        rejected = []
        for index, obj in enumerate(batch):
            try:
                event = validate_incoming(obj, now=T0)
            except ContractError as exc:
                rejected.append({"index": index, "error": str(exc)})
                continue
            if event.event_id in self.seen:
                duplicates += 1
            else:
                self.seen.add(event.event_id)
                accepted += 1
        return httpx.Response(
            202, json={"accepted": accepted, "duplicates": duplicates, "rejected": rejected}
        )


def _export_file(tmp_path, letters: list[DeadLetter]):
    path = tmp_path / "dlq.ndjson"
    with path.open("wb") as out:
        export_lines([(None, d.raw, dlq.to_headers(d)) for d in letters], out)
    return path


def test_replay_sends_fixed_events_reports_counts_and_is_idempotent(tmp_path) -> None:
    good_id = str(uuid.uuid4())
    letters = [
        _letter(_event_bytes(event_id="not-a-uuid"), offset=1),  # fixed below
        _letter(_event_bytes(event_id="also-bad"), offset=2),  # left as is: the API rejects it
        _letter(b"{broken", reason="value is not valid JSON", offset=3),  # unfixed: not sent
    ]
    lines = read_file(_export_file(tmp_path, letters))
    lines[0]["event"]["event_id"] = good_id
    api = FakeApi()
    client = httpx.Client(transport=httpx.MockTransport(api))

    first = replay(lines, url="http://ingest:8000", client=client)
    assert (first.api.sent, first.api.accepted, first.api.duplicates, first.api.rejected) == (2, 1, 0, 1)
    assert first.rejected == [("adclick.events:3:2", "event_id: must be a UUID")]
    assert first.unfixed == ["adclick.events:3:3"]
    assert first.pseudonyms_dropped == 2
    assert [e["event_id"] for e in api.bodies[0]] == [good_id, "also-bad"]
    assert api.bodies[0][0]["colour"] == "blue" and "user_key" not in api.bodies[0][0]

    again = replay(lines, url="http://ingest:8000", client=client)
    assert (again.api.accepted, again.api.duplicates, again.api.rejected) == (0, 1, 1)
    assert api.seen == {good_id}


def test_replay_of_nothing_fixable_sends_nothing() -> None:
    api = FakeApi()
    result = replay(
        [dlq.to_line(_letter(b"{broken"))],
        url="http://ingest:8000",
        client=httpx.Client(transport=httpx.MockTransport(api)),
    )
    assert api.bodies == [] and result.api.sent == 0
    assert result.unfixed == ["adclick.events:3:41"]


def test_dlq_subcommands_are_registered() -> None:
    args = build_parser().parse_args(["dlq", "export", "--out", "x.ndjson"])
    assert (args.dlq_command, str(args.out)) == ("export", "x.ndjson")
    args = build_parser().parse_args(["dlq", "replay", "fixed.ndjson", "--batch-size", "10"])
    assert (args.dlq_command, str(args.file), args.batch_size) == ("replay", "fixed.ndjson", 10)
