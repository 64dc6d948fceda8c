"""The Logic engine on real DuckDB databases: TPC-H, transactions, locking, limits, interrupts."""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from rjobs.engines.base import EngineFailure, LocalContext
from rjobs.engines.logic import LogicEngine, QueryInterrupted, query_table
from rjobs.engines.logic_db import database_lock, database_path
from support import assert_matches_answer, read_csv

TPCH = Path(__file__).parents[1] / "data" / "tpch-sf0.01"
TABLES = {
    "lineitem": 60175,
    "orders": 15000,
    "customer": 1500,
    "part": 2000,
    "partsupp": 8000,
    "supplier": 100,
    "nation": 25,
    "region": 5,
}
# Takes minutes to finish: only ever run to be interrupted.
CROSS_JOIN = "SELECT count(*) FROM range(100000000) a, range(1000) b WHERE a.range * b.range = 7"


class Job:
    """Runs Logic payloads on one data directory, each as a job with its own context."""

    def __init__(self, root: Path, data_roots: Sequence[Path] = ()) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.data_roots = list(data_roots)
        self.count = 0

    def context(self) -> LocalContext:
        self.count += 1
        return LocalContext(
            f"job{self.count}", self.root / "artifacts", self.data_dir, self.data_roots
        )

    def run(self, **payload: Any) -> tuple[dict[str, Any], LocalContext]:
        ctx = self.context()
        result = LogicEngine().run(payload, ctx)
        json.dumps(result)  # a result must be JSON
        return result, ctx

    def fail(self, **payload: Any) -> EngineFailure:
        with pytest.raises(EngineFailure) as info:
            self.run(**payload)
        return info.value

    def rows(self, dbname: str, query: str) -> list[list[Any]]:
        result, _ = self.run(dbname=dbname, query=query)
        preview: list[list[Any]] = result["results"][-1]["preview"]
        return preview


def artifact(ctx: LocalContext, name: str) -> bytes:
    return ctx.read_artifact(ctx.job_id, name)


@pytest.fixture(scope="module")
def tpch(tmp_path_factory: pytest.TempPathFactory) -> Job:
    """A TPC-H database built from the Parquet files in one write transaction."""
    job = Job(tmp_path_factory.mktemp("tpch"), data_roots=[TPCH])
    query = "\n".join(
        f"CREATE TABLE {table} AS SELECT * FROM read_parquet($path_{table});" for table in TABLES
    )
    inputs = {f"path_{table}": str(TPCH / f"{table}.parquet") for table in TABLES}
    result, _ = job.run(dbname="tpch", query=query, readonly=False, inputs=inputs)
    assert result["created"] is True
    assert result["statements"] == result["executed"] == 8
    assert [c["rows_changed"] for c in result["changes"]] == list(TABLES.values())
    return job


@pytest.fixture
def job(tmp_path: Path) -> Job:
    return Job(tmp_path)


@pytest.mark.parametrize("number", range(1, 23))
def test_tpch_query_matches_answer(tpch: Job, number: int) -> None:
    sql = (TPCH / "queries" / f"q{number:02d}.sql").read_text()
    result, ctx = tpch.run(dbname="tpch", query=sql)
    assert result["readonly"] is True and result["results"][0]["artifact"] == "result_1"

    # Answers keep the query's column names and ORDER BY order, so both are compared as they are.
    assert_matches_answer(artifact(ctx, "result_1.csv").decode(), number)
    want = read_csv((TPCH / "answers" / f"q{number:02d}.csv").read_text())

    table = pa.ipc.open_file(pa.BufferReader(artifact(ctx, "result_1.arrow"))).read_all()
    assert table.num_rows == result["results"][0]["row_count"] == len(want) - 1
    assert [c["name"] for c in result["results"][0]["columns"]] == want[0]


