"""Loading a Predictive job's table and turning its columns into model inputs.

Tables are read with pyarrow (pandas is not a dependency) and handed to scikit-learn as numpy
arrays: ``float64`` when every feature is numeric, otherwise an ``object`` array whose numeric
columns hold floats (NaN when missing) and whose categorical columns hold strings (NaN when
missing).
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from rjobs.engines.base import EngineContext, EngineFailure, ProblemInfo, resolve_data_path

logger = logging.getLogger(__name__)

Kind = Literal["numeric", "temporal", "categorical"]
Problem = Literal["classification", "regression"]

FORMATS = ("csv", "parquet", "json")
DATA_SOURCES = ("rows", "text", "path", "logic")
MISSING_CATEGORY = "(missing)"
MAX_CATEGORIES = 50
# An integer target with at most this many distinct values is taken for class labels.
MAX_INFERRED_CLASSES = 20

_SUFFIX_FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}
_ID_NAME = re.compile(
    r"^(id|uuid|guid|key|index|row_?(id|num|number))$|(^|[_\s.-])(id|uuid)$", re.I
)
_CAMEL_ID = re.compile(r"[a-z0-9]I[Dd]$")


class DataInterrupted(Exception):
    """The job was interrupted while its data was being read (a Logic query)."""


def failure(code: str, message: str) -> EngineFailure:
    """An :class:`EngineFailure` carrying one error problem with ``code``."""
    return EngineFailure(message, [ProblemInfo("error", code, message)])


# ---------------------------------------------------------------------------------------------
# reading


def load_table(spec: object, ctx: EngineContext) -> pa.Table:
    """Read the payload's ``data`` into an Arrow table (see the engine docstring for the forms)."""
    if not isinstance(spec, dict):
        raise failure(
            "invalid_payload", "data must be an object with one of rows, text, path, logic"
        )
    unknown = set(spec) - {*DATA_SOURCES, "format"}
    if unknown:
        raise failure(
            "invalid_payload",
            f"unknown data keys {sorted(unknown)}; allowed: {sorted({*DATA_SOURCES, 'format'})}",
        )
    sources = [key for key in DATA_SOURCES if key in spec]
    if len(sources) != 1:
        raise failure("invalid_payload", "data needs exactly one of rows, text, path or logic")
    fmt = spec.get("format")
    if fmt is not None and (not isinstance(fmt, str) or fmt.lower() not in FORMATS):
        raise failure("invalid_payload", f"data.format must be one of {list(FORMATS)}")
    fmt = fmt.lower() if isinstance(fmt, str) else None
    source = sources[0]
    try:
        if source == "rows":
            table = _from_rows(spec["rows"])
        elif source == "logic":
            table = _from_logic(spec["logic"], ctx)
        elif source == "text":
            table = _from_text(spec["text"], fmt or "csv")
        else:
            path = resolve_data_path(spec["path"], ctx.data_roots, what="data.path")
            table = _from_path(path, fmt)
        return _decode_dictionaries(table)
    except (pa.ArrowException, ValueError, UnicodeDecodeError, OSError) as exc:
        # ArrowInvalid and JSONDecodeError are ValueErrors: the data itself does not parse.
        raise failure("data_error", f"cannot read the data: {exc}") from exc


def _decode_dictionaries(table: pa.Table) -> pa.Table:
    """Decode dictionary-encoded columns (Parquet categoricals): compute kernels need plain ones."""
    for i, column_field in enumerate(table.schema):
        if pa.types.is_dictionary(column_field.type):
            chunks = [chunk.dictionary_decode() for chunk in table.column(i).chunks]
            decoded = pa.chunked_array(chunks, type=column_field.type.value_type)
            table = table.set_column(i, column_field.name, decoded)
    return table


def _from_rows(rows: object) -> pa.Table:
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise failure("invalid_payload", "data.rows must be a list of records (objects)")
    # Table.from_pylist takes its columns from the first record only; take every key seen.
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    for name in names:
        if not isinstance(name, str):
            raise failure("invalid_payload", "data.rows keys must be strings")
    columns = {name: pa.array([row.get(name) for row in rows]) for name in names}
    return pa.table(columns) if columns else pa.table({})


def _from_text(text: object, fmt: str) -> pa.Table:
    if not isinstance(text, str):
        raise failure("invalid_payload", "data.text must be a string")
    if fmt == "parquet":
        raise failure("invalid_payload", "parquet data cannot be given as text: use data.path")
    if fmt == "json":
        return _from_json(text)
    return _read_csv(io.BytesIO(text.encode()))


def _from_path(path: Path, fmt: str | None) -> pa.Table:
    fmt = fmt or _SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise failure(
            "invalid_payload",
            f"cannot tell the format of {path.name!r}: set data.format to one of {list(FORMATS)}",
        )
    if fmt == "parquet":
        return pq.read_table(path)
    if fmt == "json":
        return _from_json(path.read_text(encoding="utf-8"))
    return _read_csv(path)


