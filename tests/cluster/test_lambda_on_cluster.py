"""The whole lambda path on the cluster profile: the final counts equal the generator's truth.

Two days of generated traffic with client retries (the same ``event_id`` sent again) and late
events go through an ingestion API of its own to the three brokers; the stream's bronze and speed
queries run on the standalone Spark cluster and write Delta tables on the S3 store
(``s3a://adclick-lake/...`` through hadoop-aws); the daily batch runs both days there; Trino's
Delta catalog reads the same tables through its native S3 file system, and
``serving.ad_clicks_daily`` per ad and day equals the truth, final (from gold).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flow_checks import truth_counts

from adclick.contract import now_utc
from adclick.settings import Settings
from bench.load import ingest_api_process

pytestmark = pytest.mark.cluster


def _serving_counts(settings: Settings, days: list[str]) -> tuple[dict[tuple[str, str, str], int], set]:
    from serving.trino_client import query

    _, rows = query(
        settings,
        f"SELECT ad_id, CAST(day AS varchar), sum(clicks + fraud_clicks), sum(impressions), "
        f"sum(conversions), bool_and(is_final) FROM {settings.trino_catalog}.serving.ad_clicks_daily "
        "WHERE day BETWEEN CAST(? AS date) AND CAST(? AS date) GROUP BY 1, 2",
        [days[0], days[-1]],
    )
    got = {}
    for ad, day, clicks, impressions, conversions, _final in rows:
        for kind, n in (("click", clicks), ("impression", impressions), ("conversion", conversions)):
            if n:
                got[(kind, ad, day)] = n
    return got, {r[5] for r in rows}


def test_the_lambda_path_on_the_cluster_profile_equals_the_truth(
    cluster: Settings, private: Settings, cluster_spark
) -> None:
    from adclick import dims
    from adclick.catalog import table
    from batch_layer.ops import batch_watermark
    from batch_layer.pipeline import run_step
    from serving.registry import register_all
    from serving.views import apply_views
    from speed_layer import app
    from traffic.generator import GeneratorConfig, generate_timed
    from traffic.sinks import post_to_api
    from traffic.truth import Truth

    settings = private.model_copy(update={"lake_root": f"s3a://{cluster.lake_bucket}/{private.topic_events}"})
    assert settings.lake_bucket == "adclick-lake"
    first = now_utc().date() - timedelta(days=3)
    days = [first, first + timedelta(days=1)]
    truth = Truth()
    config = GeneratorConfig(
        start=datetime(first.year, first.month, first.day, tzinfo=UTC),
        duration=timedelta(days=2),
        clicks=400,
        late_fraction=0.05,
        duplicate_rate=0.03,
        seed=717,
    )
    with ingest_api_process(settings, 1) as (base, _pids):
        sent = post_to_api((event for _, event in generate_timed(config, truth)), url=base, batch_size=500)
    assert sent.rejected == 0 and sent.duplicates > 0  # the retried sends were answered "duplicate"
    assert truth.late_events > 0

    dims.load(cluster_spark, settings, ads=truth.ads, users=truth.users)
    app.run(settings, queries=("bronze", "speed"), available_now=True, log=lambda _: None)
    bronze = cluster_spark.read.format("delta").load(table("bronze.events").path(settings))
    assert bronze.count() == sent.accepted  # on S3, each accepted event once
    for day in days:
        run_step(cluster_spark, settings, "day", day, log=lambda _: None)
    assert batch_watermark(cluster_spark, settings) == days[-1]

    registered = register_all(settings)
    assert registered["gold.ad_clicks_daily"] == "registered"
    assert registered["bronze.events"] == "registered"
    assert "serving.ad_clicks_daily" in {
        v.removeprefix(f"{settings.trino_catalog}.") for v in apply_views(settings)
    }
    wanted = [d.isoformat() for d in days]
    got, finals = _serving_counts(settings, wanted)
    assert got == truth_counts(truth, wanted)
    assert finals == {True}  # both days at or before the batch watermark: from gold
