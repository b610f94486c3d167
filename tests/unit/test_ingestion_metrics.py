"""Ingestion API ``/metrics``: each counter moves by exactly what was sent (single and batch,
accepted, duplicate, rejected, spooled), the latency histograms count every request once, the
spool and Kafka gauges follow the state, and the endpoint needs no key, is never rate-limited and
stays out of the OpenAPI schema. Each app has its own registry.

No Kafka: the fake sink of ``ingestion_api_support`` (its ``fail`` flag plays Kafka down).
"""

from __future__ import annotations

from collections.abc import Callable

from ingestion_api_support import JSON, KEYS, NDJSON, Api, FakeSink, dumps, event
from metrics_support import Scrape

pytest_plugins = ("ingestion_api_fixtures",)

P = "adclick_ingest_"


def scrape(api: Api) -> Scrape:
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


def test_counters_move_by_exactly_the_events_sent(api: Api) -> None:
    before = scrape(api)
    # single events: 3 accepted, 2 of them sent again (duplicates), 1 refused by the contract
    singles = [event() for _ in range(3)]
    for body in [*singles, singles[0], singles[1]]:
        assert api.post("/v1/events", content=dumps(body), headers=JSON).status_code == 202
    bad = api.post("/v1/events", content=dumps(event(ad_id=...)), headers=JSON)
    assert bad.status_code == 400
    # one JSON batch: 4 new, 1 seen before, 1 repeated within the batch, 2 refused
    fresh = [event() for _ in range(4)]
    batch = [*fresh, singles[2], fresh[0], event(ts="yesterday"), event(event_type="hover")]
    response = api.post("/v1/events/batch", content=dumps(batch), headers=JSON)
    assert response.json()["accepted"] == 4 and response.json()["duplicates"] == 2
    assert len(response.json()["rejected"]) == 2
    # one NDJSON batch: 2 new, 1 unparseable line
    lines = [dumps(event()).decode(), "{not json", dumps(event()).decode()]
    response = api.post("/v1/events/batch", content="\n".join(lines).encode(), headers=NDJSON)
    assert response.json()["accepted"] == 2 and len(response.json()["rejected"]) == 1

    after = scrape(api)
    assert after.moved(before, P + "events_accepted_total") == 3 + 4 + 2
    assert after.moved(before, P + "events_duplicate_total") == 2 + 2
    assert after.moved(before, P + "events_rejected_total") == 1 + 2 + 1
    assert after.moved(before, P + "events_spooled_total") == 0
    assert after.moved(before, P + "unavailable_responses_total") == 0
    assert after.type_of(P + "events_accepted") == "counter"

    requests = P + "http_requests_total"
    assert after.moved(before, requests, route="/v1/events", method="POST", status="202") == 5
    assert after.moved(before, requests, route="/v1/events", method="POST", status="400") == 1
    assert after.moved(before, requests, route="/v1/events/batch", method="POST", status="202") == 2
    latency = P + "http_request_duration_seconds_count"
    assert after.moved(before, latency, route="/v1/events", method="POST") == 6
    assert after.moved(before, latency, route="/v1/events/batch", method="POST") == 2
    assert after.type_of(P + "http_request_duration_seconds") == "histogram"
    # every request fits the last finite bucket (1 s); the buckets start at 1 ms
    assert after.moved(before, P + "http_request_duration_seconds_bucket", route="/v1/events/batch",
                       method="POST", le="1.0") == 2  # fmt: skip
    assert after.has(
        P + "http_request_duration_seconds_bucket", route="/v1/events", method="POST", le="0.001"
    )
    # one Kafka delivery per request with fresh events (a request of duplicates only sends nothing)
    assert after.moved(before, P + "kafka_delivery_seconds_count", outcome="acked") == 3 + 1 + 1
    assert after.moved(before, P + "kafka_delivery_seconds_count", outcome="failed") == 0
    # the scrapes themselves are not counted
    assert not any(dict(labels).get("route") == "/metrics" for _, labels in after.samples)


