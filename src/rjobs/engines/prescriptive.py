"""The Prescriptive engine: LP and MIP models solved with HiGHS (``highspy``).

Payload::

    {
      "model": {"format": "mps" | "lp" | "json", "text": ...}      # inline model
            or {"format": ..., "path": "relative/or/absolute"},  # a file under the data roots
      "options": {"time_limit_s": 10, "mip_rel_gap": 1e-4, "threads": 1,
                  "<any other HiGHS option>": value},
      "values": "all" | "nonzero" | "none"                          # default "all"
    }

``format`` may be left out with ``path`` when the file name ends in ``.mps``, ``.lp`` or
``.json`` (optionally followed by ``.gz``). For ``json`` the ``text`` may be a JSON string or the
model object itself. Options are HiGHS option names (``time_limit_s`` is rjobs' spelling of
``time_limit``); options that write files or steer logging are reserved for the engine.

JSON model::

    {
      "sense": "min" | "max",                       # default "min"
      "objective_offset": 0.0,                      # default 0
      "variables": [
        {"name": "x",                               # required, unique
         "type": "continuous" | "integer" | "binary",   # default "continuous"
         "lb": 0, "ub": null,                       # defaults 0 and +inf (binary: 0 and 1);
                                                    # null means -inf for lb, +inf for ub
         "obj": 1.5}                                # objective coefficient, default 0
      ],
      "constraints": [
        {"name": "cap",                             # optional (default "c1", "c2", ...), unique
         "terms": {"x": 2, "y": 3}                  # or [["x", 2], ["y", 3]] (repeats add up)
         "lb": null, "ub": 10}                      # at least one bound; null = unbounded side
      ]
    }

Bounds that contradict each other (``lb > ub``) make an infeasible model, not a bad payload.

Result: ``status`` (``optimal``, ``infeasible``, ``unbounded``, ``unbounded_or_infeasible``,
``time_limit``, ``interrupted``, ``iteration_limit``, ...), ``status_detail`` (HiGHS' wording),
``objective`` (of the best solution, ``None`` without one), ``bound`` (dual bound; an optimal LP's
objective), ``gap`` (relative MIP gap; 0 for an optimal LP), ``solve_time_s``, ``is_mip``,
``num_variables``, ``num_constraints``, ``has_solution``, ``solutions_found``, ``node_count``,
``simplex_iterations`` and ``values`` (``{name: value}``; ``nonzero`` keeps ``|value| > 1e-9``;
left out for ``none``). Non-finite numbers are ``None``. The artifact ``solution.json`` holds the
result with every value.

Events (``progress``): ``started``; ``solution`` per improving MIP solution and ``bound`` at most
every 0.5 s (``objective``, ``bound``, ``gap``, ``elapsed_s``); ``finished``. HiGHS' log lines go
to the ``log`` stream. A cancel stops the solve through HiGHS' interrupt callbacks and the result
(status ``interrupted``) keeps the best incumbent.

HiGHS' readers are lenient (an MPS file with a misspelt section or a bad number loads as a wrong
model, with at most a warning), so MPS text is checked here first and a model that does not parse
fails with a ``parse_error`` problem pointing at its line.
"""

from __future__ import annotations

import difflib
import gzip
import json
import logging
import math
import re
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeGuard

import highspy

from rjobs.engines.base import EngineContext, EngineFailure, ProblemInfo, resolve_data_path

logger = logging.getLogger(__name__)

_FORMATS = ("mps", "lp", "json")
_VALUES_MODES = ("all", "nonzero", "none")
_PAYLOAD_KEYS = ("model", "options", "values")
_NONZERO_TOL = 1e-9
_BOUND_EVENT_INTERVAL_S = 0.5
_MAX_READ_WARNINGS = 20

# rjobs spellings of HiGHS options
_OPTION_ALIASES = {"time_limit_s": "time_limit"}
# The engine owns logging and must not let a payload read or write host files.
_RESERVED_OPTIONS = frozenset({"output_flag", "log_to_console", "log_file", "log_githash"})

# keyed by enum member name: the stubs lack some members (kHighsInterrupt)
_STATUS_NAMES: dict[str, str] = {
    "kNotset": "not_set",
    "kLoadError": "load_error",
    "kModelError": "model_error",
    "kPresolveError": "presolve_error",
    "kSolveError": "solve_error",
    "kPostsolveError": "postsolve_error",
    "kModelEmpty": "model_empty",
    "kOptimal": "optimal",
    "kInfeasible": "infeasible",
    "kUnboundedOrInfeasible": "unbounded_or_infeasible",
    "kUnbounded": "unbounded",
    "kObjectiveBound": "objective_bound",
    "kObjectiveTarget": "objective_target",
    "kTimeLimit": "time_limit",
    "kIterationLimit": "iteration_limit",
    "kUnknown": "unknown",
    "kSolutionLimit": "solution_limit",
    "kInterrupt": "interrupted",
    "kMemoryLimit": "memory_limit",
    "kHighsInterrupt": "interrupted",
}
# Statuses that mean HiGHS failed rather than finished: the job fails.
_FAILED_STATUSES = frozenset(
    {"not_set", "load_error", "model_error", "presolve_error", "solve_error", "postsolve_error"}
)
# Statuses whose "solution" is not a usable point (HiGHS may still report a feasible ray start).
_NO_OBJECTIVE = frozenset({"infeasible", "unbounded", "unbounded_or_infeasible"})

