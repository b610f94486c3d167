"""Output formats of the query API: JSON bodies, and CSV / JSON / Parquet streamed by chunks.

Reads and writes nothing: turns a result's columns and rows (tuples, in column order) into the
bytes a response sends. Values are shown as :func:`plain` makes them (UTC times with ``Z``, ISO
dates, no NaN); CSV and JSON are yielded ``ROWS_PER_CHUNK`` rows at a time, Parquet is written
whole (a footer needs every row) and then sent in ``PARQUET_CHUNK``-byte pieces.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
from fastapi.responses import Response

JSON = "application/json"
CSV = "text/csv; charset=utf-8"
PARQUET = "application/vnd.apache.parquet"
ROWS_PER_CHUNK = 1000
PARQUET_CHUNK = 1 << 20


def plain(value: Any) -> Any:
    """A result value as JSON/CSV shows it: UTC times with Z, dates ISO, no NaN."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(body: Any) -> bytes:
    """``body`` as JSON bytes, values shown by :func:`plain`."""
    return orjson.dumps(body, default=plain, option=orjson.OPT_UTC_Z)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status, media_type=JSON, headers=headers)


def _csv_text(value: Any) -> str:
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def iter_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Iterable[bytes]:
    """A header line, then the rows; chunks of ROWS_PER_CHUNK rows."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for start in range(0, len(rows), ROWS_PER_CHUNK):
        for row in rows[start : start + ROWS_PER_CHUNK]:
            writer.writerow([_csv_text(v) for v in row])
        yield buf.getvalue().encode("utf-8")
        buf.seek(0)
        buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode("utf-8")


def iter_json(meta: dict[str, Any], columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Iterable[bytes]:
    """``{**meta, "columns": [...], "rows": [{column: value}, ...]}``; chunks of ROWS_PER_CHUNK rows."""
    head = dumps({**meta, "columns": list(columns)})
    yield head[:-1] + b',"rows":['
    for start in range(0, len(rows), ROWS_PER_CHUNK):
        chunk = [dict(zip(columns, row, strict=True)) for row in rows[start : start + ROWS_PER_CHUNK]]
        body = dumps(chunk)[1:-1]
        yield (b"," if start else b"") + body
    yield b"]}"


def parquet_bytes(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """One Parquet file of the rows (column types inferred by pyarrow; times in UTC)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = []
    for i, _ in enumerate(columns):
        values = [r[i].astimezone(UTC) if isinstance(r[i], datetime) else r[i] for r in rows]
        arrays.append(pa.array(values))
    table = pa.Table.from_arrays(arrays, names=list(columns))
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def iter_bytes(data: bytes) -> Iterable[bytes]:
    """``data`` in pieces of PARQUET_CHUNK bytes."""
    for start in range(0, len(data), PARQUET_CHUNK):
        yield data[start : start + PARQUET_CHUNK]
