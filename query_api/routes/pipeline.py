"""``GET /v1/pipeline``: pipeline health in one answer, for the dashboard and for people.

Reads ``serving.reconciliation_latest`` (each batch day's latest speed-vs-gold check) and
``serving.job_runs_latest`` (each batch job's latest run): views over ``delta.ops``, which the
analyst user may not read directly (see their SQL files). Beside them, the stream app's heartbeat
with Kafka lag and Airflow's last DAG runs (:mod:`query_api.pipeline_probes`). Always 200: each
section carries its own ``status`` (``ok``; ``unknown`` with an ``error`` when its source does not
answer; the stream's ``stale``), so one missing source never hides the others.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from query_api.context import Context, Ctx, cache_header
from query_api.errors import ERRORS
from query_api.executor import QueryFailed, QueryUnavailable
from query_api.formats import json_response
from query_api.params import PipelineParams
from query_api.queries import Query as Statement
from query_api.queries import job_runs_query, reconciliation_query

router = APIRouter()


@router.get(
    "/v1/pipeline",
    response_model=None,
    responses={400: ERRORS[400]},
    summary="Pipeline health: reconciliation, batch jobs, stream lag, Airflow runs",
    description="reconciliation.days: the latest check of each of the `days` latest reconciled days "
    "(speed vs gold totals, late_dropped / late_counted, unexplained, drift, passed), newest first. "
    "jobs.runs: each batch job's latest run. stream: the stream app's heartbeat (age, and per query "
    "the batch id, rows, rows/s, duration_ms, late rows dropped, Kafka lag). airflow: each DAG's last "
    "runs and their state. Always 200: a section whose source does not answer has status 'unknown' "
    "and an error; the batch watermark is in /v1/health.",
)
async def pipeline(params: Annotated[PipelineParams, Query()], ctx: Ctx) -> Response:
    (reconciliation, hit_r), (jobs, hit_j), stream, airflow = await asyncio.gather(
        _section(ctx, reconciliation_query(ctx.views, params.days), "days"),
        _section(ctx, job_runs_query(ctx.views), "runs"),
        run_in_threadpool(ctx.probes.stream),
        run_in_threadpool(ctx.probes.airflow),
    )
    body = {
        "now": ctx.now(),
        "reconciliation": reconciliation,
        "jobs": jobs,
        "stream": stream,
        "airflow": airflow,
    }
    return json_response(200, body, cache_header(hit_r and hit_j))


async def _section(ctx: Context, statement: Statement, key: str) -> tuple[dict[str, Any], bool]:
    try:
        result, hit = await ctx.fetch(statement)
    except (QueryUnavailable, QueryFailed) as exc:
        return {"status": "unknown", "error": str(exc), key: []}, False
    return {"status": "ok", "error": None, key: result.records()}, hit
