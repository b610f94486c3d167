"""Replay of the TalkingData CSV onto the event contract (small inline files and the real sample)."""

from __future__ import annotations

import argparse
import csv
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from adclick.contract import to_event, validate_incoming
from adclick.privacy import LOCAL_DEV_KEY
from adclick.settings import Settings
from traffic import commands
from traffic.replay import REPLAY_NAMESPACE, ReplayError, ReplayStats, replay_events
from traffic.sinks import send_to_kafka, with_clock

REAL_SAMPLE = Path("/work/shared/data/talkingdata_train_sample.csv")
END = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
HEADER = "ip,app,device,os,channel,click_time,attributed_time,is_attributed\n"
ROWS = [
    "87540,12,1,13,497,2017-11-07 09:30:38,,0",
    "105560,25,1,17,259,2017-11-07 13:40:27,,0",
    "871,12,1,13,178,2017-11-08 10:00:05,,0",
    "5314,3,1,19,115,2017-11-06 16:00:00,,0",  # earlier than the rows above: out of order
    "224120,19,0,29,213,2017-11-08 02:22:38,2017-11-08 02:22:38,1",
    "871,12,1,13,178,2017-11-08 10:00:05,,0",  # exact duplicate of the third row
    "3232235777,3,2,13,115,2017-11-09 15:59:51,,0",  # the latest click
]


def write_csv(tmp_path: Path, rows: list[str], header: str = HEADER, name: str = "sample.csv") -> Path:
    path = tmp_path / name
    path.write_text(header + "\n".join(rows) + "\n")
    return path


def replayed(path: Path, **kwargs: Any) -> tuple[list[dict[str, Any]], ReplayStats]:
    stats = ReplayStats()
    return list(replay_events(path, end=END, stats=stats, **kwargs)), stats


def ts(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["ts"].replace("Z", "+00:00"))


def test_rows_map_onto_the_contract_in_file_order(tmp_path: Path) -> None:
    events, stats = replayed(write_csv(tmp_path, ROWS))
    clicks = [e for e in events if e["event_type"] == "click"]
    assert (stats.rows, stats.clicks, stats.conversions) == (7, 7, 1)
    assert len(events) == 8
    assert [e["ad_id"] for e in clicks] == [
        "app-12",
        "app-25",
        "app-12",
        "app-3",
        "app-19",
        "app-12",
        "app-3",
    ]
    first = clicks[0]
    assert first == {
        "event_id": str(uuid.uuid5(REPLAY_NAMESPACE, ROWS[0])),
        "event_type": "click",
        "ad_id": "app-12",
        "campaign_id": "ch-497",
        "ts": first["ts"],
        "ip": "0.1.85.244",  # 87540 = 1 * 65536 + 85 * 256 + 244
        "user_id": "87540-1-13",
        "device": 1,
        "os": 13,
        "channel": 497,
    }
    assert clicks[-1]["ip"] == "192.168.1.1"


def test_times_are_shifted_so_the_latest_click_lands_at_end(tmp_path: Path) -> None:
    events, stats = replayed(write_csv(tmp_path, ROWS))
    clicks = [e for e in events if e["event_type"] == "click"]
    assert max(ts(e) for e in events) == END
    assert clicks[-1]["ts"] == "2025-03-01T12:00:00.000Z"
    # Spacing kept: the first and the latest click are 2 days 6:29:13 apart in the file.
    assert END - ts(clicks[0]) == timedelta(days=2, hours=6, minutes=29, seconds=13)
    assert ts(clicks[3]) < ts(clicks[0])  # out-of-order rows stay out of order
    assert stats.shift == END - datetime(2017, 11, 9, 15, 59, 51, tzinfo=UTC)
    assert (stats.first_time, stats.last_time) == ("2017-11-06T16:00:00.000Z", "2017-11-09T15:59:51.000Z")


def test_duplicate_row_gives_the_same_event_id(tmp_path: Path) -> None:
    events, _ = replayed(write_csv(tmp_path, ROWS))
    clicks = [e for e in events if e["event_type"] == "click"]
    ids = [e["event_id"] for e in clicks]
    assert ids[2] == ids[5]
    assert clicks[2] == clicks[5]
    assert len(set(ids)) == 6
    again, _ = replayed(write_csv(tmp_path, ROWS, name="copy.csv"))
    assert again == events  # deterministic across runs and file names


def test_attributed_row_yields_a_conversion_right_after_its_click(tmp_path: Path) -> None:
    events, _ = replayed(write_csv(tmp_path, ROWS))
    index = next(i for i, e in enumerate(events) if e["event_type"] == "conversion")
    conversion, click = events[index], events[index - 1]
    assert click["event_type"] == "click"
    assert conversion["click_id"] == click["event_id"]
    assert conversion["event_id"] != click["event_id"]
    assert conversion["ad_id"] == click["ad_id"] == "app-19"
    assert conversion["user_id"] == click["user_id"]
    assert conversion["ts"] == click["ts"]  # attributed in the same second in this row


def test_attributed_time_is_shifted_like_click_time(tmp_path: Path) -> None:
    rows = [*ROWS[:4], "224120,19,0,29,213,2017-11-08 02:22:38,2017-11-08 03:00:00,1", ROWS[6]]
    events, _ = replayed(write_csv(tmp_path, rows))
    conversion = next(e for e in events if e["event_type"] == "conversion")
    click = next(e for e in events if e["event_id"] == conversion["click_id"])
    assert ts(conversion) - ts(click) == timedelta(minutes=37, seconds=22)


