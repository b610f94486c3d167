"""Ingestion API over ASGI: accepted requests, API keys and rate limits, the duplicate hint, hot
keys and the OpenAPI document.

No Kafka: the app gets a fake sink (``ingestion_api_support``) and a fixed clock; what the sink
received is checked record by record.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import orjson
from ingestion_api_support import (
    JSON,
    KEYS,
    NDJSON,
    NOW_MS,
    PEER,
    RAW_IP,
    RAW_USER,
    Api,
    Clock,
    FakeSink,
    dumps,
    event,
    good_token,
)

from adclick.privacy import LOCAL_DEV_KEY, pseudonymise

pytest_plugins = ("ingestion_api_fixtures",)


# --- accepted requests --------------------------------------------------------------------------


def test_single_event_is_accepted_pseudonymised_and_keyed_by_ad(api: Api, sink: FakeSink) -> None:
    body = event(country=None, x=10, extra_flag=True)
    response = api.post(
        "/v1/events", content=dumps(body), headers={**JSON, "CloudFront-Viewer-Country": "de"}
    )
    assert response.status_code == 202
    assert response.json() == {"event_id": body["event_id"], "status": "accepted"}
    assert len(sink.records) == 1
    key, value = sink.records[0]
    assert key == b"ad-00042"
    produced = orjson.loads(value)
    assert produced["country"] == "DE"  # from the CDN edge header
    assert produced["region"] == "eu"
    assert produced["user_key"] == pseudonymise(LOCAL_DEV_KEY, RAW_USER, domain="user")
    assert produced["ip_key"] == pseudonymise(LOCAL_DEV_KEY, RAW_IP, domain="ip")
    assert produced["received_at"] == NOW_MS
    assert produced["ts"] == NOW_MS - 60_000
    assert produced["attributes"] == {"extra_flag": "true"}
    assert RAW_USER.encode() not in value
    assert RAW_IP.encode() not in value


def test_event_country_wins_over_edge_header(api: Api, sink: FakeSink) -> None:
    api.post(
        "/v1/events", content=dumps(event(country="US")), headers={**JSON, "CloudFront-Viewer-Country": "DE"}
    )
    assert sink.values()[0]["country"] == "US"


def test_charset_parameter_and_gzip_are_accepted(api: Api, sink: FakeSink) -> None:
    headers = {"Content-Type": "application/json; charset=UTF-8", "Content-Encoding": "gzip"}
    response = api.post("/v1/events", content=gzip.compress(dumps(event())), headers=headers)
    assert response.status_code == 202, response.text
    assert len(sink.records) == 1


def test_batch_json_array_with_one_bad_event_keeps_the_neighbours(api: Api, sink: FakeSink) -> None:
    batch = [event(), event(ad_id=7), event(), {"nope": 1}, event(country="XX")]
    response = api.post("/v1/events/batch", content=dumps(batch), headers=JSON)
    assert response.status_code == 202
    assert response.json() == {
        "accepted": 2,
        "duplicates": 0,
        "rejected": [
            {"index": 1, "error": "ad_id: Input should be a valid string"},
            {"index": 3, "error": "event_id: is required"},
            {"index": 4, "error": "country: must be an ISO 3166-1 alpha-2 country code"},
        ],
    }
    assert [v["event_id"] for v in sink.values()] == [batch[0]["event_id"], batch[2]["event_id"]]


def test_ndjson_with_an_unparseable_line_is_partially_accepted(api: Api, sink: FakeSink) -> None:
    first, third = event(), event()
    body = dumps(first) + b"\n" + b'{"event_id": oops}\n' + dumps(third) + b"\n\n" + b"[1]\n"
    response = api.post("/v1/events/batch", content=body, headers=NDJSON)
    assert response.status_code == 202
    payload = response.json()
    assert payload["accepted"] == 2
    assert payload["rejected"] == [
        {
            "index": 1,
            "error": "body: invalid JSON (unexpected character, expected a JSON value at line 1 column 14)",
        },
        {"index": 4, "error": "event: must be a JSON object"},
    ]
    assert [v["event_id"] for v in sink.values()] == [first["event_id"], third["event_id"]]


def test_gzip_ndjson_batch(api: Api, sink: FakeSink) -> None:
    body = gzip.compress(b"\r\n".join(dumps(event()) for _ in range(20)))
    response = api.post("/v1/events/batch", content=body, headers={**NDJSON, "Content-Encoding": "gzip"})
    assert response.json() == {"accepted": 20, "duplicates": 0, "rejected": []}
    assert len(sink.records) == 20


def test_large_batch_is_sent_in_one_call(api_factory: Callable[..., Api], sink: FakeSink) -> None:
    api = api_factory(max_batch_events=10_000, max_body_bytes=5 << 20, max_decompressed_bytes=32 << 20)
    batch = [event(ad_id=f"ad-{i % 50}") for i in range(1000)]
    response = api.post("/v1/events/batch", content=dumps(batch), headers=JSON)
    assert response.json() == {"accepted": 1000, "duplicates": 0, "rejected": []}
    assert sink.calls == 1  # send all, then wait for all
    assert [v["event_id"] for v in sink.values()] == [e["event_id"] for e in batch]


def test_api_key_of_each_publisher_is_accepted(api_factory: Callable[..., Api], sink: FakeSink) -> None:
    api = api_factory(**KEYS)
    for key in ("key-a-0123456789", "key-b-9876543210"):
        response = api.post("/v1/events", content=dumps(event()), headers={**JSON, "X-Api-Key": key})
        assert response.status_code == 202
    assert len(sink.records) == 2


def test_rate_limit_counts_events_and_refills(
    api_factory: Callable[..., Api], sink: FakeSink, clock: Clock
) -> None:
    api = api_factory(rate_limit_per_ip=10.0, rate_limit_per_ip_burst=20)
    ok = api.post("/v1/events/batch", content=dumps([event() for _ in range(15)]), headers=JSON)
    assert ok.status_code == 202
    refused = api.post("/v1/events/batch", content=dumps([event() for _ in range(10)]), headers=JSON)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"  # 5 tokens missing at 10/s
    clock.t += 1.0
    again = api.post("/v1/events/batch", content=dumps([event() for _ in range(10)]), headers=JSON)
    assert again.status_code == 202
    assert len(sink.records) == 25


def test_rate_limit_is_per_client_ip(api_factory: Callable[..., Api], tmp_path: Path) -> None:
    first = api_factory(
        rate_limit_per_ip=1.0, rate_limit_per_ip_burst=1, home=tmp_path / "a", peer="192.0.2.1"
    )
    assert first.post("/v1/events", content=dumps(event()), headers=JSON).status_code == 202
    assert first.post("/v1/events", content=dumps(event()), headers=JSON).status_code == 429
    # Same app, another peer: its own bucket.
    other = Api(first.app, peer="192.0.2.2")
    try:
        assert other.post("/v1/events", content=dumps(event()), headers=JSON).status_code == 202
    finally:
        other.loop.run_until_complete(other.http.aclose())
        other.loop.close()


def test_forwarded_for_is_only_believed_from_trusted_proxies(
    api_factory: Callable[..., Api], tmp_path: Path, sink: FakeSink
) -> None:
    token = good_token()
    untrusted = api_factory(home=tmp_path / "u")
    untrusted.get(f"/v1/c/{token}", headers={"X-Forwarded-For": "192.0.2.50"})
    trusted = api_factory(home=tmp_path / "t", trusted_proxies=[PEER])
    trusted.get(f"/v1/c/{token}", headers={"X-Forwarded-For": "192.0.2.50, 10.9.9.9"})
    ip_keys = [v["ip_key"] for v in sink.values()]
    assert ip_keys == [
        pseudonymise(LOCAL_DEV_KEY, PEER, domain="ip"),
        pseudonymise(LOCAL_DEV_KEY, "10.9.9.9", domain="ip"),
    ]


# --- duplicate hint -----------------------------------------------------------------------------


def test_same_event_id_twice_is_a_duplicate_and_produced_once(api: Api, sink: FakeSink) -> None:
    body = dumps(event())
    first = api.post("/v1/events", content=body, headers=JSON)
    second = api.post("/v1/events", content=body, headers=JSON)
    assert first.json()["status"] == "accepted"
    assert second.json()["status"] == "duplicate"
    assert second.status_code == 202
    assert len(sink.records) == 1


def test_repeated_event_id_within_a_batch_and_across_batches(api: Api, sink: FakeSink) -> None:
    a, b = event(), event()
    response = api.post("/v1/events/batch", content=dumps([a, b, a, a]), headers=JSON)
    assert response.json() == {"accepted": 2, "duplicates": 2, "rejected": []}
    retry = api.post("/v1/events/batch", content=dumps([a, b, event()]), headers=JSON)
    assert retry.json() == {"accepted": 1, "duplicates": 2, "rejected": []}
    assert len(sink.records) == 3


def test_duplicate_hint_forgets_after_the_window(
    api_factory: Callable[..., Api], sink: FakeSink, clock: Clock
) -> None:
    api = api_factory(dedup_window_seconds=60)
    body = dumps(event())
    assert api.post("/v1/events", content=body, headers=JSON).json()["status"] == "accepted"
    clock.t += 59
    assert api.post("/v1/events", content=body, headers=JSON).json()["status"] == "duplicate"
    clock.t += 31 + 60  # beyond 1.5 windows: the filter holding it has been dropped
    # The event's ts must still be inside the accepted range for the new clock.
    assert api.post("/v1/events", content=body, headers=JSON).json()["status"] == "accepted"
    assert len(sink.records) == 2


def test_an_invalid_event_does_not_poison_its_id(api: Api, sink: FakeSink) -> None:
    body = event()
    bad = dict(body, country="XX")
    assert api.post("/v1/events", content=dumps(bad), headers=JSON).status_code == 400
    assert api.post("/v1/events", content=dumps(body), headers=JSON).json()["status"] == "accepted"


# --- hot keys through the app -------------------------------------------------------------------


def test_hot_ad_gets_salted_keys_and_cold_ad_keeps_its_id(
    api_factory: Callable[..., Api], sink: FakeSink
) -> None:
    api = api_factory(max_batch_events=2_000, max_body_bytes=2 << 20, max_decompressed_bytes=4 << 20)
    batch = [event(ad_id="ad-hot") if i % 2 else event(ad_id=f"ad-cold-{i % 100}") for i in range(1500)]
    api.post("/v1/events/batch", content=dumps(batch), headers=JSON)
    sink.records.clear()
    later = [event(ad_id="ad-hot") for _ in range(200)] + [event(ad_id="ad-cold-1")]
    api.post("/v1/events/batch", content=dumps(later), headers=JSON)
    hot_keys = {k for k, v in sink.records if orjson.loads(v)["ad_id"] == "ad-hot"}
    assert len(hot_keys) >= 4
    assert all(k.startswith(b"ad-hot#") and 0 <= int(k.split(b"#")[1]) < 8 for k in hot_keys)
    cold = [k for k, v in sink.records if orjson.loads(v)["ad_id"] == "ad-cold-1"]
    assert cold == [b"ad-cold-1"]


# --- docs ---------------------------------------------------------------------------------------


def test_openapi_describes_the_endpoints(api: Api) -> None:
    spec = api.get("/openapi.json").json()
    assert {"/v1/events", "/v1/events/batch", "/v1/health", "/v1/c/{token}"} <= set(spec["paths"])
    single = spec["paths"]["/v1/events"]["post"]
    assert single["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/IncomingEvent"
    }
    assert {"202", "400", "401", "413", "415", "429", "503"} <= set(single["responses"])
    batch = spec["paths"]["/v1/events/batch"]["post"]
    assert "application/x-ndjson" in batch["requestBody"]["content"]
    assert "event_id" in spec["components"]["schemas"]["IncomingEvent"]["required"]
    assert api.get("/docs").status_code == 200
