"""Reading 100,000 events of one job in pages (SPEC §10: under 2 s).

For each store (SQLite file, PostgreSQL) a job is queued on a reasoner that has no worker, its
``progress`` stream gets ``--events`` events written with ``Store.append_events`` in batches of
``--batch`` (each event like a solver's progress: objective, bound, gap, elapsed), and the job
is then finished, so the stream is complete. The timed part is the reader: a loop of
``client.jobs.get_events(type, id, token)`` through the sql gateway from the empty token until
the token is ``None`` (the gateway's page size), checking every ``seq`` arrives once and in
order. ``--repeats`` reads; the median and the best are compared with the 2 s target.

    .venv/bin/python bench/events_paging.py [--events 100000] [--stores postgresql,sqlite]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from _common import load_average, machine_header, pg_available, scratch_dir, scratch_pg_database

import rjobs
from rjobs.store.store import Store

TYPE = "Prescriptive"
NAME = "bench"
TARGET_S = 2.0


@dataclass
class StoreResult:
    store: str
    events: int
    write_s: float
    pages: int = 0
    reads: list[float] = field(default_factory=list)
    load: str = ""


def write_events(store: Store, job_id: str, events: int, batch: int) -> None:
    written = 0
    while written < events:
        n = min(batch, events - written)
        now = datetime.now(UTC)
        rows = [
            (
                now,
                "mip_progress",
                {
                    "objective": 7615.0 + (written + i) * 0.01,
                    "bound": 7600.0,
                    "gap": 0.002,
                    "elapsed_s": round((written + i) / 100.0, 2),
                    "nodes": written + i,
                },
            )
            for i in range(n)
        ]
        done = store.append_events(job_id, "progress", rows)
        if done != n:
            raise RuntimeError(f"append_events wrote {done} of {n}")
        written += n


def read_all(client: rjobs.ClientSync, job_id: str, expected: int) -> tuple[float, int]:
    token: str | None = ""
    seen = 0
    pages = 0
    t0 = time.perf_counter()
    while token is not None:
        page = client.jobs.get_events(TYPE, job_id, token)
        for event in page.events:
            seen += 1
            if event["seq"] != seen:
                raise RuntimeError(f"event {seen} came as seq {event['seq']}")
        token = page.continuation_token
        pages += 1
    elapsed = time.perf_counter() - t0
    if seen != expected:
        raise RuntimeError(f"read {seen} events, expected {expected}")
    return elapsed, pages


def bench_store(label: str, url: str, tmp: Path, args: argparse.Namespace) -> StoreResult:
    config = rjobs.Config(backend="sql", data_dir=tmp / "data", database_url=url)
    with rjobs.connect_sync(config=config) as client:
        client.reasoners.create(TYPE, NAME, size=1)
        job = client.jobs.create(TYPE, NAME, {"probe": {"sleep_s": 0}})  # no worker: stays queued
        store = Store(url, artifact_dir=config.artifact_dir)
        try:
            t0 = time.perf_counter()
            write_events(store, job.id, args.events, args.batch)
            write_s = time.perf_counter() - t0
            if not store.finish(job.id, "COMPLETED", result={"events": args.events}):
                raise RuntimeError("could not finish the job")
        finally:
            store.close()
        print(f"   {label}: wrote {args.events} events in {write_s:.1f} s", file=sys.stderr)
        result = StoreResult(label, args.events, write_s)
        read_all(client, job.id, args.events)  # warm-up (caches, connection pool)
        for _ in range(args.repeats):
            elapsed, pages = read_all(client, job.id, args.events)
            result.reads.append(elapsed)
            result.pages = pages
            print(f"   {label}: read in {elapsed:.3f} s", file=sys.stderr, flush=True)
    result.load = load_average()
    return result


def report(results: list[StoreResult]) -> None:
    print()
    print(f"get_events paging, whole stream of one job (target {TARGET_S:g} s)")
    header = (
        f"{'store':<12} {'events':>8} {'pages':>6} {'median s':>9} {'best s':>8} {'worst s':>8} "
        f"{'events/s':>10} {'median/target':>13}  verdict   load after"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        med = statistics.median(r.reads)
        print(
            f"{r.store:<12} {r.events:>8} {r.pages:>6} {med:>9.3f} {min(r.reads):>8.3f} "
            f"{max(r.reads):>8.3f} {r.events / med:>10.0f} {med / TARGET_S:>13.2f}  "
            f"{'MET' if med < TARGET_S else 'MISSED':<9} {r.load}"
        )
    for r in results:
        print(f"{r.store}: writing took {r.write_s:.1f} s (append_events, informational)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="events per append_events call")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--stores", default="postgresql,sqlite", help="postgresql,sqlite")
    args = parser.parse_args(argv)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    if set(stores) - {"postgresql", "sqlite"}:
        parser.error("stores are postgresql and sqlite")
    print(machine_header("events_paging"))
    print(f"events {args.events}, written in batches of {args.batch}, {args.repeats} timed reads")
    results: list[StoreResult] = []
    for kind in stores:
        with scratch_dir("events") as tmp:
            if kind == "postgresql":
                if not pg_available():
                    print("PostgreSQL unreachable: skipping", file=sys.stderr)
                    continue
                with scratch_pg_database("events") as url:
                    results.append(bench_store("PostgreSQL", url, tmp, args))
            else:
                url = f"sqlite:///{tmp / 'store.sqlite3'}"
                results.append(bench_store("SQLite", url, tmp, args))
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
