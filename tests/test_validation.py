"""Every argument the client validates: clear errors, and nothing changes in the store."""

from __future__ import annotations

import math
from typing import Any

import pytest

import rjobs

PROBE = {"probe": {"sleep_s": 0}}


@pytest.mark.parametrize("bad_type", ["", "Quantum", "SOLVERS", None, 3, "logicx"])
def test_unknown_reasoner_type_lists_the_accepted_ones(
    client: rjobs.ClientSync, bad_type: Any
) -> None:
    with pytest.raises(rjobs.JobInvalidRequestError, match="Logic, Prescriptive, Predictive"):
        client.jobs.create(bad_type, "default", PROBE)
    with pytest.raises(rjobs.JobInvalidRequestError):
        client.jobs.get(bad_type, "x")
    if bad_type is not None:  # list(None) means every type
        with pytest.raises(rjobs.JobInvalidRequestError):
            client.jobs.list(bad_type)


@pytest.mark.parametrize(
    "spelling", ["logic", "LOGIC", "Prescriptive", "solver", "SOLVER", "ml", "Ml"]
)
def test_type_spellings_are_case_insensitive_with_aliases(
    client: rjobs.ClientSync, spelling: str
) -> None:
    assert client.jobs.get(spelling, "no-such-job") is None


@pytest.mark.parametrize("job_id", ["", "   ", None, 17])
def test_empty_or_non_string_job_id_is_rejected(client: rjobs.ClientSync, job_id: Any) -> None:
    for call in (
        lambda: client.jobs.get("Prescriptive", job_id),
        lambda: client.jobs.wait("Prescriptive", job_id),
        lambda: client.jobs.cancel("Prescriptive", job_id),
        lambda: client.jobs.get_events("Prescriptive", job_id),
        lambda: client.jobs.get_operation("Prescriptive", job_id),
    ):
        with pytest.raises(rjobs.JobInvalidRequestError, match="job_id"):
            call()


@pytest.mark.parametrize(
    "payload",
    [None, [], "text", 5, {"x": {1, 2}}, {"x": object()}, {"x": math.nan}, {"x": math.inf}],
)
def test_bad_payloads_are_rejected_before_anything_is_stored(
    client: rjobs.ClientSync, payload: Any
) -> None:
    with pytest.raises(rjobs.JobInvalidRequestError, match="payload"):
        client.jobs.create("Prescriptive", "default", payload)
    assert client.jobs.list() == []


@pytest.mark.parametrize("timeout_mins", [0, -1, 1.5, True, "5"])
def test_timeout_mins_must_be_a_positive_int(client: rjobs.ClientSync, timeout_mins: Any) -> None:
    with pytest.raises(rjobs.JobInvalidRequestError, match="timeout_mins"):
        client.jobs.create("Prescriptive", "default", PROBE, timeout_mins=timeout_mins)
    assert client.jobs.list() == []


@pytest.mark.parametrize("name", ["", " lead", "a/b", "x\x00y", None])
def test_bad_reasoner_names_are_rejected(client: rjobs.ClientSync, name: Any) -> None:
    with pytest.raises(rjobs.JobInvalidRequestError, match="reasoner_name"):
        client.jobs.create("Prescriptive", name, PROBE)


@pytest.mark.parametrize(
    ("include", "match"),
    [
        ({"detail": True}, "allowed keys: details, events, artifacts, problems, raw"),
        ({"details": 1}, "must be a bool"),
        ({"events": "yes"}, "must be a bool"),
        (["details"], "include must be a dict"),
    ],
)
def test_bad_include_names_the_allowed_keys(
    client: rjobs.ClientSync, include: Any, match: str
) -> None:
    with pytest.raises(rjobs.JobInvalidRequestError, match=match):
        client.jobs.get("Prescriptive", "x", include=include)
    with pytest.raises(rjobs.JobInvalidRequestError, match=match):
        client.jobs.list(include=include)
    with pytest.raises(rjobs.JobInvalidRequestError, match=match):
        client.jobs.wait("Prescriptive", "x", include=include)


