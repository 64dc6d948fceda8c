"""Races between a job's end and a cancel or a timeout: one terminal state, never overwritten."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest

import rjobs
from rjobs._gateway import CreateRequest
from rjobs._models import TERMINAL_STATES
from rjobs.store.store import Store

T = "Prescriptive"


def _request(payload: dict[str, object], timeout_ms: int | None = None) -> CreateRequest:
    import json

    return CreateRequest(T, "race", payload, json.dumps(payload), timeout_ms=timeout_ms)


@pytest.fixture
def racing(sql_client: rjobs.ClientSync, start_worker) -> rjobs.ClientSync:  # type: ignore[no-untyped-def]
    sql_client.reasoners.create(T, "race", size=4)
    start_worker(reasoners=[(T, "race")], slots=4)
    return sql_client


def _assert_final(client: rjobs.ClientSync, store: Store, job_id: str) -> str:
    job = client.jobs.wait(T, job_id, timeout_s=30)
    assert job.state in TERMINAL_STATES
    time.sleep(0.05)
    again = client.jobs.get(T, job_id)
    assert again == job, "a terminal state was overwritten"
    # a late terminal write from anyone is refused by the store
    assert not store.finish(job_id, "COMPLETED")
    assert not store.finish(job_id, "ABORTED", abort_reason="late")
    assert client.jobs.get(T, job_id) == job
    return job.state


def test_cancel_racing_completion_ends_in_one_state(racing: rjobs.ClientSync, store: Store) -> None:
    rng = random.Random(7)
    outcomes: Counter[str] = Counter()
    ops = [racing.jobs.create(T, "race", {"probe": {"sleep_s": 0.05}}) for _ in range(40)]
    # cancel each at a random moment around its completion, from another thread
    threads = []
    for op in ops:
        delay = rng.uniform(0.0, 0.6)
        threads.append(threading.Timer(delay, racing.jobs.cancel, args=(T, op.id)))
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for op in ops:
        outcomes[_assert_final(racing, store, op.id)] += 1
    assert set(outcomes) <= {"COMPLETED", "CANCELED"}
    assert sum(outcomes.values()) == len(ops)


def test_timeout_racing_completion_ends_in_one_state(
    racing: rjobs.ClientSync, store: Store
) -> None:
    gateway = racing.jobs._gateway
    outcomes: Counter[str] = Counter()
    ids = []
    for i in range(40):
        # the timeout falls within a few ms either side of the job's own end
        timeout_ms = 60 + (i % 7) * 5
        ids.append(gateway.create_job(_request({"probe": {"sleep_s": 0.08}}, timeout_ms)).id)
    for job_id in ids:
        state = _assert_final(racing, store, job_id)
        outcomes[state] += 1
        job = racing.jobs.get(T, job_id)
        assert job is not None
        if state == "ABORTED":
            assert job.abort_reason == "timeout exceeded"
    assert set(outcomes) <= {"COMPLETED", "ABORTED"}
    assert outcomes["ABORTED"] > 0  # the race was really run


def test_timeout_aborts_a_long_job(racing: rjobs.ClientSync) -> None:
    gateway = racing.jobs._gateway
    job_id = gateway.create_job(_request({"probe": {"sleep_s": 30}}, timeout_ms=300)).id
    start = time.monotonic()
    job = racing.jobs.wait(T, job_id, timeout_s=30)
    assert job.state == "ABORTED" and job.abort_reason == "timeout exceeded"
    assert time.monotonic() - start < 3


def test_uncooperative_job_is_killed_after_the_grace(racing: rjobs.ClientSync) -> None:
    op = racing.jobs.create(T, "race", {"probe": {"sleep_s": 60, "ignore_interrupt": True}})
    deadline = time.monotonic() + 20
    while racing.jobs.get(T, op.id).state != "RUNNING":  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    start = time.monotonic()
    racing.jobs.cancel(T, op.id)
    job = op.wait(timeout_s=10)
    assert job.state == "CANCELED"
    assert time.monotonic() - start < 1.0
    # the worker replaced the killed process and keeps serving
    assert racing.jobs.create(T, "race", {"probe": {}}).wait(timeout_s=20).state == "COMPLETED"


def test_concurrent_cancels_of_one_job(racing: rjobs.ClientSync, store: Store) -> None:
    op = racing.jobs.create(T, "race", {"probe": {"sleep_s": 30}})
    threads = [threading.Thread(target=racing.jobs.cancel, args=(T, op.id)) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert _assert_final(racing, store, op.id) == "CANCELED"