def test_result_schema_events_and_preview(tpch: Job) -> None:
    query = (
        "-- nations of one region\n"
        "SELECT n_name, n_regionkey\n  FROM nation WHERE n_regionkey = $region ORDER BY n_name;\n"
        "CREATE TEMP TABLE scratch AS SELECT 1 AS x;\n"
        "SELECT count(*) AS n, 1.5::DECIMAL(4,2) AS d FROM lineitem"
    )
    result, ctx = tpch.run(dbname="tpch", query=query, inputs={"region": 0})
    assert result["statements"] == 3 and result["executed"] == 3
    first, second = result["results"]
    assert (first["statement"], first["artifact"]) == (1, "result_1")
    assert (second["statement"], second["artifact"]) == (3, "result_2")
    assert first["columns"] == [
        {"name": "n_name", "type": "VARCHAR"},
        {"name": "n_regionkey", "type": "INTEGER"},
    ]
    assert first["preview"][0] == ["ALGERIA", 0] and first["row_count"] == 5
    assert second["preview"] == [[60175, 1.5]]
    assert result["changes"] == [{"statement": 2, "rows_changed": 1}]
    assert {a.name for a in ctx.artifacts} == {
        "result_1.arrow",
        "result_1.csv",
        "result_2.arrow",
        "result_2.csv",
    }

    started = [e for e in ctx.events["progress"] if e["type"] == "statement_started"]
    finished = [e for e in ctx.events["progress"] if e["type"] == "statement_finished"]
    assert [(e["statement"], e["total"], e["line"]) for e in started] == [
        (1, 3, 2),
        (2, 3, 4),
        (3, 3, 5),
    ]
    assert started[0]["sql"] == "SELECT n_name, n_regionkey"
    assert [e["row_count"] for e in finished] == [5, None, 1]
    assert all(e["elapsed_s"] >= 0 for e in finished)


def test_recursive_transitive_closure(job: Job) -> None:
    # 1 -> 2 -> 3 -> 4 -> 2 (a cycle) and 5 -> 6: 1 reaches 3 nodes, each of 2, 3, 4 reaches
    # 2, 3 and 4 (itself through the cycle), 5 reaches 6: 3 + 3 + 3 + 3 + 1 = 13 pairs.
    edges = [{"src": 1, "dst": 2}, {"src": 2, "dst": 3}, {"src": 3, "dst": 4}]
    edges += [{"src": 4, "dst": 2}, {"src": 5, "dst": 6}]
    closure = """
        WITH RECURSIVE reach(src, dst) AS (
            SELECT src, dst FROM {edges}
            UNION
            SELECT r.src, e.dst FROM reach r JOIN {edges} e ON r.dst = e.src
        )
        SELECT count(*) AS pairs, count(*) FILTER (WHERE src = dst) AS loops FROM reach
    """
    result, _ = job.run(
        dbname="graph",
        readonly=False,
        query="CREATE TABLE edge AS SELECT * FROM edges;" + closure.format(edges="edge"),
        inputs={"edges": edges},
    )
    assert result["results"][0]["preview"] == [[13, 3]]
    assert job.rows("graph", closure.format(edges="edge")) == [[13, 3]]


def test_read_only_transaction_cannot_write(job: Job) -> None:
    job.run(dbname="ro", readonly=False, query="CREATE TABLE t (a INTEGER)")
    failure = job.fail(
        dbname="ro", query="SELECT 1;\nSELECT 2;\n  INSERT INTO t VALUES (1);\nSELECT 3"
    )
    [problem] = failure.problems
    assert problem.code == "read_only_violation"
    assert (problem.statement, problem.line, problem.column) == (3, 3, 3)
    assert "statement 3" in problem.message and "readonly false" in problem.message
    assert job.rows("ro", "SELECT count(*) FROM t") == [[0]]


def test_syntax_error_has_line_and_column(job: Job) -> None:
    job.run(dbname="syn", readonly=False, query="CREATE TABLE t (a INTEGER)")
    query = "SELECT 1;\nSELECT a\n  FROM t WHERE WHERE a > 2;\nSELECT 4"
    failure = job.fail(dbname="syn", query=query)
    [problem] = failure.problems
    assert problem.code == "syntax_error"
    assert problem.line == 3
    assert problem.column == query.splitlines()[2].index("WHERE a") + 1  # the second WHERE
    assert problem.statement == 2


