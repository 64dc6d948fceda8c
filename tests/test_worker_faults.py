"""Killed job processes, lost workers and graceful shutdown: nothing stays active."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

import rjobs
from rjobs.store import schema
from rjobs.store.store import Store

T = "Prescriptive"


def _wait_state(client: rjobs.ClientSync, job_id: str, state: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        job = client.jobs.get(T, job_id)
        assert job is not None
        if job.state == state:
            return
        assert time.monotonic() < deadline, f"job stayed {job.state}"
        time.sleep(0.02)


def test_sigkilled_job_process_aborts_the_job_and_the_worker_keeps_serving(
    sql_client: rjobs.ClientSync,
    start_worker,
    store: Store,  # type: ignore[no-untyped-def]
) -> None:
    sql_client.reasoners.create(T, "k", size=1)
    wt = start_worker(reasoners=[(T, "k")])
    op = sql_client.jobs.create(T, "k", {"probe": {"sleep_s": 30}})
    _wait_state(sql_client, op.id, "RUNNING")
    deadline = time.monotonic() + 10
    while op.id not in wt.worker._running:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(wt.worker._running[op.id].executor.process.pid, signal.SIGKILL)
    job = op.wait(timeout_s=10)
    assert job.state == "ABORTED"
    assert job.abort_reason is not None and "died" in job.abort_reason
    assert sql_client.jobs.list(only_active=True) == []
    after = sql_client.jobs.create(T, "k", {"probe": {"events": 1}}).wait(timeout_s=20)
    assert after.state == "COMPLETED"


def test_reaper_aborts_jobs_of_a_lost_worker(
    sql_client: rjobs.ClientSync,
    start_worker,
    store: Store,  # type: ignore[no-untyped-def]
) -> None:
    sql_client.reasoners.create(T, "lost", size=1)
    op = sql_client.jobs.create(T, "lost", {"probe": {"sleep_s": 30}})
    # a worker that claimed the job and then went silent
    store.register_worker("ghost", f"{T}/lost", "elsewhere")
    assert [r["id"] for r in store.claim("ghost", {(T, "lost"): 1})] == [op.id]
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(schema.workers).values(
                heartbeat_at=store.now() - __import__("datetime").timedelta(minutes=5)
            )
        )
    start_worker(reasoners=[(T, "other")], heartbeat_s=0.2)
    job = op.wait(timeout_s=10)
    assert job.state == "ABORTED" and job.abort_reason == "reasoner lost"
    # the lost worker's late result is refused
    assert not store.finish(op.id, "COMPLETED", worker_id="ghost")
    assert sql_client.jobs.get(T, op.id) == job


def test_sigterm_lets_short_jobs_finish_and_aborts_the_rest(
    tmp_path: Path, sql_client: rjobs.ClientSync, store_url: str, store: Store
) -> None:
    sql_client.reasoners.create(T, "term", size=2)
    env = dict(os.environ, RJOBS_DATA_DIR=str(tmp_path / "data"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "rjobs.cli", "worker", "--reasoner", f"{T}/term", "--slots", "2",
         "--store", store_url, "--shutdown-grace-s", "1.5"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        short = sql_client.jobs.create(T, "term", {"probe": {"sleep_s": 0.8}})
        long = sql_client.jobs.create(T, "term", {"probe": {"sleep_s": 60}})
        _wait_state(sql_client, short.id, "RUNNING", timeout=30)
        _wait_state(sql_client, long.id, "RUNNING", timeout=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    output = proc.stdout.read().decode() if proc.stdout else ""
    assert short.wait(timeout_s=5).state == "COMPLETED"
    job = long.wait(timeout_s=5)
    assert job.state == "ABORTED" and job.abort_reason == "worker shutdown"
    assert "worker.exited" in output
    assert store.count_workers() == 0
    assert sql_client.jobs.list(only_active=True) == []


def test_jobs_wait_pending_until_a_worker_appears(
    sql_client: rjobs.ClientSync,
    start_worker,  # type: ignore[no-untyped-def]
) -> None:
    sql_client.reasoners.create(T, "later", size=1)
    op = sql_client.jobs.create(T, "later", {"probe": {}})
    time.sleep(0.5)
    assert sql_client.jobs.get(T, op.id).state == "PENDING"  # type: ignore[union-attr]
    start_worker(reasoners=[(T, "later")])
    assert op.wait(timeout_s=20).state == "COMPLETED"


def test_sql_backend_refuses_a_missing_reasoner(sql_client: rjobs.ClientSync) -> None:
    import pytest

    with pytest.raises(rjobs.JobInvalidRequestError, match="does not exist"):
        sql_client.jobs.create(T, "nowhere", {"probe": {}})
    assert sql_client.jobs.list() == []
