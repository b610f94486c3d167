"""``adclick demo``: the whole flow on this machine, narrated.

Stack up -> synthetic traffic from yesterday evening to now (and the TalkingData replay when the
file is present) through the ingestion API -> Kafka -> the running stream application lands it in
bronze and keeps the speed layer -> the daily_batch DAG recomputes yesterday (silver, quality
gates, gold, reconciliation, watermark, Trino registration) -> a report printed from Trino's
serving views (yesterday final, today real-time) -> the URLs of every UI. The stack is left
running for exploring; ``make down`` stops it.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from adclick.contract import now_utc
from adclick.settings import PROJECT_ROOT, Settings

TALKINGDATA = PROJECT_ROOT.parent / "shared" / "data" / "talkingdata_train_sample.csv"

REPORT = [
    (
        "Events landed in bronze, by type (records include client retries; events are distinct)",
        "SELECT event_type, count(*) AS records, count(DISTINCT event_id) AS events "
        "FROM delta.bronze.events GROUP BY event_type ORDER BY records DESC",
    ),
    (
        "Clicks per day: final (batch, exact) up to the watermark, real-time (speed) after it",
        "SELECT day, is_final, sum(clicks) AS clicks, sum(fraud_clicks) AS fraud_clicks, "
        "round(100.0 * sum(fraud_clicks) / nullif(sum(clicks) + sum(fraud_clicks), 0), 2) AS fraud_pct, "
        "round(100.0 * sum(clicks) / nullif(sum(impressions), 0), 3) AS ctr_pct "
        "FROM delta.serving.ad_clicks_daily GROUP BY day, is_final ORDER BY day",
    ),
    (
        "Top 10 ads by clicks (all days served)",
        "SELECT ad_id, sum(clicks) AS clicks, sum(impressions) AS impressions, "
        "round(100.0 * sum(clicks) / nullif(sum(impressions), 0), 3) AS ctr_pct "
        "FROM delta.serving.ad_clicks_daily GROUP BY ad_id ORDER BY clicks DESC, ad_id LIMIT 10",
    ),
    (
        "Clicks by country and device (top 12)",
        "SELECT country, device_type, sum(clicks) AS clicks, sum(fraud_clicks) AS fraud_clicks "
        "FROM delta.serving.ad_clicks_daily GROUP BY country, device_type ORDER BY clicks DESC LIMIT 12",
    ),
    (
        "Fraud reasons on the batch day (silver)",
        "SELECT reason, count(*) AS clicks FROM delta.silver.events "
        "CROSS JOIN UNNEST(fraud_reasons) AS r(reason) WHERE event_type = 'click' "
        "GROUP BY reason ORDER BY clicks DESC",
    ),
    (
        "Speed layer vs batch layer (reconciliation of the batch day)",
        "SELECT day, speed_total, gold_total, missed, late_dropped, late_counted, over_counted, "
        "fraud_reclassified, "
        "round(100 * total_drift, 2) AS total_drift_pct, round(100 * drift, 2) AS unexplained_pct, passed "
        "FROM delta.ops.reconciliation_summary ORDER BY checked_at DESC LIMIT 3",
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
    from adclick.stream_status import lag

    deadline = time.monotonic() + timeout_s
    while True:
        behind = lag(settings)
        print(f"    stream lag: {'unknown' if behind is None else f'{behind:,} records'}", flush=True)
        if behind == 0 or time.monotonic() > deadline:
            return behind
        time.sleep(5)


def _dims(settings: Settings, truth) -> None:
    """Load the generator's ads and user-profile dimensions (a real platform loads its own)."""
    from adclick import dims
    from adclick.spark import get_spark

    spark = get_spark("adclick-demo-dims", settings=settings)
    try:
        loaded = dims.load(spark, settings, ads=truth.ads, users=truth.users)
    finally:
        spark.stop()
    print(f"    {loaded['dims.ads']:,} ads, {loaded['dims.users']:,} user profiles")


def _airflow(settings: Settings, *args: str, extra_env: dict[str, str] | None = None) -> str:
    from infra.airflow_service import airflow_cli

    proc = airflow_cli(settings, *args, extra_env=extra_env)
    if proc.returncode != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    return proc.stdout


