"""Logic transactions as jobs: TPC-H end to end, problems, concurrency, cancel and timeout."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

import rjobs
from rjobs._gateway import CreateRequest
from support import TPCH, assert_matches_answer, kill_supervisor, read_csv

L = "Logic"
TABLES = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]
CROSS_JOIN = (
    "SELECT count(*) FROM range(100000000) a, range(100000000) b WHERE a.range + b.range = 7"
)


@pytest.fixture(scope="module")
def logic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rjobs.ClientSync]:
    config = rjobs.Config(
        backend="embedded",
        data_dir=tmp_path_factory.mktemp("logic") / "data",
        data_roots=(TPCH.resolve(),),
        idle_timeout_s=60,
    )
    with rjobs.connect_sync(config=config) as client:
        client.reasoners.create(L, "db", size=4)
        query = "\n".join(
            f"CREATE TABLE {t} AS SELECT * FROM read_parquet($path_{t});" for t in TABLES
        )
        inputs = {f"path_{t}": f"{t}.parquet" for t in TABLES}
        inputs = {k: str(TPCH / v) for k, v in inputs.items()}
        built = client.jobs.create_ready(
            L, "db", {"dbname": "tpch", "query": query, "readonly": False, "inputs": inputs},
            timeout_s=300, include={"details": True, "problems": True},
        )  # fmt: skip
        assert built.state == "COMPLETED", built
        assert built.model == "tpch"
        yield client
    kill_supervisor(config.data_dir)


def test_tpch_queries_match_the_answers(logic: rjobs.ClientSync) -> None:
    ops = {
        n: logic.jobs.create(
            L, "db", {"dbname": "tpch", "query": (TPCH / "queries" / f"q{n:02d}.sql").read_text()}
        )
        for n in range(1, 23)
    }
    for n, op in ops.items():
        job = op.wait(timeout_s=300, include={"artifacts": True})
        assert job.state == "COMPLETED", (n, job.abort_reason)
        names = {a["name"] for a in job.artifacts or []}  # type: ignore[attr-defined]
        assert {"result_1.csv", "result_1.arrow"} <= names
        assert_matches_answer(logic.jobs.read_artifact(L, op.id, "result_1.csv").decode(), n)


def test_preview_and_statement_events(logic: rjobs.ClientSync) -> None:
    job = logic.jobs.create_ready(
        L, "db", {"dbname": "tpch", "query": "SELECT r_name FROM region ORDER BY r_name"},
        include={"details": True},
    )  # fmt: skip
    result = job.details["result"]  # type: ignore[attr-defined]
    assert result["results"][0]["preview"][0] == ["AFRICA"]
    assert result["results"][0]["row_count"] == 5
    types = [e["type"] for e in logic.jobs.get_events(L, job.id).events]
    assert types[0] == "statement_started" and "statement_finished" in types


def test_recursive_sql_transitive_closure(logic: rjobs.ClientSync) -> None:
    edges = [{"src": a, "dst": b} for a, b in [(1, 2), (2, 3), (3, 4), (4, 2), (5, 6)]]
    query = """
        WITH RECURSIVE reach(src, dst) AS (
            SELECT src, dst FROM edges
            UNION
            SELECT r.src, e.dst FROM reach r JOIN edges e ON r.dst = e.src
        )
        SELECT count(*) AS pairs FROM reach
    """
    job = logic.jobs.create_ready(
        L, "db", {"dbname": "tpch", "query": query, "inputs": {"edges": edges}},
        include={"details": True},
    )  # fmt: skip
    # 1 reaches 2,3,4; 2,3,4 reach each other and themselves (9); 5 reaches 6
    assert job.details["result"]["results"][0]["preview"] == [[3 + 9 + 1]]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("payload", "code", "where"),
    [
        ({"query": "SELECT 1;\nDELETE FROM region"}, "read_only_violation", {"statement": 2}),
        ({"query": "SELECT 1;\n\nSELEC r_name FROM region"}, None, {"line": 3}),
        ({"query": "SELECT no_such_column FROM region"}, None, {"line": 1}),
        ({"dbname": "missing_db", "query": "SELECT 1"}, "database_not_found", {}),
    ],
    ids=["read-only", "syntax", "unknown-column", "missing-db"],
)
def test_mistakes_fail_with_problems(
    logic: rjobs.ClientSync, payload: dict[str, object], code: str | None, where: dict[str, int]
) -> None:
    body = {"dbname": "tpch", **payload}
    job = logic.jobs.create_ready(L, "db", body, include={"problems": True})
    assert job.state == "FAILED"
    problem = job.problems[0]  # type: ignore[attr-defined]
    assert problem["severity"] == "error"
    if code:
        assert problem["code"] == code
    for key, value in where.items():
        assert problem[key] == value, problem


def test_concurrent_reads_and_writes_never_hit_a_lock_error(logic: rjobs.ClientSync) -> None:
    setup = "CREATE TABLE IF NOT EXISTS counter(n INTEGER); "
    logic.jobs.create_ready(L, "db", {"dbname": "busy", "query": setup, "readonly": False})
    logic.jobs.create_ready(L, "db", {"dbname": "other", "query": setup, "readonly": False})
    ops = []
    for i in range(8):
        if i % 2:
            payload = {"dbname": "busy", "query": "SELECT count(*) FROM counter"}
        else:
            payload = {
                "dbname": "busy",
                "query": "INSERT INTO counter VALUES ($n)",
                "inputs": {"n": i},
                "readonly": False,
            }
        ops.append(logic.jobs.create(L, "db", payload))
    for _ in range(4):
        ops.append(logic.jobs.create(L, "db", {
            "dbname": "other", "query": "INSERT INTO counter VALUES (1)", "readonly": False,
        }))  # fmt: skip
    for op in ops:
        job = op.wait(timeout_s=120)
        assert job.state == "COMPLETED", job.abort_reason
    job = logic.jobs.create_ready(
        L, "db", {"dbname": "busy", "query": "SELECT sum(n), count(*) FROM counter"},
        include={"details": True},
    )  # fmt: skip
    assert job.details["result"]["results"][0]["preview"] == [[0 + 2 + 4 + 6, 4]]  # type: ignore[attr-defined]


def test_cancel_and_timeout_stop_a_long_query(logic: rjobs.ClientSync) -> None:
    op = logic.jobs.create(L, "db", {"dbname": "tpch", "query": CROSS_JOIN})
    deadline = time.monotonic() + 30
    while logic.jobs.get(L, op.id).state != "RUNNING":  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)
    start = time.monotonic()
    logic.jobs.cancel(L, op.id)
    assert op.wait(timeout_s=10).state == "CANCELED"
    assert time.monotonic() - start < 1.0

    gateway = logic.jobs._gateway
    payload = {"dbname": "tpch", "query": CROSS_JOIN}
    timed = gateway.create_job(CreateRequest(L, "db", payload, json.dumps(payload), timeout_ms=800))
    start = time.monotonic()
    job = logic.jobs.wait(L, timed.id, timeout_s=30)
    assert job.state == "ABORTED" and job.abort_reason == "timeout exceeded"
    assert time.monotonic() - start < 3.0
    # the database still works
    after = logic.jobs.create_ready(L, "db", {"dbname": "tpch", "query": "SELECT 1"})
    assert after.state == "COMPLETED"


def test_inputs_are_data_not_sql(logic: rjobs.ClientSync) -> None:
    evil = "x'); DROP TABLE region; --"
    logic.jobs.create_ready(
        L, "db",
        {"dbname": "notes", "readonly": False,
         "query": "CREATE TABLE note(t VARCHAR); INSERT INTO note VALUES ($t)",
         "inputs": {"t": evil}},
    )  # fmt: skip
    job = logic.jobs.create_ready(
        L, "db", {"dbname": "notes", "query": "SELECT t FROM note"}, include={"details": True}
    )
    assert job.details["result"]["results"][0]["preview"] == [[evil]]  # type: ignore[attr-defined]
    regions = logic.jobs.create_ready(
        L, "db", {"dbname": "tpch", "query": "SELECT count(*) FROM region"},
        include={"details": True},
    )  # fmt: skip
    assert regions.details["result"]["results"][0]["preview"] == [[5]]  # type: ignore[attr-defined]


def test_query_command_prints_a_table_csv_and_json(logic: rjobs.ClientSync) -> None:
    import os
    import subprocess
    import sys

    env = dict(os.environ, RJOBS_DATA_DIR=str(logic.config.data_dir))
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "rjobs.cli", "query", "tpch", *a, "--reasoner", "db"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    table = run("SELECT r_regionkey, r_name FROM region ORDER BY 1")
    assert table.returncode == 0, table.stderr
    assert "AFRICA" in table.stdout and "5 row(s)" in table.stdout
    csv_out = run("SELECT r_name FROM region ORDER BY 1", "--csv")
    rows = [row[0] for row in read_csv(csv_out.stdout)]
    assert rows == ["r_name", "AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"]
    as_json = json.loads(run("SELECT 42 AS answer", "--json").stdout)
    assert as_json["details"]["result"]["results"][0]["preview"] == [[42]]
    failed = run("SELECT nope FROM region")
    assert failed.returncode == 1 and "line 1" in failed.stdout
