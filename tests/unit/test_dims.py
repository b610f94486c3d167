"""Dimension loading (MERGE upsert), reading before any load, and the stream's refresh cache."""

from __future__ import annotations

from adclick import dims
from adclick.settings import Settings


def _lake(tmp_path) -> Settings:
    return Settings(home=tmp_path)


def test_read_before_any_load_is_empty_and_typed(spark, tmp_path) -> None:
    ads, users = dims.read(spark, _lake(tmp_path))
    assert ads.count() == users.count() == 0
    assert dict(ads.dtypes) == {
        "ad_id": "string",
        "campaign_id": "string",
        "advertiser_id": "string",
        "cpc_micros": "bigint",
    }
    assert [c for c, _ in users.dtypes] == ["user_key", "age_group", "segment"]


def test_load_upserts_by_key_and_skips_null_keys(spark, tmp_path) -> None:
    settings = _lake(tmp_path)
    first = [
        {"ad_id": "a1", "campaign_id": "c1", "advertiser_id": "v1", "cpc_micros": 100},
        {"ad_id": "a2", "campaign_id": "c1", "advertiser_id": "v1", "cpc_micros": 200},
        {"ad_id": None, "campaign_id": "cx", "advertiser_id": "vx", "cpc_micros": 1},
    ]
    assert dims.load(spark, settings, ads=first) == {"dims.ads": 2, "dims.users": 0}
    moved = [{"ad_id": "a2", "campaign_id": "c9", "advertiser_id": "v9", "cpc_micros": 250}]
    dims.load(spark, settings, ads=moved, users=[{"user_key": "u1", "age_group": "25-34", "segment": "s"}])
    ads, users = dims.read(spark, settings)
    assert sorted(map(tuple, ads.collect())) == [("a1", "c1", "v1", 100), ("a2", "c9", "v9", 250)]
    assert [tuple(r) for r in users.collect()] == [("u1", "25-34", "s")]


def test_cache_rereads_only_after_the_interval_and_a_new_version(spark, tmp_path) -> None:
    settings = _lake(tmp_path)
    now = [0.0]
    cache = dims.DimsCache(settings, refresh_seconds=60, clock=lambda: now[0])
    dims.load(
        spark, settings, ads=[{"ad_id": "a1", "campaign_id": "c1", "advertiser_id": "v", "cpc_micros": 1}]
    )
    assert cache.get(spark)[0].count() == 1
    dims.load(
        spark, settings, ads=[{"ad_id": "a2", "campaign_id": "c2", "advertiser_id": "v", "cpc_micros": 2}]
    )
    now[0] = 30.0
    assert cache.get(spark)[0].count() == 1  # within the interval: the cached copy
    now[0] = 61.0
    assert cache.get(spark)[0].count() == 2  # version moved: re-read
