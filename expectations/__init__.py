"""Data-quality suites as code: one module per table family (bronze, silver, gold).

Each module builds the Great Expectations ``ExpectationSuite`` that one day of its table is gated
on; ``batch_layer.quality`` runs it on the day's DataFrame. Suites are rebuilt for every check, so
day-dependent bounds (the day itself, the previous days' row counts, silver's totals) are plain
values inside the suite and show as such in Data Docs.

This module holds what the families share: the name an expectation is reported under, not-null
checks over many columns, and a query expectation that keeps its figures on failure.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import great_expectations.expectations as gxe
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration


class ExpectQueryToReturnNoRows(gxe.UnexpectedRowsExpectation):
    """An ``UnexpectedRowsExpectation`` whose failing rows stay in the result at any result format.

    GX drops the rows unless the result format is COMPLETE, which would also make every column
    check collect all its bad values. The queries used here aggregate a whole day into at most one
    row, so keeping the rows is cheap, and the row carries the observed and expected figures.
    """

    def _validate(
        self,
        metrics: dict,
        runtime_configuration: dict | None = None,
        execution_engine: Any = None,
    ) -> dict:
        rows = metrics["unexpected_rows_query.table"]
        return {
            "success": not rows,
            "result": {
                "observed_value": metrics["unexpected_rows_query.row_count"],
                "details": {"unexpected_rows": rows},
            },
        }


def total_equals(name: str, expression: str, expected: int, description: str) -> ExpectQueryToReturnNoRows:
    """The day's total of ``expression`` (a SQL aggregate over the batch) equals ``expected``.

    ``expected`` is formatted into the query, so it is forced to an int first.
    """
    expected = int(expected)
    observed = f"coalesce({expression}, 0)"
    # Only our own expressions and an int are formatted in: no outside text reaches the query.
    query = (
        f"SELECT {observed} AS observed, {expected} AS expected "  # noqa: S608
        f"FROM {{batch}} HAVING {observed} <> {expected}"
    )
    return ExpectQueryToReturnNoRows(
        unexpected_rows_query=query,
        description=description,
        meta={"name": name},
    )


def not_null(columns: Iterable[str]) -> list[gxe.ExpectColumnValuesToNotBeNull]:
    return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns]


def expectation_name(config: ExpectationConfiguration) -> str:
    """The name an expectation is reported under (ops.dq_results, the gate's message).

    ``meta["name"]`` when set, else the expectation type with its column, for example
    ``expect_column_values_to_be_unique(event_id)``.
    """
    meta = config.meta or {}
    if meta.get("name"):
        return str(meta["name"])
    column = config.kwargs.get("column")
    return f"{config.type}({column})" if column else config.type