def test_kafka_down_counts_spooled_events_and_the_spool_depth(api: Api, sink: FakeSink) -> None:
    before = scrape(api)
    assert before.value(P + "kafka_up") == 1 and before.value(P + "spool_events") == 0
    sink.fail = True
    api.post("/v1/events/batch", content=dumps([event() for _ in range(5)]), headers=JSON)
    api.post("/v1/events", content=dumps(event()), headers=JSON)  # straight to the spool: breaker open

    after = scrape(api)
    assert after.moved(before, P + "events_spooled_total") == 6
    assert after.moved(before, P + "events_accepted_total") == 6
    assert after.value(P + "spool_events") == 6
    assert after.value(P + "spool_bytes") == api.app.state.ingestor.spool.depth().bytes > 0
    assert after.value(P + "kafka_up") == 0
    # only the first request tried Kafka; it failed
    assert after.moved(before, P + "kafka_delivery_seconds_count", outcome="failed") == 1
    assert after.moved(before, P + "kafka_delivery_seconds_count", outcome="acked") == 0

    sink.fail = False
    api.app.state.ingestor.drainer.drain_once()
    drained = scrape(api)
    assert drained.value(P + "spool_events") == 0 and drained.value(P + "kafka_up") == 1


def test_spool_full_answers_count_as_unavailable(api_factory: Callable[..., Api], sink: FakeSink) -> None:
    api = api_factory(spool_max_bytes=2_000)
    sink.fail = True
    before = scrape(api)
    response = api.post("/v1/events/batch", content=dumps([event() for _ in range(20)]), headers=JSON)
    assert response.status_code == 503
    after = scrape(api)
    assert after.moved(before, P + "unavailable_responses_total") == 1
    assert after.moved(before, P + "events_accepted_total") == 0
    assert (
        after.moved(before, P + "http_requests_total", route="/v1/events/batch", method="POST", status="503")
        == 1
    )


def test_metrics_needs_no_key_is_not_rate_limited_and_not_in_openapi(api_factory: Callable[..., Api]) -> None:
    api = api_factory(**KEYS, rate_limit_per_ip=0.001, rate_limit_per_ip_burst=1)
    assert api.post("/v1/events", content=dumps(event()), headers=JSON).status_code == 401
    assert api.post("/v1/events", content=dumps(event()), headers=JSON).status_code == 429  # bucket empty
    for _ in range(5):
        scrape(api)
    after = scrape(api)
    requests = P + "http_requests_total"
    assert after.value(requests, route="/v1/events", method="POST", status="401") == 1
    assert after.value(requests, route="/v1/events", method="POST", status="429") == 1
    assert "/metrics" not in api.get("/openapi.json").json()["paths"]


def test_unknown_paths_share_one_label_and_redirect_tokens_are_not_labels(api: Api) -> None:
    before = scrape(api)
    for path in ("/nope", "/v1/nope/1", "/v1/nope/2"):
        assert api.get(path).status_code == 404
    assert api.get("/v1/c/not-a-token").status_code in (400, 404)
    after = scrape(api)
    requests = P + "http_requests_total"
    assert after.moved(before, requests, route="unmatched", method="GET", status="404") == 3
    assert (
        sum(
            after.moved(before, requests, route="/v1/c/{token}", method="GET", status=s)
            for s in ("400", "404")
        )
        == 1
    )
    assert not any("not-a-token" in str(key) for key in after.samples)


def test_two_apps_in_one_process_keep_their_own_series(api_factory: Callable[..., Api]) -> None:
    first, second = api_factory(), api_factory()
    first.post("/v1/events", content=dumps(event()), headers=JSON)
    assert scrape(first).value(P + "events_accepted_total") == 1
    assert scrape(second).value(P + "events_accepted_total") == 0
    assert scrape(second).value(P + "kafka_delivery_seconds_count", outcome="acked") == 0
    assert first.app.state.metrics is not second.app.state.metrics