def _read_csv(source: io.BytesIO | Path) -> pa.Table:
    # Empty cells in text columns are missing values, as they are in numeric columns.
    options = pacsv.ConvertOptions(strings_can_be_null=True)
    return pacsv.read_csv(source, convert_options=options)


def _from_json(text: str) -> pa.Table:
    """A JSON array of records, or newline-delimited JSON records."""
    if text.lstrip().startswith("["):
        return _from_rows(json.loads(text))
    return pajson.read_json(io.BytesIO(text.encode()))


def _from_logic(spec: object, ctx: EngineContext) -> pa.Table:
    if not isinstance(spec, dict) or set(spec) != {"dbname", "query"}:
        raise failure("invalid_payload", "data.logic must be an object with dbname and query")
    dbname, query = spec["dbname"], spec["query"]
    if not isinstance(dbname, str) or not dbname or not isinstance(query, str) or not query:
        raise failure("invalid_payload", "data.logic.dbname and data.logic.query must be strings")
    # Imported here: the Logic engine (and DuckDB) is only needed when a job reads from it.
    try:
        logic = importlib.import_module("rjobs.engines.logic")
        query_table = logic.query_table
        interrupted_error: type[Exception] = logic.QueryInterrupted
    except (ImportError, AttributeError) as exc:
        raise failure("logic_unavailable", f"Logic data sources are not available: {exc}") from exc
    try:
        table: pa.Table = query_table(
            ctx.data_dir,
            dbname,
            query,
            data_roots=tuple(ctx.data_roots),
            should_stop=lambda: ctx.interrupted,
        )
    except interrupted_error as exc:
        raise DataInterrupted(str(exc)) from exc
    return table


# ---------------------------------------------------------------------------------------------
# columns


@dataclass
class ColumnPlan:
    """Which columns feed the model, as what, and which were dropped and why."""

    features: list[str]
    kinds: dict[str, Kind]
    dropped: dict[str, str] = field(default_factory=dict)
    notes: list[ProblemInfo] = field(default_factory=list)

    @property
    def categorical(self) -> list[str]:
        return [name for name in self.features if self.kinds[name] == "categorical"]


def column_kind(data_type: Any) -> Kind | None:
    """How a column of this Arrow type is used; ``None`` when it cannot be used."""
    if (
        pa.types.is_boolean(data_type)
        or pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_decimal(data_type)
    ):
        return "numeric"
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return "categorical"
    if pa.types.is_temporal(data_type):
        return "temporal"
    return None


def plan_columns(table: pa.Table, target: str) -> ColumnPlan:
    """Choose the feature columns: drop constant, id-like and unusable ones, note each choice."""
    plan = ColumnPlan(features=[], kinds={})
    for name in table.column_names:
        if name == target:
            continue
        column = table.column(name)
        kind = None if pa.types.is_null(column.type) else column_kind(column.type)
        if kind is None and not pa.types.is_null(column.type):
            _drop(plan, name, f"unsupported type {column.type}", "warning")
            continue
        non_null = len(column) - column.null_count
        distinct = 0 if kind is None else int(pc.count_distinct(column, mode="only_valid").as_py())
        if distinct <= 1:
            why = "all values missing" if non_null == 0 else "constant (one distinct value)"
            _drop(plan, name, why)
            continue
        assert kind is not None
        id_reason = _id_like(name, column, kind, distinct, non_null)
        if id_reason:
            _drop(plan, name, f"id-like ({id_reason})")
            continue
        plan.features.append(name)
        plan.kinds[name] = kind
        _note_column(plan, name, column, kind, distinct)
    return plan


def _drop(
    plan: ColumnPlan, name: str, why: str, severity: Literal["info", "warning"] = "info"
) -> None:
    plan.dropped[name] = why
    plan.notes.append(ProblemInfo(severity, "column_dropped", f"column {name!r} dropped: {why}"))


def _id_like(name: str, column: Any, kind: Kind, distinct: int, non_null: int) -> str | None:
    """Why a column identifies rows rather than describing them, or ``None``.

    A text column whose values are all different cannot generalise to new rows. An integer column
    whose values are all different is an id when its name says so or when it numbers the rows
    (its values are a run of consecutive integers); other all-distinct numbers may be measurements.
    """
    if distinct != non_null or non_null < 3:
        return None
    if kind == "categorical":
        return "every value is different"
    if kind != "numeric" or not pa.types.is_integer(column.type):
        return None
    if _ID_NAME.search(name) or _CAMEL_ID.search(name):
        return "integer with every value different and an id-like name"
    bounds = pc.min_max(column).as_py()
    if bounds["max"] - bounds["min"] + 1 == non_null:
        return "consecutive integers numbering the rows"
    return None