def test_unknown_column_and_table(job: Job) -> None:
    job.run(dbname="bind", readonly=False, query="CREATE TABLE t (a INTEGER, b VARCHAR)")
    query = "SELECT 1;\nSELECT a,\n       nope\n  FROM t"
    [problem] = job.fail(dbname="bind", query=query).problems
    assert problem.code == "binder_error" and "nope" in problem.message
    assert (problem.statement, problem.line, problem.column) == (2, 3, 8)

    [problem] = job.fail(dbname="bind", query="SELECT * FROM\n  missing_table").problems
    assert problem.code == "catalog_error" and "missing_table" in problem.message
    assert (problem.statement, problem.line, problem.column) == (1, 2, 3)


def test_missing_database(job: Job) -> None:
    [problem] = job.fail(dbname="nowhere", query="SELECT 1").problems
    assert problem.code == "database_not_found" and "nowhere" in problem.message
    assert not (job.data_dir / "logic").exists() or not any((job.data_dir / "logic").iterdir())
    with pytest.raises(EngineFailure, match="does not exist"):
        query_table(job.data_dir, "nowhere", "SELECT 1")


def test_language_must_be_sql(job: Job) -> None:
    [problem] = job.fail(dbname="x", query="def x(1)", language="rel").problems
    assert problem.code == "unsupported_language" and "'sql'" in problem.message


@pytest.mark.parametrize("dbname", ["../etc", "a/b", "", "1abc", "x" * 65, "a.b", "a b", None])
def test_bad_dbname(job: Job, dbname: Any) -> None:
    [problem] = job.fail(dbname=dbname, query="SELECT 1", readonly=False).problems
    assert problem.code == "invalid_dbname" and "letter or underscore first" in problem.message
    assert not job.data_dir.exists()


def test_payload_checks_before_running(job: Job) -> None:
    job.run(dbname="chk", readonly=False, query="CREATE TABLE t (a INTEGER)")
    failure = job.fail(
        dbname="chk",
        readonly=False,
        query="BEGIN;\nINSERT INTO t VALUES ($a);\nSELECT ?;\nSELECT $rows;\nCOMMIT",
        inputs={"rows": [{"x": 1}]},
    )
    codes = [(p.code, p.statement) for p in failure.problems]
    assert codes == [
        ("transaction_control", 1),
        ("missing_input", 2),
        ("positional_parameter", 3),
        ("input_is_table", 4),
        ("transaction_control", 5),
    ]
    assert job.fail(dbname="chk", query="-- nothing\n").problems[0].code == "invalid_query"
    assert job.fail(dbname="chk", query="SELECT 1", readonly="no").problems[0].code == (
        "invalid_payload"
    )
    bad_records = {"r": [{"a": 1}, 2]}
    assert job.fail(dbname="chk", query="SELECT 1", inputs=bad_records).problems[0].code == (
        "invalid_input"
    )


def test_inputs_are_bound_as_data(job: Job) -> None:
    job.run(dbname="inj", readonly=False, query="CREATE TABLE t (s VARCHAR, n BIGINT)")
    evil = "x'); DROP TABLE t; --"
    quoted = 'O\'Reilly said "hi"; $other'
    result, ctx = job.run(
        dbname="inj",
        readonly=False,
        query="INSERT INTO t VALUES ($evil, $n), ($quoted, $n + 1);\nSELECT s FROM t ORDER BY n",
        inputs={"evil": evil, "quoted": quoted, "n": 7, "unused": "'; DROP TABLE t"},
    )
    assert result["rows_changed"] == 2
    assert result["results"][0]["preview"] == [[evil], [quoted]]
    assert job.rows("inj", "SELECT count(*) FROM t") == [[2]]
    assert any("unused" in e["message"] for e in ctx.events["log"])


