"""How soon ``wait()`` returns after a job's terminal transition (SPEC §10: within 50 ms).

For each backend, short probe jobs are created one after another, and for each one the client
blocks in ``client.jobs.wait(...)`` with the default ``poll_interval_s=0.5``. The lag of a job is
the wall-clock moment ``wait`` returned minus the job's ``finished_at`` (written by the worker
on SQLite, by the database's ``clock_timestamp()`` on PostgreSQL; both run on this host, so both
clocks are the same clock).

Baseline, named "polling at poll_interval_s=0.5": the same jobs followed by a plain loop of
``client.jobs.get()`` and ``time.sleep(0.5)`` until the job is terminal; its lag is measured the
same way. Each job sleeps ``--sleep-s`` plus a random jitter in [0, ``--jitter-s``) (the same
seeded sequence for rjobs and the baseline, jobs interleaved), so the baseline's poll phase is
spread evenly, as it would be for real jobs of varying length.

    .venv/bin/python bench/wait_latency.py [--jobs 50] [--backends embedded,postgresql,sqlite]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from _common import (
    WorkerProcs,
    load_average,
    machine_header,
    pg_available,
    scratch_dir,
    scratch_pg_database,
    stop_supervisor,
    summary_ms,
    verdict,
)

import rjobs

TYPE = "Prescriptive"
NAME = "bench"
TARGET_MS = 50.0
POLL_S = 0.5
BASELINE = f"polling at poll_interval_s={POLL_S}"


@dataclass
class Result:
    backend: str
    rjobs_lags: list[float] = field(default_factory=list)
    baseline_lags: list[float] = field(default_factory=list)
    load: str = ""


@contextlib.contextmanager
def embedded_client(tmp: Path) -> Iterator[rjobs.ClientSync]:
    data_dir = tmp / "data"
    config = rjobs.Config(backend="embedded", data_dir=data_dir, idle_timeout_s=120)
    try:
        with rjobs.connect_sync(config=config) as client:
            client.reasoners.create(TYPE, NAME, size=2)
            yield client
    finally:
        stop_supervisor(data_dir)


@contextlib.contextmanager
def sql_client(tmp: Path, url: str) -> Iterator[rjobs.ClientSync]:
    data_dir = tmp / "data"
    config = rjobs.Config(backend="sql", data_dir=data_dir, database_url=url)
    workers = WorkerProcs(tmp)
    try:
        with rjobs.connect_sync(config=config) as client:
            client.reasoners.create(TYPE, NAME, size=2)
            workers.start(url, f"{TYPE}/{NAME}", 2, data_dir)
            yield client
    finally:
        workers.stop()


def _lag(job: rjobs.Job) -> float:
    returned = datetime.now(UTC)
    assert job.finished_at is not None, job
    return (returned - job.finished_at).total_seconds()


def wait_lag(client: rjobs.ClientSync, payload: dict[str, object]) -> float:
    op = client.jobs.create(TYPE, NAME, payload)
    job = client.jobs.wait(TYPE, op.id, timeout_s=60)  # poll_interval_s: the default 0.5
    lag = _lag(job)
    if job.state != "COMPLETED":
        raise RuntimeError(f"probe job ended {job.state}: {job.abort_reason}")
    return lag


def polling_lag(client: rjobs.ClientSync, payload: dict[str, object]) -> float:
    op = client.jobs.create(TYPE, NAME, payload)
    deadline = time.monotonic() + 60
    while True:
        job = client.jobs.get(TYPE, op.id)
        assert job is not None
        if job.is_terminal:
            lag = _lag(job)
            if job.state != "COMPLETED":
                raise RuntimeError(f"probe job ended {job.state}: {job.abort_reason}")
            return lag
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {op.id} not done after 60 s")
        time.sleep(POLL_S)


def measure(
    backend: str, client: rjobs.ClientSync, jobs: int, sleep_s: float, jitter_s: float, seed: int
) -> Result:
    rng = random.Random(seed)
    sleeps = [sleep_s + rng.random() * jitter_s for _ in range(jobs)]
    # warm up: the supervisor or worker is started and its job process is warm
    for _ in range(3):
        wait_lag(client, {"probe": {"sleep_s": 0.05}})
    result = Result(backend)
    for i, s in enumerate(sleeps):
        payload: dict[str, object] = {"probe": {"sleep_s": round(s, 4)}}
        result.rjobs_lags.append(wait_lag(client, payload))
        result.baseline_lags.append(polling_lag(client, payload))
        if (i + 1) % 10 == 0:
            print(f"  {backend}: {i + 1}/{jobs} jobs", file=sys.stderr, flush=True)
    result.load = load_average()
    return result


def report(results: list[Result]) -> None:
    print()
    print(f"wait() lag after the terminal transition, ms (target {TARGET_MS:g} ms at p95)")
    header = f"{'backend':<22} {'who':<34} {'n':>4} {'p50':>8} {'p95':>8} {'max':>8} {'mean':>8}"
    print(header)
    print("-" * len(header))
    for r in results:
        ours = summary_ms(r.rjobs_lags)
        base = summary_ms(r.baseline_lags)
        for who, s in (("rjobs wait()", ours), (BASELINE, base)):
            print(
                f"{r.backend:<22} {who:<34} {int(s['n']):>4} {s['p50']:>8.1f} {s['p95']:>8.1f} "
                f"{s['max']:>8.1f} {s['mean']:>8.1f}"
            )
        print(
            f"{'':<22} ratio rjobs/baseline: p50 {ours['p50'] / base['p50']:.3f}, "
            f"mean {ours['mean'] / base['mean']:.3f} "
            f"(baseline is {base['mean'] / ours['mean']:.1f}x slower on mean)"
        )
        print(
            f"{'':<22} target {TARGET_MS:g} ms: p95 {ours['p95']:.1f} ms -> "
            f"{verdict(ours['p95'], TARGET_MS)}; max {ours['max']:.1f} ms -> "
            f"{verdict(ours['max'], TARGET_MS)}; ratio p95/target "
            f"{ours['p95'] / TARGET_MS:.2f}; load after: {r.load}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50, help="jobs per backend and per method")
    parser.add_argument("--sleep-s", type=float, default=0.2, help="probe sleep of each job")
    parser.add_argument("--jitter-s", type=float, default=POLL_S, help="random extra sleep")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--backends",
        default="embedded,postgresql",
        help="comma-separated: embedded (SQLite + supervisor), postgresql (sql backend), "
        "sqlite (sql backend on a SQLite file, with an rjobs worker process)",
    )
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"embedded", "postgresql", "sqlite"}
    if unknown:
        parser.error(f"unknown backends {sorted(unknown)}")
    print(machine_header("wait_latency"))
    print(
        f"jobs per backend: {args.jobs} (+ as many baseline jobs), probe sleep {args.sleep_s} s "
        f"+ U[0, {args.jitter_s}) s, wait(poll_interval_s={POLL_S})"
    )
    results: list[Result] = []
    runners: dict[str, Callable[[Path], contextlib.AbstractContextManager[rjobs.ClientSync]]] = {
        "embedded": embedded_client,
        "sqlite": lambda tmp: sql_client(tmp, f"sqlite:///{tmp / 'store.sqlite3'}"),
    }
    for backend in backends:
        print(f"-- {backend}", file=sys.stderr, flush=True)
        with scratch_dir("wait") as tmp:
            if backend == "postgresql":
                if not pg_available():
                    print("PostgreSQL unreachable: skipping", file=sys.stderr)
                    continue
                with (
                    scratch_pg_database("wait") as url,
                    sql_client(tmp, url) as client,
                ):
                    results.append(
                        measure(
                            "sql on PostgreSQL",
                            client,
                            args.jobs,
                            args.sleep_s,
                            args.jitter_s,
                            args.seed,
                        )
                    )
            else:
                label = "embedded (SQLite)" if backend == "embedded" else "sql on SQLite"
                with runners[backend](tmp) as client:
                    results.append(
                        measure(label, client, args.jobs, args.sleep_s, args.jitter_s, args.seed)
                    )
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
