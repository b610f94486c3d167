"""Query API ``/metrics``: requests by route and status, the latency histogram counting each
request once, Trino statements timed and their failures by reason, the cache's hits and misses,
WebSocket clients connected; no entry in the OpenAPI schema, one registry per app.

Over the fake executor and the hand-moved cache clock of ``query_api_fakes``.
"""

from __future__ import annotations

from metrics_support import Scrape
from query_api_fakes import NOW, FakeClock, FakeExecutor, TestClient

from adclick.settings import Settings
from query_api.app import create_app
from query_api.executor import QueryFailed, QueryUnavailable

P = "adclick_query_"
FUNNEL = "/v1/funnel?from=2026-01-01&to=2026-01-05"


def scrape(client: TestClient) -> Scrape:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


def test_requests_latency_statements_and_cache_move_by_what_was_asked(
    client: TestClient, fake: FakeExecutor
) -> None:
    before = scrape(client)
    assert client.get(FUNNEL).headers["x-cache"] == "miss"
    assert client.get(FUNNEL).headers["x-cache"] == "hit"
    assert client.get(FUNNEL).headers["x-cache"] == "hit"
    assert client.get("/v1/ads/ad-1/clicks?granularity=day").status_code == 200  # a miss
    assert client.get("/v1/ads/ad-2/clicks?granularity=day").status_code == 200  # a miss
    assert client.get("/v1/funnel?bogus=1").status_code == 400
    assert client.get("/v1/health").status_code == 200
    after = scrape(client)

    requests = P + "http_requests_total"
    assert after.moved(before, requests, route="/v1/funnel", method="GET", status="200") == 3
    assert after.moved(before, requests, route="/v1/funnel", method="GET", status="400") == 1
    assert after.moved(before, requests, route="/v1/ads/{ad_id}/clicks", method="GET", status="200") == 2
    assert after.moved(before, requests, route="/v1/health", method="GET", status="200") == 1
    latency = P + "http_request_duration_seconds_count"
    assert after.moved(before, latency, route="/v1/funnel", method="GET") == 4
    assert after.moved(before, latency, route="/v1/ads/{ad_id}/clicks", method="GET") == 2
    assert after.type_of(P + "http_request_duration_seconds") == "histogram"

    assert after.moved(before, P + "cache_hits_total") == 2
    assert after.moved(before, P + "cache_misses_total") == 3
    # a statement per miss; the watermark once for the cache (checked at most every 2 s) and once for health
    assert after.moved(before, P + "trino_statement_seconds_count", kind="query") == len(fake.calls) == 3
    assert (
        after.moved(before, P + "trino_statement_seconds_count", kind="watermark")
        == fake.watermark_calls
        == 2
    )
    assert after.value(P + "trino_statement_failures_total", kind="query", reason="failed") == 0
    assert after.value(P + "cache_hits_total") == client.get("/v1/health").json()["cache"]["hits"]


def test_trino_failures_are_counted_by_reason(
    client: TestClient, fake: FakeExecutor, mono: FakeClock
) -> None:
    client.get(FUNNEL)  # the cache has read the watermark; the next 2 s it does not ask again
    before = scrape(client)
    fake.fail = QueryUnavailable("Trino unreachable: refused")
    assert client.get("/v1/funnel?country=US").status_code == 503
    assert client.get("/v1/health").status_code == 503
    fake.fail = QueryFailed("line 1:1: mismatched input")
    assert client.get("/v1/funnel?country=DE").status_code == 500
    assert client.get("/v1/funnel?country=FR").status_code == 500
    fake.fail = None
    after = scrape(client)

    failures = P + "trino_statement_failures_total"
    assert after.moved(before, failures, kind="query", reason="unavailable") == 1
    assert after.moved(before, failures, kind="watermark", reason="unavailable") == 1
    assert after.moved(before, failures, kind="query", reason="failed") == 2
    assert after.moved(before, failures, kind="query", reason="error") == 0
    # failed statements are timed too
    assert after.moved(before, P + "trino_statement_seconds_count", kind="query") == 3
    requests = P + "http_requests_total"
    assert after.moved(before, requests, route="/v1/funnel", method="GET", status="503") == 1
    assert after.moved(before, requests, route="/v1/funnel", method="GET", status="500") == 2
    assert after.moved(before, requests, route="/v1/health", method="GET", status="503") == 1


def test_websocket_clients_are_counted_while_connected(client: TestClient, fake: FakeExecutor) -> None:
    gauge = P + "websocket_clients"
    assert scrape(client).value(gauge, route="/v1/live") == 0
    with (
        client.websocket_connect("/v1/live?minutes=5") as first,
        client.websocket_connect("/v1/live") as second,
    ):
        first.receive_text(), second.receive_text()
        assert scrape(client).value(gauge, route="/v1/live") == 2
    assert scrape(client).value(gauge, route="/v1/live") == 0
    # a socket refused for a bad parameter was accepted, then closed: back to 0 as well
    with client.websocket_connect("/v1/live?minutes=0") as ws:
        ws.receive_text()
    after = scrape(client)
    assert after.value(gauge, route="/v1/live") == 0
    assert after.type_of(gauge) == "gauge"
    assert not any(dict(labels).get("route") == "/v1/live" for name, labels in after.samples
                   if name.startswith(P + "http_"))  # fmt: skip


def test_metrics_is_not_in_the_schema_nor_counted_and_each_app_has_its_own(client: TestClient) -> None:
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]
    client.get(FUNNEL)
    for _ in range(3):
        scrape(client)
    after = scrape(client)
    assert not any(dict(labels).get("route") == "/metrics" for _, labels in after.samples)
    other = create_app(Settings(k_anonymity=5), FakeExecutor(), clock=lambda: NOW, monotonic=FakeClock())
    with TestClient(other) as second:
        fresh = scrape(second)
    assert fresh.value(P + "cache_misses_total") == 0
    assert fresh.value(P + "http_requests_total", route="/v1/funnel", method="GET", status="200") == 0
    assert after.value(P + "http_requests_total", route="/v1/funnel", method="GET", status="200") == 1
