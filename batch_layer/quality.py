"""Data-quality gates: one day of a table -> its Great Expectations suite -> results and Data Docs.

Reads: the DataFrame handed in (one day of ``bronze.events``, ``silver.events`` or
``gold.ad_clicks_daily``), validated by GX's Spark engine where it lies (no copy to pandas).
Writes: ``ops.dq_results``, appended, one row per expectation checked (grain: run x table x day x
expectation; a retried check adds rows with a later ``checked_at``); the Data Docs HTML under
``<home>/dq/data_docs``; GX's own stores (suites, checkpoints, validation results) under
``<home>/dq/gx``. A job calls :func:`check`, then :func:`gate` before it publishes the day.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyspark.sql.functions as F
import pyspark.sql.types as T

from adclick.errors import AdclickError
from adclick.settings import Settings
from batch_layer import lake

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult
    from great_expectations.data_context import FileDataContext
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

SITE = "adclick"
DATASOURCE = "adclick_spark"
BATCH_DEFINITION = "day"
# BASIC keeps the unexpected count and a few example values; SUMMARY would add a value count per
# example (one more Spark job per failing check) and COMPLETE would collect every bad value.
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 5}
EXAMPLES = 5

DQ_RESULTS_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType(), nullable=False),
        T.StructField("checked_at", T.TimestampType(), nullable=False),
        T.StructField("suite", T.StringType(), nullable=False),
        T.StructField("table", T.StringType(), nullable=False),
        T.StructField("day", T.DateType(), nullable=False),
        T.StructField("expectation", T.StringType(), nullable=False),
        T.StructField("success", T.BooleanType(), nullable=False),
        T.StructField("observed", T.StringType(), nullable=True),  # JSON
        T.StructField("details", T.StringType(), nullable=True),  # JSON: arguments and GX's result
    ]
)


class QualityGateFailed(AdclickError):
    """A table's day failed its data-quality suite; the message names each failed expectation."""


@dataclass(frozen=True)
class FailedExpectation:
    name: str
    observed: dict[str, Any]


@dataclass(frozen=True)
class QualityResult:
    table: str
    suite: str
    day: date
    run_id: str
    success: bool
    checked: int
    failed: tuple[FailedExpectation, ...]
    report: Path | None = None  # this validation's Data Docs page


def _bronze_suite(day: date, settings: Settings, values: Mapping[str, Any]) -> ExpectationSuite:
    from expectations import bronze

    return bronze.suite()


def _silver_suite(day: date, settings: Settings, values: Mapping[str, Any]) -> ExpectationSuite:
    from expectations import silver

    return silver.suite(
        day,
        previous_counts=[int(c) for c in values.get("previous_counts", ())],
        tolerance=settings.dq_row_count_tolerance,
    )


def _gold_daily_suite(day: date, settings: Settings, values: Mapping[str, Any]) -> ExpectationSuite:
    from expectations import gold

    needed = ("silver_clicks", "silver_impressions", "silver_conversions")
    missing = [k for k in needed if k not in values]
    if missing:
        raise AdclickError(
            f"gold.ad_clicks_daily is checked against silver's totals; pass {', '.join(missing)} in "
            "context_values (batch_layer.quality.silver_figures computes them)"
        )
    return gold.suite(day, **{k: int(values[k]) for k in needed})


SUITES: dict[str, Callable[[date, Settings, Mapping[str, Any]], ExpectationSuite]] = {
    "bronze.events": _bronze_suite,
    "silver.events": _silver_suite,
    "gold.ad_clicks_daily": _gold_daily_suite,
}


def silver_figures(silver_day: DataFrame) -> dict[str, int]:
    """Silver's totals of a day, as the gold suite's ``context_values``: distinct event_ids by type."""
    row = silver_day.agg(
        *[
            F.count_distinct(F.when(F.col("event_type") == kind, F.col("event_id"))).alias(f"silver_{name}")
            for kind, name in (
                ("click", "clicks"),
                ("impression", "impressions"),
                ("conversion", "conversions"),
            )
        ]
    ).first()
    return {k: int(v) for k, v in row.asDict().items()}


_CONTEXTS: dict[Path, FileDataContext] = {}


def _context(settings: Settings) -> FileDataContext:
    """The file-backed GX context under ``<home>/dq``, opened once per process and home."""
    root = settings.path("dq")
    if root in _CONTEXTS:
        return _CONTEXTS[root]
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="file", project_root_dir=root)
    # The project config is only rewritten when it differs, so concurrent checks rarely write it.
    site = {
        "class_name": "SiteBuilder",
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(settings.path("dq", "data_docs")),
        },
    }
    if context.list_data_docs_sites() != {SITE: site}:
        # GX's default site lives inside gx/uncommitted; ours is the only one built.
        for name in list(context.list_data_docs_sites()):
            context.delete_data_docs_site(name)
        context.add_data_docs_site(SITE, site)
    bars = context.variables.progress_bars  # a dict once read back from great_expectations.yml
    shown = [
        bars.get(k) if isinstance(bars, dict) else getattr(bars, k, None)
        for k in ("globally", "metric_calculations")
    ]
    if shown != [False, False]:
        # Progress bars would fill the Airflow task logs with carriage-return lines.
        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        context.variables.save()
    if DATASOURCE not in context.data_sources.all():
        # persist=False: GX would cache the day and never release it; check() caches for the run.
        context.data_sources.add_spark(DATASOURCE, persist=False)
    _CONTEXTS[root] = context
    return context