_LOG_LEVELS = {
    highspy.HighsLogType.kInfo: "info",
    highspy.HighsLogType.kDetailed: "detailed",
    highspy.HighsLogType.kVerbose: "verbose",
    highspy.HighsLogType.kWarning: "warning",
    highspy.HighsLogType.kError: "error",
}

# HiGHS' thread scheduler is global to the process and refuses a different ``threads`` value
# once started; remember what it was started with so the next job can restart it if needed.
_scheduler_threads: int | None = None


def _fail(
    code: str, message: str, *, line: int | None = None, column: int | None = None
) -> NoReturn:
    raise EngineFailure(message, [ProblemInfo("error", code, message, line=line, column=column)])


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite(value: object) -> float | None:
    """A JSON-safe float: ``None`` for inf, nan or anything that is not a number."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# --------------------------------------------------------------------------------------------
# Payload


@dataclass(frozen=True)
class _Request:
    format: str
    text: str | None  # mps / lp text, or json text
    json_model: object  # json: an already-parsed model object (when text is None)
    source: str  # how messages name the model
    options: dict[str, bool | int | float | str]
    values: str


def _parse_payload(payload: Mapping[str, Any], ctx: EngineContext) -> _Request:
    if not isinstance(payload, Mapping):
        _fail("invalid_payload", "payload must be an object with model, options and values")
    unknown = sorted(set(payload) - set(_PAYLOAD_KEYS))
    if unknown:
        _fail(
            "invalid_payload",
            f"unknown payload keys {unknown}; allowed: {list(_PAYLOAD_KEYS)} (or a probe payload)",
        )
    values = payload.get("values", "all")
    if values not in _VALUES_MODES:
        _fail("invalid_payload", f"values must be one of {list(_VALUES_MODES)}, not {values!r}")
    options = _parse_options(payload.get("options"))
    if "model" not in payload:
        _fail("invalid_payload", 'payload needs "model": {"format", "text"} or {"format", "path"}')
    fmt, text, json_model, source = _parse_model_spec(payload["model"], ctx)
    return _Request(fmt, text, json_model, source, options, str(values))


def _parse_model_spec(spec: object, ctx: EngineContext) -> tuple[str, str | None, object, str]:
    if not isinstance(spec, Mapping):
        _fail(
            "invalid_payload", 'model must be an object: {"format", "text"} or {"format", "path"}'
        )
    unknown = sorted(set(spec) - {"format", "text", "path"})
    if unknown:
        _fail("invalid_payload", f"unknown model keys {unknown}; allowed: format, text, path")
    if ("text" in spec) == ("path" in spec):
        _fail("invalid_payload", "model needs exactly one of text or path")
    fmt = spec.get("format")
    if "path" in spec:
        raw = spec["path"]
        if fmt is None and isinstance(raw, str):
            fmt = _format_from_suffix(raw)
        _check_format(fmt)
        try:
            path = resolve_data_path(raw, ctx.data_roots, what="model.path")
        except EngineFailure as exc:
            _fail("invalid_path", exc.message)
        return str(fmt), _read_model_file(path), None, str(raw)
    _check_format(fmt)
    text = spec["text"]
    if fmt == "json" and isinstance(text, Mapping):
        return "json", None, text, "model.text"
    if not isinstance(text, str) or not text.strip():
        allowed = "a non-empty string" + (" or a model object" if fmt == "json" else "")
        _fail("invalid_payload", f"model.text must be {allowed}")
    return str(fmt), text, None, "model.text"


def _check_format(fmt: object) -> None:
    if fmt not in _FORMATS:
        _fail("invalid_payload", f"model.format must be one of {list(_FORMATS)}, not {fmt!r}")


def _format_from_suffix(raw: str) -> str | None:
    name = raw.lower().removesuffix(".gz")
    for fmt in _FORMATS:
        if name.endswith("." + fmt):
            return fmt
    return None


def _read_model_file(path: Path) -> str:
    data = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            _fail("invalid_path", f"model.path {path.name!r} is not a readable gzip file: {exc}")
    # surrogateescape keeps any non-UTF-8 bytes (old MPS files) intact when written back
    return data.decode("utf-8", errors="surrogateescape")


def _parse_options(raw: object) -> dict[str, bool | int | float | str]:
    """Check the rjobs-level rules; HiGHS checks names, types and ranges when they are set."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        _fail("invalid_option", "options must be an object of HiGHS option names to values")
    options: dict[str, bool | int | float | str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key:
            _fail("invalid_option", f"option names must be non-empty strings, not {key!r}")
        name = _OPTION_ALIASES.get(key, key)
        if name in _RESERVED_OPTIONS or "file" in name:
            _fail(
                "invalid_option",
                f"option {key!r} is not allowed: the engine controls logging and files",
            )
        if name in options:
            _fail("invalid_option", f"option {key!r} is given twice (time_limit_s is time_limit)")
        if not isinstance(value, bool | int | float | str):
            _fail("invalid_option", f"option {key!r} must be a number, boolean or string")
        if isinstance(value, float) and math.isnan(value):
            _fail("invalid_option", f"option {key!r} must not be NaN")
        options[name] = value
    limit = options.get("time_limit")
    if "time_limit" in options and (not _is_number(limit) or float(limit) <= 0):
        _fail("invalid_option", "time_limit_s must be a number of seconds > 0")
    gap = options.get("mip_rel_gap")
    if "mip_rel_gap" in options and (not _is_number(gap) or float(gap) < 0):
        _fail("invalid_option", "mip_rel_gap must be a number >= 0")
    threads = options.get("threads")
    if "threads" in options and (
        not isinstance(threads, int) or isinstance(threads, bool) or threads < 0
    ):
        _fail("invalid_option", "threads must be an integer >= 0 (0: let HiGHS choose)")
    return options


# --------------------------------------------------------------------------------------------
# JSON models


def _json_model_to_lp(model: object) -> highspy.HighsLp:
    """Validate a JSON model and build the HiGHS LP for it."""
    if not isinstance(model, Mapping):
        _invalid("the JSON model must be an object with sense, variables and constraints")
    unknown = sorted(set(model) - {"sense", "variables", "constraints", "objective_offset"})
    if unknown:
        _invalid(
            f"unknown JSON model keys {unknown}; allowed: sense, variables, constraints, "
            "objective_offset"
        )
    sense = model.get("sense", "min")
    if sense not in ("min", "max"):
        _invalid(f'sense must be "min" or "max", not {sense!r}')
    offset = model.get("objective_offset", 0)
    if not _is_number(offset) or not math.isfinite(offset):
        _invalid("objective_offset must be a finite number")
    variables = model.get("variables")
    if not isinstance(variables, list) or not variables:
        _invalid("variables must be a non-empty list of {name, type, lb, ub, obj}")
    constraints = model.get("constraints", [])
    if not isinstance(constraints, list):
        _invalid("constraints must be a list of {name, terms, lb, ub}")

    lp = highspy.HighsLp()
    index: dict[str, int] = {}
    names: list[str] = []
    costs: list[float] = []
    lower: list[float] = []
    upper: list[float] = []
    integrality: list[highspy.HighsVarType] = []
    for i, var in enumerate(variables):
        name, lb, ub, obj, is_int = _json_variable(i, var)
        if name in index:
            _invalid(f"variables[{i}]: the name {name!r} is used twice")
        index[name] = i
        names.append(name)
        costs.append(obj)
        lower.append(lb)
        upper.append(ub)
        kind = highspy.HighsVarType.kInteger if is_int else highspy.HighsVarType.kContinuous
        integrality.append(kind)

    row_names: list[str] = []
    seen_rows: set[str] = set()
    row_lower: list[float] = []
    row_upper: list[float] = []
    starts = [0]
    cols: list[int] = []
    coefs: list[float] = []
    for r, con in enumerate(constraints):
        name, terms, lb, ub = _json_constraint(r, con, index)
        if name in seen_rows:
            _invalid(f"constraints[{r}]: the name {name!r} is used twice")
        seen_rows.add(name)
        row_names.append(name)
        row_lower.append(lb)
        row_upper.append(ub)
        for col, coef in terms.items():
            if coef != 0:
                cols.append(col)
                coefs.append(coef)
        starts.append(len(cols))

    lp.num_col_ = len(names)
    lp.num_row_ = len(row_names)
    lp.col_cost_ = costs
    lp.col_lower_ = lower
    lp.col_upper_ = upper
    lp.row_lower_ = row_lower
    lp.row_upper_ = row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.num_col_ = len(names)
    lp.a_matrix_.num_row_ = len(row_names)
    lp.a_matrix_.start_ = starts
    lp.a_matrix_.index_ = cols
    lp.a_matrix_.value_ = coefs
    lp.integrality_ = integrality
    lp.sense_ = highspy.ObjSense.kMaximize if sense == "max" else highspy.ObjSense.kMinimize
    lp.offset_ = float(offset)
    lp.col_names_ = names
    lp.row_names_ = row_names
    return lp


def _invalid(message: str) -> NoReturn:
    _fail("invalid_model", f"invalid JSON model: {message}")


def _bound(where: str, key: str, value: object, default: float) -> float:
    """A bound from JSON: a number, ``None`` for the infinite side, or the default if absent."""
    if value is _MISSING:
        return default
    if value is None:
        return -math.inf if key == "lb" else math.inf
    if not _is_number(value) or math.isnan(value):
        _invalid(f"{where}: {key} must be a number or null, not {value!r}")
    return float(value)


_MISSING = object()
_VARIABLE_KEYS = ("name", "type", "lb", "ub", "obj")
_CONSTRAINT_KEYS = ("name", "terms", "lb", "ub")


def _json_variable(i: int, var: object) -> tuple[str, float, float, float, bool]:
    where = f"variables[{i}]"
    if not isinstance(var, Mapping):
        _invalid(f"{where} must be an object with keys {list(_VARIABLE_KEYS)}")
    unknown = sorted(set(var) - set(_VARIABLE_KEYS))
    if unknown:
        _invalid(f"{where}: unknown keys {unknown}; allowed: {list(_VARIABLE_KEYS)}")
    name = var.get("name")
    if not isinstance(name, str) or not name:
        _invalid(f"{where}: name must be a non-empty string")
    where = f"{where} ({name!r})"
    kind = var.get("type", "continuous")
    if kind not in ("continuous", "integer", "binary"):
        _invalid(f'{where}: type must be "continuous", "integer" or "binary", not {kind!r}')
    obj = var.get("obj", 0)
    if not _is_number(obj) or not math.isfinite(obj):
        _invalid(f"{where}: obj must be a finite number")
    binary = kind == "binary"
    lb = _bound(where, "lb", var.get("lb", _MISSING), 0.0)
    ub = _bound(where, "ub", var.get("ub", _MISSING), 1.0 if binary else math.inf)
    if binary and (lb < 0 or ub > 1):
        _invalid(f"{where}: a binary variable's bounds must lie within [0, 1]")
    return name, lb, ub, float(obj), kind != "continuous"


def _json_constraint(
    r: int, con: object, index: Mapping[str, int]
) -> tuple[str, dict[int, float], float, float]:
    where = f"constraints[{r}]"
    if not isinstance(con, Mapping):
        _invalid(f"{where} must be an object with keys {list(_CONSTRAINT_KEYS)}")
    unknown = sorted(set(con) - set(_CONSTRAINT_KEYS))
    if unknown:
        _invalid(f"{where}: unknown keys {unknown}; allowed: {list(_CONSTRAINT_KEYS)}")
    name = con.get("name", f"c{r + 1}")
    if not isinstance(name, str) or not name:
        _invalid(f"{where}: name must be a non-empty string")
    where = f"{where} ({name!r})"
    raw_terms = con.get("terms")
    pairs: Iterable[object]
    if isinstance(raw_terms, Mapping):
        pairs = list(raw_terms.items())
    elif isinstance(raw_terms, list):
        pairs = raw_terms
    else:
        _invalid(
            f"{where}: terms must be an object {{variable: coef}} or a list of [variable, coef]"
        )
    terms: dict[int, float] = {}
    for pair in pairs:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            _invalid(f"{where}: each term must be a [variable, coef] pair, not {pair!r}")
        var, coef = pair
        if not isinstance(var, str) or var not in index:
            _invalid(f"{where}: unknown variable {var!r} (declare it under variables)")
        if not _is_number(coef) or not math.isfinite(coef):
            _invalid(f"{where}: the coefficient of {var!r} must be a finite number")
        col = index[var]
        terms[col] = terms.get(col, 0.0) + float(coef)
    if con.get("lb") is None and con.get("ub") is None:
        _invalid(f"{where}: give lb, ub or both (lb == ub for an equality)")
    lb = _bound(where, "lb", con.get("lb", _MISSING), -math.inf)
    ub = _bound(where, "ub", con.get("ub", _MISSING), math.inf)
    return name, terms, lb, ub


# --------------------------------------------------------------------------------------------
# MPS pre-scan

# Sections HiGHS knows; only the ones below with rules are checked line by line.
_MPS_SECTIONS = frozenset(
    {
        "NAME", "OBJSENSE", "OBJSENS", "OBJNAME", "ROWS", "LAZYCONS", "USERCUTS", "COLUMNS",
        "RHS", "RANGES", "BOUNDS", "SOS", "QUADOBJ", "QMATRIX", "QSECTION", "QCMATRIX",
        "CSECTION", "INDICATORS", "GENCONS", "PWLOBJ", "PWLNAM", "PWLCON", "DELAYEDROWS",
        "MODELCUTS", "SETS", "ENDATA",
    }
)  # fmt: skip
_ROW_TYPES = frozenset({"N", "E", "L", "G"})
_VALUED_BOUNDS = frozenset({"UP", "LO", "FX", "LI", "UI"})
_OPTIONAL_VALUE_BOUNDS = frozenset({"FR", "MI", "PL", "BV", "SC", "SI"})
_SENSES = frozenset({"MAX", "MIN", "MAXIMIZE", "MINIMIZE"})
_NUMBER = re.compile(r"[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf(inity)?)", re.IGNORECASE)


def _mps_number(token: str) -> bool:
    return _NUMBER.fullmatch(token) is not None


class _MpsScanner:
    """A light MPS checker: sections, row and bound types, numbers and names, line by line.

    Each data line is read as free format (whitespace-separated) and, if that does not fit,
    as fixed format (names with spaces in fixed columns), so both dialects pass.
    """

    def __init__(self) -> None:
        self.rows: set[str] = set()
        self.columns: set[str] = set()

    def scan(self, lines: list[str]) -> ProblemInfo | None:
        section: str | None = None
        for number, line in enumerate(lines, start=1):
            if not line.strip() or line.startswith("*"):
                continue
            if not line[0].isspace():
                words = line.split()
                keyword = words[0].upper()
                if keyword not in _MPS_SECTIONS:
                    close = difflib.get_close_matches(keyword, sorted(_MPS_SECTIONS), n=1)
                    hint = f" (did you mean {close[0]}?)" if close else ""
                    return self._error(
                        number,
                        f"{words[0]!r} is not an MPS section{hint}; expected one of NAME, "
                        "OBJSENSE, ROWS, COLUMNS, RHS, RANGES, BOUNDS, ..., ENDATA",
                    )
                if keyword == "ENDATA":
                    return None
                sense = words[1].upper() if len(words) > 1 else None
                if keyword in ("OBJSENSE", "OBJSENS") and sense and sense not in _SENSES:
                    return self._error(number, f"OBJSENSE must be MAX or MIN, not {words[1]!r}")
                section = keyword
                continue
            if section is None:
                return self._error(number, "data line before the first section (NAME or ROWS)")
            error = self._check(section, line.split())
            if error is not None:
                # not free format: maybe fixed format (names with spaces in fixed columns)
                fixed = self._fixed_fields(section, line)
                if fixed is not None and self._check(section, fixed) is None:
                    error = None
            if error is not None:
                return self._error(number, f"{section} section: {error}")
        last = max((n for n, line in enumerate(lines, start=1) if line.strip()), default=1)
        return self._error(last, "the file ends without ENDATA")

    @staticmethod
    def _error(line: int, message: str) -> ProblemInfo:
        return ProblemInfo("error", "parse_error", f"line {line}: {message}", line=line)

    @staticmethod
    def _fixed_fields(section: str, line: str) -> list[str] | None:
        """Fields of a fixed-format line (columns 2-3, 5-12, 15-22, 25-36, 40-47, 50-61)."""
        f = [
            line[a:b].strip() for a, b in ((1, 3), (4, 12), (14, 22), (24, 36), (39, 47), (49, 61))
        ]
        tail = f[4:6] if f[4] else []
        if section == "ROWS":
            return f[0:2]
        if section == "COLUMNS":
            return [f[1], f[2], f[3], *tail]
        if section in ("RHS", "RANGES"):
            return [*([f[1]] if f[1] else []), f[2], f[3], *tail]
        if section == "BOUNDS":
            return [f[0], *([f[1]] if f[1] else []), f[2], *([f[3]] if f[3] else [])]
        return None

    def _check(self, section: str, words: list[str]) -> str | None:
        """Check one data line's fields; returns what is wrong, or None."""
        if section == "ROWS":
            return self._check_row(words)
        if section == "COLUMNS":
            return self._check_column(words)
        if section in ("RHS", "RANGES"):
            # [set name] row value [row value]: the set name is optional in free format
            pairs = words[1:] if len(words) % 2 else words
            if len(pairs) not in (2, 4):
                return "expected [set] row value [row value]"
            return self._check_pairs(pairs, f"{section} entry")
        if section == "BOUNDS":
            return self._check_bound(words)
        if section in ("OBJSENSE", "OBJSENS") and (
            len(words) != 1 or words[0].upper() not in _SENSES
        ):
            return f"expected MAX or MIN, not {' '.join(words)!r}"
        return None

    def _check_row(self, words: list[str]) -> str | None:
        if len(words) != 2:
            return "expected a row type (N, E, L or G) and a row name"
        kind, name = words[0].upper(), words[1]
        if kind not in _ROW_TYPES:
            return f"row type {words[0]!r} is not one of N, E, L, G"
        if name in self.rows:
            return f"row {name!r} is declared twice"
        self.rows.add(name)
        return None

    def _check_column(self, words: list[str]) -> str | None:
        if len(words) >= 2 and words[1].strip("'").upper() == "MARKER":
            if len(words) < 3 or words[2].strip("'").upper() not in ("INTORG", "INTEND"):
                return "an integer MARKER line must say 'INTORG' or 'INTEND'"
            return None
        if len(words) not in (3, 5):
            return "expected column row value [row value]"
        error = self._check_pairs(words[1:], f"entry of column {words[0]!r}")
        if error is None:
            self.columns.add(words[0])
        return error

    def _check_pairs(self, pairs: list[str], what: str) -> str | None:
        for row, value in zip(pairs[::2], pairs[1::2], strict=True):
            if row not in self.rows:
                return f"{what} refers to row {row!r}, which is not declared in ROWS"
            if not _mps_number(value):
                return f"{value!r} is not a number ({what}, row {row!r})"
        return None

    def _check_bound(self, words: list[str]) -> str | None:
        kind = words[0].upper() if words else ""
        valued = kind in _VALUED_BOUNDS
        if not valued and kind not in _OPTIONAL_VALUE_BOUNDS:
            allowed = ", ".join(sorted(_VALUED_BOUNDS | _OPTIONAL_VALUE_BOUNDS))
            return f"bound type {words[0] if words else ''!r} is not one of {allowed}"
        rest = words[1:]
        # The bound set name is optional and the value too for some types: try the readings
        # [set] column value and [set] column, and accept the first that names a column.
        readings: list[tuple[str, str | None]] = []
        if len(rest) in (2, 3):
            readings.append((rest[-2], rest[-1]))
        if not valued and len(rest) in (1, 2):
            readings.append((rest[-1], None))
        if not readings:
            form = "[set] column value" if valued else "[set] column [value]"
            return f"a {kind} bound is written {kind} {form}"
        for column, value in readings:
            if column in self.columns and (value is None or _mps_number(value)):
                return None
        column, value = readings[0]
        if value is not None and not _mps_number(value) and valued:
            return f"{value!r} is not a number ({kind} bound of column {column!r})"
        return f"bound on column {column!r}, which is not declared in COLUMNS"


# --------------------------------------------------------------------------------------------
# HiGHS reader diagnostics

_LOCATION = re.compile(r"-->\s*(?P<file>.+?):(?P<line>\d+):(?P<column>\d+)")
_CARET = re.compile(r"^\s*\|\s*\^+\s*(?P<hint>\S.*)$", re.MULTILINE)
_HELP = re.compile(r"=\s*help:\s*(?P<help>.+)$", re.MULTILINE)
_QUOTED = re.compile(r"\"([^\"]+)\"")


def _reader_problem(messages: list[str], lines: list[str], fmt: str, tmp: str) -> ProblemInfo:
    """Turn the reader's ERROR messages into one problem, locating the line where possible."""
    errors = [m for m in messages if m.lstrip().startswith("ERROR")]
    detail = next(
        (m for m in errors if "Parser error reading" not in m), errors[0] if errors else ""
    )
    first = detail.strip().splitlines()[0] if detail.strip() else "the reader gave no reason"
    text = first.removeprefix("ERROR:").strip().replace(tmp, f"model.{fmt}")
    line: int | None = None
    column: int | None = None
    if match := _LOCATION.search(detail):
        line, column = int(match["line"]), int(match["column"])
        if hint := _CARET.search(detail):
            text += f": {hint['hint'].strip()}"
        if help_ := _HELP.search(detail):
            text += f" (help: {help_['help'].strip()})"
    else:
        # Older diagnostics name the offending entry in quotes: find the first line with it.
        for token in _QUOTED.findall(detail):
            line = _line_of(lines, token)
            if line is not None:
                break
    where = f"line {line}" + (f", column {column}" if column else "") + ": " if line else ""
    message = f"the {fmt.upper()} model does not parse: {where}{text}"
    return ProblemInfo("error", "parse_error", message, line=line, column=column)


def _line_of(lines: list[str], token: str) -> int | None:
    pattern = re.compile(r"(?<!\S)" + re.escape(token) + r"(?!\S)")
    for number, line in enumerate(lines, start=1):
        if pattern.search(line):
            return number
    return None


# --------------------------------------------------------------------------------------------
# Solving


class _Monitor:
    """The HiGHS callbacks of one job: log lines, improving solutions, bounds, interrupts.

    HiGHS swallows exceptions raised in callbacks (and then ends the solve with an error), so
    every callback catches everything and at worst loses an event.
    """

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.started = time.monotonic()
        self.errors: deque[str] = deque(maxlen=3)  # the last ERROR messages, to explain a failure
        self.solutions = 0
        self._captured: list[str] | None = None
        self._partial = ""
        self._last_bound = 0.0
        self._lock = threading.Lock()  # HiGHS may call back from its worker threads

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 4)

    def attach(self, highs: highspy.Highs) -> None:
        highs.cbLogging.subscribe(self._guard(self._on_log))
        highs.cbMipImprovingSolution.subscribe(self._guard(self._on_solution))
        highs.cbMipInterrupt.subscribe(self._guard(self._on_mip_interrupt))
        highs.cbSimplexInterrupt.subscribe(self._guard(self._on_interrupt))
        highs.cbIpmInterrupt.subscribe(self._guard(self._on_interrupt))

    def _guard(
        self, fn: Callable[[highspy.HighsCallbackEvent], None]
    ) -> Callable[[highspy.HighsCallbackEvent], None]:
        def callback(event: highspy.HighsCallbackEvent) -> None:
            try:
                fn(event)
            except Exception:
                logger.exception("HiGHS callback %s failed", fn.__name__)

        return callback

    def _on_log(self, event: highspy.HighsCallbackEvent) -> None:
        message = str(event.message)
        level = _LOG_LEVELS.get(event.data_out.log_type, "info")
        with self._lock:
            if self._captured is not None:
                self._captured.append(message)
            if message.lstrip().startswith("ERROR"):
                self.errors.append(message.strip())
            # HiGHS sometimes writes a line in pieces: emit only completed lines
            text = self._partial + message
            *complete, self._partial = text.split("\n")
        for line in complete:
            if line.strip():
                self.ctx.emit("log", stream="log", line=line.rstrip(), level=level)

    @contextmanager
    def capture(self) -> Iterator[list[str]]:
        """Collect the log messages written inside the block (a reader's or option's errors)."""
        captured: list[str] = []
        self._captured = captured
        try:
            yield captured
        finally:
            self._captured = None

    def flush_log(self) -> None:
        with self._lock:
            rest, self._partial = self._partial, ""
        if rest.strip():
            self.ctx.emit("log", stream="log", line=rest.rstrip(), level="info")

    def _on_solution(self, event: highspy.HighsCallbackEvent) -> None:
        out = event.data_out
        with self._lock:
            self.solutions += 1
        self.ctx.emit(
            "solution",
            objective=_finite(out.objective_function_value),
            bound=_finite(out.mip_dual_bound),
            gap=_finite(out.mip_gap),
            elapsed_s=self.elapsed(),
        )

    def _on_interrupt(self, event: highspy.HighsCallbackEvent) -> None:
        if self.ctx.interrupted:
            event.interrupt()

    def _on_mip_interrupt(self, event: highspy.HighsCallbackEvent) -> None:
        if self.ctx.interrupted:
            event.interrupt()
            return
        now = time.monotonic()
        if now - self._last_bound < _BOUND_EVENT_INTERVAL_S:
            return
        self._last_bound = now
        out = event.data_out
        self.ctx.emit(
            "bound",
            objective=_finite(out.mip_primal_bound),
            bound=_finite(out.mip_dual_bound),
            gap=_finite(out.mip_gap),
            nodes=int(out.mip_node_count),
            elapsed_s=self.elapsed(),
        )


