"""The query API: ad-click metrics over Trino's ``serving`` views, for dashboards and BI exports.

Modules: :mod:`query_api.app` (``create_app``: the FastAPI app), :mod:`query_api.routes` (the
endpoints, one module per resource), :mod:`query_api.params` (each endpoint's query parameters,
one shared filter model; unknown names refused), :mod:`query_api.errors` (the error body and the
exception handlers), :mod:`query_api.formats` (JSON, CSV and Parquet output),
:mod:`query_api.context` (what the routes share), :mod:`query_api.queries` (whitelists and the
SQL), :mod:`query_api.parsing` (request values), :mod:`query_api.timerange` (times and aligned
ranges), :mod:`query_api.executor` (runs SQL on Trino), :mod:`query_api.cache` (result cache
invalidated by the batch watermark), :mod:`query_api.stats` (A/B statistics),
:mod:`query_api.pipeline_probes` and :mod:`query_api.airflow_runs` (the stream heartbeat and
Airflow, for ``/v1/pipeline``), :mod:`query_api.web_assets` (the dashboard's chart library, from
npm), :mod:`query_api.server` (uvicorn) and ``dashboard.html`` (the live page at ``/``; its script
and style in ``web/static/``).
"""
