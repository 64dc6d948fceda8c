"""The JSON shapes of the HTTP API (SPEC section 5), both ways.

``rjobs serve`` encodes jobs, transactions, event pages and reasoners with the ``*_to_wire``
functions; the HTTP gateways (sync and async) decode the same shapes back into the models the SQL
gateway returns with the ``*_from_wire`` functions. Keeping both directions here keeps them in step.

On the wire a reasoner type is its internal alias (``SOLVER``, ``ML``, ``LOGIC``); timestamps are
ISO 8601 with an offset; a job's ``payload`` is JSON text. Expansions asked for with ``include``
are added to a job or transaction object under their own keys (``details``, ``events``,
``artifacts``, ``problems``, ``raw``); without ``include`` the objects carry exactly the keys of
the specification (a Logic job listed on ``/v1alpha1/jobs`` adds ``database_name`` and
``read_only``, as Logic jobs exist on that route only as an rjobs extension).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rjobs._errors import JobInvalidRequestError
from rjobs._models import (
    INTERNAL_ALIASES,
    Job,
    JobEvents,
    JobExpanded,
    Reasoner,
    normalize_reasoner_type,
)

JOB_KEYS: tuple[str, ...] = (
    "id",
    "type",
    "state",
    "worker_name",
    "created_by",
    "created_on",
    "finished_at",
    "duration",
    "payload",
    "timeout_ms",
    "abort_reason",
)
TXN_KEYS: tuple[str, ...] = (
    "id",
    "database_name",
    "engine_name",
    "state",
    "abort_reason",
    "read_only",
    "created_by",
    "created_on",
    "finished_at",
    "duration",
)
EXPANSION_KEYS: tuple[str, ...] = ("details", "events", "artifacts", "problems", "raw")


class WireError(ValueError):
    """A JSON document does not have the shape this module expects."""


def type_alias(label: str) -> str:
    """The wire spelling of a public reasoner type label."""
    return INTERNAL_ALIASES[label]


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def payload_text(payload: Any) -> str:
    """A payload as the JSON text of the wire (ASCII escapes keep any string encodable)."""
    return json.dumps(payload, allow_nan=False)


# -- encoding (server) -------------------------------------------------------------------------


def _details(job: Job) -> dict[str, Any]:
    details = getattr(job, "details", None)
    if details is None:
        raise ValueError("the server encodes jobs read with include={'details'}")
    assert isinstance(details, dict)
    return details


def _expansions_to_wire(job: Job, include: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in EXPANSION_KEYS:
        if key not in include:
            continue
        value = getattr(job, key, None)
        if key == "details" and value is not None:
            value = {**value, "started_at": iso(value.get("started_at"))}
        out[key] = value
    return out


def job_to_wire(job: Job, include: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A job object; ``job`` must have been read with ``details`` (payload and timeout)."""
    details = _details(job)
    obj: dict[str, Any] = {
        "id": job.id,
        "type": type_alias(job.reasoner_type),
        "state": job.state,
        "worker_name": job.name,
        "created_by": job.created_by,
        "created_on": iso(job.created_on),
        "finished_at": iso(job.finished_at),
        "duration": job.duration,
        "payload": payload_text(details.get("payload")),
        "timeout_ms": details.get("timeout_ms"),
        "abort_reason": job.abort_reason,
    }
    if job.reasoner_type == "Logic":
        obj["database_name"] = job.model
        obj["read_only"] = details.get("read_only")
    obj.update(_expansions_to_wire(job, include))
    return obj


