"""The ``bronze.events`` suite: one day of landed events (one row per Kafka record).

Checks the table contract (docs/lake.md): every column exists, the fields the stream requires are
present, event types and regions come from their closed sets, and money is never negative.
Duplicated ``event_id``s are expected here (retries, replays); silver removes them.
"""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

from adclick.contract import EVENT_TYPES
from adclick.geo import REGIONS, UNKNOWN_REGION
from expectations import not_null

SUITE = "bronze.events"

COLUMNS = (
    "event_id",
    "event_type",
    "ad_id",
    "campaign_id",
    "event_time",
    "user_key",
    "ip_key",
    "country",
    "user_agent",
    "referrer",
    "page_url",
    "placement_id",
    "x",
    "y",
    "experiment_id",
    "variant",
    "click_id",
    "cost_micros",
    "revenue_micros",
    "attributes",
    "schema_version",
    "received_at",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp",
    "event_date",
    "region",
)
REQUIRED = ("event_id", "event_type", "ad_id", "event_time", "received_at", "region")
ALL_REGIONS = (*REGIONS, UNKNOWN_REGION)
MONEY = ("cost_micros", "revenue_micros")


def event_checks(columns: tuple[str, ...], required: tuple[str, ...]) -> list[gxe.Expectation]:
    """The event-level checks bronze and silver share: schema, required fields, closed sets, money."""
    return [
        # exact_match=False: the listed columns must exist; an added column is not a defect.
        gxe.ExpectTableColumnsToMatchSet(column_set=list(columns), exact_match=False),
        *not_null(required),
        gxe.ExpectColumnValuesToBeInSet(column="event_type", value_set=list(EVENT_TYPES)),
        gxe.ExpectColumnValuesToBeInSet(column="region", value_set=list(ALL_REGIONS)),
        # Null money is an event without a price; only negative amounts are defects.
        *[gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0) for c in MONEY],
    ]


def suite() -> gx.ExpectationSuite:
    """The suite one day of ``bronze.events`` must pass."""
    return gx.ExpectationSuite(name=SUITE, expectations=event_checks(COLUMNS, REQUIRED))
