"""A realistic half hour for the dashboard, on the query API's fakes (no Trino), and a real HTTP
server for a browser: the app under uvicorn in a thread, on a socket bound to a free port.

:func:`busy_half_hour` answers what each panel asks at the fakes' ``NOW`` (2026-01-10 12:00:30
UTC): clicks and fraud per minute for 11:31-12:00 with two minutes the stream saw nothing
(11:44, 11:45), the top ads of 11:55-12:00, clicks and CTR by country and device for the day, three
reconciled days, the batch jobs; :data:`STREAM` and :data:`AIRFLOW` are the probes' answers.
:func:`more_clicks` and :func:`quiet_window` change the answers as new clicks or a quiet spell
would. Numbers are seeded, so every run draws the same page.
"""

from __future__ import annotations

import contextlib
import math
import random
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from query_api_fakes import NOW, FakeExecutor, fake_probes, ts

from adclick.settings import Settings
from query_api.app import create_app

LIVE = "WHERE day >= ? AND window_start >= ?"  # the live WebSocket's statement
LIVE_COLUMNS = ("window_start", "impressions", "clicks", "fraud_clicks", "is_final")
TOP_COLUMNS = ("rank", "ad_id", "clicks")
QUIET_MINUTES = ("2026-01-10 11:44:00", "2026-01-10 11:45:00")
FALLBACK_MINUTE = ts("2026-01-10 11:52:00")  # before the 5-minute window
COUNTRIES = {"US": 0.31, "DE": 0.12, "GB": 0.1, "IN": 0.09, "FR": 0.08, "BR": 0.07, "JP": 0.06,
             "CA": 0.05, "ES": 0.04, "IT": 0.03, "unknown": 0.05}  # fmt: skip
DEVICES = {"mobile": 0.58, "desktop": 0.33, "tablet": 0.07, "unknown": 0.02}
STREAM = {
    "status": "ok",
    "error": None,
    "updated_at": NOW - timedelta(seconds=2),
    "age_seconds": 2.1,
    "queries": [
        {"query": "bronze_landing", "active": True, "batch_id": 18_342, "input_rows": 612,
         "rows_per_s": 3_480.0, "duration_ms": 176, "late_rows_dropped": 0, "lag": 0, "lag_error": None},
        {"query": "speed_minute", "active": True, "batch_id": 18_337, "input_rows": 598,
         "rows_per_s": 1_210.0, "duration_ms": 1_940, "late_rows_dropped": 14, "lag": 372, "lag_error": None},
    ],
}  # fmt: skip


def _run(state: str, after: str, dag_id: str) -> dict[str, Any]:
    return {"run_id": f"scheduled__{after}", "state": state, "run_type": "scheduled", "run_after": after,
            "logical_date": after, "start_date": after, "end_date": after if state != "running" else None,
            "dag_id": dag_id}  # fmt: skip


AIRFLOW = {
    "status": "ok",
    "url": "http://127.0.0.1:8080",
    "error": None,
    "dags": [
        {"dag_id": d, "is_paused": False, "runs": [_run(s, a, d)]}
        for d, s, a in (
            ("daily_batch", "success", "2026-01-10T02:00:00Z"),
            ("data_quality_report", "success", "2026-01-10T02:40:00Z"),
            ("fraud_model_training", "failed", "2026-01-10T01:00:00Z"),
            ("trino_catalog", "running", "2026-01-10T12:00:00Z"),
        )
    ]
    + [{"dag_id": "monthly_rollup", "is_paused": False, "runs": []}],
}


def _minutes(seed: int = 7) -> list[tuple[Any, ...]]:
    rng = random.Random(seed)
    rows = []
    for i in range(30):
        start = ts("2026-01-10 11:31:00") + timedelta(minutes=i)
        if start.isoformat()[:19].replace("T", " ") in QUIET_MINUTES:
            continue  # no row: the stream counted nothing in these minutes
        level = 150 + 45 * math.sin(i / 4.5) + rng.randint(-18, 18)
        clicks = int(level * (0.45 if i == 29 else 1))  # the current minute is still filling
        fraud = int(clicks * rng.uniform(0.02, 0.09))
        rows.append((start, clicks * 38 + rng.randint(0, 400), clicks, fraud, False))
    return rows


