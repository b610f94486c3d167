"""Where generated or replayed events go: NDJSON files, Kafka directly, or the ingestion HTTP API.

* :func:`write_ndjson`: ``events.ndjson`` (one IncomingEvent body per line, in send order) and,
  for a generated run, ``truth.json``, ``ads.ndjson`` and ``users.ndjson`` in an output directory.
* :func:`send_to_kafka`: what the ingestion API would do, without it: validate each event against
  its own send clock, hash personal data (:func:`adclick.contract.to_event`) and produce the
  ``Event`` JSON to the events topic, key = ``ad_id``, ``acks=all``.
* :func:`post_to_api`: ``POST /v1/events/batch`` in batches of up to 1,000 (JSON array), retrying
  429/503 (honouring ``Retry-After``) and connection errors; the event ids make retries safe.

Every sink consumes its input lazily and shows its progress on stderr (:mod:`adclick.progress`: a
bar on a terminal, a rate/total line every few seconds otherwise).
"""

from __future__ import annotations

import email.utils
import gzip
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from adclick.contract import ContractError, to_event, validate_incoming
from adclick.progress import Progress  # re-exported: the commands and tests import it from here
from adclick.settings import Settings
from traffic.generator import to_ms
from traffic.truth import Truth

BATCH_PATH = "/v1/events/batch"
MAX_BATCH = 1_000
_KEPT_ERRORS = 100


class SinkError(RuntimeError):
    """A sink cannot deliver (Kafka unreachable, the API refusing a batch or out of retries)."""


# --- NDJSON files ---------------------------------------------------------------------------


def _write_lines(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    with path.open("wb") as out:
        for row in rows:
            out.write(orjson.dumps(row))
            out.write(b"\n")
            count += 1
    return count


def write_ndjson(
    events: Iterable[dict[str, Any]],
    out_dir: Path,
    *,
    truth: Truth | None = None,
    progress: Progress | None = None,
) -> int:
    """Write ``events.ndjson`` (and the truth and dimension files) into ``out_dir``; return the count.

    ``events.ndjson`` appears only once complete (written under a temporary name, then renamed).
    ``truth`` must be the one the generator fills, so it is read after the events are exhausted.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = progress or Progress("ndjson")
    target = out_dir / "events.ndjson"
    partial = out_dir / "events.ndjson.partial"

    def counted() -> Iterator[dict[str, Any]]:
        for event in events:
            progress.tick()
            yield event

    count = _write_lines(partial, counted())
    partial.replace(target)
    progress.done()
    if truth is not None:
        truth.write(out_dir / "truth.json")
        _write_lines(out_dir / "ads.ndjson", truth.ads)
        _write_lines(out_dir / "users.ndjson", truth.users)
    return count


# --- Kafka ------------------------------------------------------------------------------------


@dataclass
class KafkaResult:
    produced: int = 0  # acknowledged by the brokers
    invalid: int = 0  # failed the contract, not produced (the API would have answered 400)
    failed: int = 0  # produce errors
    errors: list[str] = field(default_factory=list)  # the first few, for the operator


def with_clock(events: Iterable[dict[str, Any]], now: datetime) -> Iterator[tuple[datetime, dict[str, Any]]]:
    """Pair every event with one fixed clock reference (e.g. the end of a replayed range)."""
    for event in events:
        yield now, event


def make_producer(settings: Settings, *, linger_ms: int = 20, compression_type: str = "gzip") -> Any:
    """A kafka-python producer for the events topic: ``acks=all`` so a sent event is durable."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    try:
        return KafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
            client_id="adclick-traffic",
            acks="all",
            linger_ms=linger_ms,
            compression_type=compression_type,
            retries=5,
        )
    except KafkaError as exc:
        raise SinkError(f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc!r}") from exc


def send_to_kafka(
    timed_events: Iterable[tuple[datetime, dict[str, Any]]],
    *,
    settings: Settings,
    key: bytes | None = None,
    producer: Any | None = None,
    edge_country: str | None = None,
    linger_ms: int = 20,
    compression_type: str = "gzip",
    progress: Progress | None = None,
) -> KafkaResult:
    """Validate, pseudonymise and produce ``(sent_at, event)`` pairs; flush and return the counts.

    ``sent_at`` is the clock each event is judged against (accepted event-time range) and its
    ``received_at``. ``key`` is the HMAC key (default: :func:`adclick.privacy.hash_key` of the
    settings). A given ``producer`` is flushed but not closed.
    """
    if key is None:
        from adclick.privacy import hash_key

        key = hash_key(settings)
    own = producer is None
    if producer is None:
        producer = make_producer(settings, linger_ms=linger_ms, compression_type=compression_type)
    progress = progress or Progress("kafka")
    result = KafkaResult()
    failures: list[BaseException] = []
    sent = 0
    try:
        for sent_at, obj in timed_events:
            progress.tick()
            try:
                incoming = validate_incoming(
                    obj,
                    now=sent_at,
                    late_horizon_days=settings.late_horizon_days,
                    future_skew_minutes=settings.future_skew_minutes,
                )
                event = to_event(incoming, key=key, received_at_ms=to_ms(sent_at), edge_country=edge_country)
            except ContractError as exc:
                result.invalid += 1
                if len(result.errors) < _KEPT_ERRORS:
                    event_id = obj.get("event_id") if isinstance(obj, dict) else None
                    result.errors.append(f"event {event_id}: {exc}")
                continue
            future = producer.send(settings.topic_events, key=event.ad_id.encode(), value=event.to_json())
            future.add_errback(failures.append)
            sent += 1
    finally:
        producer.flush()
        if own:
            producer.close()
    progress.done()
    result.failed = len(failures)
    result.produced = sent - result.failed
    result.errors.extend(f"produce failed: {exc!r}" for exc in failures[:_KEPT_ERRORS])
    return result