def txn_to_wire(job: Job, include: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A transaction object; ``job`` must have been read with ``details`` (read_only)."""
    details = _details(job)
    obj: dict[str, Any] = {
        "id": job.id,
        "database_name": job.model,
        "engine_name": job.name,
        "state": job.state,
        "abort_reason": job.abort_reason,
        "read_only": details.get("read_only"),
        "created_by": job.created_by,
        "created_on": iso(job.created_on),
        "finished_at": iso(job.finished_at),
        "duration": job.duration,
    }
    obj.update(_expansions_to_wire(job, include))
    return obj


def events_to_wire(page: JobEvents) -> dict[str, Any]:
    return {"events": page.events, "continuation_token": page.continuation_token}


def reasoner_to_wire(reasoner: Reasoner) -> dict[str, Any]:
    return {
        "type": type_alias(reasoner.reasoner_type),
        "name": reasoner.name,
        "size": reasoner.size,
        "state": reasoner.state,
        "settings": reasoner.settings,
        "created_by": reasoner.created_by,
        "created_on": iso(reasoner.created_on),
    }


# -- decoding (HTTP gateways) ------------------------------------------------------------------


def _field(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    try:
        value = obj[key]
    except (KeyError, TypeError) as exc:
        raise WireError(f"missing {key!r}") from exc
    if not isinstance(value, kind):
        raise WireError(f"{key!r} has the wrong type: {value!r}")
    return value


def _optional(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = obj.get(key)
    if value is not None and not isinstance(value, kind):
        raise WireError(f"{key!r} has the wrong type: {value!r}")
    return value


def _time(value: Any, key: str) -> datetime:
    if not isinstance(value, str):
        raise WireError(f"{key!r} is not a timestamp: {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise WireError(f"{key!r} is not an ISO 8601 timestamp: {value!r}") from exc
    if parsed.tzinfo is None:
        raise WireError(f"{key!r} has no UTC offset: {value!r}")
    return parsed


def _optional_time(value: Any, key: str) -> datetime | None:
    return None if value is None else _time(value, key)


def _label(value: Any) -> str:
    try:
        return normalize_reasoner_type(value)
    except JobInvalidRequestError as exc:
        raise WireError(str(exc)) from exc


def _with_expansions(
    common: dict[str, Any], obj: Mapping[str, Any], include: frozenset[str]
) -> Job:
    if not include:
        return Job(**common)
    extra: dict[str, Any] = {}
    for key in EXPANSION_KEYS:
        if key not in include:
            continue
        value = obj.get(key)
        if key == "details" and isinstance(value, dict):
            value = {**value, "started_at": _optional_time(value.get("started_at"), "started_at")}
        extra[key] = value
    return JobExpanded(**common, **extra)


def job_from_wire(obj: Mapping[str, Any], include: frozenset[str] = frozenset()) -> Job:
    """The model of a job object (from ``/v1alpha1/jobs``)."""
    label = _label(_field(obj, "type", str))
    common = {
        "id": _field(obj, "id", str),
        "reasoner_type": label,
        "state": _field(obj, "state", str),
        "name": _field(obj, "worker_name", str),
        "model": _optional(obj, "database_name", str) if label == "Logic" else None,
        "created_by": _field(obj, "created_by", str),
        "created_on": _time(obj.get("created_on"), "created_on"),
        "finished_at": _optional_time(obj.get("finished_at"), "finished_at"),
        "duration": _optional(obj, "duration", int),
        "abort_reason": _optional(obj, "abort_reason", str),
    }
    return _with_expansions(common, obj, include)


def txn_from_wire(obj: Mapping[str, Any], include: frozenset[str] = frozenset()) -> Job:
    """The model of a transaction object (from ``/v1alpha1/transactions``)."""
    common = {
        "id": _field(obj, "id", str),
        "reasoner_type": "Logic",
        "state": _field(obj, "state", str),
        "name": _field(obj, "engine_name", str),
        "model": _optional(obj, "database_name", str),
        "created_by": _field(obj, "created_by", str),
        "created_on": _time(obj.get("created_on"), "created_on"),
        "finished_at": _optional_time(obj.get("finished_at"), "finished_at"),
        "duration": _optional(obj, "duration", int),
        "abort_reason": _optional(obj, "abort_reason", str),
    }
    return _with_expansions(common, obj, include)


def events_from_wire(obj: Mapping[str, Any]) -> JobEvents:
    events = _field(obj, "events", list)
    if not all(isinstance(e, dict) for e in events):
        raise WireError("'events' must be a list of objects")
    return JobEvents(events=events, continuation_token=_optional(obj, "continuation_token", str))


def reasoner_from_wire(obj: Mapping[str, Any]) -> Reasoner:
    return Reasoner(
        reasoner_type=_label(_field(obj, "type", str)),
        name=_field(obj, "name", str),
        size=_field(obj, "size", int),
        state=_field(obj, "state", str),
        settings=_field(obj, "settings", dict),
        created_by=_field(obj, "created_by", str),
        created_on=_time(obj.get("created_on"), "created_on"),
    )
