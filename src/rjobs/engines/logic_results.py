"""Query results as artifacts (Arrow IPC file, CSV) and as JSON-safe previews."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import math
import uuid
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

ARROW_CONTENT_TYPE = "application/vnd.apache.arrow.file"
CSV_CONTENT_TYPE = "text/csv"


def arrow_ipc_bytes(table: pa.Table) -> bytes:
    """``table`` as an Arrow IPC file (random-access format, readable with ``pa.ipc.open_file``)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def blob_text(value: bytes) -> str:
    """Bytes as DuckDB prints a BLOB: printable ASCII as is, everything else as ``\\xNN``."""
    return "".join(chr(b) if 32 <= b < 127 and b != 0x5C else f"\\x{b:02X}" for b in value)


def json_safe(value: Any) -> Any:
    """A value from a result row as plain JSON.

    DECIMAL becomes a float and HUGEINT an int (exact values are in the artifacts), temporal
    values ISO 8601 strings, INTERVAL an object of months, days and nanoseconds, BLOB text with
    ``\\xNN`` escapes, non-finite floats the strings "NaN", "Infinity" and "-Infinity", MAP a
    list of [key, value] pairs.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, decimal.Decimal):
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent >= 0:
            return int(value)  # HUGEINT and DECIMAL(p, 0): keep every digit
        return json_safe(float(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, pa.MonthDayNano):
        return {"months": value.months, "days": value.days, "nanoseconds": value.nanoseconds}
    if isinstance(value, bytes | bytearray | memoryview):
        return blob_text(bytes(value))
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return str(value)


def preview_rows(table: pa.Table, limit: int) -> list[list[Any]]:
    """The first ``limit`` rows as lists (column-wise, so duplicate column names survive)."""
    head = table.slice(0, limit)
    columns = [column.to_pylist() for column in head.columns]
    return [[json_safe(column[i]) for column in columns] for i in range(head.num_rows)]


def _csv_native(type_: pa.DataType) -> bool:
    """Whether pyarrow's CSV writer renders this type itself."""
    if pa.types.is_dictionary(type_):
        return _csv_native(type_.value_type)
    return bool(
        pa.types.is_null(type_)
        or pa.types.is_boolean(type_)
        or pa.types.is_integer(type_)
        or pa.types.is_floating(type_)
        or pa.types.is_decimal(type_)
        or pa.types.is_string(type_)
        or pa.types.is_large_string(type_)
        or pa.types.is_date(type_)
        or pa.types.is_time(type_)
        or pa.types.is_timestamp(type_)
    )


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return blob_text(bytes(value))
    return json.dumps(json_safe(value), ensure_ascii=False)


def csv_bytes(table: pa.Table) -> bytes:
    """``table`` as CSV with a header row; NULL is an empty field.

    Nested values (LIST, STRUCT, MAP, UNION), INTERVAL and BLOB, which the Arrow CSV writer
    cannot render, are written as JSON text (BLOB as escaped text).
    """
    columns: list[pa.Array | pa.ChunkedArray] = []
    for column in table.columns:
        if _csv_native(column.type):
            columns.append(column)
        else:
            columns.append(pa.array([_cell_text(v) for v in column.to_pylist()], pa.string()))
    # Rebuild by position: names may repeat in a SQL result.
    safe = pa.Table.from_arrays(columns, names=table.column_names)
    sink = io.BytesIO()
    pacsv.write_csv(safe, sink, write_options=pacsv.WriteOptions(include_header=True))
    return sink.getvalue()


def column_info(description: Sequence[Sequence[Any]] | None) -> list[dict[str, str]]:
    """Column names and DuckDB type names from a cursor description."""
    return [{"name": str(col[0]), "type": str(col[1])} for col in description or ()]
