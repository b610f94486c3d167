"""Query API, ``/v1/reports``: JSON, CSV and Parquet of the same rows, truncation, k-anonymity.

Over :class:`query_api_fakes.FakeExecutor`: the SQL the report sends (and binds), what it shows.
"""

from __future__ import annotations

import csv
import io
from datetime import date

import pyarrow.parquet as pq
from query_api_fakes import FakeExecutor, TestClient

from query_api.formats import PARQUET_CHUNK, ROWS_PER_CHUNK, iter_bytes, iter_csv
from query_api.queries import K_USERS_COLUMN

# --- reports -----------------------------------------------------------------------------------------

REPORT_COLUMNS = ("day", "ad_id", "clicks", "ctr", "is_final")
REPORT_ROWS = [
    (date(2026, 1, 8), "a,1", 10, 0.25, True),
    (date(2026, 1, 9), 'b"2', 0, None, False),
]
EXPECTED_RECORDS = [
    {"day": "2026-01-08", "ad_id": "a,1", "clicks": 10, "ctr": 0.25, "is_final": True},
    {"day": "2026-01-09", "ad_id": 'b"2', "clicks": 0, "ctr": None, "is_final": False},
]


def test_report_json_reads_the_daily_view_and_returns_records(client: TestClient, fake: FakeExecutor) -> None:
    fake.answer("serving.ad_clicks_daily", REPORT_COLUMNS, REPORT_ROWS)
    r = client.get(
        "/v1/reports",
        params={"dimensions": "day,ad_id", "metrics": "clicks,ctr", "from": "2026-01-08", "to": "2026-01-10"},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["columns"] == list(REPORT_COLUMNS)
    assert body["rows"] == EXPECTED_RECORDS
    assert body["k_anonymity"] is None and body["truncated"] is False
    assert (body["from"], body["to"]) == ("2026-01-08", "2026-01-10")
    assert "x-k-anonymity-k" not in r.headers
    sql, params = fake.calls[-1]
    assert sql.startswith(
        "SELECT day, ad_id, sum(clicks) AS clicks, "
        "CAST(sum(clicks) AS double) / nullif(sum(impressions), 0) AS ctr, bool_and(is_final) AS is_final "
        "FROM delta.serving.ad_clicks_daily WHERE day >= ? AND day < ? GROUP BY 1, 2 ORDER BY 1, 2 LIMIT ?"
    )
    assert params == [date(2026, 1, 8), date(2026, 1, 10), 10_001]


def test_report_csv_parses_back_to_the_same_rows(client: TestClient, fake: FakeExecutor) -> None:
    fake.answer("serving.ad_clicks_daily", REPORT_COLUMNS, REPORT_ROWS)
    r = client.get(
        "/v1/reports", params={"dimensions": "day,ad_id", "metrics": "clicks,ctr", "format": "csv"}
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows == [
        {"day": "2026-01-08", "ad_id": "a,1", "clicks": "10", "ctr": "0.25", "is_final": "true"},
        {"day": "2026-01-09", "ad_id": 'b"2', "clicks": "0", "ctr": "", "is_final": "false"},
    ]


def test_report_parquet_parses_back_to_the_same_rows(client: TestClient, fake: FakeExecutor) -> None:
    fake.answer("serving.ad_clicks_daily", REPORT_COLUMNS, REPORT_ROWS)
    r = client.get(
        "/v1/reports", params={"dimensions": "day,ad_id", "metrics": "clicks,ctr", "format": "parquet"}
    )
    assert r.status_code == 200
    table = pq.read_table(io.BytesIO(r.content))
    assert table.column_names == list(REPORT_COLUMNS)
    assert table.to_pylist() == [dict(zip(REPORT_COLUMNS, row, strict=True)) for row in REPORT_ROWS]


def test_report_says_when_it_was_truncated(client: TestClient, fake: FakeExecutor) -> None:
    fake.answer(
        "serving.ad_clicks_daily",
        ("day", "clicks", "is_final"),
        [(date(2026, 1, d), d, True) for d in (1, 2, 3)],
    )
    r = client.get("/v1/reports", params={"limit": 2})
    assert r.headers["x-truncated"] == "true"
    assert [row["clicks"] for row in r.json()["rows"]] == [1, 2]
    assert fake.calls[-1][1][-1] == 3  # asks for one row more than it returns


def test_demographic_report_hides_groups_under_k(client: TestClient, fake: FakeExecutor) -> None:
    fake.answer(
        "serving.audience_daily",
        ("age_group", "clicks", "is_final", K_USERS_COLUMN),
        [("18-24", 40, True, 12), ("25-34", 3, True, 4), ("35-44", 9, True, 5), ("unknown", 1, True, None)],
    )
    r = client.get("/v1/reports", params={"dimensions": "age_group", "metrics": "clicks", "region": "eu"})
    assert r.status_code == 200
    body = r.json()
    assert body["columns"] == ["age_group", "clicks", "is_final"]  # the users column is not shown
    assert [row["age_group"] for row in body["rows"]] == ["18-24", "35-44"]  # 5 users is enough for k=5
    assert body["k_anonymity"] == {"k": 5, "suppressed_rows": 2}
    assert (r.headers["x-k-anonymity-k"], r.headers["x-k-anonymity-suppressed"]) == ("5", "2")
    sql, params = fake.calls[-1]
    assert f"max(unique_users) AS {K_USERS_COLUMN} FROM delta.serving.audience_daily" in sql
    assert "AND region = ?" in sql and "eu" in params

    csv_r = client.get(
        "/v1/reports", params={"dimensions": "age_group", "metrics": "clicks", "format": "csv"}
    )
    assert [row["age_group"] for row in csv.DictReader(io.StringIO(csv_r.text))] == ["18-24", "35-44"]
    assert csv_r.headers["x-k-anonymity-suppressed"] == "2"


def test_a_segment_filter_alone_makes_a_report_demographic(client: TestClient, fake: FakeExecutor) -> None:
    fake.answer(
        "serving.audience_daily",
        ("day", "clicks", "is_final", K_USERS_COLUMN),
        [(date(2026, 1, 9), 2, True, 1)],
    )
    r = client.get("/v1/reports", params={"segment": "gamers"})
    assert r.json()["rows"] == []
    assert r.json()["k_anonymity"] == {"k": 5, "suppressed_rows": 1}


def test_csv_and_json_stream_rows_in_chunks_that_join_to_the_whole(
    client: TestClient, fake: FakeExecutor
) -> None:
    rows = [(date(2026, 1, 1 + i % 9), f"ad-{i}", i, True) for i in range(2 * ROWS_PER_CHUNK + 5)]
    fake.answer("serving.ad_clicks_daily", ("day", "ad_id", "clicks", "is_final"), rows)
    r = client.get("/v1/reports", params={"dimensions": "day,ad_id", "limit": len(rows)})
    assert r.json()["row_count"] == len(rows)
    assert [row["clicks"] for row in r.json()["rows"]] == list(range(len(rows)))
    csv_r = client.get("/v1/reports", params={"dimensions": "day,ad_id", "limit": len(rows), "format": "csv"})
    parsed = list(csv.DictReader(io.StringIO(csv_r.text)))
    assert [int(row["clicks"]) for row in parsed] == list(range(len(rows)))
    assert parsed[-1] == {
        "day": "2026-01-07",
        "ad_id": f"ad-{len(rows) - 1}",
        "clicks": "2004",
        "is_final": "true",
    }
    # the chunks themselves: a header line and ROWS_PER_CHUNK rows each, the rest last
    chunks = list(iter_csv(("clicks",), [(i,) for i in range(2 * ROWS_PER_CHUNK + 5)]))
    assert [c.count(b"\n") for c in chunks] == [ROWS_PER_CHUNK + 1, ROWS_PER_CHUNK, 5]
    assert b"".join(iter_bytes(b"x" * (PARQUET_CHUNK + 1))) == b"x" * (PARQUET_CHUNK + 1)
