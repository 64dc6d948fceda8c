"""Trivial jobs through create, claim, run and complete, end to end (SPEC §10).

Target: rjobs moves trivial (probe) jobs faster than the best Python job queues measured side by
side on the same database. Baseline: procrastinate (PostgreSQL-only, LISTEN/NOTIFY + SKIP LOCKED,
the same design family as rjobs's sql backend), on its own fresh database of the same server.

Setup, identical for both queues on PostgreSQL:

* ``--workers`` worker processes, each running ``--slots`` jobs at once:
  ``rjobs worker --reasoner Prescriptive/bench --slots S`` (each job in a warm child process,
  as rjobs always runs jobs), and ``procrastinate worker --concurrency S`` with an async no-op
  task (procrastinate's recommended set-up for concurrency), both with their default polling,
  notification and logging settings, logs to files;
* one producer (this process) creates jobs one at a time through each library's ordinary
  single-job call (``client.jobs.create`` with the probe payload / ``task.defer()``).

Two scenarios:

* stream (the headline): the workers are running and warmed up; the clock starts before the
  first create and stops at the last completion as recorded in the database
  (``finished_at`` / ``procrastinate_events`` of type ``succeeded``). jobs/s = jobs / that time;
  ``--rounds`` rounds, the median reported. Creating is part of the path.
* backlog: the workers are stopped, ``--jobs`` jobs are queued, the workers are started, and
  the drain rate is measured between the 10th and the 90th percentile of completion times
  (worker start-up excluded): claim, run and complete only.

rjobs embedded (SQLite + its local supervisor: one worker process with ``workers x slots``
slots) runs the stream scenario only, without a baseline (procrastinate has no SQLite backend).

    .venv/bin/python bench/throughput.py [--jobs 1000] [--workers 2] [--slots 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import psycopg
from _common import (
    WorkerProcs,
    load_average,
    machine_header,
    percentile,
    pg_available,
    scratch_dir,
    scratch_pg_database,
    stop_supervisor,
)

import rjobs

TYPE = "Prescriptive"
NAME = "bench"
PROBE: dict[str, Any] = {"probe": {"sleep_s": 0, "events": 0, "fail": None}}
BENCH_DIR = Path(__file__).resolve().parent
POLL_S = 0.1
DSN_ENV = "RJOBS_BENCH_PROCRASTINATE_DSN"  # _procrastinate_app.DSN_ENV
RJOBS_PG = "rjobs sql / PostgreSQL"
PROCRASTINATE = "procrastinate / PostgreSQL"


class Queue(Protocol):
    label: str
    setup: str
    can_backlog: bool

    def create_one(self) -> str: ...

    def wait_empty(self, timeout_s: float) -> None: ...

    def timeline(self, ids: list[str]) -> tuple[list[datetime], list[datetime], Counter[str]]:
        """Sorted claim times, sorted completion times and final states of these jobs."""
        ...

    def start_workers(self) -> None: ...

    def stop_workers(self) -> None: ...


@dataclass
class Round:
    kind: str
    jobs: int
    seconds: float  # the measured window
    create_s: float
    states: Counter[str]
    load: str

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds


@dataclass
class QueueResult:
    label: str
    setup: str
    stream: list[Round] = field(default_factory=list)
    backlog: Round | None = None

    @property
    def median_rate(self) -> float:
        return statistics.median(r.rate for r in self.stream)


def _count_rows(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    return 0 if row is None else int(row[0])


def _await(check: Callable[[], bool], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(POLL_S)


# -- rjobs ---------------------------------------------------------------------------------------


class RjobsQueue:
    def __init__(
        self,
        label: str,
        setup: str,
        client: rjobs.ClientSync,
        procs: WorkerProcs | None = None,
        url: str = "",
        workers: int = 0,
        slots: int = 0,
        data_dir: Path | None = None,
    ) -> None:
        self.label, self.setup, self.client = label, setup, client
        self.procs, self.url, self.workers, self.slots = procs, url, workers, slots
        self.data_dir = data_dir
        self.can_backlog = procs is not None

    def create_one(self) -> str:
        return self.client.jobs.create(TYPE, NAME, PROBE).id

    def wait_empty(self, timeout_s: float) -> None:
        jobs = self.client.jobs
        _await(
            lambda: not jobs.list(TYPE, name=NAME, only_active=True, limit=1),
            f"{self.label} to finish its jobs",
            timeout_s,
        )

    def timeline(self, ids: list[str]) -> tuple[list[datetime], list[datetime], Counter[str]]:
        final = {
            j.id: j
            for j in self.client.jobs.list(
                TYPE, name=NAME, limit=len(ids), include={"details": True}
            )
        }
        missing = set(ids) - set(final)
        if missing:
            raise RuntimeError(f"{self.label}: {len(missing)} jobs not among the newest")
        started, finished = [], []
        for job_id in ids:
            job = final[job_id]
            assert isinstance(job, rjobs.JobExpanded) and job.details is not None
            if job.details["started_at"] is not None:
                started.append(job.details["started_at"])
            if job.finished_at is not None:
                finished.append(job.finished_at)
        return sorted(started), sorted(finished), Counter(final[i].state for i in ids)

    def start_workers(self) -> None:
        assert self.procs is not None and self.data_dir is not None
        for _ in range(self.workers):
            self.procs.start(self.url, f"{TYPE}/{NAME}", self.slots, self.data_dir)
        _await(
            lambda: _count_rows(self.url, "SELECT count(*) FROM workers") >= self.workers,
            "rjobs workers to register",
            60,
        )

    def stop_workers(self) -> None:
        assert self.procs is not None
        self.procs.stop()
        _await(
            lambda: _count_rows(self.url, "SELECT count(*) FROM workers") == 0,
            "rjobs workers to unregister",
            30,
        )


@contextlib.contextmanager
def rjobs_postgres(workers: int, slots: int) -> Iterator[Queue]:
    with scratch_dir("tput") as tmp, scratch_pg_database("tput_rjobs") as url:
        data_dir = tmp / "data"
        config = rjobs.Config(backend="sql", data_dir=data_dir, database_url=url)
        procs = WorkerProcs(tmp)
        try:
            with rjobs.connect_sync(config=config) as client:
                client.reasoners.create(TYPE, NAME, size=slots)
                setup = (
                    f"{workers} x `rjobs worker --reasoner {TYPE}/{NAME} --slots {slots}`, "
                    "producer: sql-backend client"
                )
                queue = RjobsQueue(RJOBS_PG, setup, client, procs, url, workers, slots, data_dir)
                queue.start_workers()
                yield queue
        finally:
            procs.stop()


@contextlib.contextmanager
def rjobs_embedded(workers: int, slots: int) -> Iterator[Queue]:
    with scratch_dir("tput") as tmp:
        data_dir = tmp / "data"
        config = rjobs.Config(backend="embedded", data_dir=data_dir, idle_timeout_s=120)
        try:
            with rjobs.connect_sync(config=config) as client:
                client.reasoners.create(TYPE, NAME, size=workers * slots)
                setup = (
                    f"embedded supervisor (1 worker process), reasoner size {workers * slots}, "
                    "SQLite in WAL mode"
                )
                yield RjobsQueue("rjobs embedded / SQLite", setup, client)
        finally:
            stop_supervisor(data_dir)


# -- procrastinate -------------------------------------------------------------------------------


class ProcrastinateQueue:
    label = PROCRASTINATE
    can_backlog = True

    def __init__(self, url: str, task: Any, tmp: Path, workers: int, slots: int) -> None:
        self.url, self.task, self.tmp = url, task, tmp
        self.workers, self.slots = workers, slots
        self.procs: list[subprocess.Popen[bytes]] = []
        self.setup = (
            f"{workers} x `procrastinate worker --concurrency {slots}` (async no-op task; "
            "defaults: listen_notify on, fetch polling 5 s), producer: `task.defer()`"
        )

    def create_one(self) -> str:
        return str(self.task.defer())

    def wait_empty(self, timeout_s: float) -> None:
        active = "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        _await(lambda: _count_rows(self.url, active) == 0, f"{self.label} to finish", timeout_s)

    def timeline(self, ids: list[str]) -> tuple[list[datetime], list[datetime], Counter[str]]:
        int_ids = [int(i) for i in ids]
        with psycopg.connect(self.url) as conn:
            states = Counter(
                {
                    str(status): int(n)
                    for status, n in conn.execute(
                        "SELECT status::text, count(*) FROM procrastinate_jobs "
                        "WHERE id = ANY(%s) GROUP BY 1",
                        (int_ids,),
                    )
                }
            )
            times: dict[str, list[datetime]] = {"started": [], "succeeded": []}
            for kind, at in conn.execute(
                "SELECT type::text, at FROM procrastinate_events "
                "WHERE type IN ('started', 'succeeded') AND job_id = ANY(%s)",
                (int_ids,),
            ):
                times[str(kind)].append(at.astimezone(UTC))
        return sorted(times["started"]), sorted(times["succeeded"]), states

    def start_workers(self) -> None:
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join([str(BENCH_DIR), os.environ.get("PYTHONPATH", "")]),
        )
        env[DSN_ENV] = self.url
        for _ in range(self.workers):
            with open(self.tmp / f"procrastinate-{len(self.procs)}.log", "wb") as out:
                self.procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "procrastinate",
                            "--app=_procrastinate_app.app",
                            "worker",
                            "--concurrency",
                            str(self.slots),
                        ],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        env=env,
                        cwd=self.tmp,
                    )
                )
        registered = "SELECT count(*) FROM procrastinate_workers"
        _await(
            lambda: _count_rows(self.url, registered) >= self.workers,
            "procrastinate workers to register",
            60,
        )

    def stop_workers(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.procs.clear()


@contextlib.contextmanager
def procrastinate_postgres(workers: int, slots: int) -> Iterator[Queue]:
    if importlib.util.find_spec("procrastinate") is None:
        raise SystemExit("procrastinate is not installed: .venv/bin/pip install -e '.[bench]'")
    with scratch_dir("tput") as tmp, scratch_pg_database("tput_procr") as url:
        # the app reads its database from the environment when first imported, here
        os.environ[DSN_ENV] = url
        import _procrastinate_app

        app = _procrastinate_app.app
        queue = ProcrastinateQueue(url, _procrastinate_app.noop, tmp, workers, slots)
        try:
            with app.open():
                app.schema_manager.apply_schema()
                queue.start_workers()
                yield queue
        finally:
            queue.stop_workers()


# -- measuring -----------------------------------------------------------------------------------


def stream_round(queue: Queue, jobs: int, timeout_s: float) -> Round:
    start = datetime.now(UTC)
    t0 = time.perf_counter()
    ids = [queue.create_one() for _ in range(jobs)]
    create_s = time.perf_counter() - t0
    queue.wait_empty(timeout_s)
    _, finished, states = queue.timeline(ids)
    seconds = (finished[-1] - start).total_seconds()
    return Round("stream", jobs, seconds, create_s, states, load_average())


def backlog_round(queue: Queue, jobs: int, timeout_s: float) -> Round:
    queue.stop_workers()
    t0 = time.perf_counter()
    ids = [queue.create_one() for _ in range(jobs)]
    create_s = time.perf_counter() - t0
    queue.start_workers()
    queue.wait_empty(timeout_s)
    _, finished, states = queue.timeline(ids)
    stamps = [f.timestamp() for f in finished]
    p10, p90 = percentile(stamps, 10), percentile(stamps, 90)
    return Round("backlog", int(jobs * 0.8), p90 - p10, create_s, states, load_average())


def measure(
    maker: Callable[[int, int], contextlib.AbstractContextManager[Queue]],
    args: argparse.Namespace,
) -> QueueResult:
    with maker(args.workers, args.slots) as queue:
        result = QueueResult(queue.label, queue.setup)
        print(f"-- {queue.label}: warm-up {args.warmup} jobs", file=sys.stderr, flush=True)
        stream_round(queue, args.warmup, 120)
        for i in range(args.rounds):
            r = stream_round(queue, args.jobs, 600)
            print(
                f"   stream round {i + 1}: {r.rate:8.1f} jobs/s (create {r.create_s:.2f} s, "
                f"total {r.seconds:.2f} s, {dict(r.states)}, load {r.load})",
                file=sys.stderr,
                flush=True,
            )
            result.stream.append(r)
        if queue.can_backlog and args.backlog:
            r = backlog_round(queue, args.jobs, 600)
            print(
                f"   backlog: {r.rate:8.1f} jobs/s (p10-p90 of completions {r.seconds:.2f} s, "
                f"{dict(r.states)}, load {r.load})",
                file=sys.stderr,
                flush=True,
            )
            result.backlog = r
    return result


def report(results: list[QueueResult], args: argparse.Namespace) -> None:
    print()
    print(
        f"stream: {args.jobs} trivial jobs per round, one producer, workers running "
        "(first create -> last completion)"
    )
    header = (
        f"{'queue':<26} {'median jobs/s':>13}  {'rounds jobs/s':<20} {'create/s':>9}  "
        f"{'final states':<22} load (1,5,15) after"
    )
    print(header)
    print("-" * len(header))
    for res in results:
        rates = ", ".join(f"{r.rate:.0f}" for r in res.stream)
        create = statistics.median(r.jobs / r.create_s for r in res.stream)
        states: Counter[str] = Counter()
        for r in res.stream:
            states.update(r.states)
        print(
            f"{res.label:<26} {res.median_rate:>13.1f}  {rates:<20} {create:>9.0f}  "
            f"{','.join(f'{k}={v}' for k, v in states.items()):<22} {res.stream[-1].load}"
        )
    backlogs = [res for res in results if res.backlog is not None]
    if backlogs:
        print()
        print(
            f"backlog: {args.jobs} jobs queued with the workers stopped, then drained "
            "(rate between the 10th and 90th percentile completion)"
        )
        for res in backlogs:
            b = res.backlog
            assert b is not None
            print(
                f"{res.label:<26} {b.rate:>13.1f}  jobs/s   "
                f"{','.join(f'{k}={v}' for k, v in b.states.items()):<22} load {b.load}"
            )
    print()
    for res in results:
        print(f"setup {res.label}: {res.setup}")
    by_label = {r.label: r for r in results}
    ours, base = by_label.get(RJOBS_PG), by_label.get(PROCRASTINATE)
    if ours and base:
        ratio = ours.median_rate / base.median_rate
        print(
            f"ratio rjobs/procrastinate, stream (median jobs/s): {ratio:.3f} -> "
            f"{'MET' if ratio > 1 else 'MISSED'} (target: > 1)"
        )
        if ours.backlog and base.backlog:
            ratio = ours.backlog.rate / base.backlog.rate
            print(
                f"ratio rjobs/procrastinate, backlog drain: {ratio:.3f} -> "
                f"{'MET' if ratio > 1 else 'MISSED'} (target: > 1)"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per round")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per queue")
    parser.add_argument("--slots", type=int, default=4, help="concurrent jobs per worker")
    parser.add_argument("--rounds", type=int, default=3, help="stream rounds per queue")
    parser.add_argument("--warmup", type=int, default=50, help="jobs run before measuring")
    parser.add_argument(
        "--no-backlog", dest="backlog", action="store_false", help="skip the backlog scenario"
    )
    parser.add_argument(
        "--queues",
        default="rjobs-pg,procrastinate,rjobs-embedded",
        help="comma-separated: rjobs-pg, procrastinate, rjobs-embedded",
    )
    args = parser.parse_args(argv)
    makers: dict[str, Callable[[int, int], contextlib.AbstractContextManager[Queue]]] = {
        "rjobs-pg": rjobs_postgres,
        "procrastinate": procrastinate_postgres,
        "rjobs-embedded": rjobs_embedded,
    }
    chosen = [q.strip() for q in args.queues.split(",") if q.strip()]
    unknown = set(chosen) - set(makers)
    if unknown:
        parser.error(f"unknown queues {sorted(unknown)}")
    print(machine_header("throughput"))
    print(
        f"jobs per round {args.jobs}, stream rounds {args.rounds}, warm-up {args.warmup}, "
        f"{args.workers} worker processes x {args.slots} concurrent jobs"
    )
    results: list[QueueResult] = []
    for name in chosen:
        if name != "rjobs-embedded" and not pg_available():
            print(f"PostgreSQL unreachable: skipping {name}", file=sys.stderr)
            continue
        results.append(measure(makers[name], args))
    report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