# --- ingestion HTTP API -----------------------------------------------------------------------


class ApiError(SinkError):
    """The ingestion API refused a batch for good (not 429/503), or retries ran out."""


@dataclass
class ApiResult:
    sent: int = 0  # events in batches the API answered 202 to
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    batches: int = 0
    retries: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)  # first rejections: {"index", "error"}


def batch_url(url: str) -> str:
    """The batch endpoint of an ingestion API base URL (a full endpoint URL is kept as is)."""
    url = url.rstrip("/")
    return url if url.endswith(BATCH_PATH) else url + BATCH_PATH


def _retry_after(value: str | None, *, cap: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(tz=UTC)).total_seconds()
    return min(max(seconds, 0.0), cap)


def _backoff(attempt: int) -> float:
    return min(0.5 * 2**attempt, 30.0)


def _post_batch(
    client: Any,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    max_retries: int,
    max_wait: float,
    sleep: Callable[[float], None],
    result: ApiResult,
) -> dict[str, Any]:
    import httpx

    for attempt in range(max_retries + 1):
        last = attempt == max_retries
        try:
            response = client.post(url, content=body, headers=headers)
        except httpx.TransportError as exc:
            if last:
                raise ApiError(f"POST {url} failed after {attempt + 1} attempts: {exc!r}") from exc
            result.retries += 1
            sleep(_backoff(attempt))
            continue
        if response.status_code in (429, 503):
            if last:
                raise ApiError(f"POST {url}: {response.status_code} after {attempt + 1} attempts")
            result.retries += 1
            wait = _retry_after(response.headers.get("Retry-After"), cap=max_wait)
            sleep(wait if wait is not None else _backoff(attempt))
            continue
        if response.status_code != 202:
            raise ApiError(f"POST {url}: {response.status_code} {response.text[:500]}")
        try:
            data = response.json()
            if not isinstance(data, dict) or not {"accepted", "duplicates", "rejected"} <= data.keys():
                raise ValueError("missing accepted/duplicates/rejected")
        except ValueError as exc:
            raise ApiError(f"POST {url}: unexpected 202 body {response.text[:200]!r}: {exc}") from exc
        return data
    raise AssertionError("unreachable")  # pragma: no cover


def post_to_api(
    events: Iterable[dict[str, Any]],
    *,
    url: str,
    batch_size: int = MAX_BATCH,
    api_key: str | None = None,
    compress: bool = False,
    client: Any | None = None,
    timeout: float = 30.0,
    max_retries: int = 6,
    max_wait: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress | None = None,
) -> ApiResult:
    """POST events to the ingestion API's batch endpoint; return what it accepted and rejected.

    ``url`` is the API base (``http://host:8000``) or the full batch URL. Rejection indices in
    ``errors`` are positions in the whole input. A transport error or 429/503 retries the same
    batch (the API deduplicates on ``event_id``); any other non-202 raises :class:`ApiError`.
    """
    import httpx

    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}")
    endpoint = batch_url(url)
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["X-Api-Key"] = api_key
    if compress:
        headers["Content-Encoding"] = "gzip"
    own = client is None
    if client is None:
        client = httpx.Client(timeout=timeout)
    progress = progress or Progress("api")
    result = ApiResult()
    iterator = iter(events)
    try:
        while batch := list(itertools.islice(iterator, batch_size)):
            body = orjson.dumps(batch)
            if compress:
                body = gzip.compress(body, compresslevel=5)
            data = _post_batch(
                client,
                endpoint,
                body,
                headers,
                max_retries=max_retries,
                max_wait=max_wait,
                sleep=sleep,
                result=result,
            )
            offset = result.sent
            result.batches += 1
            result.sent += len(batch)
            result.accepted += int(data["accepted"])
            result.duplicates += int(data["duplicates"])
            rejected = data["rejected"] or []
            result.rejected += len(rejected)
            for item in rejected:
                if len(result.errors) < _KEPT_ERRORS:
                    result.errors.append({"index": offset + int(item["index"]), "error": item.get("error")})
            progress.tick(len(batch))
    finally:
        if own:
            client.close()
    progress.done()
    return result
