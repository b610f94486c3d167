"""The lifecycle benchmark's projection to 1B events a day and its storage bill (pure arithmetic),
and the lz4 batching of its Kafka figure."""

from __future__ import annotations

import lz4.frame
import pytest

from bench.lifecycle_archive import PRICES_USD_PER_GB_MONTH, lz4_bytes, projection

PER_EVENT = {"kafka": 500.0, "hot": 250.0, "warm": 100.0, "cold": 80.0}


def exact(value: float) -> object:
    return pytest.approx(value, rel=1e-12, abs=1e-9)


def test_bytes_per_event_at_1b_a_day_are_gb_per_day() -> None:
    p = projection(PER_EVENT)
    assert p["events_per_day"] == 1_000_000_000
    assert p["gb_per_day"] == {"kafka": 500.0, "hot": 250.0, "warm": 100.0, "cold": 80.0}
    assert p["kafka_retained_gb"] == exact(4_000)  # 500 GB/day x 8 days x 1 replica
    assert p["warm_tb_per_year"] == exact(36.5)  # 100 GB x 365 / 1000
    assert p["cold_tb_per_year"] == exact(29.2)  # 80 GB x 365 / 1000
    assert p["cold_tb_all_years"] == exact(292)  # 80 GB x 3650 days / 1000


def test_the_monthly_bill_of_ten_years() -> None:
    p = projection(PER_EVENT)
    # All 3650 days archived: 292,000 GB per month at each class's price.
    assert p["monthly_usd_all_years_cold"] == {
        "STANDARD": exact(6_716.0),  # 292,000 x 0.023
        "GLACIER": exact(1_051.2),  # 292,000 x 0.0036
        "DEEP_ARCHIVE": exact(289.08),  # 292,000 x 0.00099
    }
    # The lifecycle at the end of year 10: the lake holds 30 hot days and 335 warm days,
    # the other 3285 days are cold.
    assert p["lake_gb"] == exact(41_000)  # 30 x 250 + 335 x 100
    assert p["cold_gb_at_end"] == exact(262_800)  # 3285 x 80
    assert p["monthly_usd_at_end"] == {
        "lake_standard": exact(943.0),  # 41,000 x 0.023
        "cold_glacier": exact(946.08),  # 262,800 x 0.0036
        "total": exact(1_889.08),
    }


def test_replication_volume_and_class_are_inputs() -> None:
    p = projection(
        {"kafka": 150.0, "hot": 150.0, "warm": 150.0, "cold": 150.0},
        events_per_day=2_000_000_000,
        replication=3,
        kafka_retention_days=7,
        hot_days=10,
        warm_days=100,
        years=2,
        cold_class="DEEP_ARCHIVE",
    )
    assert p["gb_per_day"] == {"kafka": 900.0, "hot": 300.0, "warm": 300.0, "cold": 300.0}
    assert p["kafka_retained_gb"] == exact(6_300)  # 900 x 7
    assert p["cold_tb_all_years"] == exact(219)  # 300 x 730 / 1000
    assert p["lake_gb"] == exact(30_000)  # 100 days x 300
    assert p["cold_gb_at_end"] == exact(189_000)  # (730 - 100) x 300
    assert p["monthly_usd_at_end"] == {
        "lake_standard": exact(690.0),  # 30,000 x 0.023
        "cold_deep_archive": exact(187.11),  # 189,000 x 0.00099
        "total": exact(877.11),
    }


def test_prices_are_the_list_prices_quoted_in_the_docs() -> None:
    assert PRICES_USD_PER_GB_MONTH == {"STANDARD": 0.023, "GLACIER": 0.0036, "DEEP_ARCHIVE": 0.00099}


def test_lz4_batches_close_per_partition_at_the_batch_size() -> None:
    a, b = b"a" * 10, b"b" * 10
    records = [(0, a), (1, b), (0, a), (0, a), (1, b)]
    # Partition 0: [a, a] closes at 20 bytes, then [a] is left open; partition 1: [b, b] open.
    expected = sum(len(lz4.frame.compress(x)) for x in (a + a, a, b + b))
    assert lz4_bytes(records, 20) == expected
    assert lz4_bytes([], 20) == 0
