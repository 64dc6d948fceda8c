"""``list()`` with a million jobs stored (SPEC §10: under 50 ms).

A fresh store (rjobs's own migrations) gets ``--rows`` job rows bulk-inserted straight into its
``jobs`` table (PostgreSQL: ``COPY`` through psycopg; SQLite: ``executemany`` in one
transaction), with the store's indexes in place while loading. The mix is meant to look like a
busy installation after three months:

* 20 creators (the current OS user, who is the sql backend's caller, and 19 others), evenly;
* types Logic 40 %, Prescriptive 35 %, Predictive 25 %, over 3-4 reasoner names each;
* created_on spread evenly over 90 days; ids time-ordered like rjobs's own;
* states COMPLETED 88 %, FAILED 7 %, CANCELED 3 %, ABORTED 2 %; the newest 2,000 jobs are 30 %
  RUNNING and 30 % PENDING; 100 older jobs sit PENDING on a reasoner with no worker;
* payload and result JSON of a few hundred bytes.

PostgreSQL then gets ``VACUUM ANALYZE jobs`` (what autovacuum does soon after such a load);
SQLite is left as rjobs leaves it (no ``ANALYZE``; ``--sqlite-analyze`` runs it).

Then ``client.jobs.list(...)`` is timed through the real sql gateway (``connect_sync`` with
``backend="sql"``), each query ``--repeats`` times after a warm-up: p50/p95 against the 50 ms
target. The SQL of every query that misses is shown with its plan (``EXPLAIN ANALYZE`` on
PostgreSQL, ``EXPLAIN QUERY PLAN`` on SQLite); ``--explain`` shows them all. The store queries a
worker runs on every idle tick (``queued_reasoners``, the claim's pre-check) are timed too.

    .venv/bin/python bench/list_million.py [--rows 1000000] [--stores postgresql,sqlite]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from _common import (
    load_average,
    machine_header,
    pg_available,
    scratch_dir,
    scratch_pg_database,
    summary_ms,
    verdict,
)
from psycopg import sql as pg_sql
from sqlalchemy import event as sa_event

import rjobs
from rjobs._client import current_user
from rjobs._ids import encode_base32
from rjobs.store.store import Store

TARGET_MS = 50.0
LIMIT = 50

COLUMNS = (
    "id",
    "reasoner_type",
    "reasoner_name",
    "state",
    "created_by",
    "created_on",
    "started_at",
    "finished_at",
    "duration_ms",
    "abort_reason",
    "timeout_ms",
    "payload",
    "model",
    "read_only",
    "result",
    "worker_id",
    "cancel_requested_by",
    "abort_detached",
    "last_polled_at",
    "idempotency_key",
    "progress_seq",
    "log_seq",
)

TYPES = (("Logic", 0.40), ("Prescriptive", 0.35), ("Predictive", 0.25))
NAMES = {
    "Logic": ("default", "analytics", "etl"),
    "Prescriptive": ("default", "planning", "scheduling", "routing"),
    "Predictive": ("default", "churn", "forecast"),
}
TERMINAL = (("COMPLETED", 0.88), ("FAILED", 0.07), ("CANCELED", 0.03), ("ABORTED", 0.02))
REASONS = {
    "FAILED": "parse error at line 12",
    "CANCELED": "canceled by someone",
    "ABORTED": "timeout exceeded",
}
STUCK_REASONER = ("Prescriptive", "nightly")
RECENT_ACTIVE = 2000
STUCK_PENDING = 100


def job_id(moment: datetime, rng: random.Random) -> str:
    """An id like rjobs's own: 48 bits of milliseconds, then 80 random bits."""
    return encode_base32(int(moment.timestamp() * 1000), 10) + encode_base32(
        rng.getrandbits(80), 16
    )