def _batch_definition(context: FileDataContext, table: str) -> BatchDefinition:
    source = context.data_sources.get(DATASOURCE)
    try:
        asset = source.get_asset(table)
    except LookupError:
        asset = source.add_dataframe_asset(table)
    try:
        return asset.get_batch_definition(BATCH_DEFINITION)
    except KeyError:
        return asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)


def _errors(result: ExpectationValidationResult) -> list[str]:
    """Exception messages of an expectation that could not be evaluated (a missing column...)."""
    info = result.exception_info or {}
    # Either one exception, or one per metric that could not be computed.
    infos = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    return [str(i.get("exception_message")) for i in infos if i.get("raised_exception")]


def _observed(result: ExpectationValidationResult) -> dict[str, Any]:
    """What the check saw, small enough for one line of a message."""
    res = result.result or {}
    details = res.get("details") or {}
    out: dict[str, Any] = {}
    if "unexpected_rows" in details:
        out["rows"] = details["unexpected_rows"]
    elif "mismatched" in details:
        out.update(details["mismatched"])
    elif "observed_value" in res:
        out["observed_value"] = res["observed_value"]
    if "unexpected_count" in res:
        out["unexpected_count"] = res["unexpected_count"]
        out["element_count"] = res.get("element_count")
        out["examples"] = (res.get("partial_unexpected_list") or [])[:EXAMPLES]
    errors = _errors(result)
    if errors:
        out["error"] = "; ".join(errors)
    return out


def _json(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def _report(context: FileDataContext, identifier: Any) -> Path | None:
    for site in context.get_docs_sites_urls(resource_identifier=identifier, site_name=SITE):
        url = site.get("site_url") or ""
        if url.startswith("file://"):
            return Path(url.removeprefix("file://"))
    return None


def check(
    spark: SparkSession,
    settings: Settings,
    *,
    table: str,
    day: date,
    df: DataFrame,
    run_id: str,
    context_values: dict | None = None,
) -> QualityResult:
    """Validate one day of ``table`` (``df``) with its suite, record the results, build Data Docs.

    ``context_values``: ``previous_counts`` (silver.events: the previous days' row counts) or
    ``silver_clicks``, ``silver_impressions``, ``silver_conversions`` (gold.ad_clicks_daily).
    Does not raise on failed expectations; :func:`gate` does.
    """
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier

    from expectations import expectation_name

    if table not in SUITES:
        raise AdclickError(f"no data-quality suite for {table!r}; known: {', '.join(sorted(SUITES))}")
    suite = SUITES[table](day, settings, context_values or {})
    context = _context(settings)
    suite = context.suites.add_or_update(suite)
    validation = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=table, data=_batch_definition(context, table), suite=suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=table,
            validation_definitions=[validation],
            actions=[UpdateDataDocsAction(name="data_docs", site_names=[SITE])],
            result_format=RESULT_FORMAT,
        )
    )
    checked_at = datetime.now(UTC)  # when the check ran (operational metadata, not data)
    # Every expectation is at least one pass over the day: read it once.
    cache_here = not df.is_cached
    if cache_here:
        df.persist()
    try:
        outcome = checkpoint.run(
            batch_parameters={"dataframe": df}, run_id=RunIdentifier(run_name=run_id, run_time=checked_at)
        )
    finally:
        if cache_here:
            df.unpersist()
    ((identifier, validation_result),) = outcome.run_results.items()

    rows, failed = [], []
    for result in validation_result.results:
        config = result.expectation_config
        name = expectation_name(config)
        observed = _observed(result)
        success = bool(result.success)
        if not success:
            failed.append(FailedExpectation(name, observed))
        rows.append(
            (
                run_id,
                checked_at,  # aware: Spark stores the instant whatever the local zone
                suite.name,
                table,
                day,
                name,
                success,
                _json(observed),
                _json({"kwargs": config.kwargs, "result": result.result, "description": config.description}),
            )
        )
    # Blind appends never conflict with another check writing at the same time (Delta).
    lake.append(spark.createDataFrame(rows, DQ_RESULTS_SCHEMA), settings, "ops.dq_results")

    result = QualityResult(
        table=table,
        suite=suite.name,
        day=day,
        run_id=run_id,
        success=not failed,
        checked=len(rows),
        failed=tuple(failed),
        report=_report(context, identifier),
    )
    log.info("%s %s: %d of %d expectations failed", table, day, len(failed), len(rows))
    return result


def gate(result: QualityResult, *, settings: Settings | None = None) -> None:
    """Raise :class:`QualityGateFailed` unless every expectation passed; the message names each.

    Before raising, the failure goes to the alert webhook (``ADCLICK_ALERT_WEBHOOK_URL``, source
    ``quality``; never raises itself). ``settings`` default: the process's.
    """
    if result.success:
        return
    lines = [f"{f.name}: {_json(f.observed)}" for f in result.failed]
    where = f"; report: {result.report}" if result.report else ""
    message = (
        f"{result.table} {result.day.isoformat()} failed {len(result.failed)} of {result.checked} "
        f"expectations (run {result.run_id}): " + "; ".join(lines) + where
    )
    from adclick import alerts
    from adclick.settings import get_settings

    alerts.alert(
        settings or get_settings(), "quality", day=result.day, error=message, **alerts.airflow_task()
    )
    raise QualityGateFailed(message)


def data_docs_index(settings: Settings) -> Path | None:
    """The Data Docs ``index.html`` when a check has built it (for ``adclick status``)."""
    index = settings.path("dq", "data_docs", "index.html")
    return index if index.is_file() else None
