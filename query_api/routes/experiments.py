"""``GET /v1/experiments/{experiment_id}``: an A/B test's CTR per variant against the control.

Reads ``serving.experiments_daily`` (final days only): per variant impressions, clicks,
conversions, the CTR with its Wilson interval, and against the control the pooled two-proportion
z-test (:mod:`query_api.stats`) at ``CONFIDENCE``. An unknown experiment gives no variants.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from query_api.context import Ctx, cache_header
from query_api.errors import ERRORS
from query_api.formats import json_response
from query_api.params import ExperimentParams
from query_api.parsing import BadParameter, check_value
from query_api.queries import experiment_query
from query_api.stats import two_proportion_z_test, wilson_interval
from query_api.timerange import time_range

router = APIRouter()

CONFIDENCE = 0.95


@router.get(
    "/v1/experiments/{experiment_id}",
    response_model=None,
    responses=ERRORS,
    summary="A/B test: CTR per variant, z-test against the control, 95% intervals",
    description="Final days only (serving.experiments_daily). control: the variant to compare "
    "with (default: the first variant by name). Per variant: impressions, clicks, conversions, ctr "
    "with its Wilson 95% interval; against the control: diff (ctr - control ctr) with its 95% "
    "interval, lift, z and two-sided p of the pooled two-proportion z-test, significant "
    "(p < 0.05). Clicks above impressions are capped at impressions for the intervals and the test. "
    "An unknown experiment gives no variants. Default range: -30d.",
)
async def experiment(experiment_id: str, params: Annotated[ExperimentParams, Query()], ctx: Ctx) -> Response:
    check_value("experiment_id", experiment_id)
    control = params.control
    rng = time_range("day", ctx.now(), start=params.from_, end=params.to, default=timedelta(days=30))
    result, hit = await ctx.fetch(experiment_query(ctx.views, experiment_id, rng))
    rows = result.records()
    names = [r["variant"] for r in rows]
    if control is not None and rows and control not in names:
        raise BadParameter("control", "not a variant of this experiment")
    base = next((r for r in rows if r["variant"] == control), rows[0]) if rows else None
    variants = [_variant(r, base) for r in rows]
    body = {
        "experiment_id": experiment_id,
        "from": rng.first_day,
        "to": rng.end_day,
        "control": base["variant"] if base else None,
        "confidence": CONFIDENCE,
        "variants": variants,
    }
    return json_response(200, body, cache_header(hit))


def _variant(r: dict[str, Any], base: dict[str, Any] | None) -> dict[str, Any]:
    """One variant's counts, CTR and interval, and its test against ``base`` (the control)."""
    impressions, clicks = int(r["impressions"] or 0), int(r["clicks"] or 0)
    clicks_in = min(clicks, impressions)  # a rate needs clicks <= impressions
    entry: dict[str, Any] = {
        "variant": r["variant"],
        "impressions": impressions,
        "clicks": clicks,
        "conversions": int(r["conversions"] or 0),
        "ctr": clicks / impressions if impressions else None,
        "ctr_ci": wilson_interval(clicks_in, impressions, CONFIDENCE),
        "is_control": r is base,
    }
    test = None
    if base is not None and r is not base:
        b_imp, b_clicks = int(base["impressions"] or 0), int(base["clicks"] or 0)
        test = two_proportion_z_test(
            min(b_clicks, b_imp), b_imp, clicks_in, impressions, confidence=CONFIDENCE
        )
    entry.update(
        {
            "diff": test.diff if test else None,
            "diff_ci": test.diff_ci if test else None,
            "lift": test.lift if test else None,
            "z": test.z if test else None,
            "p_value": test.p_value if test else None,
            "significant": (test.p_value < 1 - CONFIDENCE) if test else None,
        }
    )
    return entry
