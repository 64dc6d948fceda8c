"""Regressions found by adversarial testing: stopped processes, reaped jobs, foreign models."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import pytest

import rjobs
from rjobs._gateway import CreateRequest
from rjobs._sql_gateway import Principal, SqlJobsGateway
from rjobs.store.store import Store

T = "Prescriptive"


def _running_process(wt: Any, job_id: str) -> int:
    deadline = time.monotonic() + 20
    while job_id not in wt.worker._running:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return int(wt.worker._running[job_id].executor.process.pid)


def test_cancel_of_a_stopped_job_process_does_not_hang_the_worker(
    sql_client: rjobs.ClientSync, start_worker: Any
) -> None:
    sql_client.reasoners.create(T, "h", size=1)
    wt = start_worker(reasoners=[(T, "h")])
    op = sql_client.jobs.create(T, "h", {"probe": {"sleep_s": 60}})
    pid = _running_process(wt, op.id)
    time.sleep(0.2)
    os.kill(pid, signal.SIGSTOP)
    sql_client.jobs.cancel(T, op.id)
    assert op.wait(timeout_s=10).state == "CANCELED"
    # the worker killed the stopped process and keeps serving
    assert sql_client.jobs.create(T, "h", {"probe": {}}).wait(timeout_s=20).state == "COMPLETED"


def test_a_job_reaped_from_under_its_worker_is_stopped(
    sql_client: rjobs.ClientSync, start_worker: Any, store: Store
) -> None:
    sql_client.reasoners.create(T, "r", size=1)
    wt = start_worker(reasoners=[(T, "r")])
    op = sql_client.jobs.create(T, "r", {"probe": {"sleep_s": 60, "ignore_interrupt": True}})
    pid = _running_process(wt, op.id)
    assert store.finish(op.id, "ABORTED", abort_reason="reasoner lost")  # as a reaper would
    deadline = time.monotonic() + 5
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        if wt.worker._running[op.id].executor.process.exitcode is not None:
            break
        assert time.monotonic() < deadline, "the reaped job's process kept running"
        time.sleep(0.05)
    assert sql_client.jobs.get(T, op.id).state == "ABORTED"  # type: ignore[union-attr]


def _train_payload() -> dict[str, Any]:
    rows = [{"x": float(i), "y": "a" if i % 2 else "b"} for i in range(60)]
    return {"task": "train", "data": {"rows": rows}, "target": "y", "model": {"kind": "logistic"}}


def test_model_from_job_reads_only_the_same_users_jobs(
    store: Store, start_worker: Any, tmp_path: Any
) -> None:
    alice = SqlJobsGateway(store, Principal("alice"), auto_create_reasoners=True)
    bob = SqlJobsGateway(store, Principal("bob"))

    def create(gw: SqlJobsGateway, payload: dict[str, Any]) -> str:
        return gw.create_job(CreateRequest("Predictive", "p", payload, json.dumps(payload))).id

    def final(gw: SqlJobsGateway, job_id: str) -> rjobs.Job:
        job = gw.wait_job("Predictive", job_id, 60, frozenset({"problems"}))
        deadline = time.monotonic() + 60
        while job is not None and not job.is_terminal:
            assert time.monotonic() < deadline
            job = gw.wait_job("Predictive", job_id, 1, frozenset({"problems"}))
        assert job is not None
        return job

    start_worker(reasoners=[("Predictive", "p")])
    trained = create(alice, _train_payload())
    assert final(alice, trained).state == "COMPLETED"
    rows = [{"x": 1.0}]
    own = create(alice, {"task": "predict", "data": {"rows": rows}, "model_from_job": trained})
    assert final(alice, own).state == "COMPLETED"
    for ref in (trained, "../../elsewhere", str(tmp_path)):
        job = final(bob, create(bob, {"task": "predict", "data": {"rows": rows},
                                      "model_from_job": ref}))  # fmt: skip
        assert job.state == "FAILED"
        assert job.abort_reason is not None and "has no model" in job.abort_reason
        assert str(store.artifact_dir) not in job.abort_reason


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.jobs.get(T, "bad\ud800id"),
        lambda c: c.jobs.list(name="x\ud800"),
        lambda c: c.jobs.create(T, "n\ud800", {"probe": {}}),
        lambda c: c.jobs.create(T, "d", {"probe": {}}, timeout_mins=10**17),
        lambda c: c.jobs.create(T, "d", {"deep": _nested(500)}),
        lambda c: c.jobs.get_events(T, "x", "W" * 2000),
    ],
    ids=["surrogate-id", "surrogate-filter", "surrogate-name", "huge-timeout", "deep", "token"],
)
def test_odd_arguments_are_clear_errors_that_change_nothing(
    client: rjobs.ClientSync, call: Any
) -> None:
    with pytest.raises(rjobs.JobInvalidRequestError):
        call(client)
    assert client.jobs.list() == []
    assert client.reasoners.list() == []
