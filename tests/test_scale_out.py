"""Many worker processes on one PostgreSQL database, and faults: kills, restarts, dropped links.

Each test asserts: every job in exactly one terminal state, none active, none run twice.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import rjobs
from rjobs._models import TERMINAL_STATES

T = "Prescriptive"
CLAIMED = re.compile(r"job\.claimed job_id=(\w+)")


class Workers:
    """``rjobs worker`` processes with short leases, each logging to its own file."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.url, self.tmp = url, tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def start(self, reasoner: str, slots: int = 4) -> subprocess.Popen[bytes]:
        log = self.tmp / f"worker-{len(self.logs)}.log"
        self.logs.append(log)
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "rjobs.cli", "worker", "--reasoner", reasoner,
                 "--slots", str(slots), "--store", self.url, "--heartbeat-s", "0.5",
                 "--lease-s", "2", "--shutdown-grace-s", "2"],
                stdout=out, stderr=subprocess.STDOUT,
                env=dict(os.environ, RJOBS_DATA_DIR=str(self.tmp / "data")),
            )  # fmt: skip
        self.procs.append(proc)
        return proc

    def claims(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for log in self.logs:
            counts.update(CLAIMED.findall(log.read_text(errors="replace")))
        return counts

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def pg_config(pg_url: str, tmp_path: Path) -> rjobs.Config:
    return rjobs.Config(backend="sql", data_dir=tmp_path / "data", database_url=pg_url)


@pytest.fixture
def pg_client(pg_config: rjobs.Config) -> Iterator[rjobs.ClientSync]:
    with rjobs.connect_sync(config=pg_config) as client:
        yield client


@pytest.fixture
def workers(pg_url: str, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(pg_url, tmp_path)
    yield w
    w.stop()


def _settle(client: rjobs.ClientSync, ids: list[str], timeout: float = 60) -> dict[str, rjobs.Job]:
    deadline = time.monotonic() + timeout
    final: dict[str, rjobs.Job] = {}
    for job_id in ids:
        remaining = max(0.1, deadline - time.monotonic())
        final[job_id] = client.jobs.wait(T, job_id, timeout_s=remaining)
    assert client.jobs.list(only_active=True, limit=10) == []
    return final


def _assert_once(workers: Workers, final: dict[str, rjobs.Job]) -> None:
    claims = workers.claims()
    twice = {job_id: n for job_id, n in claims.items() if n > 1}
    assert not twice, f"jobs run more than once: {twice}"
    for job in final.values():
        assert job.state in TERMINAL_STATES
        if job.state == "COMPLETED":
            assert claims[job.id] == 1


def _wait_running(client: rjobs.ClientSync, n: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(client.jobs.list(state="RUNNING")) < n:
        assert time.monotonic() < deadline, "jobs never started"
        time.sleep(0.05)


def test_three_workers_share_500_jobs_and_one_is_killed(
    pg_client: rjobs.ClientSync, workers: Workers
) -> None:
    pg_client.reasoners.create(T, "many", size=4)
    procs = [workers.start(f"{T}/many") for _ in range(3)]
    ids = [pg_client.jobs.create(T, "many", {"probe": {"sleep_s": 0.02}}).id for _ in range(500)]
    # kill one worker once every worker has claimed jobs, while the queue is still long
    deadline = time.monotonic() + 60
    while not all(CLAIMED.search(log.read_text(errors="replace")) for log in workers.logs):
        assert time.monotonic() < deadline, "some worker never claimed a job"
        time.sleep(0.05)
    procs[0].kill()  # SIGKILL mid-run
    final = _settle(pg_client, ids, timeout=120)
    _assert_once(workers, final)
    states = Counter(job.state for job in final.values())
    assert set(states) <= {"COMPLETED", "ABORTED"}
    assert states["COMPLETED"] >= 450
    for job in final.values():
        if job.state == "ABORTED":
            assert job.abort_reason == "reasoner lost"


def test_worker_killed_and_restarted_under_the_same_reasoner(
    pg_client: rjobs.ClientSync, workers: Workers
) -> None:
    pg_client.reasoners.create(T, "phoenix", size=1)
    first = workers.start(f"{T}/phoenix", slots=1)
    long = pg_client.jobs.create(T, "phoenix", {"probe": {"sleep_s": 60}})
    _wait_running(pg_client, 1)
    first.kill()
    workers.start(f"{T}/phoenix", slots=1)
    job = pg_client.jobs.wait(T, long.id, timeout_s=30)
    assert job.state == "ABORTED" and job.abort_reason == "reasoner lost"
    after = pg_client.jobs.create(T, "phoenix", {"probe": {}}).wait(timeout_s=30)
    assert after.state == "COMPLETED"
    _assert_once(workers, {long.id: job, after.id: after})


def test_terminating_every_connection_mid_run_loses_nothing(
    pg_client: rjobs.ClientSync, workers: Workers, pg_url: str, pg_server: str
) -> None:
    pg_client.reasoners.create(T, "cut", size=4)
    workers.start(f"{T}/cut")
    workers.start(f"{T}/cut")
    ids = [pg_client.jobs.create(T, "cut", {"probe": {"sleep_s": 0.3}}).id for _ in range(40)]
    _wait_running(pg_client, 4)
    dbname = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_server, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()) x",
            (dbname,),
        ).fetchone()
    assert killed and killed[0] > 0
    final = _settle(pg_client, ids, timeout=90)
    _assert_once(workers, final)
    assert Counter(j.state for j in final.values())["COMPLETED"] >= 30


@pytest.mark.parametrize(
    "text",
    [
        "nul \x00 inside",
        "lone \ud800 surrogate",
        "emoji 😀🚀 and 🇫🇷",
        "right-to-left \u202e עברית العربية",
        "x" * (10 * 1024 * 1024),
    ],
    ids=["nul", "surrogate", "emoji", "rtl", "10MB"],
)
def test_odd_payloads_round_trip_exactly(
    sql_client: rjobs.ClientSync,
    start_worker,
    text: str,  # type: ignore[no-untyped-def]
) -> None:
    sql_client.reasoners.create(T, "odd", size=1)
    payload = {"probe": {"sleep_s": 0}, "note": text, text[:50]: [text[:10]]}
    op = sql_client.jobs.create(T, "odd", payload)
    job = sql_client.jobs.get(T, op.id, include={"details": True})
    assert job is not None
    assert job.details["payload"] == payload  # type: ignore[attr-defined]
    start_worker(reasoners=[(T, "odd")])
    assert op.wait(timeout_s=30).state == "COMPLETED"


def test_result_that_cannot_be_stored_fails_the_job(store, sql_client) -> None:  # type: ignore[no-untyped-def]
    sql_client.reasoners.create(T, "res", size=1)
    payload = {"probe": {}}
    from rjobs._gateway import CreateRequest

    job = sql_client.jobs._gateway.create_job(CreateRequest(T, "res", payload, json.dumps(payload)))
    store.register_worker("w-res", f"{T}/res", "here")
    store.claim("w-res", {(T, "res"): 1})
    from rjobs.worker.worker import Worker, WorkerSettings

    worker = Worker(store, WorkerSettings(reasoners=[(T, "res")]))
    worker.id = "w-res"
    worker._finish(job.id, "COMPLETED", {"bad": float("nan")}, None)
    final = sql_client.jobs.get(T, job.id)
    assert final is not None and final.state == "FAILED"
    assert final.abort_reason and "result could not be stored" in final.abort_reason
