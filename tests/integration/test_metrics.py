"""Prometheus metrics on the running stack: the ingestion API's counters move by exactly the events
posted, the query API's ``/metrics`` parses, and the stream application's endpoint shows both
queries (bronze landing and the speed layer).

The counters are compared before and after, so the test assumes nothing else posts events to the
stack's ingestion API meanwhile (the integration tests run one at a time).
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adclick.contract import now_utc
from adclick.settings import Settings

pytestmark = pytest.mark.integration

STREAM_TIMEOUT_S = 180
P = "adclick_ingest_"


def _samples(url: str) -> dict[tuple[str, frozenset], float]:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _moved(after: dict, before: dict, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def _event(**overrides: object) -> dict:
    ts = (now_utc() - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    body = {"event_id": str(uuid.uuid4()), "ad_id": "ad-metrics-1", "ts": ts, "user_id": "metrics-user"}
    return {**body, **overrides}


def test_ingestion_counters_move_by_exactly_the_events_posted(stack: Settings) -> None:
    api = f"http://{stack.bind_host}:{stack.ingest_port}"
    before = _samples(f"{api}/metrics")
    singles = [_event() for _ in range(5)]
    with httpx.Client(base_url=api, timeout=30) as http:
        for event in [*singles, singles[0], singles[1]]:  # 5 accepted, 2 duplicates
            assert http.post("/v1/events", json=event).status_code == 202
        assert http.post("/v1/events", json=_event(event_type="hover")).status_code == 400  # 1 rejected
        batch = [_event(), _event(), _event(), singles[2], _event(ts="not a time")]
        response = http.post("/v1/events/batch", json=batch)
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 3 and response.json()["duplicates"] == 1
    after = _samples(f"{api}/metrics")

    assert _moved(after, before, P + "events_accepted_total") == 5 + 3
    assert _moved(after, before, P + "events_duplicate_total") == 2 + 1
    assert _moved(after, before, P + "events_rejected_total") == 1 + 1
    requests = P + "http_requests_total"
    assert _moved(after, before, requests, route="/v1/events", method="POST", status="202") == 7
    assert _moved(after, before, requests, route="/v1/events", method="POST", status="400") == 1
    assert _moved(after, before, requests, route="/v1/events/batch", method="POST", status="202") == 1
    latency = P + "http_request_duration_seconds_count"
    assert _moved(after, before, latency, route="/v1/events", method="POST") == 8
    assert _moved(after, before, latency, route="/v1/events/batch", method="POST") == 1
    # Kafka is up in the stack: each request with fresh events waited for its acks
    assert _moved(after, before, P + "kafka_delivery_seconds_count", outcome="acked") == 5 + 1
    assert after[(P + "kafka_up", frozenset())] == 1


def test_query_api_metrics_parse(stack: Settings) -> None:
    api = f"http://{stack.bind_host}:{stack.query_port}"
    httpx.get(f"{api}/v1/health", timeout=30)
    samples = _samples(f"{api}/metrics")
    labels = frozenset({"route": "/v1/health", "method": "GET"}.items())
    assert samples[("adclick_query_http_request_duration_seconds_count", labels)] >= 1
    assert ("adclick_query_cache_hits_total", frozenset()) in samples


def test_stream_metrics_show_the_bronze_and_speed_queries(stack: Settings) -> None:
    url = f"http://{stack.bind_host}:{stack.stream_metrics_port}/metrics"
    wanted = ("bronze_landing", "speed_minute")
    deadline = time.monotonic() + STREAM_TIMEOUT_S
    while True:  # the stream app may have just started: wait for a batch (and lag) of each query
        try:
            samples = _samples(url)
        except httpx.TransportError:
            samples = {}
        shown = {
            (name, dict(labels).get("query"))
            for name, labels in samples
            if name in ("adclick_stream_batch_id", "adclick_stream_kafka_records_behind")
        }
        if len(shown) == 2 * len(wanted) or time.monotonic() > deadline:
            break
        time.sleep(3)
    for query in wanted:
        key = frozenset({"query": query}.items())
        assert samples[("adclick_stream_query_active", key)] == 1
        assert samples[("adclick_stream_batch_id", key)] >= 0
        assert ("adclick_stream_processed_rows_per_second", key) in samples
        assert samples[("adclick_stream_kafka_records_behind", key)] >= 0
