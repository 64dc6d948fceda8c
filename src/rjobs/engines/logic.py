"""The Logic engine: a job is one transaction of SQL statements on a named DuckDB database.

Payload::

    {"dbname": "sales",              # a name, not a path (see logic_db.DBNAME_RULE)
     "query": "SQL; SQL; ...",       # one or more statements
     "readonly": true,               # default; false makes a write transaction
     "inputs": {"name": value},      # optional, see below
     "language": "sql"}              # the only language

* Databases are files ``data_dir/logic/<dbname>.duckdb``. The first write transaction creates one;
  a read-only transaction on a missing database fails (``database_not_found``).
* A write transaction is all-or-nothing: its statements run between BEGIN and COMMIT, and any
  error or interrupt rolls all of them back (a database it created is removed again). Statements
  that control transactions themselves (BEGIN, COMMIT, ROLLBACK) are refused.
* A read-only transaction opens the file read-only, so a statement that writes fails with a
  ``read_only_violation`` problem naming the statement.
* Inputs are never spliced into SQL. A scalar, list or object input is a named parameter, used in
  SQL as ``$name``. An input whose value is a non-empty list of objects (records) is a table named
  after the input instead (``SELECT * FROM name``); it may not hide a table of the database.
* Host files are reachable only under the data roots (``read_parquet``, ``read_csv``, ``COPY``);
  extension installs and loads, ATTACH of other files, and configuration changes are refused.

Result::

    {"dbname", "readonly",
     "created": bool,                # this transaction created the database
     "statements": n, "executed": m, # statements in the query, statements that completed
     "results": [{"statement": i, "artifact": "result_k",
                  "files": ["result_k.arrow", "result_k.csv"],
                  "columns": [{"name", "type"}], "row_count", "preview": [[...], ...],
                  "truncated": bool}],
     "rows_changed": total or None,  # over statements that report changed rows
     "changes": [{"statement": i, "rows_changed": n}],
     "interrupted": bool, "elapsed_s"}

Every statement that returns rows yields ``result_k.arrow`` (Arrow IPC file) and ``result_k.csv``
(with a header row), k counting only row-returning statements from 1, so a query whose third
statement is its first SELECT writes ``result_1``. The preview holds the first 100 rows as JSON
values (see ``logic_results.json_safe``).

Events on ``progress``: ``statement_started`` (statement, total, line, sql: its first line),
``progress`` (statement, percent of that statement, while it runs, about every 0.2 s when the value
changes), ``statement_finished`` (statement, row_count, rows_changed, elapsed_s) and
``lock_wait`` (mode) when another transaction holds the database. ``log`` carries ``log`` events
(level, message).

When interrupted, the running statement stops (DuckDB's interrupt), the transaction rolls back
and ``run`` returns the result so far with ``"interrupted": true``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pyarrow as pa

from rjobs.engines.base import EngineContext, EngineFailure, ProblemInfo, Stream
from rjobs.engines.logic_db import (
    LockWaitInterrupted,
    connect,
    database_lock,
    database_not_found,
    database_path,
    remove_database,
    validate_dbname,
)
from rjobs.engines.logic_results import (
    ARROW_CONTENT_TYPE,
    CSV_CONTENT_TYPE,
    arrow_ipc_bytes,
    column_info,
    csv_bytes,
    preview_rows,
)
from rjobs.engines.logic_sql import (
    SqlStatement,
    parse_error,
    parse_problem,
    split_statements,
    statement_problem,
)

logger = logging.getLogger(__name__)

PREVIEW_ROWS = 100
INPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

_TICK_S = 0.05  # how often the watcher checks for an interrupt while a statement runs
_PROGRESS_EVERY_S = 0.2  # how often it asks DuckDB for the percent done
_PAYLOAD_KEYS = {"dbname", "query", "readonly", "inputs", "language"}
# Keys the service keeps in a transaction's payload for itself; they mean nothing to the engine.
_SERVICE_KEYS = {"engine_name", "timeout_mins", "abort_detached", "v1_inputs"}
# Result shapes of statements that only report success or a count, not rows of their own.
_STATUS_COLUMNS = {("Count", "BIGINT"), ("Success", "BOOLEAN")}


class QueryInterrupted(Exception):
    """:func:`query_table` was stopped by its ``should_stop`` callback."""


class _StatementInterrupted(Exception):
    """The running statement was interrupted (the job was cancelled or timed out)."""


def _failure(code: str, message: str, **where: Any) -> EngineFailure:
    return EngineFailure(message, [ProblemInfo("error", code, message, **where)])


# --- payload -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    dbname: str
    query: str
    readonly: bool
    params: dict[str, Any]
    tables: dict[str, pa.Table]
    ignored_keys: list[str]


def _records_table(name: str, records: list[dict[str, Any]]) -> pa.Table:
    keys: list[str] = []
    for record in records:
        for key in record:
            if not isinstance(key, str):
                raise _failure("invalid_input", f"input {name!r}: record keys must be strings")
            if key not in keys:
                keys.append(key)
    if not keys:
        raise _failure("invalid_input", f"input {name!r}: the records have no fields")
    arrays: dict[str, pa.Array] = {}
    for key in keys:
        try:
            arrays[key] = pa.array([record.get(key) for record in records])
        except (pa.ArrowException, TypeError, ValueError) as exc:
            message = (
                f"input {name!r}: field {key!r} has values of incompatible types ({exc}); "
                "every record must give a field values of one type"
            )
            raise _failure("invalid_input", message) from exc
    return pa.table(arrays)


def _split_inputs(inputs: dict[Any, Any]) -> tuple[dict[str, Any], dict[str, pa.Table]]:
    params: dict[str, Any] = {}
    tables: dict[str, pa.Table] = {}
    for name, value in inputs.items():
        if not isinstance(name, str) or INPUT_NAME.fullmatch(name) is None:
            message = (
                f"invalid input name {name!r}: a letter or underscore, then letters, digits or "
                "underscores (at most 64)"
            )
            raise _failure("invalid_input", message)
        if isinstance(value, list) and any(isinstance(item, dict) for item in value):
            if not all(isinstance(item, dict) for item in value):
                message = (
                    f"input {name!r} mixes records (objects) with other values; a table input "
                    "is a list of objects only"
                )
                raise _failure("invalid_input", message)
            tables[name] = _records_table(name, value)
        else:
            params[name] = value
    return params, tables


def _parse_payload(payload: object) -> _Request:
    if not isinstance(payload, dict):
        raise _failure("invalid_payload", "a Logic payload must be an object")
    language = payload.get("language", "sql")
    if language is None:
        language = "sql"
    if not isinstance(language, str) or language.strip().lower() != "sql":
        message = f"language {language!r} is not supported: the Logic engine runs 'sql'"
        raise _failure("unsupported_language", message)
    dbname = validate_dbname(payload.get("dbname"))
    query = payload.get("query")
    if not isinstance(query, str) or not query.strip():
        raise _failure("invalid_query", "query must be a non-empty string of SQL")
    readonly = payload.get("readonly", True)
    if readonly is None:
        readonly = True
    if not isinstance(readonly, bool):
        raise _failure("invalid_payload", f"readonly must be true or false, not {readonly!r}")
    if payload.get("v1_inputs"):
        message = "v1_inputs is not supported by the Logic engine; pass inputs as {name: value}"
        raise _failure("invalid_payload", message)
    inputs = payload.get("inputs")
    if inputs is None:
        inputs = {}
    if not isinstance(inputs, dict):
        raise _failure("invalid_input", "inputs must be an object mapping names to values")
    params, tables = _split_inputs(inputs)
    ignored = sorted(str(key) for key in payload if key not in _PAYLOAD_KEYS | _SERVICE_KEYS)
    return _Request(dbname, query, readonly, params, tables, ignored)


def _parse_query(query: str) -> list[SqlStatement]:
    try:
        statements = split_statements(query)
    except duckdb.Error as exc:
        problem = parse_problem(query, exc)
        raise EngineFailure(problem.message, [problem]) from exc
    if not statements:
        raise _failure("invalid_query", "the query holds no SQL statement (only comments?)")
    return statements


def _check_statements(
    statements: Sequence[SqlStatement], params: dict[str, Any], tables: dict[str, pa.Table]
) -> None:
    """Refuse, before touching the database, what can never run: all problems at once."""
    problems: list[ProblemInfo] = []

    def add(code: str, statement: SqlStatement, message: str) -> None:
        where = f"statement {statement.index} (line {statement.line})"
        problems.append(
            ProblemInfo(
                "error",
                code,
                f"{where}: {message}",
                line=statement.line,
                column=statement.column,
                statement=statement.index,
            )
        )

    for statement in statements:
        if statement.kind == "TRANSACTION":
            add(
                "transaction_control",
                statement,
                "BEGIN, COMMIT and ROLLBACK are not allowed: a job is one transaction, "
                "committed when every statement succeeded",
            )
        for name in sorted(statement.parameters):
            if name.isdigit():
                add(
                    "positional_parameter",
                    statement,
                    f"positional parameter (?, ${name}) is not supported: use $name with "
                    "inputs {name: value}",
                )
            elif name in tables:
                add(
                    "input_is_table",
                    statement,
                    f"${name} names input {name!r}, a list of records exposed as a table: "
                    f"use it as a table (SELECT ... FROM {name})",
                )
            elif name not in params:
                given = ", ".join(sorted(params)) or "none"
                add(
                    "missing_input",
                    statement,
                    f"${name} has no value: inputs has no {name!r} (inputs given: {given})",
                )
    if problems:
        head = problems[0].message
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise EngineFailure(head + more, problems)


def _is_read_only_error(exc: duckdb.Error) -> bool:
    return "read-only" in str(exc)


def _statement_failure(
    query: str, statement: SqlStatement, exc: duckdb.Error, *, readonly: bool
) -> EngineFailure:
    if readonly and _is_read_only_error(exc):
        message = (
            f"statement {statement.index} (line {statement.line}) writes to the database, but "
            "the transaction is read-only; make it a write transaction "
            f"(readonly false; --write on the command line) ({parse_error(exc).text})"
        )
        problem = ProblemInfo(
            "error",
            "read_only_violation",
            message,
            line=statement.line,
            column=statement.column,
            statement=statement.index,
        )
    else:
        problem = statement_problem(query, statement, exc)
        if problem.code == "permission_denied":
            problem = ProblemInfo(
                problem.severity,
                problem.code,
                problem.message + " (files are reachable only under the configured data roots; "
                "extensions cannot be installed or loaded)",
                problem.line,
                problem.column,
                problem.statement,
            )
    return EngineFailure(problem.message, [problem])


# --- execution -------------------------------------------------------------------------------


class _Events:
    """Serialises ``ctx.emit`` calls: the watcher thread emits too."""

    def __init__(self, ctx: EngineContext | None) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()

    def __call__(self, type: str, *, stream: Stream = "progress", **fields: Any) -> None:
        if self._ctx is None:
            return
        with self._lock:
            self._ctx.emit(type, stream=stream, **fields)

    def log(self, level: str, message: str) -> None:
        logger.debug("%s", message)
        self("log", stream="log", level=level, message=message)


@dataclass
class _Outcome:
    description: list[tuple[Any, ...]] | None
    rowcount: int
    table: pa.Table | None


def _returns_rows(kind: str, description: Sequence[Sequence[Any]] | None, rowcount: int) -> bool:
    """Whether a statement produced rows of its own, rather than a status or a changed count."""
    if not description:
        return False
    if kind in ("SELECT", "EXPLAIN"):
        return True
    if rowcount >= 0:  # INSERT, UPDATE, DELETE, COPY, CREATE TABLE AS: a changed-row count
        return False
    if len(description) == 1:
        name, type_ = description[0][0], str(description[0][1])
        if (name, type_) in _STATUS_COLUMNS:
            return False
    return True  # INSERT ... RETURNING, PIVOT, CALL of a table function, EXECUTE, ...


def _fetch_arrow(conn: duckdb.DuckDBPyConnection) -> pa.Table:
    with warnings.catch_warnings():
        # DuckDB 2 warns that Arrow output of execute() copies the rows; relations would avoid
        # the copy but run a query again on each read and cannot report changed rows.
        warnings.filterwarnings("ignore", message="Arrow output on a DB-API result")
        table = conn.to_arrow_table()
    if table is None:
        raise RuntimeError("DuckDB returned no Arrow result for a row-returning statement")
    return table


class _Session:
    """A database locked and opened for one transaction, watched by a helper thread.

    The helper thread turns an interrupt into ``conn.interrupt()`` (also when the interrupt came
    just before a statement started) and reports DuckDB's percent done while a statement runs.
    """

    def __init__(
        self,
        path: Path,
        *,
        read_only: bool,
        data_roots: Sequence[Path],
        should_stop: Callable[[], bool],
        events: _Events,
    ) -> None:
        self.path = path
        self.read_only = read_only
        self.data_roots = list(data_roots)
        self.should_stop = should_stop
        self.events = events
        self.discard_database = False  # set while a transaction that created the file is open
        self._stack = ExitStack()
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._conn_lock = threading.Lock()  # interrupt() vs close() from different threads
        self._state_lock = threading.Lock()
        self._current: int | None = None
        self._last_percent: float | None = None
        self._next_poll = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> float:
        """Take the lock; returns the seconds spent waiting for it."""
        mode = "read" if self.read_only else "write"
        try:
            waited = self._stack.enter_context(
                database_lock(
                    self.path,
                    exclusive=not self.read_only,
                    should_stop=self.should_stop,
                    on_wait=lambda: self.events("lock_wait", mode=mode),
                )
            )
        except BaseException:
            self._stack.close()
            raise
        return waited

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._conn_lock:
            conn, self._conn = self._conn, None
        try:
            if conn is not None:
                conn.close()  # rolls back whatever was not committed
            if self.discard_database:
                remove_database(self.path)
        finally:
            self._stack.close()  # releases the lock, after the file is closed

    @property
    def conn(self) -> duckdb.DuckDBPyConnection:
        if self._conn is None:
            raise RuntimeError("the session has no open connection")
        return self._conn

    def connect(self, dbname: str) -> None:
        try:
            conn = connect(self.path, read_only=self.read_only, data_roots=self.data_roots)
        except duckdb.Error as exc:
            # Not a lock conflict between jobs (the file lock rules that out) but, say, a
            # damaged file or a process outside rjobs holding it.
            message = f"database {dbname!r} could not be opened: {parse_error(exc).text}"
            raise _failure("database_unavailable", message) from exc
        with self._conn_lock:
            self._conn = conn
        self._thread = threading.Thread(target=self._watch, name="rjobs-logic-watch", daemon=True)
        self._thread.start()

    def interrupt(self) -> None:
        """Stop the running statement; harmless when none runs (DuckDB does not keep it)."""
        with self._conn_lock:
            if self._conn is not None:
                self._conn.interrupt()

    def command(self, sql: str) -> None:
        """Run a fixed statement of our own (BEGIN, COMMIT, ROLLBACK)."""
        self.conn.execute(sql)
        self.conn.complete()

    def rollback(self) -> None:
        # Fails when nothing is open or DuckDB already aborted it; closing rolls back anyway.
        with suppress(duckdb.Error):
            self.command("ROLLBACK")

    def execute(self, statement: SqlStatement, params: dict[str, Any]) -> _Outcome:
        conn = self.conn
        with self._running(statement.index):
            conn.execute(statement.text, params or None)
            description = conn.description
            rowcount = conn.rowcount
            if _returns_rows(statement.kind, description, rowcount):
                table = _fetch_arrow(conn)
            else:
                table = None
                conn.complete()
        return _Outcome(description, rowcount, table)

    @contextmanager
    def _running(self, index: int) -> Iterator[None]:
        with self._state_lock:
            self._current = index
            self._last_percent = None
            self._next_poll = time.monotonic() + _PROGRESS_EVERY_S
        try:
            yield
        finally:
            with self._state_lock:
                self._current = None

    def _watch(self) -> None:
        while not self._stop.wait(_TICK_S):
            try:
                self._tick()
            except Exception:  # the watcher must never take the job down
                logger.exception("logic watcher failed")

    def _tick(self) -> None:
        with self._state_lock:
            index = self._current
            if index is None:
                return
            if self.should_stop():
                self.interrupt()
                return
            now = time.monotonic()
            if now < self._next_poll:
                return
            self._next_poll = now + _PROGRESS_EVERY_S
            percent = self.conn.query_progress()
            if percent < 0:
                return
            value = round(float(percent), 1)
            if value != self._last_percent:
                self._last_percent = value
                self.events("progress", statement=index, percent=value)


@dataclass
class _Run:
    """What a transaction did so far; becomes the job's result."""

    request: _Request
    total: int
    started: float = field(default_factory=time.monotonic)
    created: bool = False
    executed: int = 0
    interrupted: bool = False
    results: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, int]] = field(default_factory=list)

    def result(self) -> dict[str, Any]:
        changed = [change["rows_changed"] for change in self.changes]
        return {
            "dbname": self.request.dbname,
            "readonly": self.request.readonly,
            "created": self.created,
            "statements": self.total,
            "executed": self.executed,
            "results": self.results,
            "rows_changed": sum(changed) if changed else None,
            "changes": self.changes,
            "interrupted": self.interrupted,
            "elapsed_s": round(time.monotonic() - self.started, 3),
        }