@pytest.mark.parametrize("value", [0, -1, -0.5, math.nan, math.inf, "1", True])
def test_wait_timeouts_must_be_positive(client: rjobs.ClientSync, value: Any) -> None:
    with pytest.raises(rjobs.JobInvalidRequestError, match="timeout_s"):
        client.jobs.wait("Prescriptive", "x", timeout_s=value)
    with pytest.raises(rjobs.JobInvalidRequestError, match="poll_interval_s"):
        client.jobs.wait("Prescriptive", "x", poll_interval_s=value)
    with pytest.raises(rjobs.JobInvalidRequestError, match="timeout_s"):
        client.jobs.create_ready("Prescriptive", "default", PROBE, timeout_s=value)
    assert client.jobs.list() == []


def test_operation_wait_validates_its_arguments(client: rjobs.ClientSync) -> None:
    op = client.jobs.create("Prescriptive", "default", PROBE)
    with pytest.raises(rjobs.JobInvalidRequestError, match="timeout_s"):
        op.wait(timeout_s=0)
    with pytest.raises(rjobs.JobInvalidRequestError, match="poll_interval_s"):
        op.wait(poll_interval_s=-1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"state": "DONE"}, "states are: CREATED, PENDING, RUNNING"),
        ({"limit": -1}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"offset": -3}, "offset"),
        ({"only_active": "yes"}, "only_active"),
        ({"name": 3}, "name"),
    ],
)
def test_bad_list_filters_are_rejected(
    client: rjobs.ClientSync, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(rjobs.JobInvalidRequestError, match=match):
        client.jobs.list(**kwargs)


def test_bad_event_stream_and_token(client: rjobs.ClientSync) -> None:
    op = client.jobs.create("Prescriptive", "default", {"probe": {"events": 2}})
    op.wait(timeout_s=60)
    with pytest.raises(rjobs.JobInvalidRequestError, match="streams are: progress, log"):
        client.jobs.get_events("Prescriptive", op.id, stream_name="errors")
    with pytest.raises(rjobs.JobInvalidRequestError, match="malformed continuation token"):
        client.jobs.get_events("Prescriptive", op.id, "%%%not-a-token")
    other = client.jobs.create("Prescriptive", "default", {"probe": {"events": 2}})
    other.wait(timeout_s=60)
    progress = client.jobs.get_events("Prescriptive", op.id, stream_name="progress")
    first = client.jobs.get_events("Prescriptive", op.id, "", stream_name="progress")
    assert first.events == progress.events
    token = client.jobs.get_events("Prescriptive", op.id, "", stream_name="log")
    # a completed stream has no token; build a live one by reading a page of a running job
    running = client.jobs.create("Prescriptive", "default", {"probe": {"sleep_s": 30, "events": 1}})
    page = client.jobs.get_events("Prescriptive", running.id)
    assert page.continuation_token is not None
    with pytest.raises(rjobs.JobInvalidRequestError, match="another job or stream"):
        client.jobs.get_events("Prescriptive", other.id, page.continuation_token)
    with pytest.raises(rjobs.JobInvalidRequestError, match="another job or stream"):
        client.jobs.get_events(
            "Prescriptive", running.id, page.continuation_token, stream_name="log"
        )
    assert token.continuation_token is None
    client.jobs.cancel("Prescriptive", running.id)


def test_cancel_all_users_is_only_for_logic(client: rjobs.ClientSync) -> None:
    op = client.jobs.create("Prescriptive", "default", PROBE)
    with pytest.raises(rjobs.JobInvalidRequestError, match="only for Logic"):
        client.jobs.cancel("Prescriptive", op.id, all_users=True)


def test_unknown_job_errors(client: rjobs.ClientSync) -> None:
    assert client.jobs.get("Prescriptive", "01nosuchjob") is None
    with pytest.raises(rjobs.JobNotFoundError):
        client.jobs.wait("Prescriptive", "01nosuchjob", timeout_s=5)
    with pytest.raises(rjobs.JobNotFoundError):
        client.jobs.cancel("Prescriptive", "01nosuchjob")
    with pytest.raises(rjobs.JobNotFoundError):
        client.jobs.get_events("Prescriptive", "01nosuchjob")
    with pytest.raises(rjobs.JobNotFoundError):
        client.jobs.get_operation("Prescriptive", "01nosuchjob")


def test_a_job_is_not_found_under_another_type(client: rjobs.ClientSync) -> None:
    op = client.jobs.create("Prescriptive", "default", PROBE)
    assert client.jobs.get("Predictive", op.id) is None
    with pytest.raises(rjobs.JobNotFoundError):
        client.jobs.cancel("Logic", op.id)
