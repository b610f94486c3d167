"""The ``silver.events`` suite: one day of distinct, enriched, fraud-scored events.

On top of bronze's event checks: the enrichment and fraud columns exist and are filled,
``event_id`` is unique over the day (silver's grain), ``fraud_score`` is a probability-like score in
[0, 1], every row belongs to the day, and the day's row count is in line with the previous days'
(:func:`row_count_bounds`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

import great_expectations as gx
import great_expectations.expectations as gxe

from expectations import bronze, not_null

SUITE = "silver.events"

COLUMNS = (
    *bronze.COLUMNS,
    "device_type",
    "os",
    "browser",
    "advertiser_id",
    "cpc_micros",
    "age_group",
    "segment",
    "fraud_reasons",
    "rule_score",
    "model_score",
    "model_version",
    "fraud_score",
    "is_fraud",
    "arrival_delay_s",
    "copies",
)
REQUIRED = (*bronze.REQUIRED, "is_fraud", "fraud_score", "device_type")


def row_count_bounds(previous_counts: Sequence[int], tolerance: float) -> tuple[int, int | None]:
    """Rows allowed for a day, given the row counts of the days before it (``tolerance`` a share).

    * At least ``(1 - tolerance)`` x the **median** of ``previous_counts``: a day that lost most of
      its events fails; one partial day among them (the day a stack started) does not move the
      median much.
    * At most ``(1 + tolerance)`` x their **maximum**, but only once the previous days are steady
      (the smallest at least ``(1 - tolerance)`` x the largest). While traffic ramps up (a first
      partial day, then full ones; a launch) there is no upper bound: growth is not a data
      fault, and the next days' check catches a day that collapses afterwards.

    Returns ``(low, high)``, ``high`` None for no upper bound.
    """
    ordered = sorted(previous_counts)
    n = len(ordered)
    median = (ordered[(n - 1) // 2] + ordered[n // 2]) / 2
    # The epsilon keeps 0.1 * 100 = 10.000000000000002 from rounding the bound up to 11.
    low = max(0, math.ceil(median * (1 - tolerance) - 1e-9))
    steady = ordered[0] >= ordered[-1] * (1 - tolerance) - 1e-9
    high = math.floor(ordered[-1] * (1 + tolerance) + 1e-9) if steady else None
    return low, high


def suite(day: date, *, previous_counts: Sequence[int] = (), tolerance: float) -> gx.ExpectationSuite:
    """The suite ``silver.events`` for ``day`` must pass.

    ``previous_counts`` are the row counts of the days before (days without rows left out); the
    row-count check is only added when there is at least one.
    """
    checks: list[gxe.Expectation] = [
        *bronze.event_checks(COLUMNS, REQUIRED),
        *not_null(["event_date"]),
        gxe.ExpectColumnValuesToBeUnique(column="event_id"),
        gxe.ExpectColumnValuesToBeBetween(column="fraud_score", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToBeInSet(column="event_date", value_set=[day]),
    ]
    if previous_counts:
        low, high = row_count_bounds(previous_counts, tolerance)
        checks.append(
            gxe.ExpectTableRowCountToBeBetween(
                min_value=low,
                max_value=high,
                description=(
                    f"rows at least {low:,} ({1 - tolerance:.0%} of the median of the previous "
                    f"{len(previous_counts)} days)"
                    + (
                        f" and at most {high:,} ({1 + tolerance:.0%} of their maximum)"
                        if high is not None
                        else "; no upper bound while the previous days ramp up"
                    )
                ),
            )
        )
    return gx.ExpectationSuite(name=SUITE, expectations=checks)
