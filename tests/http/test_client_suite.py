"""One client suite, run on every backend (embedded, sql, http) and flavour (sync, async).

Every test gets ``api`` (see conftest): the same calls must behave the same everywhere.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC
from typing import Any

import pytest
from http_support import Api

import rjobs
from rjobs._gateway import CreateRequest
from support import INSTANCES

T = "Prescriptive"


def probe(sleep_s: float = 0, events: int = 0, fail: str | None = None) -> dict[str, Any]:
    return {"probe": {"sleep_s": sleep_s, "events": events, "fail": fail}}


def wait_for_state(api: Api, reasoner_type: str, job_id: str, state: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        job = api.jobs.get(reasoner_type, job_id)
        assert job is not None
        if job.state == state:
            return
        assert time.monotonic() < deadline, f"job stayed {job.state}, never {state}"
        time.sleep(0.02)


def test_created_job_is_read_back_with_public_labels_and_expansions(api: Api) -> None:
    name = api.reasoner(T)
    op = api.jobs.create("solver", name, probe(sleep_s=0.2, events=3))
    assert op.metadata == {"reasoner_type": T, "name": name}
    job = api.jobs.get(T, op.id)
    assert job is not None and type(job) is rjobs.Job
    assert (job.id, job.reasoner_type, job.name, job.model) == (op.id, T, name, None)
    assert job.state in ("PENDING", "RUNNING", "COMPLETED")
    assert job.created_by == api.user
    assert job.created_on.tzinfo is not None

    done = op.wait(timeout_s=60)
    assert done.state == "COMPLETED" and done.abort_reason is None
    assert done.finished_at is not None and done.finished_at.tzinfo == UTC
    assert done.duration is not None and done.duration >= 200

    full = api.jobs.get(T, op.id, include={"details": True, "events": True, "raw": True})
    assert isinstance(full, rjobs.JobExpanded)
    assert full.details is not None
    assert full.details["payload"] == probe(sleep_s=0.2, events=3)
    assert full.details["result"] == {
        "probe": True,
        "slept_s": 0.2,
        "events": 3,
        "interrupted": False,
    }
    assert full.details["started_at"].tzinfo is not None
    assert full.details["timeout_ms"] is None
    assert [e["seq"] for e in full.events or []] == [1, 2, 3]
    assert full.raw is not None and full.raw["id"] == op.id
    assert full.artifacts is None and full.problems is None
    assert api.jobs.get_operation(T, op.id).status == "SUCCEEDED"


def test_payload_and_timeout_round_trip_exactly(api: Api) -> None:
    name = api.reasoner("Predictive")
    payload = {
        "probe": {"sleep_s": 0},
        "text": "é ü 日本 🙂 \\ \" ' \n\t",
        "nested": {"list": [1, 2.5, None, True, {"x": []}], "big": 2**60},
    }
    op = api.jobs.create("ML", name, payload, timeout_mins=7)
    job = api.jobs.get("Predictive", op.id, include={"details": True})
    assert isinstance(job, rjobs.JobExpanded) and job.details is not None
    assert job.details["payload"] == payload
    assert job.details["timeout_ms"] == 7 * 60_000


def test_failing_job_is_failed_with_its_reason_and_problem(api: Api) -> None:
    name = api.reasoner(T)
    op = api.jobs.create(T, name, probe(fail="the input was wrong"))
    job = op.wait(timeout_s=60, include={"problems": True})
    assert job.state == "FAILED" and job.abort_reason == "the input was wrong"
    assert isinstance(job, rjobs.JobExpanded) and job.problems
    assert job.problems[0]["severity"] == "error"
    assert job.problems[0]["message"] == "the input was wrong"
    status = api.jobs.get_operation(T, op.id)
    assert status.status == "FAILED" and status.error == "the input was wrong" and status.done()


def test_cancel_of_a_queued_a_running_and_a_finished_job(api: Api) -> None:
    name = api.reasoner(T, size=1)
    blocker = api.jobs.create(T, name, probe(sleep_s=30))
    queued = api.jobs.create(T, name, probe(sleep_s=30))
    wait_for_state(api, T, blocker.id, "RUNNING")
    assert api.jobs.get(T, queued.id).state == "PENDING"

    api.jobs.cancel(T, queued.id)
    job = api.jobs.get(T, queued.id)
    assert job.state == "CANCELED" and job.abort_reason == f"canceled by {api.user}"

    start = time.monotonic()
    api.jobs.cancel(T, blocker.id)
    assert blocker.wait(timeout_s=10).state == "CANCELED"
    assert time.monotonic() - start < 2.0
    assert api.jobs.get_operation(T, blocker.id).status == "CANCELLED"

    api.jobs.cancel(T, blocker.id)  # a finished job: nothing happens
    assert api.jobs.get(T, blocker.id).state == "CANCELED"


def test_list_filters_ordering_merging_and_paging(api: Api) -> None:
    name = f"l-{uuid.uuid4().hex[:8]}"
    for reasoner_type in ("Prescriptive", "Predictive", "Logic"):
        api.admin_reasoners.create(reasoner_type, name, size=2)
    ids = []
    for reasoner_type in ("Prescriptive", "Predictive", "Logic", "Prescriptive"):
        ids.append(api.jobs.create(reasoner_type, name, probe()).id)
    for job_id, reasoner_type in zip(
        ids, ["Prescriptive", "Predictive", "Logic", "Prescriptive"], strict=True
    ):
        api.jobs.wait(reasoner_type, job_id, timeout_s=60)

    merged = api.jobs.list(name=name)
    assert [j.id for j in merged] == list(reversed(ids))
    assert [j.reasoner_type for j in merged] == ["Prescriptive", "Logic", "Predictive", T]
    keys = [(j.created_on, j.id) for j in merged]
    assert keys == sorted(keys, reverse=True)
    logic = next(j for j in merged if j.reasoner_type == "Logic")
    assert logic.model is None  # a probe payload names no database

    assert [j.id for j in api.jobs.list("SOLVER", name=name.upper())] == [ids[3], ids[0]]
    assert [j.id for j in api.jobs.list("logic", name=name)] == [ids[2]]
    assert [j.id for j in api.jobs.list(name=name, state="completed")] == list(reversed(ids))
    assert api.jobs.list(name=name, state="RUNNING") == []
    assert api.jobs.list(name=name, only_active=True) == []
    assert [j.id for j in api.jobs.list(job_id=ids[1])] == [ids[1]]
    assert api.jobs.list("Logic", job_id=ids[1]) == []
    assert [j.id for j in api.jobs.list(name=name, limit=2)] == [ids[3], ids[2]]
    assert [j.id for j in api.jobs.list(name=name, limit=2, offset=2)] == [ids[1], ids[0]]
    assert api.jobs.list(name=name, limit=0) == []
    assert len(api.jobs.list(name=name, created_by=api.user)) == 4
    expanded = api.jobs.list(name=name, include={"details": True})
    assert all(isinstance(j, rjobs.JobExpanded) and j.details for j in expanded)
    assert all(type(j) is rjobs.Job for j in merged)


def test_wait_times_out_near_its_deadline_with_a_clear_message(api: Api) -> None:
    name = api.reasoner(T)
    op = api.jobs.create(T, name, probe(sleep_s=60))
    start = time.monotonic()
    with pytest.raises(rjobs.JobTimeoutError) as info:
        api.jobs.wait(T, op.id, timeout_s=1.0, poll_interval_s=0.8)
    elapsed = time.monotonic() - start
    assert 1.0 <= elapsed < 1.6
    message = str(info.value)
    assert T in message and op.id in message and "1 s" in message
    assert "RUNNING" in message or "PENDING" in message
    api.jobs.cancel(T, op.id)


def test_wait_returns_soon_after_the_job_ends_not_at_the_poll_interval(api: Api) -> None:
    name = api.reasoner(T)
    api.jobs.create(T, name, probe()).wait(timeout_s=60)  # warm up
    op = api.jobs.create(T, name, probe(sleep_s=0.4))
    job = api.jobs.wait(T, op.id, timeout_s=30, poll_interval_s=10)
    assert job.state == "COMPLETED" and job.finished_at is not None
    assert time.time() - job.finished_at.timestamp() < 2.0  # only a notification explains this


def test_operation_handle_states_results_and_cache(api: Api) -> None:
    name = api.reasoner(T)
    op = api.jobs.create(T, name, probe(sleep_s=0.8))
    with pytest.raises(rjobs.JobNotReadyError, match="not finished yet"):
        op.result()
    assert not op.is_done()
    assert op.status().status in ("PENDING", "RUNNING")
    job = op.wait(timeout_s=60)
    assert op.is_done()
    assert op.result() is job  # cached once seen
    expanded = op.result(include={"details": True})
    assert isinstance(expanded, rjobs.JobExpanded)
    assert op.status().status == "SUCCEEDED"
    with pytest.raises(rjobs.JobInvalidRequestError, match="timeout_s"):
        op.wait(timeout_s=0)


def test_create_ready_blocks_until_the_job_is_terminal(api: Api) -> None:
    name = api.reasoner(T)
    job = api.jobs.create_ready(T, name, probe(sleep_s=0.2), include={"details": True})
    assert job.state == "COMPLETED"
    assert isinstance(job, rjobs.JobExpanded) and job.details is not None
    logic = api.reasoner("Logic")
    txn = api.jobs.create_ready("Logic", logic, probe(sleep_s=0.2), poll_interval_s=0.1)
    assert txn.state == "COMPLETED" and txn.reasoner_type == "Logic"


def test_events_of_both_streams_in_pages_and_token_checks(api: Api) -> None:
    name = api.reasoner(T)
    op = api.jobs.create(T, name, probe(sleep_s=0.6, events=6))
    seen: list[dict[str, Any]] = []
    token = ""
    for _ in range(2000):
        page = api.jobs.get_events(T, op.id, token)
        seen.extend(page.events)
        if page.continuation_token is None:
            break
        token = page.continuation_token
        time.sleep(0.01)
    assert [e["seq"] for e in seen] == [1, 2, 3, 4, 5, 6]
    assert all(e["type"] == "probe" and "ts" in e for e in seen)
    assert api.jobs.get(T, op.id).is_terminal

    log = api.jobs.get_events(T, op.id, stream_name="log")
    assert log.events == [] and log.continuation_token is None

    other = api.jobs.create(T, name, probe(sleep_s=5))
    live = api.jobs.get_events(T, other.id)
    assert live.continuation_token is not None
    with pytest.raises(rjobs.JobInvalidRequestError, match="another job or stream"):
        api.jobs.get_events(T, op.id, live.continuation_token)
    with pytest.raises(rjobs.JobInvalidRequestError, match="another job or stream"):
        api.jobs.get_events(T, other.id, live.continuation_token, stream_name="log")
    with pytest.raises(rjobs.JobInvalidRequestError, match="malformed continuation token"):
        api.jobs.get_events(T, other.id, "not a token")
    with pytest.raises(rjobs.JobInvalidRequestError, match="streams are: progress, log"):
        api.jobs.get_events(T, other.id, stream_name="debug")
    api.jobs.cancel(T, other.id)


ODD_IDS = ["no-such-job", "a/b", "x y", "..", ".", "é🙂", "%2F", "?x=1", "#frag", "a\\b"]


def test_odd_ids_never_reach_another_job(api: Api) -> None:
    name = api.reasoner(T)
    real = api.jobs.create(T, name, probe(sleep_s=30))
    tricks = [
        *ODD_IDS,
        f"{real.id}/cancel",
        f"../{real.id}",
        f"{real.id}/..",
        f"{real.id} ",
        real.id.upper(),
        f"{real.id}%2F",
        f"./{real.id}",
    ]
    for odd in tricks:
        assert api.jobs.get(T, odd) is None, odd
        assert api.jobs.list(job_id=odd) == [], odd
        for call in (
            lambda o=odd: api.jobs.wait(T, o, timeout_s=1),
            lambda o=odd: api.jobs.cancel(T, o),
            lambda o=odd: api.jobs.get_events(T, o),
            lambda o=odd: api.jobs.get_operation(T, o),
            lambda o=odd: api.jobs.read_artifact(T, o, "solution.json"),
        ):
            with pytest.raises(rjobs.JobNotFoundError):
                call()
    job = api.jobs.get(T, real.id)
    assert job is not None and job.state in ("PENDING", "RUNNING")  # no trick cancelled it
    assert api.jobs.get("Predictive", real.id) is None  # the type is part of the key
    api.jobs.cancel(T, real.id)


def test_reasoners_client_lifecycle(api: Api) -> None:
    reasoners = api.admin_reasoners
    name = f"p-{uuid.uuid4().hex[:8]}"
    created = reasoners.create("ml", name, size=3, settings={"note": "x"})
    assert created.reasoner_type == "Predictive" and created.size == 3
    assert created.state == "READY" and created.settings == {"note": "x"}
    assert created.created_on.tzinfo is not None
    assert api.reasoners.get("Predictive", name) == created
    with pytest.raises(rjobs.JobInvalidRequestError, match="already exists"):
        reasoners.create("Predictive", name)
    with pytest.raises(rjobs.JobInvalidRequestError, match="size"):
        reasoners.create("Predictive", name + "x", size=0)
    assert reasoners.suspend("Predictive", name).state == "SUSPENDED"
    with pytest.raises(rjobs.JobNotReadyError, match="not ready to accept jobs"):
        api.jobs.create("Predictive", name, probe())
    assert reasoners.resume("Predictive", name).state == "READY"
    api.jobs.create("Predictive", name, probe()).wait(timeout_s=60)
    assert name in [r.name for r in api.reasoners.list("Predictive")]
    assert all(r.reasoner_type == "Predictive" for r in api.reasoners.list("ML"))
    reasoners.delete("Predictive", name)
    assert api.reasoners.get("Predictive", name) is None
    with pytest.raises(rjobs.JobNotFoundError):
        reasoners.delete("Predictive", name)


def test_a_missing_reasoner_is_created_only_by_the_embedded_backend(api: Api) -> None:
    name = f"fresh-{uuid.uuid4().hex[:8]}"
    if api.backend == "embedded":
        api.jobs.create(T, name, probe()).wait(timeout_s=60)
        assert api.reasoners.get(T, name) is not None
    else:
        with pytest.raises(rjobs.JobInvalidRequestError, match="does not exist"):
            api.jobs.create(T, name, probe())


def test_prescriptive_solve_result_and_artifact(api: Api) -> None:
    name = api.reasoner(T)
    model = (INSTANCES / "afiro.mps").read_text()
    op = api.jobs.create(T, name, {"model": {"format": "mps", "text": model}})
    job = op.wait(timeout_s=120, include={"details": True, "artifacts": True})
    assert job.state == "COMPLETED"
    assert isinstance(job, rjobs.JobExpanded) and job.details and job.artifacts is not None
    assert job.details["result"]["objective"] == pytest.approx(-464.7531428571)
    assert "solution.json" in [a["name"] for a in job.artifacts]
    solution = json.loads(api.jobs.read_artifact(T, op.id, "solution.json"))
    assert solution  # the engine's own document; its content is the engine's tests' business
    with pytest.raises(rjobs.JobNotFoundError, match=r"has no artifact 'nope\.txt'"):
        api.jobs.read_artifact(T, op.id, "nope.txt")


def test_arguments_are_validated_the_same_way_everywhere(api: Api) -> None:
    with pytest.raises(rjobs.JobInvalidRequestError, match="Logic, Prescriptive, Predictive"):
        api.jobs.create("Quantum", "x", probe())
    with pytest.raises(rjobs.JobInvalidRequestError, match="allowed keys"):
        api.jobs.get(T, "x", include={"detail": True})
    with pytest.raises(rjobs.JobInvalidRequestError, match="timeout_mins"):
        api.jobs.create(T, "x", probe(), timeout_mins=0)
    with pytest.raises(rjobs.JobInvalidRequestError, match="only for Logic"):
        api.jobs.cancel(T, "x", all_users=True)
    with pytest.raises(rjobs.JobInvalidRequestError, match="states are"):
        api.jobs.list(state="DONE")
    with pytest.raises(rjobs.JobInvalidRequestError, match="payload"):
        api.jobs.create(T, "x", {"x": float("nan")})
    with pytest.raises(rjobs.JobInvalidRequestError, match="reasoner_name"):
        api.jobs.create(T, "a/b", probe())
    with pytest.raises(rjobs.JobInvalidRequestError, match="poll_interval_s"):
        api.jobs.wait(T, "x", poll_interval_s=0)


def test_all_users_listing_needs_the_admin_role_on_multi_user_backends(api: Api) -> None:
    if api.backend == "embedded":  # one local user, who is the admin
        assert isinstance(api.jobs.list(all_users=True, limit=1), list)
        return
    with pytest.raises(rjobs.JobPermissionError, match="admin"):
        api.jobs.list(all_users=True)
    with pytest.raises(rjobs.JobPermissionError, match="admin"):
        api.jobs.list(created_by="somebody-else")


def test_idempotency_key_gives_the_same_job_and_refuses_another_payload(api: Api) -> None:
    name = api.reasoner(T)
    key = uuid.uuid4().hex

    def request(payload: dict[str, Any]) -> CreateRequest:
        return CreateRequest(
            reasoner_type=T,
            reasoner_name=name,
            payload=payload,
            payload_json=json.dumps(payload),
            idempotency_key=key,
        )

    first = api.gateway_create(request(probe()))
    again = api.gateway_create(request(probe()))
    assert again.id == first.id
    with pytest.raises(rjobs.JobInvalidRequestError, match="idempotency key"):
        api.gateway_create(request(probe(sleep_s=1)))
    assert len(api.jobs.list(name=name)) == 1