def test_replayed_events_pass_the_contract_and_keep_extras_as_attributes(tmp_path: Path) -> None:
    events, _ = replayed(write_csv(tmp_path, ROWS), country="cn")
    for event in events:
        incoming = validate_incoming(event, now=END)
        record = to_event(incoming, key=LOCAL_DEV_KEY, received_at_ms=0)
        assert set(record.attributes) == {"device", "os", "channel"}
        assert record.country == "CN"
        assert record.region == "apac"
        assert record.user_key is not None


def test_replay_to_kafka(tmp_path: Path) -> None:
    class Producer:
        def __init__(self) -> None:
            self.values: list[bytes] = []

        def send(self, topic: str, key: bytes, value: bytes) -> Any:
            self.values.append(value)
            return self

        def add_errback(self, fn: Any) -> None:
            return None

        def flush(self) -> None:
            return None

    events, _ = replayed(write_csv(tmp_path, ROWS))
    producer = Producer()
    result = send_to_kafka(
        with_clock(iter(events), END), settings=Settings(_env_file=None), key=LOCAL_DEV_KEY, producer=producer
    )
    assert (result.produced, result.invalid) == (8, 0)
    records = [orjson.loads(v) for v in producer.values]
    assert records[0]["attributes"] == {"device": "1", "os": "13", "channel": "497"}
    assert all(r["received_at"] == int(END.timestamp() * 1000) for r in records)
    assert not any(b"87540-1-13" in v for v in producer.values)


@pytest.mark.parametrize(
    ("bad_row", "reason"),
    [
        ("87540,twelve,1,13,497,2017-11-07 09:30:38,,0", "integers"),
        ("87540,12,1,13,2017-11-07 09:30:38,,0", "expected 8 fields"),
        ("87540,12,1,13,497,2017-13-07 09:30:38,,0", "click_time"),
        ("87540,12,1,13,497,2017-11-07 09:30:38,,2", "is_attributed"),
        ("87540,12,1,13,497,2017-11-07 09:30:38,,1", "attributed_time"),
        ("-1,12,1,13,497,2017-11-07 09:30:38,,0", "out of range"),
        ("4294967296,12,1,13,497,2017-11-07 09:30:38,,0", "out of range"),
    ],
)
def test_malformed_row_names_its_line(tmp_path: Path, bad_row: str, reason: str) -> None:
    path = write_csv(tmp_path, [*ROWS[:3], bad_row, *ROWS[3:]])
    produced: list[dict[str, Any]] = []
    with pytest.raises(ReplayError, match=reason) as info:
        produced.extend(replay_events(path, end=END))
    assert f"{path}:5:" in str(info.value)  # header is line 1, the bad row the 4th data row
    assert produced == []  # nothing is yielded from a malformed file


def test_header_must_have_the_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["87540,12,1,13"], header="ip,app,device,os\n")
    with pytest.raises(ReplayError, match=r":1: header lacks column\(s\) channel, click_time"):
        list(replay_events(path, end=END))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ReplayError, match="empty file"):
        list(replay_events(empty, end=END))


def test_header_only_file_yields_nothing(tmp_path: Path) -> None:
    events, stats = replayed(write_csv(tmp_path, []))
    assert events == []
    assert stats.rows == 0


def test_end_must_be_timezone_aware(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone"):
        list(replay_events(write_csv(tmp_path, ROWS), end=datetime(2025, 3, 1)))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adclick")
    sub = parser.add_subparsers(dest="command", required=True)
    commands.add_replay_parser(sub)
    return parser


def test_replay_command_writes_ndjson(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_csv(tmp_path, ROWS)
    args = _parser().parse_args(
        ["replay", str(path), "--end", "2025-03-01T12:00:00Z", "--out", str(tmp_path / "o")]
    )
    assert args.func(args) == 0
    lines = (tmp_path / "o" / "events.ndjson").read_bytes().splitlines()
    assert len(lines) == 8
    assert orjson.loads(lines[-1])["ts"] == "2025-03-01T12:00:00.000Z"
    assert "replayed 7 rows: 7 clicks, 1 conversions" in capsys.readouterr().out


def test_replay_command_reports_a_malformed_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_csv(tmp_path, [ROWS[0], "1,2,3"])
    args = _parser().parse_args(["replay", str(path), "--out", str(tmp_path / "o")])
    assert args.func(args) == 2
    assert f"{path}:3:" in capsys.readouterr().err
    missing = _parser().parse_args(["replay", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o")])
    assert missing.func(missing) == 2


def test_replay_sink_defaults_to_kafka() -> None:
    args = _parser().parse_args(["replay", "file.csv"])
    assert args.to is None
    assert args.out is None
    assert args.end is None


# --- the real sample --------------------------------------------------------------------------


@pytest.mark.skipif(not REAL_SAMPLE.is_file(), reason=f"real data sample not present at {REAL_SAMPLE}")
def test_real_talkingdata_sample() -> None:
    stats = ReplayStats()
    events = list(replay_events(REAL_SAMPLE, end=END, stats=stats))
    clicks = [e for e in events if e["event_type"] == "click"]
    conversions = [e for e in events if e["event_type"] == "conversion"]
    with REAL_SAMPLE.open(newline="") as handle:
        attributed = sum(1 for row in csv.DictReader(handle) if row["is_attributed"] == "1")
    assert stats.rows == len(clicks) == 100_000
    assert len({e["event_id"] for e in clicks}) == 99_999  # one exact duplicate row
    assert stats.conversions == len(conversions) == attributed > 0
    click_ids = {e["event_id"] for e in clicks}
    assert all(c["click_id"] in click_ids for c in conversions)
    assert max(ts(e) for e in clicks) == END
    assert min(ts(e) for e in clicks) == END - timedelta(days=2, hours=23, minutes=59, seconds=51)
    assert Counter(e["ad_id"] for e in clicks).most_common(1)[0][0] == "app-3"  # the hot key
    for event in events[::97]:
        validate_incoming(event, now=END)