def _apply_options(
    highs: highspy.Highs, options: Mapping[str, bool | int | float | str], monitor: _Monitor
) -> None:
    for name, value in options.items():
        shown = next((k for k, v in _OPTION_ALIASES.items() if v == name), name)
        status, kind = highs.getOptionType(name)
        if status != highspy.HighsStatus.kOk:
            known = [n for n in dir(highs.getOptions()) if not n.startswith("_")]
            close = difflib.get_close_matches(name, [*known, *_OPTION_ALIASES], n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            _fail(
                "invalid_option",
                f"unknown option {shown!r}: not a HiGHS option{hint} (rjobs also accepts "
                "time_limit_s)",
            )
        converted = _option_value(shown, kind, value)
        with monitor.capture() as said_lines:
            status = highs.setOptionValue(name, converted)
        if status != highspy.HighsStatus.kOk:
            said = " ".join(m.strip() for m in said_lines) or "out of range"
            _fail("invalid_option", f"option {shown!r} = {value!r} was refused by HiGHS: {said}")


def _option_value(
    shown: str, kind: highspy.HighsOptionType, value: bool | int | float | str
) -> bool | int | float | str:
    if kind == highspy.HighsOptionType.kBool:
        if not isinstance(value, bool):
            _fail("invalid_option", f"option {shown!r} must be true or false, not {value!r}")
        return value
    if kind == highspy.HighsOptionType.kInt:
        if not isinstance(value, int) or isinstance(value, bool):
            _fail("invalid_option", f"option {shown!r} must be an integer, not {value!r}")
        return value
    if kind == highspy.HighsOptionType.kDouble:
        if not _is_number(value):
            _fail("invalid_option", f"option {shown!r} must be a number, not {value!r}")
        return float(value)
    if not isinstance(value, str):
        _fail("invalid_option", f"option {shown!r} must be a string, not {value!r}")
    return value


def _load_model(highs: highspy.Highs, request: _Request, monitor: _Monitor) -> None:
    if request.format == "json":
        _load_json(highs, request)
        return
    assert request.text is not None
    text = request.text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if request.format == "mps":
        problem = _MpsScanner().scan(lines)
        if problem is not None:
            message = f"the MPS model does not parse: {problem.message}"
            raise EngineFailure(
                message, [ProblemInfo("error", "parse_error", message, problem.line)]
            )
    with tempfile.TemporaryDirectory(prefix="rjobs-highs-") as tmp:
        # highspy reads only files, and picks the reader from the file name's suffix
        path = Path(tmp) / f"model.{request.format}"
        path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
        with monitor.capture() as said:
            status = highs.readModel(str(path))
    if status == highspy.HighsStatus.kError:
        problem = _reader_problem(said, lines, request.format, str(path))
        raise EngineFailure(problem.message, [problem])
    warnings = [m.strip() for m in said if m.lstrip().startswith("WARNING")]
    for warning in warnings[:_MAX_READ_WARNINGS]:
        text_ = warning.removeprefix("WARNING:").strip().replace(str(path), request.source)
        monitor.ctx.problem("warning", "model_warning", text_)


def _load_json(highs: highspy.Highs, request: _Request) -> None:
    model = request.json_model
    if request.text is not None:
        try:
            model = json.loads(request.text)
        except json.JSONDecodeError as exc:
            message = (
                f"the JSON model does not parse: line {exc.lineno}, column {exc.colno}: {exc.msg}"
            )
            _fail("parse_error", message, line=exc.lineno, column=exc.colno)
    lp = _json_model_to_lp(model)
    if highs.passModel(lp) == highspy.HighsStatus.kError:
        _invalid("HiGHS refused the model (see the log)")


def _solve(highs: highspy.Highs, ctx: EngineContext, options: Mapping[str, object]) -> None:
    global _scheduler_threads
    threads = int(highs.getOptionValue("threads")[1])
    if _scheduler_threads is not None and threads != _scheduler_threads:
        highspy.Highs.resetThreadScheduler(True)
    _scheduler_threads = threads
    started = time.monotonic()
    highs.run()
    unsure = highs.getModelStatus() == highspy.HighsModelStatus.kUnboundedOrInfeasible
    if unsure and not ctx.interrupted and options.get("presolve") != "off":
        # Presolve can tell only "unbounded or infeasible"; a solve without it says which.
        limit = float(highs.getOptionValue("time_limit")[1])
        remaining = limit - (time.monotonic() - started)
        if remaining > 0:
            logger.info("unbounded or infeasible after presolve: solving again without it")
            highs.setOptionValue("presolve", "off")
            highs.setOptionValue("time_limit", remaining)
            highs.run()


def _is_mip(highs: highspy.Highs) -> bool:
    integrality = highs.getLp().integrality_
    return any(t != highspy.HighsVarType.kContinuous for t in integrality)


def _collect_result(
    highs: highspy.Highs, monitor: _Monitor, is_mip: bool, solve_time_s: float
) -> tuple[dict[str, Any], dict[str, float | None]]:
    """The result (without values) and every variable's value."""
    model_status = highs.getModelStatus()
    status = _STATUS_NAMES.get(model_status.name, "unknown")
    info = highs.getInfo()
    solution = highs.getSolution()
    feasible = info.primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible
    has_solution = bool(solution.value_valid) and feasible and status not in _NO_OBJECTIVE
    objective = _finite(info.objective_function_value) if has_solution else None
    if is_mip:
        bound = _finite(info.mip_dual_bound)
        gap = _finite(info.mip_gap) if has_solution else None
    elif status == "optimal":
        bound, gap = objective, 0.0
    else:
        bound, gap = None, None
    values: dict[str, float | None] = {}
    if has_solution:
        names = list(highs.getLp().col_names_)
        if len(names) != highs.getNumCol():
            names = [f"x{i + 1}" for i in range(highs.getNumCol())]
        values = {name: _finite(v) for name, v in zip(names, solution.col_value, strict=True)}
    result: dict[str, Any] = {
        "status": status,
        "status_detail": highs.modelStatusToString(model_status),
        "objective": objective,
        "bound": bound,
        "gap": gap,
        "solve_time_s": round(solve_time_s, 4),
        "is_mip": is_mip,
        "num_variables": highs.getNumCol(),
        "num_constraints": highs.getNumRow(),
        "has_solution": has_solution,
        "solutions_found": monitor.solutions,
        "node_count": max(int(info.mip_node_count), 0) if is_mip else None,
        "simplex_iterations": max(int(info.simplex_iteration_count), 0),
    }
    return result, values


def _select_values(values: Mapping[str, float | None], mode: str) -> dict[str, float | None]:
    if mode == "nonzero":
        return {k: v for k, v in values.items() if v is not None and abs(v) > _NONZERO_TOL}
    return dict(values)


class PrescriptiveEngine:
    """Solves LP and MIP models (MPS, LP or JSON) with HiGHS; see the module docstring."""

    def run(self, payload: dict[str, Any], ctx: EngineContext) -> dict[str, Any]:
        request = _parse_payload(payload, ctx)
        # A fresh Highs per job: no options, model or callbacks leak from one job to the next.
        highs = highspy.Highs()  # type: ignore[no-untyped-call]  # highspy leaves it unannotated
        monitor = _Monitor(ctx)
        # cbLogging receives HiGHS' log only with output on and the console copy off.
        highs.setOptionValue("output_flag", True)
        highs.setOptionValue("log_to_console", False)
        monitor.attach(highs)
        try:
            _apply_options(highs, request.options, monitor)
            _load_model(highs, request, monitor)
            result, values = self._solve(highs, request, ctx, monitor)
        finally:
            monitor.flush_log()
        full = {**result, "values": values}
        ctx.write_artifact(
            "solution.json",
            json.dumps(full, indent=1, allow_nan=False).encode(),
            "application/json",
        )
        if request.values != "none":
            result["values"] = _select_values(values, request.values)
        return result

    @staticmethod
    def _solve(
        highs: highspy.Highs, request: _Request, ctx: EngineContext, monitor: _Monitor
    ) -> tuple[dict[str, Any], dict[str, float | None]]:
        is_mip = _is_mip(highs)
        ctx.emit(
            "started",
            format=request.format,
            num_variables=highs.getNumCol(),
            num_constraints=highs.getNumRow(),
            is_mip=is_mip,
        )
        started = time.monotonic()
        monitor.started = started
        if ctx.interrupted:
            logger.info("job %s interrupted before the solve started", ctx.job_id)
        else:
            _solve(highs, ctx, request.options)
        solve_time_s = time.monotonic() - started
        result, values = _collect_result(highs, monitor, is_mip, solve_time_s)
        if ctx.interrupted and result["status"] == "not_set":
            result["status"] = "interrupted"
        if result["status"] in _FAILED_STATUSES:
            reason = "; ".join(monitor.errors) or result["status_detail"]
            _fail("solve_error", f"HiGHS could not solve the model: {reason}")
        ctx.emit(
            "finished",
            status=result["status"],
            objective=result["objective"],
            bound=result["bound"],
            gap=result["gap"],
            elapsed_s=monitor.elapsed(),
        )
        return result, values