def _note_column(plan: ColumnPlan, name: str, column: Any, kind: Kind, distinct: int) -> None:
    missing = column.null_count
    if pa.types.is_floating(column.type):
        missing += int(pc.sum(pc.is_nan(column)).as_py() or 0)
    if kind == "categorical":
        if distinct > MAX_CATEGORIES:
            how = (
                f"one-hot encoded ({distinct} categories: the {MAX_CATEGORIES - 1} most frequent"
                " in training are kept, the rest grouped as infrequent)"
            )
        else:
            how = f"one-hot encoded ({distinct} categories)"
        plan.notes.append(
            ProblemInfo(
                "info",
                "categorical_encoded",
                f"column {name!r} is categorical: {how}; categories not seen in training are"
                " ignored at prediction",
            )
        )
    elif kind == "temporal":
        plan.notes.append(
            ProblemInfo(
                "info",
                "temporal_as_number",
                f"column {name!r} ({column.type}) is used as a number (its integer encoding"
                " since 1970-01-01)",
            )
        )
    if missing:
        imputed = (
            f"imputed as the category {MISSING_CATEGORY!r}"
            if kind == "categorical"
            else "imputed with the training median"
        )
        plan.notes.append(
            ProblemInfo(
                "info", "missing_imputed", f"column {name!r}: {missing} missing values {imputed}"
            )
        )


def feature_matrix(
    table: pa.Table, features: list[str], kinds: dict[str, Kind]
) -> npt.NDArray[Any]:
    """The model input for ``features`` of ``table``, in that column order."""
    has_categorical = any(kinds[name] == "categorical" for name in features)
    matrix = np.empty((table.num_rows, len(features)), dtype=object if has_categorical else float)
    for j, name in enumerate(features):
        matrix[:, j] = _column_values(table.column(name), kinds[name], name)
    return matrix


def _column_values(column: Any, kind: Kind, name: str) -> npt.NDArray[Any]:
    try:
        if kind == "categorical":
            values = column.cast(pa.string()).to_pylist()
            return np.array([np.nan if v is None else v for v in values], dtype=object)
        if kind == "temporal":
            if not pa.types.is_temporal(column.type):
                raise failure("data_error", f"column {name!r} must be a date or time column")
            # 32-bit dates and times only cast to 32-bit integers.
            narrow = pa.types.is_date32(column.type) or pa.types.is_time32(column.type)
            column = column.cast(pa.int32() if narrow else pa.int64())
        result: npt.NDArray[Any] = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return result
    except pa.ArrowException as exc:
        raise failure("data_error", f"column {name!r} cannot be read as {kind}: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# target


def drop_missing_target(table: pa.Table, target: str) -> tuple[pa.Table, npt.NDArray[np.int64]]:
    """Rows whose target is present, and their indices in ``table``."""
    column = table.column(target)
    valid = pc.is_valid(column)
    if pa.types.is_floating(column.type):
        valid = pc.and_(valid, pc.invert(pc.is_nan(column)))
    keep = valid.to_numpy(zero_copy_only=False).astype(bool)
    rows = np.flatnonzero(keep).astype(np.int64)
    if len(rows) == table.num_rows:
        return table, rows
    return table.filter(pa.array(keep)), rows


def infer_problem(column: Any) -> tuple[Problem, str]:
    """Classification or regression from the target column, and why."""
    data_type = column.type
    if pa.types.is_floating(data_type) or pa.types.is_integer(data_type):
        values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        distinct = len(np.unique(values))
        integral = bool(np.all(np.mod(values, 1) == 0))
        if integral and distinct <= MAX_INFERRED_CLASSES:
            return "classification", (
                f"its {distinct} distinct values are whole numbers (at most "
                f"{MAX_INFERRED_CLASSES} are taken as classes)"
            )
        return "regression", f"it is numeric with {distinct} distinct values"
    if pa.types.is_decimal(data_type):
        return "regression", "it is a decimal number"
    return "classification", f"it is of type {data_type}"


def target_values(column: Any, problem: Problem, name: str) -> npt.NDArray[Any]:
    """The target as a numpy array: float for regression, native labels for classification."""
    data_type = column.type
    numeric = column_kind(data_type) == "numeric"
    if problem == "regression":
        if not numeric:
            raise failure(
                "target_not_numeric",
                f"target {name!r} ({data_type}) is not numeric: regression needs a numeric target",
            )
        values: npt.NDArray[Any] = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return values
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return np.array(column.to_pylist(), dtype=object)
    if pa.types.is_decimal(data_type):
        column = column.cast(pa.float64())
    if numeric:
        labels: npt.NDArray[Any] = column.to_numpy(zero_copy_only=False)
        return labels
    raise failure("target_unsupported", f"target {name!r} has unsupported type {data_type}")
