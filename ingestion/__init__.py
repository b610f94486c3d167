"""The click ingestion API: ad servers and CDN edges -> HTTP -> validated, pseudonymised -> Kafka.

Modules: :mod:`ingestion.app` (builds the FastAPI app), :mod:`ingestion.routes` (the endpoints),
:mod:`ingestion.ingestor` (the core: gates, per-event pipeline, delivery),
:mod:`ingestion.request_parsing` (media types, body reading, batch framing, client IP),
:mod:`ingestion.responses` (JSON answers and the error body), :mod:`ingestion.schemas` (OpenAPI
documentation models), :mod:`ingestion.limits` (body guards),
:mod:`ingestion.auth` (API keys), :mod:`ingestion.rate_limit` (token buckets),
:mod:`ingestion.dedup_hint` (duplicate hint), :mod:`ingestion.hot_keys` (key salting),
:mod:`ingestion.producer` (Kafka sink), :mod:`ingestion.spool` (durable local spool),
:mod:`ingestion.redirect` (signed click redirects), :mod:`ingestion.server` (uvicorn) and
:mod:`ingestion.commands` (``adclick ingest-api``, ``adclick mint-click-url``).
"""
