"""Property-based fuzzing of the ingestion API: no input ever produces a 5xx (with a working sink)."""

from __future__ import annotations

import asyncio
import gzip
import string
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adclick.settings import Settings
from ingestion.app import create_app
from ingestion.producer import SendResult

NOW_S = datetime(2025, 3, 1, 12, 0, tzinfo=UTC).timestamp()
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class WorkingSink:
    def __init__(self) -> None:
        self.count = 0

    def send_many(self, records: Any, timeout: float) -> list[SendResult]:
        self.count += len(records)
        return [None] * len(records)

    def reachable(self) -> bool:
        return True

    def close(self) -> None:
        pass


class Client:
    def __init__(self, home: Path, **overrides: Any) -> None:
        values: dict[str, Any] = {
            "env": "test",
            "home": home,
            "max_body_bytes": 64 * 1024,
            "max_decompressed_bytes": 256 * 1024,
            "max_batch_events": 50,
            "rate_limit_per_ip": 1e9,
            "rate_limit_per_ip_burst": 10**9,
            "spool_fsync": "never",
            "dedup_expected_rate": 100,
        }
        values.update(overrides)
        self.app = create_app(Settings(_env_file=None, **values), producer=WorkingSink(), clock=lambda: NOW_S)
        self.loop = asyncio.new_event_loop()
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, client=("192.0.2.10", 1234)), base_url="http://ingest"
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.http.request(method, path, **kwargs))

    def close(self) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.close()
        self.app.state.ingestor.close()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    c = Client(tmp_path_factory.mktemp("fuzz"))
    yield c
    c.close()


@pytest.fixture(scope="module")
def keyed_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    c = Client(tmp_path_factory.mktemp("fuzz-keys"), api_keys={"pub": "the-right-key"})
    yield c
    c.close()


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30,
)
FIELDS = [
    "event_id",
    "event_type",
    "ad_id",
    "ts",
    "campaign_id",
    "user_id",
    "ip",
    "country",
    "user_agent",
    "referrer",
    "page_url",
    "placement_id",
    "x",
    "y",
    "experiment_id",
    "variant",
    "click_id",
    "cost_micros",
    "revenue_micros",
]
plausible_values = (
    json_values
    | st.uuids().map(str)
    | st.sampled_from(["ad-1", "US", "click", "2025-03-01T11:59:00Z", "conversion", "1.2.3.4"])
    | st.integers(min_value=int(NOW_S * 1000) - 10**10, max_value=int(NOW_S * 1000) + 10**7)
)
event_like = st.fixed_dictionaries(
    {"event_id": st.uuids().map(str) | json_scalars, "ad_id": plausible_values, "ts": plausible_values},
    optional={name: plausible_values for name in FIELDS if name not in ("event_id", "ad_id", "ts")}
    | {"extra": json_values},
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/x-ndjson",
        "application/json; charset=utf-8",
        "application/json; charset=latin-1",
        "text/plain",
        "",
        "application/json;;;",
        "APPLICATION/JSON",
        "multipart/form-data; boundary=x",
    ]
)
header_text = st.text(alphabet=string.ascii_letters + string.digits + string.punctuation + " ", max_size=60)
header_names = st.sampled_from(
    [
        "Content-Type",
        "Content-Encoding",
        "Content-Length",
        "X-Api-Key",
        "X-Forwarded-For",
        "CloudFront-Viewer-Country",
        "Cookie",
        "User-Agent",
        "Referer",
        "Transfer-Encoding",
        "X-Anything",
    ]
)
ENDPOINTS = ["/v1/events", "/v1/events/batch"]


def assert_no_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code != 202:
        body = response.json()
        assert set(body) == {"error", "field", "reason"}


@FUZZ
@given(value=json_values, endpoint=st.sampled_from(ENDPOINTS))
def test_any_json_value(client: Client, value: Any, endpoint: str) -> None:
    body = orjson.dumps(value)
    assert_no_server_error(
        client.request("POST", endpoint, content=body, headers={"Content-Type": "application/json"})
    )


@FUZZ
@given(events=st.lists(event_like, min_size=1, max_size=8), ndjson=st.booleans(), zipped=st.booleans())
def test_event_like_batches(client: Client, events: list[dict[str, Any]], ndjson: bool, zipped: bool) -> None:
    if ndjson:
        body = b"\n".join(orjson.dumps(e) for e in events)
        headers = {"Content-Type": "application/x-ndjson"}
    else:
        body = orjson.dumps(events)
        headers = {"Content-Type": "application/json"}
    if zipped:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    response = client.request("POST", "/v1/events/batch", content=body, headers=headers)
    assert_no_server_error(response)
    if response.status_code == 202:
        result = response.json()
        assert result["accepted"] + result["duplicates"] + len(result["rejected"]) == len(events)


@FUZZ
@given(event=event_like)
def test_event_like_single(client: Client, event: dict[str, Any]) -> None:
    response = client.request(
        "POST", "/v1/events", content=orjson.dumps(event), headers={"Content-Type": "application/json"}
    )
    assert_no_server_error(response)


@FUZZ
@given(
    body=st.binary(max_size=2048),
    endpoint=st.sampled_from(ENDPOINTS),
    content_type=content_types,
    encoding=st.sampled_from([None, "gzip", "identity", "deflate", "GZIP"]),
)
def test_arbitrary_bytes(
    client: Client, body: bytes, endpoint: str, content_type: str, encoding: str | None
) -> None:
    headers = {"Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
    assert_no_server_error(client.request("POST", endpoint, content=body, headers=headers))


@FUZZ
@given(
    headers=st.dictionaries(
        header_names | header_text.filter(lambda s: s.isidentifier()), header_text, max_size=6
    ),
    endpoint=st.sampled_from(ENDPOINTS),
    body=st.sampled_from(
        [b"{}", b"[]", b"[{}]", orjson.dumps({"event_id": str(uuid.uuid4()), "ad_id": "a", "ts": 1})]
    ),
)
def test_arbitrary_headers(keyed_client: Client, headers: dict[str, str], endpoint: str, body: bytes) -> None:
    headers = {k: v.strip() for k, v in headers.items() if k.lower() != "transfer-encoding"}
    try:
        response = keyed_client.request("POST", endpoint, content=body, headers=headers)
    except httpx.LocalProtocolError:
        return  # the client itself refused to send it
    assert_no_server_error(response)
    if "X-Api-Key" not in headers or headers["X-Api-Key"] != "the-right-key":
        assert response.status_code in (401, 429)


@FUZZ
@given(token=st.text(max_size=300))
def test_arbitrary_redirect_tokens(client: Client, token: str) -> None:
    response = client.request("GET", "/v1/c/" + quote(token, safe=""), follow_redirects=False)
    assert response.status_code in (400, 404, 405), response.text
    assert "location" not in response.headers


def test_health_never_fails(client: Client) -> None:
    assert client.request("GET", "/v1/health").status_code == 200
