"""The ``gold.ad_clicks_daily`` suite: one day of the exact daily roll-up.

Checks: group keys are never null (null dimensions are ``unknown``), counts are not negative, the
rows are the day's, ``ctr`` is not negative where defined, and the day's totals equal silver's for
the same day: clicks + fraud_clicks = silver's distinct clicks, impressions and conversions equal.
The silver figures are computed by the caller (``batch_layer.quality.silver_figures``).
"""

from __future__ import annotations

from datetime import date

import great_expectations as gx
import great_expectations.expectations as gxe

from expectations import not_null, total_equals

SUITE = "gold.ad_clicks_daily"

KEYS = ("day", "ad_id", "campaign_id", "advertiser_id", "country", "region", "device_type")
COUNTS = (
    "impressions",
    "clicks",
    "fraud_clicks",
    "conversions",
    "cost_micros",
    "revenue_micros",
    "unique_users",
)


def suite(
    day: date, *, silver_clicks: int, silver_impressions: int, silver_conversions: int
) -> gx.ExpectationSuite:
    """The suite ``gold.ad_clicks_daily`` for ``day`` must pass, given silver's totals of the day.

    ``silver_clicks`` counts distinct click event_ids, fraud or not.
    """
    return gx.ExpectationSuite(
        name=SUITE,
        expectations=[
            *not_null(KEYS),
            gxe.ExpectColumnValuesToBeInSet(column="day", value_set=[day]),
            *[gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0) for c in COUNTS],
            # Nulls (no impressions) pass; clicks may exceed impressions when those are not tracked.
            gxe.ExpectColumnValuesToBeBetween(column="ctr", min_value=0),
            total_equals(
                "clicks_match_silver",
                "coalesce(sum(clicks), 0) + coalesce(sum(fraud_clicks), 0)",
                silver_clicks,
                f"clicks + fraud_clicks over the day = silver's distinct clicks ({int(silver_clicks)})",
            ),
            total_equals(
                "impressions_match_silver",
                "sum(impressions)",
                silver_impressions,
                f"impressions over the day = silver's ({int(silver_impressions)})",
            ),
            total_equals(
                "conversions_match_silver",
                "sum(conversions)",
                silver_conversions,
                f"conversions over the day = silver's ({int(silver_conversions)})",
            ),
        ],
    )
