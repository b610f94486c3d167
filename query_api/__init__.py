"""The query API: ad-click metrics over Trino's ``serving`` views, for dashboards and BI exports.

Modules: :mod:`query_api.app` (the FastAPI app and its endpoints), :mod:`query_api.queries`
(parameter parsing, whitelists, the SQL), :mod:`query_api.executor` (runs SQL on Trino),
:mod:`query_api.cache` (result cache invalidated by the batch watermark), :mod:`query_api.stats`
(A/B statistics), :mod:`query_api.server` (uvicorn) and ``dashboard.html`` (the live page at ``/``).
"""