def generate_rows(
    n: int, creators: list[str], payload_bytes: int, seed: int
) -> list[tuple[Any, ...]]:
    """``n`` job rows in COLUMNS order, oldest first (datetimes are aware UTC)."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=90)
    span_us = 90 * 86400 * 1_000_000
    offsets = sorted(rng.randrange(span_us) for _ in range(n))
    stuck = set(rng.sample(range(max(0, n - 10 * RECENT_ACTIVE)), min(STUCK_PENDING, n // 10)))
    type_names = [t for t, _ in TYPES]
    type_weights = [w for _, w in TYPES]
    term_names = [s for s, _ in TERMINAL]
    term_weights = [w for _, w in TERMINAL]
    filler = "x" * max(0, payload_bytes - 60)
    rows: list[tuple[Any, ...]] = []
    for i, off in enumerate(offsets):
        created = start + timedelta(microseconds=off)
        if i in stuck:
            rtype, rname = STUCK_REASONER
            state = "PENDING"
        else:
            rtype = rng.choices(type_names, type_weights)[0]
            rname = rng.choice(NAMES[rtype])
            if i >= n - RECENT_ACTIVE and rng.random() < 0.6:
                state = rng.choice(("PENDING", "RUNNING"))
            else:
                state = rng.choices(term_names, term_weights)[0]
        started = finished = duration = result = worker = None
        if state != "PENDING":
            started = created + timedelta(milliseconds=rng.randrange(5, 2000))
            worker = f"host-{rng.randrange(4)}-{rng.randrange(1000, 9999)}-abcdef01"
        if state not in ("PENDING", "RUNNING"):
            assert started is not None
            duration = rng.randrange(10, 600_000)
            finished = started + timedelta(milliseconds=duration)
            if state == "COMPLETED":
                result = json.dumps({"status": "optimal", "objective": rng.random() * 1e4})
        is_logic = rtype == "Logic"
        if is_logic:
            payload = json.dumps({"dbname": "sales", "query": f"SELECT 1 -- {filler}"})
        else:
            payload = json.dumps({"probe": {"sleep_s": 1}, "note": filler})
        rows.append(
            (
                job_id(created, rng),
                rtype,
                rname,
                state,
                creators[i % len(creators)],
                created,
                started,
                finished,
                duration,
                REASONS.get(state),
                None,
                payload,
                "sales" if is_logic else None,
                True if is_logic else None,
                result,
                worker,
                "someone" if state == "CANCELED" else None,
                False,
                None,
                None,
                0,
                0,
            )
        )
    return rows


# -- loading -------------------------------------------------------------------------------------


def load_postgres(url: str, rows: list[tuple[Any, ...]]) -> None:
    cols = ", ".join(COLUMNS)
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur, cur.copy(f"COPY jobs ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE jobs")


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # SQLAlchemy's SQLite DateTime text format, UTC without an offset (see UTCDateTime)
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


def load_sqlite(path: Path, rows: list[tuple[Any, ...]], analyze: bool) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        marks = ", ".join("?" for _ in COLUMNS)
        sql = f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({marks})"
        conn.execute("BEGIN")
        chunk = 50_000
        for i in range(0, len(rows), chunk):
            conn.executemany(sql, ([_sqlite_value(v) for v in row] for row in rows[i : i + chunk]))
        conn.execute("COMMIT")
        if analyze:
            conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


# -- queries -------------------------------------------------------------------------------------

# psycopg prepares a statement server-side at its 5th run on a connection, and PostgreSQL may
# switch a prepared statement to a generic plan after 5 more: the first calls of a query can
# run another plan than the later ones, so both are timed.
COLD_CALLS = 10


@dataclass
class QueryResult:
    label: str
    cold: list[float]
    steady: list[float]
    rows: int
    sql: str = ""
    params: Any = None
    plans: list[tuple[str, str]] = field(default_factory=list)

    @property
    def p95_ms(self) -> float:
        return summary_ms(self.cold + self.steady)["p95"]


@dataclass
class StoreResult:
    store: str
    load_s: float
    queries: list[QueryResult] = field(default_factory=list)
    worker_queries: list[QueryResult] = field(default_factory=list)
    load: str = ""


class Capture:
    """Remembers the last SQL statement an engine ran (to EXPLAIN it)."""

    def __init__(self, engine: Any) -> None:
        self.sql = ""
        self.params: Any = None
        sa_event.listen(engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, conn: Any, cursor: Any, sql: str, params: Any, *_: Any) -> None:
        self.sql, self.params = sql, params


def _queries(stuck_name: str) -> list[tuple[str, dict[str, Any]]]:
    """(label, list() keyword arguments); the first positional argument is ``reasoner_type``."""
    return [
        ("newest first (Prescriptive)", {"reasoner_type": "Prescriptive"}),
        ("reasoner_type=None (all types)", {"reasoner_type": None}),
        ("by state FAILED", {"reasoner_type": "Prescriptive", "state": "failed"}),
        ("by state RUNNING (rare)", {"reasoner_type": "Prescriptive", "state": "RUNNING"}),
        ("by name 'planning'", {"reasoner_type": "Prescriptive", "name": "Planning"}),
        (f"by name '{stuck_name}' (rare)", {"reasoner_type": "Prescriptive", "name": stuck_name}),
        ("only_active", {"reasoner_type": "Prescriptive", "only_active": True}),
        ("only_active, all types", {"reasoner_type": None, "only_active": True}),
        ("offset 1000", {"reasoner_type": "Prescriptive", "offset": 1000}),
        ("offset 1000, all types", {"reasoner_type": None, "offset": 1000}),
    ]


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def time_calls(fn: Callable[[], Any], repeats: int) -> tuple[list[float], list[float], Any]:
    """(times of the first COLD_CALLS calls, times of the next ``repeats``, last answer)."""
    cold, steady = [], []
    out: Any = None
    for _ in range(COLD_CALLS):
        elapsed, out = _timed(fn)
        cold.append(elapsed)
    for _ in range(repeats):
        elapsed, out = _timed(fn)
        steady.append(elapsed)
    return cold, steady, out


def explain(store: Store, sql: str, params: Any) -> list[tuple[str, str]]:
    """[(which plan, plan text)]: PostgreSQL's custom and generic plans, or SQLite's plan."""
    raw = store.engine.raw_connection()
    plans: list[tuple[str, str]] = []
    try:
        cur = raw.cursor()
        if store.dialect == "postgresql":
            names: list[str] = []

            def number(match: re.Match[str]) -> str:
                names.append(match.group(1))
                return f"${len(names)}"

            numbered = re.sub(r"%\((\w+)\)s", number, sql)
            values = pg_sql.SQL(", ").join(pg_sql.Literal(params[n]) for n in names)
            cur.execute(f"PREPARE rjobs_bench_q AS {numbered}")
            for mode in ("force_custom_plan", "force_generic_plan"):
                cur.execute(f"SET plan_cache_mode = {mode}")
                query = pg_sql.SQL("EXPLAIN (ANALYZE, BUFFERS) EXECUTE rjobs_bench_q({})")
                cur.execute(
                    query.format(values) if names else "EXPLAIN ANALYZE EXECUTE rjobs_bench_q"
                )
                text = "\n".join(str(row[0]) for row in cur.fetchall())
                plans.append((mode.removeprefix("force_").replace("_", " "), text))
            cur.execute("DEALLOCATE rjobs_bench_q")
            cur.execute("RESET plan_cache_mode")
        else:
            cur.execute("EXPLAIN QUERY PLAN " + sql, params)
            plans.append(("query plan", "\n".join(str(row[-1]) for row in cur.fetchall())))
        cur.close()
        raw.rollback()
    finally:
        raw.close()
    return plans


def run_queries(label: str, url: str, tmp: Path, repeats: int, show_all: bool) -> StoreResult:
    result = StoreResult(label, 0.0)
    config = rjobs.Config(backend="sql", data_dir=tmp / "data", database_url=url)
    with rjobs.connect_sync(config=config) as client:
        # the sql gateway's store (a private attribute: benchmarks may look inside)
        store: Store = client.jobs._gateway.store  # type: ignore[attr-defined]
        capture = Capture(store.engine)
        for qlabel, kwargs in _queries(STUCK_REASONER[1]):
            args = dict(kwargs)
            rtype = args.pop("reasoner_type")

            def call(rtype: str | None = rtype, args: dict[str, Any] = args) -> list[rjobs.Job]:
                return client.jobs.list(rtype, limit=LIMIT, **args)

            cold, steady, out = time_calls(call, repeats)
            q = QueryResult(qlabel, cold, steady, len(out), capture.sql, capture.params)
            if show_all or q.p95_ms > TARGET_MS:
                q.plans = explain(store, q.sql, q.params)
            result.queries.append(q)
            print(f"   {label}: {qlabel}: p95 {q.p95_ms:.1f} ms", file=sys.stderr, flush=True)
        # what an idle worker runs on every 0.1 s tick (Store.claim's pre-check), and what the
        # embedded supervisor runs before exiting when idle
        for qlabel, fn in (
            ("worker tick: queued_reasoners()", store.queued_reasoners),
            ("idle check: count_active()", store.count_active),
        ):
            cold, steady, out = time_calls(fn, max(5, repeats // 3))
            rows = len(out) if isinstance(out, set) else 1
            q = QueryResult(qlabel, cold, steady, rows, capture.sql, capture.params)
            q.plans = explain(store, q.sql, q.params)
            result.worker_queries.append(q)
    result.load = load_average()
    return result


@contextlib.contextmanager
def postgres_store(tag: str) -> Iterator[str]:
    with scratch_pg_database(tag) as url:
        yield url


def bench_store(
    kind: str, rows: list[tuple[Any, ...]], args: argparse.Namespace
) -> StoreResult | None:
    with scratch_dir("list") as tmp:
        if kind == "postgresql":
            if not pg_available():
                print("PostgreSQL unreachable: skipping", file=sys.stderr)
                return None
            with postgres_store("list") as url:
                Store(url, artifact_dir=tmp / "a").upgrade()
                t0 = time.perf_counter()
                load_postgres(url, rows)
                load_s = time.perf_counter() - t0
                print(f"   loaded PostgreSQL in {load_s:.1f} s", file=sys.stderr, flush=True)
                res = run_queries("PostgreSQL", url, tmp, args.repeats, args.explain)
        else:
            path = tmp / "store.sqlite3"
            url = f"sqlite:///{path}"
            Store(url, artifact_dir=tmp / "a").upgrade()
            t0 = time.perf_counter()
            load_sqlite(path, rows, args.sqlite_analyze)
            load_s = time.perf_counter() - t0
            print(f"   loaded SQLite in {load_s:.1f} s", file=sys.stderr, flush=True)
            label = "SQLite (ANALYZEd)" if args.sqlite_analyze else "SQLite"
            res = run_queries(label, url, tmp, args.repeats, args.explain)
        res.load_s = load_s
        return res


def report(results: list[StoreResult], rows: int, me: str) -> None:
    print()
    print(
        f"list(limit={LIMIT}) with {rows:,} jobs stored, caller {me!r} (1 of 20 creators), ms; "
        f"first {COLD_CALLS} calls and the next ones timed apart; target {TARGET_MS:g} ms at "
        "the p95 of all calls"
    )
    header = (
        f"{'store':<11} {'query':<32} {'rows':>4} {'p50 1st':>8} {'p50 then':>8} "
        f"{'p95 all':>8} {'max':>8} {'p95/target':>10}  verdict"
    )
    print(header)
    print("-" * len(header))
    misses: list[tuple[str, QueryResult]] = []
    for res in results:
        for q in res.queries + res.worker_queries:
            cold, steady = summary_ms(q.cold), summary_ms(q.steady)
            every = summary_ms(q.cold + q.steady)
            if q in res.queries:
                v = verdict(every["p95"], TARGET_MS)
                ratio = f"{every['p95'] / TARGET_MS:>10.2f}"
                if v == "MISSED":
                    misses.append((res.store, q))
            else:
                v, ratio = "(not list(): informational)", ""
            print(
                f"{res.store:<11} {q.label:<32} {q.rows:>4} {cold['p50']:>8.2f} "
                f"{steady['p50']:>8.2f} {every['p95']:>8.2f} {every['max']:>8.2f} "
                f"{ratio:>10}  {v}"
            )
        print(f"{res.store:<11} bulk load {res.load_s:.1f} s; load average after: {res.load}")
    print(f"missed: {len(misses)} of {sum(len(r.queries) for r in results)} list() queries")
    explained = [(r.store, q, "MISSED") for r in results for q in r.queries if q.plans]
    explained += [(r.store, q, "worker") for r in results for q in r.worker_queries]
    for store, q, why in explained:
        tag = "MISSED the target" if (store, q) in misses else why
        print()
        print(f"-- {store}: {q.label} ({tag})")
        print(q.sql.strip())
        print(f"params: {q.params}")
        for which, plan in q.plans:
            print(f"[{which}]")
            print(plan)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--stores", default="postgresql,sqlite", help="postgresql,sqlite")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per query")
    parser.add_argument("--payload-bytes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sqlite-analyze", action="store_true", help="ANALYZE after loading")
    parser.add_argument("--explain", action="store_true", help="show every query's plan")
    args = parser.parse_args(argv)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    if set(stores) - {"postgresql", "sqlite"}:
        parser.error("stores are postgresql and sqlite")
    print(machine_header("list_million"))
    me = current_user()
    creators = [me] + [f"user{i:02d}" for i in range(1, 20)]
    t0 = time.perf_counter()
    rows = generate_rows(args.rows, creators, args.payload_bytes, args.seed)
    print(
        f"generated {len(rows):,} rows in {time.perf_counter() - t0:.1f} s "
        f"(payload ~{args.payload_bytes} B, {len(creators)} creators)"
    )
    results = []
    for kind in stores:
        print(f"-- {kind}", file=sys.stderr, flush=True)
        res = bench_store(kind, rows, args)
        if res is not None:
            results.append(res)
    report(results, len(rows), me)
    return 0


if __name__ == "__main__":
    sys.exit(main())
