"""Argument validation shared by the sync and async clients: arguments in, requests out."""

from __future__ import annotations

from typing import Any

from rjobs._errors import JobInvalidRequestError
from rjobs._gateway import CreateRequest, ListRequest
from rjobs._models import (
    REASONER_TYPES,
    check_job_id,
    check_limit_offset,
    check_payload,
    check_reasoner_name,
    check_stream,
    check_text,
    check_timeout_mins,
    normalize_reasoner_type,
    normalize_state,
)


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise JobInvalidRequestError(f"{name} must be a bool, got {value!r}")
    return value


def job_ref(reasoner_type: str, job_id: str) -> tuple[str, str]:
    """The public type label and the checked id of a job."""
    label = normalize_reasoner_type(reasoner_type)
    return label, check_job_id(job_id)


def create_request(
    reasoner_type: str,
    reasoner_name: str,
    payload: dict[str, Any],
    timeout_mins: int | None,
    *,
    ready: bool,
) -> CreateRequest:
    """A validated create; ``ready`` (create_ready) makes a Logic transaction abort-detached."""
    label = normalize_reasoner_type(reasoner_type)
    name = check_reasoner_name(reasoner_name)
    payload_json = check_payload(payload)
    minutes = check_timeout_mins(timeout_mins)
    return CreateRequest(
        reasoner_type=label,
        reasoner_name=name,
        payload=payload,
        payload_json=payload_json,
        timeout_ms=None if minutes is None else minutes * 60_000,
        abort_detached=ready and label == "Logic",
    )


def list_request(
    reasoner_type: str | None,
    *,
    job_id: str | None,
    state: str | None,
    name: str | None,
    created_by: str | None,
    only_active: bool,
    all_users: bool,
    limit: int | None,
    offset: int,
) -> ListRequest:
    types = REASONER_TYPES if reasoner_type is None else (normalize_reasoner_type(reasoner_type),)
    if job_id is not None:
        check_job_id(job_id)
    lim, off = check_limit_offset(limit, offset)
    return ListRequest(
        reasoner_types=types,
        job_id=job_id,
        state=None if state is None else normalize_state(state),
        name=check_text("name", name),
        created_by=check_text("created_by", created_by),
        only_active=check_bool("only_active", only_active),
        all_users=check_bool("all_users", all_users),
        limit=lim,
        offset=off,
    )


def events_request(
    reasoner_type: str, job_id: str, continuation_token: str, stream_name: str
) -> tuple[str, str, str, str]:
    label, job_id = job_ref(reasoner_type, job_id)
    if not isinstance(continuation_token, str):
        raise JobInvalidRequestError("continuation_token must be a string ('' for the start)")
    return label, job_id, continuation_token, check_stream(stream_name)


def cancel_request(reasoner_type: str, job_id: str, all_users: bool) -> tuple[str, str, bool]:
    label, job_id = job_ref(reasoner_type, job_id)
    if check_bool("all_users", all_users) and label != "Logic":
        raise JobInvalidRequestError(
            f"cancel(all_users=True) is supported only for Logic transactions, not {label}"
        )
    return label, job_id, all_users


def artifact_request(reasoner_type: str, job_id: str, name: str) -> tuple[str, str, str]:
    label, job_id = job_ref(reasoner_type, job_id)
    if not isinstance(name, str) or not name or check_text("artifact name", name) is None:
        raise JobInvalidRequestError("artifact name must be a non-empty string")
    return label, job_id, name
