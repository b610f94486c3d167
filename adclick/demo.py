"""``adclick demo``: the whole flow on this machine, narrated.

Stack up -> synthetic traffic (and the TalkingData replay when the file is present) through the
ingestion API -> Kafka -> the running stream application lands it in Delta bronze -> tables
registered in Trino -> a report printed from Trino -> the URLs of every UI. The stack is left
running for exploring; ``make down`` stops it.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from adclick.contract import now_utc
from adclick.settings import PROJECT_ROOT, Settings

TALKINGDATA = PROJECT_ROOT.parent / "shared" / "data" / "talkingdata_train_sample.csv"

REPORT = [
    (
        "Events landed in bronze, by type",
        "SELECT event_type, count(*) AS records, count(DISTINCT event_id) AS distinct_events "
        "FROM delta.bronze.events GROUP BY event_type ORDER BY records DESC",
    ),
    (
        "Top 10 ads by distinct clicks",
        "SELECT ad_id, count(DISTINCT event_id) AS clicks FROM delta.bronze.events "
        "WHERE event_type = 'click' GROUP BY ad_id ORDER BY clicks DESC, ad_id LIMIT 10",
    ),
    (
        "Distinct clicks by region",
        "SELECT region, count(DISTINCT event_id) AS clicks FROM delta.bronze.events "
        "WHERE event_type = 'click' GROUP BY region ORDER BY clicks DESC",
    ),
    (
        "Records rejected by the stream (with reason)",
        "SELECT reason, count(*) AS records FROM delta.bronze.rejects GROUP BY reason ORDER BY records DESC",
    ),
]


def _step(text: str) -> float:
    print(f"\n==> {text}", flush=True)
    return time.monotonic()


def _wait_for_stream(settings: Settings, timeout_s: float = 900) -> int | None:
    """Wait until the stream application has processed everything Kafka holds; show progress."""
    from speed_layer.heartbeat import lag

    deadline = time.monotonic() + timeout_s
    while True:
        behind = lag(settings)
        print(f"    stream lag: {'unknown' if behind is None else f'{behind:,} records'}", flush=True)
        if behind == 0 or time.monotonic() > deadline:
            return behind
        time.sleep(5)


def run(settings: Settings, *, clicks: int = 3000, seed: int = 7) -> None:
    from infra.services import all_services
    from infra.stack import print_urls, up
    from serving.registry import register_all
    from serving.trino_client import print_query
    from traffic.generator import GeneratorConfig, generate
    from traffic.replay import ReplayStats, replay_events
    from traffic.sinks import post_to_api
    from traffic.truth import Truth

    _step("starting the local stack (installs what is missing): Kafka, Trino, Airflow, S3 store, API, stream")
    up(settings)
    api = f"http://{settings.bind_host}:{settings.ingest_port}"

    now = now_utc()
    t = _step(f"sending synthetic traffic (~{clicks:,} clicks, seed {seed}) through the ingestion API {api}")
    truth = Truth()
    config = GeneratorConfig(
        start=now - timedelta(hours=3), duration=timedelta(hours=1), clicks=clicks, seed=seed
    )
    sent = post_to_api(generate(config, truth), url=api)
    print(
        f"    {sent.accepted:,} accepted, {sent.duplicates:,} answered 'duplicate' (client retries), "
        f"{sent.rejected:,} rejected; {truth.distinct.get('click', 0):,} distinct clicks, "
        f"{truth.late_events:,} late events, in {time.monotonic() - t:.1f}s"
    )

    if TALKINGDATA.exists():
        t = _step(f"replaying real clicks from {TALKINGDATA.name} through the API")
        stats = ReplayStats()
        replayed = post_to_api(replay_events(TALKINGDATA, end=now, stats=stats), url=api)
        print(
            f"    {stats.clicks:,} clicks and {stats.conversions:,} conversions read; {replayed.accepted:,} "
            f"accepted, {replayed.duplicates:,} duplicate, in {time.monotonic() - t:.1f}s"
        )
    else:
        print(f"\n(no {TALKINGDATA} here: skipping the real-data replay)")

    t = _step("waiting for the stream application to land everything in Delta bronze")
    _wait_for_stream(settings)
    print(f"    done in {time.monotonic() - t:.1f}s")

    _step("registering the lake tables in Trino")
    for name, state in register_all(settings).items():
        print(f"    {name}: {state}")

    for title, sql in REPORT:
        _step(f"report (Trino): {title}")
        print_query(settings, sql)

    _step("the stack is running; explore it, then `make down`")
    print_urls(settings, all_services(settings))
    print(f"    state in {Path(settings.home)}")
    print(
        "    try: .venv/bin/adclick query 'SELECT event_type, count(*) FROM delta.bronze.events GROUP BY 1'"
    )