def _daily_batch(settings: Settings, day: date) -> None:
    """Run the daily_batch DAG for a closed day with `airflow dags test` (the run shows in the UI).

    A manual run of a daily DAG processes the last complete day before its logical date, so the
    run is dated the day after ``day``. The demo's day closed minutes ago, so its late-arrival
    grace period is set to zero for this run.
    """
    import threading

    from batch_layer.pipeline import in_turn
    from infra.airflow_service import airflow_json

    ready, why = in_turn(settings, day)
    if not ready:  # the run's sensor would wait for the missing days (docs/batch.md, "Backfill")
        raise RuntimeError(
            f"daily_batch cannot make {day} final yet: {why}. Backfill the days in between "
            "(`adclick airflow backfill create --dag-id daily_batch ...`) or start from an empty "
            "ADCLICK_HOME"
        )
    log = settings.path("logs", "demo-daily_batch.log")
    done = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        while not done.wait(20):
            print(f"    ... {time.monotonic() - started:.0f}s (Airflow's log: {log})", flush=True)

    # `dags test` runs the tasks in this process; on an unpaused DAG the scheduler would run the
    # same run's tasks too and the run would fail (docs/batch.md). Paused, the scheduler leaves it.
    _airflow(settings, "dags", "pause", "daily_batch")
    threading.Thread(target=tick, daemon=True).start()
    try:
        out = _airflow(
            settings,
            "dags", "test", "daily_batch", (day + timedelta(days=1)).isoformat(),
            extra_env={"ADCLICK_BATCH_GRACE_HOURS": "0"},
        )  # fmt: skip
    finally:
        done.set()
    log.write_text(out)
    runs = airflow_json(_airflow(settings, "dags", "list-runs", "daily_batch", "-o", "json"))
    run_id = max((r for r in runs if r["run_id"].startswith("manual__")), key=lambda r: r["run_id"])["run_id"]
    states = _airflow(settings, "tasks", "states-for-dag-run", "daily_batch", run_id, "-o", "json")
    tasks = airflow_json(states)
    for t in tasks:
        print(f"    {t['task_id']:<18} {t['state']}")
    failed = [t["task_id"] for t in tasks if t["state"] != "success"]
    if failed:
        raise RuntimeError(f"daily_batch for {day}: {', '.join(failed)} did not succeed; see {log}")


def run(settings: Settings, *, clicks: int = 3000, seed: int = 7) -> None:
    from infra.services import all_services
    from infra.stack import print_urls, up
    from serving.trino_client import print_query
    from traffic.generator import GeneratorConfig, generate
    from traffic.replay import ReplayStats, replay_events
    from traffic.sinks import post_to_api
    from traffic.truth import Truth

    _step(
        "starting the local stack (installs what is missing): Kafka, Trino, Airflow, S3 store, APIs, stream"
    )
    up(settings)
    api = f"http://{settings.bind_host}:{settings.ingest_port}"

    now = now_utc()
    today = now.date()
    yesterday = today - timedelta(days=1)
    start = datetime(yesterday.year, yesterday.month, yesterday.day, 21, tzinfo=UTC)
    t = _step(
        f"sending synthetic traffic (~{clicks:,} clicks, seed {seed}, {start:%Y-%m-%d %H:%M} to now) "
        f"through the ingestion API {api}"
    )
    truth = Truth()
    config = GeneratorConfig(
        start=start, duration=now - timedelta(minutes=2) - start, clicks=clicks, seed=seed
    )
    sent = post_to_api(generate(config, truth), url=api)
    print(
        f"    {sent.accepted:,} accepted, {sent.duplicates:,} answered 'duplicate' (client retries), "
        f"{sent.rejected:,} rejected; {truth.distinct.get('click', 0):,} distinct clicks, "
        f"{truth.late_events:,} late events, in {time.monotonic() - t:.1f}s"
    )
    _step("loading the ads and user-profile dimensions")
    _dims(settings, truth)

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

    t = _step("waiting for the stream application (bronze landing + speed layer) to catch up with Kafka")
    _wait_for_stream(settings)
    print(f"    done in {time.monotonic() - t:.1f}s")

    t = _step(
        f"running the daily_batch DAG for the closed day {yesterday} (silver, quality, gold, reconcile)"
    )
    _daily_batch(settings, yesterday)
    print(f"    done in {time.monotonic() - t:.1f}s")

    for title, sql in REPORT:
        _step(f"report (Trino): {title}")
        print_query(settings, sql)

    _step("the stack is running; explore it, then `make down`")
    print_urls(settings, all_services(settings))
    print(f"    state in {Path(settings.home)}")
    example = "SELECT * FROM delta.serving.ad_clicks_daily WHERE NOT is_final ORDER BY clicks DESC LIMIT 5"
    print(f'    try: .venv/bin/adclick query "{example}"')