class LogicEngine:
    """Runs Logic jobs: one SQL transaction on a DuckDB database under the data directory."""

    def run(self, payload: dict[str, Any], ctx: EngineContext) -> dict[str, Any]:
        request = _parse_payload(payload)
        statements = _parse_query(request.query)
        _check_statements(statements, request.params, request.tables)
        path = database_path(ctx.data_dir, request.dbname)
        if request.readonly and not path.is_file():
            raise database_not_found(request.dbname)
        path.parent.mkdir(parents=True, exist_ok=True)

        events = _Events(ctx)
        used = set().union(*(statement.parameters for statement in statements))
        unused = sorted(set(request.params) - used)
        if unused:
            events.log("warning", f"inputs not used by any statement: {', '.join(unused)}")
        if request.ignored_keys:
            events.log(
                "warning", f"ignored unknown payload keys: {', '.join(request.ignored_keys)}"
            )
        run = _Run(request, len(statements))
        session = _Session(
            path,
            read_only=request.readonly,
            data_roots=ctx.data_roots,
            should_stop=lambda: ctx.interrupted,
            events=events,
        )
        ctx.on_interrupt(session.interrupt)
        try:
            with session as waited:
                if waited > 0.05:
                    events.log("info", f"waited {waited:.2f} s for database {request.dbname!r}")
                self._transaction(session, request, statements, run, ctx, events)
        except (LockWaitInterrupted, _StatementInterrupted):
            run.interrupted = True
        if run.interrupted:
            events.log("info", "interrupted: the transaction was rolled back")
        return run.result()

    def _transaction(
        self,
        session: _Session,
        request: _Request,
        statements: Sequence[SqlStatement],
        run: _Run,
        ctx: EngineContext,
        events: _Events,
    ) -> None:
        existed = session.path.is_file()
        if request.readonly and not existed:
            raise database_not_found(request.dbname)  # removed while we waited for the lock
        # Until COMMIT succeeds, a database this transaction created is removed on the way out.
        session.discard_database = not existed
        session.connect(request.dbname)
        if not existed:
            events.log("info", f"creating database {request.dbname!r}")
        self._register_tables(session, request)
        session.command("BEGIN TRANSACTION")
        for statement in statements:
            if ctx.interrupted:
                run.interrupted = True
                break
            self._statement(session, request, statement, run, ctx, events)
        if run.interrupted or ctx.interrupted:
            run.interrupted = True
            session.rollback()
            return
        try:
            session.command("COMMIT")
        except duckdb.Error as exc:
            if isinstance(exc, duckdb.InterruptException) or ctx.interrupted:
                raise _StatementInterrupted from exc
            message = f"the transaction could not commit: {parse_error(exc).text}"
            raise _failure("commit_failed", message) from exc
        session.discard_database = False
        run.created = not existed
        if not request.readonly:
            events.log("info", f"committed {len(statements)} statements")

    def _register_tables(self, session: _Session, request: _Request) -> None:
        if not request.tables:
            return
        existing = {
            str(row[0]).lower()
            for row in session.conn.execute(
                "SELECT table_name FROM duckdb_tables() "
                "UNION ALL SELECT view_name FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        }
        for name, table in request.tables.items():
            if name.lower() in existing:
                message = (
                    f"input {name!r} would hide the table or view {name!r} of database "
                    f"{request.dbname!r}: give the input another name"
                )
                raise _failure("input_conflict", message)
            try:
                session.conn.register(name, table)
            except duckdb.Error as exc:
                message = f"input {name!r} cannot be used as a table: {parse_error(exc).text}"
                raise _failure("invalid_input", message) from exc

    def _statement(
        self,
        session: _Session,
        request: _Request,
        statement: SqlStatement,
        run: _Run,
        ctx: EngineContext,
        events: _Events,
    ) -> None:
        index = statement.index
        events(
            "statement_started",
            statement=index,
            total=run.total,
            line=statement.line,
            sql=statement.summary,
        )
        started = time.monotonic()
        params = {name: request.params[name] for name in statement.parameters}
        try:
            outcome = session.execute(statement, params)
        except duckdb.Error as exc:
            if isinstance(exc, duckdb.InterruptException) or ctx.interrupted:
                raise _StatementInterrupted from exc
            raise _statement_failure(
                request.query, statement, exc, readonly=request.readonly
            ) from exc
        row_count: int | None = None
        if outcome.table is not None:
            row_count = outcome.table.num_rows
            run.results.append(self._store_result(ctx, index, len(run.results) + 1, outcome))
        rows_changed = outcome.rowcount if outcome.rowcount >= 0 else None
        if rows_changed is not None:
            run.changes.append({"statement": index, "rows_changed": rows_changed})
        run.executed += 1
        events(
            "statement_finished",
            statement=index,
            row_count=row_count,
            rows_changed=rows_changed,
            elapsed_s=round(time.monotonic() - started, 3),
        )

    @staticmethod
    def _store_result(
        ctx: EngineContext, statement: int, k: int, outcome: _Outcome
    ) -> dict[str, Any]:
        table = outcome.table
        assert table is not None
        name = f"result_{k}"
        ctx.write_artifact(f"{name}.arrow", arrow_ipc_bytes(table), ARROW_CONTENT_TYPE)
        ctx.write_artifact(f"{name}.csv", csv_bytes(table), CSV_CONTENT_TYPE)
        return {
            "statement": statement,
            "artifact": name,
            "files": [f"{name}.arrow", f"{name}.csv"],
            "columns": column_info(outcome.description),
            "row_count": table.num_rows,
            "preview": preview_rows(table, PREVIEW_ROWS),
            "truncated": table.num_rows > PREVIEW_ROWS,
        }


def query_table(
    data_dir: Path,
    dbname: str,
    query: str,
    data_roots: Sequence[Path] = (),
    *,
    should_stop: Callable[[], bool] | None = None,
) -> pa.Table:
    """Run one read-only statement on a Logic database and return its rows.

    Same locking and file-access limits as a Logic job. Raises :class:`EngineFailure` when the
    database is missing or the query is wrong, :class:`QueryInterrupted` when ``should_stop``
    turned true while waiting for the database or running the query.
    """
    name = validate_dbname(dbname)
    if not isinstance(query, str) or not query.strip():
        raise _failure("invalid_query", "query must be a non-empty string of SQL")
    statements = _parse_query(query)
    if len(statements) != 1:
        message = f"the query must be exactly one statement, not {len(statements)}"
        raise _failure("invalid_query", message)
    statement = statements[0]
    _check_statements(statements, {}, {})
    path = database_path(data_dir, name)
    if not path.is_file():
        raise database_not_found(name)
    stop = should_stop or (lambda: False)
    session = _Session(
        path, read_only=True, data_roots=data_roots, should_stop=stop, events=_Events(None)
    )
    try:
        with session:
            if not path.is_file():
                raise database_not_found(name)
            session.connect(name)
            try:
                outcome = session.execute(statement, {})
            except duckdb.Error as exc:
                if isinstance(exc, duckdb.InterruptException) or stop():
                    raise QueryInterrupted("the query was interrupted") from exc
                raise _statement_failure(query, statement, exc, readonly=True) from exc
    except LockWaitInterrupted as exc:
        raise QueryInterrupted("interrupted while waiting for the database") from exc
    if outcome.table is None:
        raise _failure("invalid_query", "the query must return rows (a SELECT)")
    return outcome.table