def test_records_input_is_a_table(job: Job) -> None:
    people = [
        {"name": "Ada", "age": 36, "tags": ["math"]},
        {"name": "Alan", "age": 41},
        {"name": "Grace", "age": None, "tags": []},
    ]
    result, ctx = job.run(
        dbname="rec",
        readonly=False,
        query=(
            "CREATE TABLE person AS SELECT name, age FROM people;\n"
            "SELECT name, age, tags FROM people ORDER BY name"
        ),
        inputs={"people": people},
    )
    assert result["results"][0]["preview"] == [
        ["Ada", 36, ["math"]],
        ["Alan", 41, None],
        ["Grace", None, []],
    ]
    text = artifact(ctx, "result_1.csv").decode()
    assert text.splitlines()[1] == '"Ada",36,"[""math""]"'
    assert job.rows("rec", "SELECT count(*), sum(age) FROM person") == [[3, 77]]
    # An input may not hide a table of the database.
    failure = job.fail(dbname="rec", query="SELECT 1", inputs={"person": [{"a": 1}]})
    assert failure.problems[0].code == "input_conflict"


def test_write_transaction_is_all_or_nothing(job: Job) -> None:
    job.run(dbname="atom", readonly=False, query="CREATE TABLE t (a INTEGER)")
    failure = job.fail(
        dbname="atom",
        readonly=False,
        query="INSERT INTO t VALUES (1);\nINSERT INTO t VALUES ('not a number')",
    )
    assert failure.problems[0].code == "conversion_error"
    assert failure.problems[0].statement == 2
    assert job.rows("atom", "SELECT count(*) FROM t") == [[0]]


def test_failed_first_write_leaves_no_database(job: Job) -> None:
    failure = job.fail(dbname="fresh", readonly=False, query="CREATE TABLE t (a INT); SELECT x")
    assert failure.problems[0].statement == 2
    assert not database_path(job.data_dir, "fresh").exists()
    assert job.fail(dbname="fresh", query="SELECT 1").problems[0].code == "database_not_found"


