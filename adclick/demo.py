"""``adclick demo``: the whole flow on this machine, narrated.

Stack up -> synthetic traffic (and the TalkingData replay when the file is present) into Kafka ->
the stream application lands it in Delta bronze -> tables registered in Trino -> a report printed
from Trino -> the URLs of every UI. The stack is left running for exploring; ``make down`` stops it.
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


def run(settings: Settings, *, clicks: int = 3000, seed: int = 7) -> None:
    from infra.services import all_services
    from infra.stack import print_urls, up
    from serving.registry import register_all
    from serving.trino_client import print_query
    from speed_layer import app as stream_app
    from traffic.generator import GeneratorConfig, generate_timed
    from traffic.replay import ReplayStats, replay_events
    from traffic.sinks import send_to_kafka, with_clock
    from traffic.truth import Truth

    _step("starting the local stack (installs what is missing)")
    up(settings)

    now = now_utc()
    t = _step(f"generating synthetic traffic (~{clicks:,} clicks, seed {seed}) straight into Kafka")
    truth = Truth()
    config = GeneratorConfig(
        start=now - timedelta(hours=3), duration=timedelta(hours=1), clicks=clicks, seed=seed
    )
    result = send_to_kafka(generate_timed(config, truth), settings=settings)
    clicks_sent = truth.distinct.get("click", 0)
    print(
        f"    produced {result.produced:,} events ({clicks_sent:,} distinct clicks, "
        f"{truth.duplicate_sends:,} client retries, {truth.late_events:,} late) "
        f"in {time.monotonic() - t:.1f}s"
    )

    if TALKINGDATA.exists():
        t = _step(f"replaying real clicks from {TALKINGDATA.name}")
        stats = ReplayStats()
        replayed = send_to_kafka(
            with_clock(replay_events(TALKINGDATA, end=now, stats=stats), now), settings=settings
        )
        print(f"    produced {replayed.produced:,} events ({stats.clicks:,} clicks, {stats.conversions:,} "
              f"conversions) in {time.monotonic() - t:.1f}s")  # fmt: skip
    else:
        print(f"\n(no {TALKINGDATA} here: skipping the real-data replay)")

    t = _step("running the stream application until Kafka is drained (bronze landing)")
    stream_app.run(settings, available_now=True, log=lambda line: print("    " + line))
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
