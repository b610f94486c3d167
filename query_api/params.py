"""The query parameters of each endpoint, as pydantic models: names, types, bounds, defaults, docs.

Reads and writes nothing. A route takes its model as ``Annotated[Model, Query()]``, so FastAPI
validates the whole query string against it and documents every field as a query parameter.
Every model forbids extra fields (``extra="forbid"``): a misspelt filter must not silently widen
a result, so an unknown parameter is refused with a 400 naming it
(:func:`query_api.errors.install_error_handlers` words the answer, listing :meth:`Params.known`).

The report-like endpoints (reports, trends, funnel) share one filter model, :class:`Filters`;
reports add the audience filters. The series and top-ads endpoints take the few filters the
speed rows carry (:data:`query_api.queries.SERIES_FILTERS`, :data:`~query_api.queries.TOP_FILTERS`).
Values are checked further where they are used (:mod:`query_api.parsing`,
:mod:`query_api.timerange`): a filter here is only the text the caller sent.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from query_api.parsing import MAX_VALUE_CHARS
from query_api.queries import AUDIENCE_FILTERS, CLICK_FILTERS
from query_api.timerange import MAX_BUCKETS

TIME_DOC = "ISO 8601 (no zone = UTC), 'now', or relative to now: -15m, -2h, -7d, -1w."
FILTER_DOC = "Equality filter; several values separated by commas match any of them."
_TO_DOC = TIME_DOC + " Default: now."

# An equality filter: one value, or several separated by commas.
Filter = Annotated[str | None, Field(description=FILTER_DOC)]


class Params(BaseModel):
    """Base of every endpoint's query parameters: an unknown parameter is a validation error."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def known(cls) -> list[str]:
        """The parameter names (aliases) this model accepts, sorted."""
        return sorted(field.alias or name for name, field in cls.model_fields.items())

    def filters(self) -> dict[str, str | None]:
        """The filter fields (name -> the text sent, None when absent), in declaration order."""
        return {name: getattr(self, name) for name in type(self).model_fields if name in _FILTER_NAMES}


_FILTER_NAMES = frozenset(CLICK_FILTERS + AUDIENCE_FILTERS)


class Filters(Params):
    """The click filters every report-like endpoint (reports, trends, funnel) takes."""

    country: Filter = None
    device_type: Filter = None
    campaign_id: Filter = None
    ad_id: Filter = None
    advertiser_id: Filter = None
    region: Filter = None


class SeriesParams(Params):
    """``GET /v1/ads/{ad_id}/clicks``."""

    from_: str | None = Field(None, alias="from", description=TIME_DOC)
    to: str | None = Field(None, description=_TO_DOC)
    minutes: int | None = Field(None, ge=1, le=MAX_BUCKETS["minute"])
    granularity: Literal["minute", "hour", "day"] = "minute"
    country: Filter = None
    device_type: Filter = None
    campaign_id: Filter = None


class TopParams(Params):
    """``GET /v1/ads/top``."""

    window: Literal["1m", "5m", "1h"] = "5m"
    n: int = Field(100, ge=1, le=1000)
    fallback: Literal["latest_minute"] | None = Field(
        None,
        description="latest_minute: when the window has no clicks, also rank the latest minute of the "
        "day before it that had clicks (in 'fallback'; null when there is none).",
    )
    country: Filter = None
    device_type: Filter = None


class ReportParams(Filters):
    """``GET /v1/reports``: the click filters, the audience filters, and what to group and show."""

    age_group: Filter = None
    segment: Filter = None
    dimensions: str = Field("day", description="Comma-separated dimension names.")
    metrics: str = Field("clicks", description="Comma-separated metric names.")
    from_: str | None = Field(None, alias="from", description=TIME_DOC + " Default: -7d.")
    to: str | None = Field(None, description=_TO_DOC)
    format: Literal["json", "csv", "parquet"] = "json"
    limit: int = Field(10_000, ge=1, le=100_000)


class TrendParams(Filters):
    """``GET /v1/trends``."""

    metric: str = "clicks"
    granularity: Literal["hour", "day"] = "day"
    from_: str | None = Field(None, alias="from", description=TIME_DOC)
    to: str | None = Field(None, description=_TO_DOC)
    compare: Literal["previous_period"] | None = None


class FunnelParams(Filters):
    """``GET /v1/funnel``."""

    from_: str | None = Field(None, alias="from", description=TIME_DOC + " Default: -7d.")
    to: str | None = Field(None, description=_TO_DOC)


class ExperimentParams(Params):
    """``GET /v1/experiments/{experiment_id}``."""

    from_: str | None = Field(None, alias="from", description=TIME_DOC + " Default: -30d.")
    to: str | None = Field(None, description=_TO_DOC)
    control: str | None = Field(None, max_length=MAX_VALUE_CHARS)


class PipelineParams(Params):
    """``GET /v1/pipeline``."""

    days: int = Field(7, ge=1, le=92, description="How many of the latest reconciled days to list.")