def test_file_access_limited_to_data_roots(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "root-outside"  # shares the root's name as a prefix
    root.mkdir()
    outside.mkdir()
    shutil.copy(TPCH / "region.parquet", root / "region.parquet")
    shutil.copy(TPCH / "region.parquet", outside / "region.parquet")
    job = Job(tmp_path, data_roots=[root])

    # Loading from the data roots into the database itself works.
    result, _ = job.run(
        dbname="sec",
        readonly=False,
        query=f"CREATE TABLE region AS SELECT * FROM read_parquet('{root}/region.parquet')",
    )
    assert result["rows_changed"] == 5

    refused = {
        "read outside": f"SELECT * FROM read_parquet('{outside}/region.parquet')",
        "read via ..": f"SELECT * FROM read_parquet('{root}/../root-outside/region.parquet')",
        "read host file": "SELECT * FROM read_csv('/etc/passwd')",
        "glob": "SELECT * FROM glob('/etc/*')",
        "install": "INSTALL httpfs",
        "load": "LOAD httpfs",
        "attach": f"ATTACH '{outside}/other.duckdb' AS other",
        "copy out": f"COPY region TO '{outside}/leak.csv'",
        "export": f"EXPORT DATABASE '{outside}/dump'",
        "unlock": "SET enable_external_access = true",
        "widen": "SET allowed_directories = ['/']",
    }
    for what, sql in refused.items():
        failure = job.fail(dbname="sec", readonly=False, query=sql)
        assert failure.problems[0].statement == 1, what
    assert sorted(p.name for p in outside.iterdir()) == ["region.parquet"]
    assert job.rows("sec", "SELECT count(*) FROM region") == [[5]]


def test_query_table(tpch: Job) -> None:
    table = query_table(
        tpch.data_dir, "tpch", "SELECT n_name FROM nation ORDER BY n_nationkey LIMIT 2"
    )
    assert table.column("n_name").to_pylist() == ["ALGERIA", "ARGENTINA"]
    with pytest.raises(EngineFailure, match="exactly one statement"):
        query_table(tpch.data_dir, "tpch", "SELECT 1; SELECT 2")
    with pytest.raises(EngineFailure) as info:
        query_table(tpch.data_dir, "tpch", "DELETE FROM nation")
    assert info.value.problems[0].code == "read_only_violation"
    with pytest.raises(QueryInterrupted):
        query_table(tpch.data_dir, "tpch", CROSS_JOIN, should_stop=lambda: True)


def test_interrupt_stops_a_long_query(job: Job) -> None:
    job.run(dbname="long", readonly=False, query="CREATE TABLE t (a INTEGER)")
    ctx = job.context()
    payload = {
        "dbname": "long",
        "readonly": False,
        "query": f"INSERT INTO t VALUES (1);\n{CROSS_JOIN}",
    }
    interrupted_at: list[float] = []

    def interrupt() -> None:
        interrupted_at.append(time.monotonic())
        ctx.interrupt()

    timer = threading.Timer(1.0, interrupt)
    timer.start()
    result = LogicEngine().run(payload, ctx)
    returned = time.monotonic()
    timer.join()
    assert result["interrupted"] is True
    assert returned - interrupted_at[0] < 1.0
    assert result["executed"] == 1
    percents = [e["percent"] for e in ctx.events["progress"] if e["type"] == "progress"]
    assert percents and all(e >= 0 for e in percents)
    # Rolled back, and the database still works.
    assert job.rows("long", "SELECT count(*) FROM t") == [[0]]


def test_interrupt_while_waiting_for_the_lock(job: Job) -> None:
    job.run(dbname="wait", readonly=False, query="CREATE TABLE t (a INTEGER)")
    ctx = job.context()
    path = database_path(job.data_dir, "wait")
    with database_lock(path, exclusive=True):
        threading.Timer(0.3, ctx.interrupt).start()
        result = LogicEngine().run({"dbname": "wait", "query": "SELECT 1"}, ctx)
    assert result["interrupted"] is True and result["executed"] == 0
    assert [e["type"] for e in ctx.events["progress"]] == ["lock_wait"]


def test_interrupted_before_start_changes_nothing(job: Job) -> None:
    job.run(dbname="early", readonly=False, query="CREATE TABLE t (a INTEGER)")
    ctx = job.context()
    ctx.interrupt()
    payload = {"dbname": "early", "readonly": False, "query": "INSERT INTO t VALUES (1)"}
    result = LogicEngine().run(payload, ctx)
    assert result["interrupted"] is True and result["executed"] == 0
    assert job.rows("early", "SELECT count(*) FROM t") == [[0]]


def test_damaged_database_file(job: Job) -> None:
    path = database_path(job.data_dir, "broken")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a DuckDB database" * 1000)
    [problem] = job.fail(dbname="broken", query="SELECT 1").problems
    assert problem.code == "database_unavailable" and "broken" in problem.message


def test_lock_lets_reads_share_and_writes_wait(job: Job) -> None:
    job.run(dbname="rw", readonly=False, query="CREATE TABLE t (a INTEGER)")
    job.run(dbname="other", readonly=False, query="CREATE TABLE t (a INTEGER)")
    path = database_path(job.data_dir, "rw")
    outcomes: dict[str, Any] = {}

    def run_in_thread(name: str, **payload: Any) -> threading.Thread:
        def target() -> None:
            outcomes[name] = job.run(**payload)

        thread = threading.Thread(target=target)
        thread.start()
        return thread

    with database_lock(path, exclusive=False):
        # Another reader gets in, and a writer on another database is not held up.
        assert job.rows("rw", "SELECT count(*) FROM t") == [[0]]
        job.run(dbname="other", readonly=False, query="INSERT INTO t VALUES (1)")
        # A writer on this database waits for the reader ...
        writer = run_in_thread(
            "writer", dbname="rw", readonly=False, query="INSERT INTO t VALUES (1)"
        )
        time.sleep(0.3)
        # ... and a reader arriving after it waits behind it (writers are not starved).
        reader = run_in_thread("reader", dbname="rw", query="SELECT count(*) FROM t")
        time.sleep(0.3)
        assert outcomes == {}
    writer.join(10)
    reader.join(10)
    result, ctx = outcomes["writer"]
    assert result["rows_changed"] == 1
    assert ctx.events["progress"][0] == {"type": "lock_wait", "mode": "write"}
    result, ctx = outcomes["reader"]
    assert result["results"][0]["preview"] == [[1]]
    assert ctx.events["progress"][0] == {"type": "lock_wait", "mode": "read"}


def _concurrent_job(
    data_dir: str, dbname: str, kind: str, n: int, start: Any, results: Any
) -> None:
    """One transaction in its own process (a job in a worker child), started with the others."""
    ctx = LocalContext(f"{dbname}-{kind}-{n}", Path(data_dir) / "artifacts", Path(data_dir))
    # Each transaction holds the database for a while so that they really overlap.
    busy = "SELECT count(*) FROM range(3000000) r WHERE r.range % 7 = $n"
    if kind == "write":
        payload = {
            "dbname": dbname,
            "readonly": False,
            "query": f"INSERT INTO t VALUES ($n);\n{busy}",
            "inputs": {"n": n},
        }
    else:
        payload = {
            "dbname": dbname,
            "query": f"SELECT count(*) FROM t;\n{busy}",
            "inputs": {"n": n},
        }
    start.wait(60)
    try:
        result = LogicEngine().run(payload, ctx)
        waits = [e for e in ctx.events["progress"] if e["type"] == "lock_wait"]
        results.put((dbname, kind, n, "ok", (result["executed"], len(waits))))
    except Exception as exc:
        problems = [p.to_dict() for p in getattr(exc, "problems", [])]
        results.put((dbname, kind, n, "error", f"{exc!r} {problems}"))


def test_concurrent_transactions_in_processes(job: Job) -> None:
    for dbname in ("shared", "second"):
        job.run(dbname=dbname, readonly=False, query="CREATE TABLE t (a INTEGER)")
    plan = [("shared", "write" if n % 2 else "read", n) for n in range(8)]
    plan += [("second", "write", 100), ("second", "write", 101)]
    mp = multiprocessing.get_context("spawn")  # no fork of a process that runs DuckDB threads
    start = mp.Event()
    results = mp.Queue()
    processes = [
        mp.Process(target=_concurrent_job, args=(str(job.data_dir), db, kind, n, start, results))
        for db, kind, n in plan
    ]
    for process in processes:
        process.start()
    start.set()
    outcomes = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    assert [o for o in outcomes if o[3] != "ok"] == []
    assert all(o[4][0] == 2 for o in outcomes)
    assert any(o[4][1] for o in outcomes)  # they did contend: some waited for a lock
    assert job.rows("shared", "SELECT list_sort(list(a)) FROM t") == [[[1, 3, 5, 7]]]
    assert job.rows("second", "SELECT list_sort(list(a)) FROM t") == [[[100, 101]]]


def test_unusual_types_in_artifacts(job: Job) -> None:
    job.run(dbname="types", readonly=False, query="CREATE TABLE t (a INTEGER)")
    query = (
        "SELECT 1::HUGEINT AS h, INTERVAL 3 DAY AS i, '\\x00ab'::BLOB AS b, [1, 2] AS l, "
        "{'k': 'v'} AS s, MAP([1], ['x']) AS m, 'nan'::DOUBLE AS nan, DATE '2024-02-29' AS d, "
        "TIMESTAMP '2024-01-02 03:04:05' AS ts, NULL AS n, 1 AS a, 2 AS a"
    )
    result, ctx = job.run(dbname="types", query=query)
    [row] = result["results"][0]["preview"]
    assert row == [
        1,
        {"months": 0, "days": 3, "nanoseconds": 0},
        "\\x00ab",
        [1, 2],
        {"k": "v"},
        [[1, "x"]],
        "NaN",
        "2024-02-29",
        "2024-01-02T03:04:05",
        None,
        1,
        2,
    ]
    header, line = list(csv.reader(io.StringIO(artifact(ctx, "result_1.csv").decode())))
    assert header == ["h", "i", "b", "l", "s", "m", "nan", "d", "ts", "n", "a", "a"]
    assert line[:6] == [
        "1",
        '{"months": 0, "days": 3, "nanoseconds": 0}',
        "\\x00ab",
        "[1, 2]",
        '{"k": "v"}',
        '[[1, "x"]]',
    ]
