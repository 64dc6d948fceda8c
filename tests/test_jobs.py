"""Every client method end to end on the embedded backend: real SQLite, supervisor and workers."""

from __future__ import annotations

import time
from datetime import UTC

import pytest

import rjobs

T = "Prescriptive"


def probe(sleep_s: float = 0, events: int = 0, fail: str | None = None) -> dict[str, object]:
    return {"probe": {"sleep_s": sleep_s, "events": events, "fail": fail}}


def test_get_right_after_create_sees_the_job(client: rjobs.ClientSync) -> None:
    op = client.jobs.create("solver", "default", probe())
    job = client.jobs.get(T, op.id)
    assert job is not None
    assert job.id == op.id
    assert job.reasoner_type == T  # always the public label
    assert job.name == "default"
    assert job.state in ("PENDING", "RUNNING", "COMPLETED")
    assert job.created_on.tzinfo is not None
    assert op.metadata == {"reasoner_type": T, "name": "default"}


def test_completed_job_has_duration_and_result(client: rjobs.ClientSync) -> None:
    op = client.jobs.create(T, "default", probe(sleep_s=0.3, events=3))
    job = op.wait(timeout_s=60)
    assert job.state == "COMPLETED"
    assert job.abort_reason is None
    assert job.finished_at is not None and job.finished_at.tzinfo == UTC
    assert job.duration is not None and job.duration >= 300
    full = client.jobs.get(T, op.id, include={"details": True, "events": True, "raw": True})
    assert isinstance(full, rjobs.JobExpanded)
    assert full.details is not None
    assert full.details["result"] == {
        "probe": True,
        "slept_s": 0.3,
        "events": 3,
        "interrupted": False,
    }
    assert full.details["payload"] == probe(sleep_s=0.3, events=3)
    assert full.details["started_at"] is not None
    assert [e["seq"] for e in full.events or []] == [1, 2, 3]
    assert full.raw is not None and full.raw["id"] == op.id
    assert full.artifacts is None and full.problems is None  # not asked for
    plain = client.jobs.get(T, op.id)
    assert type(plain) is rjobs.Job


def test_failing_job_is_failed_with_reason_and_problem(client: rjobs.ClientSync) -> None:
    op = client.jobs.create(T, "default", probe(fail="the input was wrong"))
    job = op.wait(timeout_s=60, include={"problems": True})
    assert job.state == "FAILED"
    assert job.abort_reason == "the input was wrong"
    assert isinstance(job, rjobs.JobExpanded)
    assert job.problems and job.problems[0]["severity"] == "error"
    assert job.problems[0]["message"] == "the input was wrong"
    status = client.jobs.get_operation(T, op.id)
    assert status.status == "FAILED" and status.error == "the input was wrong" and status.done()


def test_states_through_a_run(client: rjobs.ClientSync) -> None:
    op = client.jobs.create(T, "default", probe(sleep_s=1.5))
    seen = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = client.jobs.get(T, op.id)
        assert job is not None
        seen.add(job.state)
        if job.is_terminal:
            break
        time.sleep(0.02)
    assert "RUNNING" in seen and "COMPLETED" in seen
    assert client.jobs.get_operation(T, op.id).status == "SUCCEEDED"


def test_cancel_pending_and_running_and_terminal(client: rjobs.ClientSync) -> None:
    client.reasoners.create(T, "narrow", size=1)
    blocker = client.jobs.create(T, "narrow", probe(sleep_s=30))
    queued = client.jobs.create(T, "narrow", probe(sleep_s=30))
    deadline = time.monotonic() + 30
    while client.jobs.get(T, blocker.id).state != "RUNNING":  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert client.jobs.get(T, queued.id).state == "PENDING"  # type: ignore[union-attr]

    client.jobs.cancel(T, queued.id)
    job = client.jobs.get(T, queued.id)
    assert job is not None and job.state == "CANCELED"
    assert job.abort_reason and job.abort_reason.startswith("canceled by ")

    start = time.monotonic()
    client.jobs.cancel(T, blocker.id)
    job = blocker.wait(timeout_s=10)
    assert time.monotonic() - start < 1.0
    assert job.state == "CANCELED"
    assert client.jobs.get_operation(T, blocker.id).status == "CANCELLED"

    client.jobs.cancel(T, blocker.id)  # idempotent on a terminal job
    assert client.jobs.get(T, blocker.id).state == "CANCELED"  # type: ignore[union-attr]


def test_list_filters_ordering_and_merging(client: rjobs.ClientSync) -> None:
    ids = []
    for reasoner_type, name in [
        ("Prescriptive", "alpha"),
        ("Predictive", "beta"),
        ("Logic", "gamma"),
        ("Prescriptive", "Alpha2"),
    ]:
        ids.append(client.jobs.create(reasoner_type, name, probe()).id)
    for job_id, reasoner_type in zip(
        ids, ["Prescriptive", "Predictive", "Logic", "Prescriptive"], strict=True
    ):
        client.jobs.wait(reasoner_type, job_id, timeout_s=60)

    merged = client.jobs.list()
    assert [j.id for j in merged] == list(reversed(ids))
    keys = [(j.created_on, j.id) for j in merged]
    assert keys == sorted(keys, reverse=True)

    only_solver = client.jobs.list("SOLVER")
    assert [j.id for j in only_solver] == [ids[3], ids[0]]
    assert [j.id for j in client.jobs.list(name="ALPHA")] == [ids[0]]
    assert [j.id for j in client.jobs.list(state="completed")] == list(reversed(ids))
    assert client.jobs.list(state="RUNNING") == []
    assert client.jobs.list(only_active=True) == []
    assert [j.id for j in client.jobs.list(job_id=ids[1])] == [ids[1]]
    assert client.jobs.list("Logic", job_id=ids[1]) == []
    assert [j.id for j in client.jobs.list(limit=2)] == [ids[3], ids[2]]
    assert [j.id for j in client.jobs.list(limit=2, offset=2)] == [ids[1], ids[0]]
    user = merged[0].created_by
    assert len(client.jobs.list(created_by=user)) == 4
    expanded = client.jobs.list(include={"details": True})
    assert all(isinstance(j, rjobs.JobExpanded) and j.details for j in expanded)