def _top(minute_clicks: int, seed: int) -> list[tuple[Any, ...]]:
    rng = random.Random(seed)
    ads = sorted(rng.sample(range(1, 400), 10))
    counts = sorted((max(1, int(minute_clicks * rng.uniform(0.01, 0.06))) for _ in ads), reverse=True)
    counts[4] = counts[3]  # a tie: both rank 4
    rows, rank = [], 0
    for i, (ad, clicks) in enumerate(zip(ads, counts, strict=True)):
        rank = rank if i and clicks == counts[i - 1] else i + 1
        rows.append((rank, f"ad-{ad:05d}", clicks))
    return rows


def _breakdown(shares: dict[str, float], total_clicks: int, seed: int) -> list[tuple[Any, ...]]:
    rng = random.Random(seed)
    rows = []
    for key, share in sorted(shares.items()):
        clicks = int(total_clicks * share)
        impressions = int(clicks / rng.uniform(0.012, 0.034))
        rows.append((key, clicks, impressions, clicks / impressions, False))
    return rows


def busy_half_hour() -> FakeExecutor:
    fake = FakeExecutor()
    fake.watermark_value = (date(2026, 1, 9), ts("2026-01-10 02:31:12"))
    minutes = _minutes()
    fake.answer(LIVE, LIVE_COLUMNS, minutes)
    fake.answer("rank()", TOP_COLUMNS, _top(sum(r[2] for r in minutes[-5:]), seed=3))
    fake.answer("max(window_start) AS minute", ("minute",), [(FALLBACK_MINUTE,)])
    fake.answer("rank()", TOP_COLUMNS, _top(160, seed=5), param=FALLBACK_MINUTE + timedelta(minutes=1))
    columns = ("clicks", "impressions", "ctr", "is_final")
    fake.answer("SELECT country,", ("country", *columns), _breakdown(COUNTRIES, 84_120, seed=11))
    fake.answer("SELECT device_type,", ("device_type", *columns), _breakdown(DEVICES, 84_120, seed=12))
    fake.answer(
        "serving.reconciliation_latest",
        ("day", "speed_total", "gold_total", "diff", "late_dropped", "late_counted", "duplicates",
         "fraud_reclassified", "unexplained", "drift", "passed", "checked_at"),
        [
            (date(2026, 1, 9), 201_877, 201_910, -33, 41, 12, 0, 8, 0, 0.0, True, ts("2026-01-10 02:30:55")),
            (date(2026, 1, 8), 198_402, 198_455, -53, 49, 9, 0, 4, 0, 0.0, True, ts("2026-01-09 02:31:40")),
            (date(2026, 1, 7), 204_118, 204_160, -42, 42, 17, 0, 0, 0, 0.0, True, ts("2026-01-08 02:30:21")),
        ],
    )  # fmt: skip
    fake.answer(
        "serving.job_runs_latest",
        ("job", "day", "started_at", "finished_at", "status", "rows_in", "rows_out", "message"),
        [
            (job, date(2026, 1, 9), ts(f"2026-01-10 02:{m:02d}:00"), ts(f"2026-01-10 02:{m + 4:02d}:10"),
             "succeeded", rows_in, rows_out, None)
            for job, m, rows_in, rows_out in (
                ("reconcile", 26, 201_910, 2_412), ("gold", 18, 6_204_511, 96_340),
                ("silver", 5, 6_251_880, 6_204_511),
            )
        ],
    )  # fmt: skip
    return fake


def more_clicks(fake: FakeExecutor, extra: int) -> int:
    """``extra`` more clicks land in the current minute (12:00); the new total of the half hour."""
    minutes = _minutes()
    start, impressions, clicks, fraud, final = minutes[-1]
    minutes[-1] = (start, impressions + extra * 30, clicks + extra, fraud, final)
    fake.answer(LIVE, LIVE_COLUMNS, minutes)
    return sum(r[2] for r in minutes)


def quiet_window(fake: FakeExecutor) -> None:
    """Nobody clicked in the last complete minutes: the window's ranking is empty."""
    fake.answer("rank()", TOP_COLUMNS, [], param=ts("2026-01-10 11:55:00"))


@contextlib.contextmanager
def serving(fake: FakeExecutor, settings: Settings | None = None) -> Iterator[str]:
    """The query API over ``fake`` under uvicorn in a thread; yields its base URL."""
    import uvicorn

    app = create_app(
        settings or Settings(),
        fake,
        clock=lambda: NOW,
        live_interval=0.2,
        probes=fake_probes(stream=STREAM, airflow=AIRFLOW),
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", ws="websockets-sansio", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the query API did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
