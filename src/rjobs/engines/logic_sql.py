"""Splitting a Logic query into statements and turning DuckDB errors into located problems.

Positions are reported as 1-based line and column within the whole query text a job submitted,
whichever statement they fall in. DuckDB reports positions as byte offsets into the text it was
given (the whole query when parsing, one statement when binding or running), so each statement
keeps the character offset where its text starts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import duckdb

from rjobs.engines.base import ProblemInfo

_SUMMARY_LIMIT = 200

# Exception classes -> problem codes; anything else is a plain "sql_error".
_CODES: tuple[tuple[type[duckdb.Error], str], ...] = (
    (duckdb.ParserException, "syntax_error"),
    (duckdb.BinderException, "binder_error"),
    (duckdb.CatalogException, "catalog_error"),
    (duckdb.PermissionException, "permission_denied"),
    (duckdb.ConstraintException, "constraint_violation"),
    (duckdb.ConversionException, "conversion_error"),
    (duckdb.OutOfRangeException, "out_of_range"),
    (duckdb.OutOfMemoryException, "out_of_memory"),
    (duckdb.InterruptException, "interrupted"),
)
_LINE_RE = re.compile(r"^LINE (\d+): ?(.*)$", re.MULTILINE)


@dataclass(frozen=True)
class SqlStatement:
    """One statement of a query, located in the whole query text."""

    index: int  # 1-based position among the query's statements
    text: str  # exactly what DuckDB split off (leading comments included); this is what runs
    offset: int  # character offset of ``text`` in the whole query
    line: int  # 1-based line of the statement's first token in the whole query
    column: int  # 1-based column of that token
    kind: str  # DuckDB statement type, e.g. "SELECT", "INSERT", "TRANSACTION"
    parameters: frozenset[str]  # named parameters ($name) the statement uses
    summary: str  # the first line of SQL, for progress events


def char_offset(text: str, byte_offset: int) -> int:
    """Convert a UTF-8 byte offset into ``text`` to a character offset."""
    return len(text.encode("utf-8")[: max(byte_offset, 0)].decode("utf-8", errors="ignore"))


def line_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of character ``offset`` in ``text``."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _first_token(text: str) -> int:
    """Character offset of the first token that is not a comment (0 when there is none)."""
    for position, kind in duckdb.tokenize(text):
        if kind != duckdb.token_type.comment:
            return char_offset(text, position)
    return len(text) - len(text.lstrip())


def _parser() -> duckdb.DuckDBPyConnection:
    # A throw-away in-memory database: parsing needs no data, and JSON errors give positions.
    return duckdb.connect(":memory:", config={"errors_as_json": True})


def split_statements(query: str) -> list[SqlStatement]:
    """Split ``query`` into statements; a syntax error raises ``duckdb.ParserException``."""
    conn = _parser()
    try:
        parsed = conn.extract_statements(query)
    finally:
        conn.close()
    statements: list[SqlStatement] = []
    cursor = 0
    for number, statement in enumerate(parsed, start=1):
        text = statement.query
        # DuckDB hands back consecutive slices of the query; search from the previous end so a
        # statement repeated verbatim still maps to its own occurrence.
        found = query.find(text, cursor)
        offset = found if found >= 0 else cursor
        cursor = offset + len(text) if found >= 0 else cursor
        start = offset + _first_token(text)
        line, column = line_column(query, start)
        first_line = query[start:].split("\n", 1)[0].strip()
        if len(first_line) > _SUMMARY_LIMIT:
            first_line = first_line[: _SUMMARY_LIMIT - 3] + "..."
        statements.append(
            SqlStatement(
                index=number,
                text=text,
                offset=offset,
                line=line,
                column=column,
                kind=statement.type.name,
                parameters=frozenset(statement.named_parameters),
                summary=first_line,
            )
        )
    return statements


@dataclass(frozen=True)
class DuckError:
    """A DuckDB error message taken apart."""

    kind: str  # e.g. "Binder", "Parser", "Invalid Input"
    message: str  # without the "<kind> Error:" prefix
    position: int | None  # byte offset into the text DuckDB was given, when it said
    line: int | None  # relative line from a "LINE n:" marker when there is no JSON position
    column: int | None

    @property
    def text(self) -> str:
        return f"{self.kind} Error: {self.message}" if self.kind else self.message


def parse_error(exc: BaseException) -> DuckError:
    """Read a DuckDB error; the connections use ``errors_as_json`` so most carry a position."""
    raw = str(exc)
    prefix, sep, rest = raw.partition(": ")
    if sep and rest.startswith("{"):
        try:
            data = json.loads(rest)
        except ValueError:
            data = None
        if isinstance(data, dict) and "exception_message" in data:
            position = str(data.get("position", ""))
            return DuckError(
                kind=str(data.get("exception_type", "")),
                message=str(data["exception_message"]),
                position=int(position) if position.isdigit() else None,
                line=None,
                column=None,
            )
    # Plain text: "<Kind> Error: message\n\nLINE n: <context>\n<spaces>^"
    kind = prefix[: -len(" Error")] if sep and prefix.endswith(" Error") else ""
    message = rest if kind else raw
    match = _LINE_RE.search(message)
    line = column = None
    if match:
        line = int(match.group(1))
        context = match.group(2)
        caret_line = message[match.end() + 1 :].split("\n", 1)[0]
        # The context is windowed ("...") on long lines; a caret is then not a real column.
        if "^" in caret_line and not context.startswith("..."):
            column = caret_line.index("^") - len(match.group(0)) + len(context) + 1
        message = message[: match.start()].rstrip()
    return DuckError(kind=kind, message=message, position=None, line=line, column=column)


def error_code(exc: BaseException) -> str:
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return "sql_error"


def locate(query: str, base: int, text: str, error: DuckError) -> tuple[int | None, int | None]:
    """Line and column in the whole query of an error raised on ``text`` (found at ``base``)."""
    if error.position is not None:
        return line_column(query, base + char_offset(text, error.position))
    if error.line is not None:
        first_line, _ = line_column(query, base)
        line = first_line + error.line - 1
        column = error.column
        if column is not None and error.line == 1:
            column += line_column(query, base)[1] - 1
        return line, column
    return None, None


def _statement_at(query: str, byte_offset: int) -> int | None:
    """The 1-based index of the statement holding a byte offset of a query that failed to parse."""
    data = query.encode("utf-8")
    index = 0
    boundary = True
    try:
        tokens = duckdb.tokenize(query)
    except duckdb.Error:
        return None
    for position, kind in tokens:
        if position > byte_offset:
            break
        if kind == duckdb.token_type.comment:
            continue
        if data[position : position + 1] == b";":
            boundary = True
        elif boundary:
            index += 1
            boundary = False
    return index or 1


def parse_problem(query: str, exc: BaseException) -> ProblemInfo:
    """The problem of a query that does not parse."""
    error = parse_error(exc)
    line, column = locate(query, 0, query, error)
    statement = _statement_at(query, error.position) if error.position is not None else None
    where = f" (statement {statement}, line {line}, column {column})" if line is not None else ""
    return ProblemInfo(
        "error",
        error_code(exc),
        f"{error.text}{where}",
        line=line,
        column=column,
        statement=statement,
    )


def statement_problem(
    query: str, statement: SqlStatement, exc: BaseException, *, code: str | None = None
) -> ProblemInfo:
    """The problem of a statement that failed to bind or run."""
    error = parse_error(exc)
    line, column = locate(query, statement.offset, statement.text, error)
    if line is None:
        line, column = statement.line, statement.column
    where = f"line {line}, column {column}" if column is not None else f"line {line}"
    return ProblemInfo(
        "error",
        code or error_code(exc),
        f"statement {statement.index} ({where}): {error.text}",
        line=line,
        column=column,
        statement=statement.index,
    )
