"""The data lifecycle on the real stack: Spark + Delta on a private lake, the S3 store (s3proxy),
Trino. Archive -> delete -> restore round trip, idempotent and interrupted retention runs, legal
holds, speed expiry behind the batch watermark, restored days expiring again."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from adclick.settings import Settings

TODAY = date(2026, 11, 30)
DAYS = [TODAY - timedelta(days=n) for n in range(5, 0, -1)]  # ages 5..1
POLICY = {"bronze": {"hot_days": 2, "warm_days": 4}, "silver": {"hot_days": 2, "warm_days": 4}}
COLD = [d for d in DAYS if (TODAY - d).days >= 4]  # archived: ages 5, 4
WARM = [d for d in DAYS if 2 <= (TODAY - d).days < 4]  # compacted: ages 3, 2


@pytest.fixture
def lake(stack: Settings, tmp_path) -> Settings:
    return stack.model_copy(
        update={
            "home": tmp_path,
            "lake_root": (tmp_path / "lake").as_uri(),
            "archive_prefix": f"archive-test-{uuid.uuid4().hex[:8]}",
            "retention_overrides": POLICY,
            "retention_vacuum_hours": 0,
        }
    )


def _events(spark, day: date, n: int, users: list[str]):
    """``n`` bronze-like events of ``day`` in two regions, a map column among them."""
    import pyspark.sql.types as T

    schema = T.StructType(
        [
            T.StructField("event_id", T.StringType()),
            T.StructField("event_type", T.StringType()),
            T.StructField("ad_id", T.StringType()),
            T.StructField("user_key", T.StringType()),
            T.StructField("event_time", T.TimestampType()),
            T.StructField("cost_micros", T.LongType()),
            T.StructField("attributes", T.MapType(T.StringType(), T.StringType())),
            T.StructField("event_date", T.DateType()),
            T.StructField("region", T.StringType()),
        ]
    )
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    rows = [
        (
            str(uuid.uuid5(uuid.NAMESPACE_OID, f"{day}-{i}")),
            "click" if i % 3 else "impression",
            f"ad-{i % 7}",
            users[i % len(users)],
            start + timedelta(seconds=37 * i),
            1000 + i,
            {"k": str(i), "z": "x"} if i % 2 else {},
            day,
            "eu" if i % 2 else "us",
        )
        for i in range(n)
    ]
    return spark.createDataFrame(rows, schema)


def _write_day(spark, settings: Settings, name: str, day: date, n: int, users: list[str], batches: int = 2):
    """A day written in ``batches`` appends, so each partition directory has several files."""
    from batch_layer import lake

    frame = _events(spark, day, n, users)
    if name == "silver.events":
        frame = frame.drop("region")
    for b in range(batches):
        lake.append(frame.where(f"pmod(hash(event_id), {batches}) = {b}"), settings, name)


def _rows(frame) -> list[tuple]:
    """Rows as sorted tuples (maps as their sorted items), comparable across tables."""
    return sorted(
        tuple(tuple(sorted(v.items())) if isinstance(v, dict) else v for v in r) for r in frame.collect()
    )


def _day_rows(spark, settings: Settings, name: str, day: date) -> list[tuple]:
    from batch_layer import lake

    return _rows(lake.read(spark, settings, name).where(f"event_date = DATE'{day}'").drop("region"))


def _objects(settings: Settings) -> dict[str, str]:
    from adclick.s3 import client

    c = client(settings)
    found = {}
    for page in c.get_paginator("list_objects_v2").paginate(
        Bucket=settings.s3_bucket, Prefix=settings.archive_prefix
    ):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = obj["StorageClass"]
    return found


def _log(spark, settings: Settings, action: str) -> list[tuple]:
    from batch_layer import lake

    frame = lake.read_if_exists(spark, settings, "ops.lifecycle_log")
    if frame is None:
        return []
    return sorted((r.table, r.day) for r in frame.where(f"action = '{action}'").collect())


def _fill(spark, settings: Settings, users: list[str]) -> dict[tuple[str, date], list[tuple]]:
    originals = {}
    for i, day in enumerate(DAYS):
        for name in ("bronze.events", "silver.events"):
            _write_day(spark, settings, name, day, 120 + 10 * i, users)
            originals[(name, day)] = _day_rows(spark, settings, name, day)
    return originals


def test_archive_delete_restore_round_trip(spark, lake: Settings) -> None:
    from adclick.s3 import client
    from batch_layer import archive
    from batch_layer import lake as lk
    from batch_layer.lifecycle import lifecycle_days, restore, run_retention
    from serving.trino_client import query

    originals = _fill(spark, lake, ["u1", "u2", "u3"])
    first = run_retention(spark, lake, TODAY)
    assert (first["archive"], first["compact"], first["skip_held"]) == (2 * len(COLD), 2 * len(WARM), 0)

    # The cold days left the lake; each lives in the store as GLACIER objects the manifest names.
    objects = _objects(lake)
    assert set(objects.values()) == {"GLACIER"}
    manifest = lk.read(spark, lake, "ops.archive_manifest").collect()
    assert {m.object_key for m in manifest} == set(objects)
    for name in ("bronze.events", "silver.events"):
        assert set(lk.partition_files(spark, lake, name)) == set(DAYS) - set(COLD)
        assert {d: w for d, w in lifecycle_days(spark, lake, name).items() if w != "lake"} == {
            d: "archive" for d in COLD
        }
        for day in COLD:
            rows = [m for m in manifest if m.table == name and m.day == day]
            assert sum(m.rows for m in rows) == len(originals[(name, day)]) == rows[0].partition_rows
            body = client(lake).get_object(Bucket=lake.s3_bucket, Key=rows[0].object_key)["Body"].read()
            assert archive.hashlib.sha256(body).hexdigest() == rows[0].sha256
        for day in WARM:  # compacted: one file per partition directory, same rows
            dirs = [f.rsplit("/", 1)[0] for f in lk.partition_files(spark, lake, name)[day]]
            assert len(dirs) == len(set(dirs))
            assert _day_rows(spark, lake, name, day) == originals[(name, day)]
    assert _log(spark, lake, "archive") == sorted(
        (n, d) for n in ("bronze.events", "silver.events") for d in COLD
    )

    # A second run finds nothing to do and changes nothing.
    again = run_retention(spark, lake, TODAY)
    assert (again["archive"], again["compact"], again["expire"], again["vacuum"]) == (0, 0, 0, 0)
    assert _objects(lake) == objects
    assert lk.read(spark, lake, "ops.archive_manifest").count() == len(manifest)

    # Restore: the archived days are back, row for row, in Spark and in Trino.
    done = restore(spark, lake, COLD[0], COLD[-1])
    assert len(done["restored"]) == 2 * len(COLD)
    try:
        for name, target in (
            ("bronze.events", "restored.bronze_events"),
            ("silver.events", "restored.silver_events"),
        ):
            for day in COLD:
                assert _day_rows(spark, lake, target, day) == originals[(name, day)]
        layer, tname = "restored", "bronze_events"
        _cols, rows = query(
            lake,
            f"SELECT event_id, cost_micros FROM {lake.trino_catalog}.{layer}.{tname} "
            "WHERE event_date = ? ORDER BY event_id",
            [COLD[0]],
        )
        want = sorted((r[0], r[5]) for r in originals[("bronze.events", COLD[0])])
        assert [tuple(r) for r in rows] == want
        assert {d: w for d, w in lifecycle_days(spark, lake, "bronze.events").items() if w != "lake"} == {
            d: "archive+restored" for d in COLD
        }
    finally:  # the shared Trino must not keep pointing at this test's private lake
        for t in ("bronze_events", "bronze_rejects", "silver_events"):
            if _registered(lake, t):
                query(lake, f"CALL {lake.trino_catalog}.system.unregister_table('restored', '{t}')")

    # Restored days expire again by policy; the archive keeps them.
    later = datetime.now(UTC).date() + timedelta(days=lake.retention_restored_days)
    keep_all = {layer: {"hot_days": 2, "warm_days": 4000} for layer in ("bronze", "silver")}
    expired = run_retention(spark, lake.model_copy(update={"retention_overrides": keep_all}), later)
    assert expired["expire_restored"] == 2 * len(COLD)
    assert set(lk.partition_files(spark, lake, "restored.bronze_events")) == set()
    assert _objects(lake) == objects


def _registered(settings: Settings, name: str) -> bool:
    from serving.trino_client import query

    _, rows = query(
        settings,
        f"SELECT count(*) FROM {settings.trino_catalog}.information_schema.tables "
        "WHERE table_schema = 'restored' AND table_name = ?",
        [name],
    )
    return bool(rows[0][0])


def test_interrupted_runs_lose_nothing_and_the_next_run_finishes(spark, lake: Settings, monkeypatch) -> None:
    from batch_layer import archive
    from batch_layer import lake as lk
    from batch_layer.lifecycle import run_retention

    originals = _fill(spark, lake, ["u1", "u2"])
    bronze = {"bronze.events": {"hot_days": 2, "warm_days": 4}}
    only_bronze = lake.model_copy(update={"retention_overrides": {**bronze, "silver": {"warm_days": None}}})

    # Killed after the uploads, before the storage-class move and the manifest commit.
    def killed(*_a, **_k):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(archive, "set_storage_class", killed)
    with pytest.raises(KeyboardInterrupt):
        run_retention(spark, only_bronze, TODAY, tables=["bronze.events"])
    monkeypatch.undo()
    orphans = set(_objects(lake))
    assert orphans  # uploaded, never named by a manifest row
    assert lk.read_if_exists(spark, lake, "ops.archive_manifest") is None
    assert set(lk.partition_files(spark, lake, "bronze.events")) == set(DAYS)  # nothing deleted

    # Killed after the manifest commit of the first day, before its delete from the lake.
    real_delete = lk.delete_partition
    monkeypatch.setattr(archive.lake, "delete_partition", killed)
    with pytest.raises(KeyboardInterrupt):
        run_retention(spark, only_bronze, TODAY, tables=["bronze.events"])
    monkeypatch.setattr(archive.lake, "delete_partition", real_delete)
    assert set(lk.partition_files(spark, lake, "bronze.events")) == set(DAYS)
    assert lk.read(spark, lake, "ops.archive_manifest").select("day").distinct().count() == 1

    finished = run_retention(spark, only_bronze, TODAY, tables=["bronze.events"])
    assert finished["archive"] == len(COLD)
    manifest = lk.read(spark, lake, "ops.archive_manifest").collect()
    assert set(_objects(lake)) == {m.object_key for m in manifest}  # orphans gone, nothing else
    assert not orphans & {m.object_key for m in manifest}
    for day in COLD:
        assert sum(m.rows for m in manifest if m.day == day) == len(originals[("bronze.events", day)])
    assert set(lk.partition_files(spark, lake, "bronze.events")) == set(DAYS) - set(COLD)
    assert set(lk.partition_files(spark, lake, "silver.events")) == set(DAYS)  # not managed by this run


def test_legal_holds_keep_days_and_speed_expires_behind_the_watermark(spark, lake: Settings) -> None:
    import pyspark.sql.types as T

    from adclick.privacy import hash_key, pseudonymise
    from batch_layer import lake as lk
    from batch_layer.lifecycle import active_holds, add_hold, release_hold, run_retention
    from batch_layer.ops import advance_watermark

    held_user = pseudonymise(hash_key(lake), "held-user", domain="user")
    for day in DAYS:
        users = ["a", "b", held_user] if day == COLD[1] else ["a", "b"]
        _write_day(spark, lake, "bronze.events", day, 60, users)
    speed = T.StructType([T.StructField("window_date", T.DateType()), T.StructField("clicks", T.LongType())])
    lk.append_rows(
        spark, lake, "speed.ad_clicks_minute", [{"window_date": d, "clicks": 1} for d in DAYS], speed
    )
    for day in DAYS[:-2]:  # the batch made every day final up to age 3
        advance_watermark(spark, lake, day, "test")
    by_dates = add_hold(spark, lake, reason="case 17", by="legal", date_from=COLD[0], date_to=COLD[0])
    by_user = add_hold(spark, lake, reason="case 18", by="legal", user_key=held_user)
    assert {h.hold_id for h in active_holds(spark, lake)} == {by_dates.hold_id, by_user.hold_id}
    short = lake.model_copy(update={"retention_overrides": {**POLICY, "speed": {"hot_days": 2}}})

    result = run_retention(spark, short, TODAY, tables=["bronze.events", "speed.ad_clicks_minute"])
    # bronze: the held-dates day and the held user's day stay; speed: the held-dates day stays
    assert (result["archive"], result["skip_held"]) == (len(COLD) - 2, 3)
    assert set(lk.partition_files(spark, lake, "bronze.events")) == set(DAYS)  # both cold days held
    skips = lk.read(spark, lake, "ops.lifecycle_log").where("action = 'skip_held'").collect()
    assert sorted((s.table, s.day, s.detail.split(": ")[-1]) for s in skips) == [
        ("bronze.events", COLD[0], by_dates.hold_id),
        ("bronze.events", COLD[1], by_user.hold_id),
        ("speed.ad_clicks_minute", COLD[0], by_dates.hold_id),
    ]
    # Speed: days the watermark passed and older than hot_days expire; later days stay.
    expected_speed = {d for d in DAYS if d > DAYS[-3]} | {COLD[0]}
    assert set(lk.partition_files(spark, lake, "speed.ad_clicks_minute")) == expected_speed

    release_hold(spark, lake, by_user.hold_id, by="legal", reason="case closed")
    after = run_retention(spark, short, TODAY, tables=["bronze.events"])
    assert (after["archive"], after["skip_held"]) == (1, 1)
    assert set(lk.partition_files(spark, lake, "bronze.events")) == set(DAYS) - {COLD[1]}


def test_retention_dag_runs_through_airflow(stack: Settings, spark) -> None:
    """The `retention` DAG as the Airflow UI's trigger runs it (here `airflow dags test` with the
    `dry_run` param): its spark-submit runs the retention job, which plans and changes nothing."""
    import time

    from batch_layer import lake as lk
    from infra.airflow_service import airflow_cli, airflow_dir

    deadline = time.monotonic() + 240
    while airflow_cli(stack, "dags", "details", "retention", timeout=120).returncode != 0:
        assert time.monotonic() < deadline, "the retention DAG is not registered in Airflow"
        time.sleep(5)
    before = lk.version(spark, stack, "ops.lifecycle_log")
    started = time.time()
    tested = airflow_cli(stack, "dags", "test", "retention", "-c", '{"dry_run": true}', timeout=900)
    logs = "\n".join(
        p.read_text(errors="replace")
        for p in (airflow_dir(stack) / "logs" / "dag_id=retention").rglob("*.log")
        if p.stat().st_mtime >= started
    )
    output = tested.stdout + tested.stderr + logs
    assert tested.returncode == 0, output[-6000:]
    assert "(dry run)" in output and '"dry_run": true' in output, output[-6000:]
    assert lk.version(spark, stack, "ops.lifecycle_log") == before  # a dry run records nothing
