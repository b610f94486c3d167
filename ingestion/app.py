"""The ingestion API (FastAPI): validates events, pseudonymises them and makes them durable.

Reads HTTP requests from ad servers and CDN edges (single events, JSON-array or NDJSON batches,
click redirects); writes one Kafka record per accepted event to ``settings.topic_events``
(:mod:`ingestion.producer`), or to the local spool (:mod:`ingestion.spool`) when Kafka does not
acknowledge in time. ``202`` is only answered once every accepted event of the request is
acknowledged by Kafka (``acks=all``) or fsynced to the spool.

This module only assembles the app: the core that every request goes through is
:mod:`ingestion.ingestor`, the endpoints are :mod:`ingestion.routes`, request reading is
:mod:`ingestion.request_parsing`, the answers :mod:`ingestion.responses`, the OpenAPI
documentation :mod:`ingestion.schemas` and the Prometheus metrics :mod:`ingestion.metrics`.

The hot path avoids pydantic in the request signature: the raw body is read with size caps
(:mod:`ingestion.limits`), parsed with orjson, validated by the compiled contract
(:mod:`ingestion.validator`, pydantic only for the refusals and lenient values it defers),
written as record bytes directly (:mod:`ingestion.event_record`) and answered with orjson bytes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from adclick.settings import Settings
from ingestion.ingestor import Ingestor
from ingestion.metrics import install as install_metrics
from ingestion.producer import EventSink
from ingestion.routes import build_router
from ingestion.schemas import openapi_schema


def create_app(
    settings: Settings,
    producer: EventSink | None = None,
    clock: Callable[[], float] | None = None,
) -> FastAPI:
    """The ingestion API. ``producer`` defaults to :class:`ingestion.producer.KafkaSink`;
    ``clock`` (epoch seconds) to ``time.time``. Raises
    :class:`adclick.privacy.MissingHashKeyError` outside local/test without ``ADCLICK_HASH_KEY``.
    The spool drainer thread runs during the app's lifespan; ``app.state.ingestor`` holds the core,
    ``app.state.metrics`` the Prometheus registry served at ``/metrics`` (:mod:`ingestion.metrics`).
    """
    ingestor = Ingestor(settings, producer, clock or time.time)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ingestor.start()
        try:
            yield
        finally:
            await asyncio.to_thread(ingestor.close)

    app = FastAPI(
        title="adclick ingestion API",
        version="1",
        description="Ad servers and CDN edges send click, impression and conversion events here. "
        "202 means durable: acknowledged by Kafka (acks=all) or fsynced to the local spool, which is "
        "replayed to Kafka when it is back. The 'duplicate' answer is a hint from a short window "
        "(Bloom filters); exact deduplication on event_id happens downstream.",
        lifespan=lifespan,
        # No automatic trailing-slash redirects: they echo the Host header into a Location.
        redirect_slashes=False,
    )
    app.state.ingestor = ingestor
    app.openapi = lambda: openapi_schema(app)  # type: ignore[method-assign]
    app.include_router(build_router(ingestor))
    install_metrics(app, ingestor)
    return app