def test_only_active_lists_active_jobs(client: rjobs.ClientSync) -> None:
    running = client.jobs.create(T, "default", probe(sleep_s=30))
    done = client.jobs.create(T, "default", probe())
    done.wait(timeout_s=60)
    assert [j.id for j in client.jobs.list(only_active=True)] == [running.id]
    client.jobs.cancel(T, running.id)


def test_wait_times_out_near_the_deadline_with_a_clear_message(client: rjobs.ClientSync) -> None:
    op = client.jobs.create(T, "default", probe(sleep_s=60))
    start = time.monotonic()
    with pytest.raises(rjobs.JobTimeoutError) as info:
        client.jobs.wait(T, op.id, timeout_s=1.2, poll_interval_s=1.0)
    elapsed = time.monotonic() - start
    assert 1.2 <= elapsed < 1.2 + 0.3  # never a whole extra interval late
    message = str(info.value)
    assert T in message and op.id in message and "1.2" in message
    assert "RUNNING" in message or "PENDING" in message
    client.jobs.cancel(T, op.id)


def test_wait_returns_promptly_after_completion(client: rjobs.ClientSync) -> None:
    client.jobs.create(T, "default", probe()).wait(timeout_s=60)  # warm the supervisor
    op = client.jobs.create(T, "default", probe(sleep_s=0.5))
    job = client.jobs.wait(T, op.id, timeout_s=30, poll_interval_s=10)
    assert job.state == "COMPLETED"
    assert job.finished_at is not None
    # the poll interval is 10 s: only a notification explains a prompt return
    lag = time.time() - job.finished_at.timestamp()
    assert lag < 1.0


def test_operation_handle(client: rjobs.ClientSync) -> None:
    op = client.jobs.create(T, "default", probe(sleep_s=1))
    with pytest.raises(rjobs.JobNotReadyError):
        op.result()
    assert not op.is_done()
    assert op.status().status in ("PENDING", "RUNNING")
    job = op.wait(timeout_s=60)
    assert op.is_done()
    assert op.result() is job  # cached
    expanded = op.result(include={"details": True})
    assert isinstance(expanded, rjobs.JobExpanded)
    assert op.status().status == "SUCCEEDED"


def test_create_ready_blocks_until_terminal(client: rjobs.ClientSync) -> None:
    job = client.jobs.create_ready(T, "default", probe(sleep_s=0.2), include={"details": True})
    assert job.state == "COMPLETED"
    assert isinstance(job, rjobs.JobExpanded) and job.details is not None


def test_events_of_both_streams_and_completion(client: rjobs.ClientSync) -> None:
    op = client.jobs.create(T, "default", probe(events=5))
    op.wait(timeout_s=60)
    page = client.jobs.get_events(T, op.id)
    assert [e["seq"] for e in page.events] == [1, 2, 3, 4, 5]
    assert all(e["type"] == "probe" and "ts" in e for e in page.events)
    assert page.continuation_token is None
    log = client.jobs.get_events(T, op.id, stream_name="log")
    assert log.events == [] and log.continuation_token is None


def test_reasoners_client(client: rjobs.ClientSync) -> None:
    created = client.reasoners.create("ml", "pool", size=3, settings={"note": "x"})
    assert created.reasoner_type == "Predictive" and created.size == 3 and created.state == "READY"
    assert client.reasoners.get("Predictive", "pool") == created
    with pytest.raises(rjobs.JobInvalidRequestError, match="already exists"):
        client.reasoners.create("Predictive", "pool")
    with pytest.raises(rjobs.JobInvalidRequestError, match="size"):
        client.reasoners.create("Predictive", "other", size=0)
    suspended = client.reasoners.suspend("Predictive", "pool")
    assert suspended.state == "SUSPENDED"
    with pytest.raises(rjobs.JobNotReadyError, match="not ready to accept jobs"):
        client.jobs.create("Predictive", "pool", probe())
    assert client.reasoners.resume("Predictive", "pool").state == "READY"
    client.jobs.create("Predictive", "pool", probe()).wait(timeout_s=60)
    assert [r.name for r in client.reasoners.list("Predictive")] == ["pool"]
    client.reasoners.delete("Predictive", "pool")
    assert client.reasoners.get("Predictive", "pool") is None
    with pytest.raises(rjobs.JobNotFoundError):
        client.reasoners.delete("Predictive", "pool")


def test_missing_reasoner_is_created_on_first_use(client: rjobs.ClientSync) -> None:
    assert client.reasoners.get(T, "fresh") is None
    client.jobs.create(T, "fresh", probe()).wait(timeout_s=60)
    reasoner = client.reasoners.get(T, "fresh")
    assert reasoner is not None and reasoner.state == "READY"


def test_read_artifact_errors_name_what_exists(client: rjobs.ClientSync) -> None:
    op = client.jobs.create(T, "default", probe())
    op.wait(timeout_s=60)
    with pytest.raises(rjobs.JobNotFoundError, match=r"has no artifact 'nope\.txt'"):
        client.jobs.read_artifact(T, op.id, "nope.txt")
