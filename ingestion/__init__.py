"""The click ingestion API: ad servers and CDN edges -> HTTP -> validated, pseudonymised -> Kafka.

Modules: :mod:`ingestion.app` (the FastAPI app), :mod:`ingestion.limits` (body guards),
:mod:`ingestion.auth` (API keys), :mod:`ingestion.rate_limit` (token buckets),
:mod:`ingestion.dedup_hint` (duplicate hint), :mod:`ingestion.hot_keys` (key salting),
:mod:`ingestion.producer` (Kafka sink), :mod:`ingestion.spool` (durable local spool),
:mod:`ingestion.redirect` (signed click redirects), :mod:`ingestion.server` (uvicorn) and
:mod:`ingestion.commands` (``adclick ingest-api``, ``adclick mint-click-url``).
"""
