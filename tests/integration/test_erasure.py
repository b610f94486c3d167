"""GDPR erasure and the privacy scan on the real stack: Kafka, the stream application, Spark +
Delta on a private lake, the S3 store (s3proxy), and the ingestion API.

The erasure test builds two days of generated traffic with known truth (retries and late events
included), runs the batch, archives the older day to the cold tier, then erases one user: every
file of the lake and every archived object is read back independently of the code under test,
gold must equal the truth without that user, and every other user's rows stay as they were.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyspark.sql.functions as F
import pytest

from adclick.catalog import table
from adclick.contract import now_utc
from adclick.settings import Settings

pytestmark = pytest.mark.integration


def _say(line: str) -> None:
    print(time.strftime("%H:%M:%S"), line, flush=True)


def _parquet_user_keys(path: Path, column: str = "user_key") -> set:
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    if column not in schema.names:
        return set()
    return set(pq.read_table(path, columns=[column]).column(column).to_pylist())


def _lake_files_with(settings: Settings, key: str) -> list[str]:
    """Data files (any table, referenced or not) whose user_key column holds ``key``, and rejected
    payloads that contain it: read with pyarrow, not with the code under test."""
    import pyarrow.parquet as pq

    root = Path(settings.lake_root.removeprefix("file://"))
    found = []
    for path in root.rglob("*.parquet"):
        if "_delta_log" in path.parts or path.name.startswith("."):
            continue
        if "legal_holds" in path.parts:
            continue  # the legal record of a (released) user hold keeps its key, by design
        if key in _parquet_user_keys(path):
            found.append(str(path))
        elif "raw_value" in pq.read_schema(path).names:
            raw = pq.read_table(path, columns=["raw_value"]).column("raw_value").to_pylist()
            if any(v and key.encode() in v for v in raw):
                found.append(str(path))
    return found


def _archive_objects_with(settings: Settings, key: str, tmp: Path) -> tuple[list[str], list[str]]:
    """(every object key of the test's archive prefix, those whose rows hold ``key``)."""
    from adclick.s3 import client

    c = client(settings)
    keys, holding = [], []
    for page in c.get_paginator("list_objects_v2").paginate(
        Bucket=settings.s3_bucket, Prefix=settings.archive_prefix
    ):
        for obj in page.get("Contents", []):
            keys.append(obj["Key"])
            local = tmp / uuid.uuid4().hex
            c.download_file(settings.s3_bucket, obj["Key"], str(local))
            if key in _parquet_user_keys(local):
                holding.append(obj["Key"])
    return keys, holding


def _truth_without(truth, events: list[dict], user_id: str, days: list[date]) -> dict:
    """The truth's (kind, ad, day) counts minus the distinct events of ``user_id``."""
    wanted = {d.isoformat() for d in days}
    counts = {
        (kind, ad, day): n
        for kind, per_ad in truth.by_ad_day.items()
        for ad, per_day in per_ad.items()
        for day, n in per_day.items()
        if day in wanted and n
    }
    mine = {e["event_id"]: e for e in events if e.get("user_id") == user_id}
    for e in mine.values():
        k = (e["event_type"], e["ad_id"], e["ts"][:10])
        if k[2] in wanted:
            counts[k] -= 1
    return {k: n for k, n in counts.items() if n}


def _gold_counts(spark, settings: Settings, days: list[date]) -> dict:
    gold = spark.read.format("delta").load(table("gold.ad_clicks_daily").path(settings))
    rows = (
        gold.where(F.col("day").isin(days))
        .groupBy("ad_id", "day")
        .agg(
            F.sum(F.col("clicks") + F.col("fraud_clicks")).alias("click"),
            F.sum("impressions").alias("impression"),
            F.sum("conversions").alias("conversion"),
        )
        .collect()
    )
    return {
        (kind, r.ad_id, r.day.isoformat()): r[kind]
        for r in rows
        for kind in ("click", "impression", "conversion")
        if r[kind]
    }


def _sorted_rows(frame, columns: list[str]) -> list[tuple]:
    return sorted(tuple(r) for r in frame.select(*columns).collect())


def test_erasure_removes_the_user_everywhere_and_gold_equals_truth_without_them(
    isolated: Settings, spark, tmp_path
) -> None:
    from adclick import dims
    from adclick.erasure import ErasureError
    from adclick.privacy import hash_key, pseudonymise
    from adclick.retention import policy_for
    from batch_layer import archive, gold
    from batch_layer.erasure import run_erasure
    from batch_layer.lifecycle import add_hold, release_hold
    from batch_layer.ops import advance_watermark, batch_watermark
    from batch_layer.pipeline import run_step
    from ingestion.spool import Spool, decode_records
    from speed_layer import app
    from traffic.generator import GeneratorConfig, generate_timed
    from traffic.sinks import send_to_kafka
    from traffic.truth import Truth

    settings = isolated.model_copy(
        update={
            "archive_prefix": f"erasure-test-{uuid.uuid4().hex[:8]}",
            "retention_overrides": {s: {"hot_days": 1, "warm_days": 3} for s in ("bronze", "silver")},
            "retention_vacuum_hours": 0,
            "erasure_vacuum_hours": 0,
        }
    )
    today = now_utc().date()
    first = today - timedelta(days=3)
    days = [first, first + timedelta(days=1)]
    truth = Truth()
    config = GeneratorConfig(
        start=datetime(first.year, first.month, first.day, tzinfo=UTC),
        duration=timedelta(days=2),
        clicks=200,
        late_fraction=0.05,
        duplicate_rate=0.03,
        seed=917,
    )
    timed = list(generate_timed(config, truth))
    sent = send_to_kafka(timed, settings=settings)
    assert sent.failed == 0 and sent.invalid == 0
    events = [e for _, e in timed]
    dims.load(spark, settings, ads=truth.ads, users=truth.users)
    app.run(settings, queries=("bronze", "speed"), available_now=True, log=_say)
    for day in days:  # the gates and the reconciliation have tests of their own
        for step in ("silver", "gold"):
            run_step(spark, settings, step, day, log=_say)
    advance_watermark(spark, settings, days[0], "erasure-test")  # day 2 has gold but is not final
    assert batch_watermark(spark, settings) == days[0]

    # The user with events on both days, and the most of them.
    per_user: dict[str, set[str]] = {}
    for e in events:
        if e.get("user_id") and e["ts"][:10] in {d.isoformat() for d in days}:
            per_user.setdefault(e["user_id"], set()).add(e["ts"][:10])
    both = [u for u, d in per_user.items() if len(d) == 2]
    user_id = max(both, key=lambda u: sum(1 for e in events if e.get("user_id") == u))
    key = pseudonymise(hash_key(settings), user_id, domain="user")

    silver_path = table("silver.events").path(settings)
    before = spark.read.format("delta").load(silver_path).where(F.col("event_date").isin(days))
    snapshot = str(tmp_path / "silver_before")
    before.write.parquet(snapshot)  # the rows before the archive and the erasure, kept aside
    others_before = spark.read.parquet(snapshot).where(F.col("user_key") != key)
    assert spark.read.parquet(snapshot).where(F.col("user_key") == key).count() > 0

    for name in ("bronze.events", "silver.events"):  # day 1 goes to the cold tier
        done = archive.archive_day(
            spark, settings, policy_for(settings, name), days[0], "retention-t", log=_say
        )
        assert done["outcome"] == "archived"
    assert _archive_objects_with(settings, key, tmp_path)[1]  # and the user is in them

    # A legal hold on the user refuses the request; nothing is erased.
    hold = add_hold(spark, settings, reason="litigation 12", by="legal", user_key=key)
    with pytest.raises(ErasureError, match="legal hold"):
        run_erasure(spark, settings, key, by="dpo", reason="ticket 1", log=_say)
    assert spark.read.format("delta").load(silver_path).where(F.col("user_key") == key).count() > 0
    release_hold(spark, settings, hold.hold_id, by="legal", reason="case closed")

    # The spool of a stopped API holds one record of the user and one of someone else.
    spool = Spool(settings.path("spool") / "0", max_bytes=1 << 20)
    spool.append([(b"ad-1", f'{{"user_key":"{key}"}}'.encode()), (b"ad-2", b'{"user_key":"someone"}')])
    spool.close()

    result = run_erasure(spark, settings, key, by="dpo", reason="ticket 2", log=_say)
    assert result["status"] == "erased" and result["verified"] is True
    assert result["rows"]["bronze.events"] > 0 and result["rows"]["silver.events"] > 0
    assert result["rows"]["archive:silver.events"] > 0 and result["rows"]["dims.users"] == 1
    assert result["gold_days"] == days and result["spool_records"] == 1
    assert result["kafka_retained_until"] > now_utc()

    # Independent proof: no data file of the lake, no archived object holds the key.
    assert _lake_files_with(settings, key) == []
    objects, holding = _archive_objects_with(settings, key, tmp_path)
    assert holding == [] and objects
    current = {
        o["object_key"]
        for name in ("bronze.events", "silver.events")
        for o in archive.current_objects(spark, settings, name, days[0])
    }
    assert set(objects) == current  # the pre-erasure objects are gone from the store
    spooled = [
        r for p in (settings.path("spool") / "0").glob("seg-*.log") for r in decode_records(p.read_bytes())[0]
    ]
    assert spooled == [(b"ad-2", b'{"user_key":"someone"}')]

    # Gold of both days (one recomputed from the rewritten archive) equals the truth without the user.
    assert _gold_counts(spark, settings, days) == _truth_without(truth, events, user_id, days)
    # Unique users and every other measure: what gold computes from the other users' rows.
    daily = (
        spark.read.format("delta")
        .load(table("gold.ad_clicks_daily").path(settings))
        .where(F.col("day").isin(days))
    )
    columns = [c for c in daily.columns]
    assert _sorted_rows(daily, columns) == _sorted_rows(gold.daily(others_before), columns)
    # Other users' silver rows are unchanged (day 2 in the lake).
    after = spark.read.format("delta").load(silver_path).where(F.col("event_date") == F.lit(days[1]))
    assert _sorted_rows(after, ["event_id", "user_key", "ad_id"]) == _sorted_rows(
        others_before.where(F.col("event_date") == F.lit(days[1])), ["event_id", "user_key", "ad_id"]
    )

    # Speed: the final day was dropped (gold serves it); the later day recomputed without the user.
    minute = spark.read.format("delta").load(table("speed.ad_clicks_minute").path(settings))
    assert minute.where(F.col("window_date") == F.lit(days[0])).count() == 0
    speed_ads = (
        minute.where(F.col("window_date") == F.lit(days[1]))
        .groupBy("ad_id")
        .agg(F.sum(F.col("clicks") + F.col("fraud_clicks")).alias("n"))
    )
    gold_ads = (
        daily.where(F.col("day") == F.lit(days[1]))
        .groupBy("ad_id")
        .agg(F.sum(F.col("clicks") + F.col("fraud_clicks")).alias("n"))
    )
    assert _sorted_rows(speed_ads.where("n > 0"), ["ad_id", "n"]) == _sorted_rows(
        gold_ads.where("n > 0"), ["ad_id", "n"]
    )

    # The log holds the key's hash, never the key.
    log = spark.read.format("delta").load(table("ops.erasure_log").path(settings)).collect()
    assert [r.status for r in sorted(log, key=lambda r: r.requested_at)] == ["refused_held", "erased"]
    assert {r.user_key_hash for r in log} == {hashlib.sha256(key.encode()).hexdigest()}
    assert all(key not in repr(r.asDict()) for r in log)

    # A second request finds nothing left and proves it again.
    again = run_erasure(spark, settings, key, by="dpo", reason="ticket 2, repeat", log=_say)
    assert again["verified"] is True and again["rows"] == {}


def _privacy_events(n: int) -> list[dict]:
    """``n`` valid events of fresh users and IPs (unique to this run), in the last hour."""
    at = now_utc() - timedelta(minutes=30)
    return [
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "click" if i % 2 else "impression",
            "ad_id": f"ad-privacy-{i % 3}",
            "ts": (at + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
            "user_id": f"privacy-user-{uuid.uuid4().hex}",
            "ip": f"10.{(i >> 8) & 255}.{i & 255}.{uuid.uuid4().int % 250 + 1}",
            "country": "DE",
        }
        for i in range(n)
    ]


def _kafka_values(log_dir: Path) -> list[bytes]:
    """Every record key and value in the broker's segment files, decompressed (kafka-python reads
    the on-disk record batch format)."""
    from kafka.record import MemoryRecords

    out = []
    for segment in log_dir.rglob("*.log"):
        records = MemoryRecords(segment.read_bytes())
        while records.has_next():
            batch = records.next_batch()
            if batch is None:
                break
            for record in batch:
                out.extend(v for v in (record.key, record.value) if v)
    return out


def test_privacy_scan_finds_no_raw_user_id_or_ip_anywhere(stack: Settings, spark) -> None:
    """Raw ids and IPs sent to the API appear in no file of the lake, the spool, the archive, the
    Kafka log directory or the logs; their pseudonyms do reach bronze (the scan looks where the data is)."""
    import pyarrow.parquet as pq

    from adclick.privacy import hash_key, pseudonymise
    from traffic.sinks import post_to_api

    started = time.time()
    events = _privacy_events(60)
    result = post_to_api(events, url=f"http://{stack.bind_host}:{stack.ingest_port}")
    assert result.rejected == 0
    ids = {e["event_id"] for e in events}
    bronze = spark.read.format("delta").load(table("bronze.events").path(stack))
    deadline = time.monotonic() + 240
    while bronze.where(F.col("event_id").isin(*ids)).count() < len(ids):
        assert time.monotonic() < deadline, "the events did not land in bronze"
        time.sleep(3)
        bronze = spark.read.format("delta").load(table("bronze.events").path(stack))
    landed = {r.user_key for r in bronze.where(F.col("event_id").isin(*ids)).select("user_key").collect()}
    assert landed == {pseudonymise(hash_key(stack), e["user_id"], domain="user") for e in events}

    raw = {e["user_id"] for e in events} | {e["ip"] for e in events}
    pattern = re.compile("|".join(re.escape(v) for v in raw).encode())
    home = stack.home
    places = {
        "lake": Path(stack.lake_root.removeprefix("file://")),
        "spool": stack.path("spool"),
        "archive": home / "s3",
        "kafka": home / "kafka",
        "logs": home / "logs",
        "airflow logs": home / "airflow",
        "stream": home / "stream",
    }
    found: list[str] = []
    scanned = 0
    for where, root in places.items():
        for path in (p for p in root.rglob("*") if p.is_file()):
            if path.stat().st_mtime < started - 5:
                continue  # written before the raw values existed
            scanned += 1
            if pattern.search(path.read_bytes()):
                found.append(f"{where}: {path}")
            if path.suffix == ".parquet":  # compressed pages: read the values
                frame = pq.read_table(path)
                for column in frame.column_names:
                    values = [
                        v.encode() if isinstance(v, str) else v for v in frame.column(column).to_pylist()
                    ]
                    if any(isinstance(v, bytes) and pattern.search(v) for v in values):
                        found.append(f"{where}: {path} column {column}")
    kafka = _kafka_values(home / "kafka" / "data")
    assert any(e["event_id"].encode() in v for v in kafka for e in events[:1])  # the scan sees the events
    found += [f"kafka record {v[:80]!r}" for v in kafka if pattern.search(v)]
    assert scanned > 0
    assert found == []
