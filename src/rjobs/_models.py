"""Public data types, and the validation of the values callers pass in."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypedDict

from rjobs._errors import JobInvalidRequestError

REASONER_TYPES: tuple[str, ...] = ("Logic", "Prescriptive", "Predictive")
"""Public reasoner type labels, in the order ``list(reasoner_type=None)`` merges them."""

_TYPE_ALIASES = {
    "logic": "Logic",
    "prescriptive": "Prescriptive",
    "predictive": "Predictive",
    "solver": "Prescriptive",
    "ml": "Predictive",
}

INTERNAL_ALIASES = {"Logic": "LOGIC", "Prescriptive": "SOLVER", "Predictive": "ML"}

STATES: tuple[str, ...] = (
    "CREATED",
    "PENDING",
    "RUNNING",
    "COMPLETED",
    "FAILED",
    "CANCELED",
    "ABORTED",
)
ACTIVE_STATES: frozenset[str] = frozenset({"CREATED", "PENDING", "RUNNING"})
TERMINAL_STATES: frozenset[str] = frozenset({"COMPLETED", "FAILED", "CANCELED", "ABORTED"})

STREAMS: tuple[str, ...] = ("progress", "log")

REASONER_STATES: tuple[str, ...] = ("PENDING", "READY", "SUSPENDED")

CLIENT_DISCONNECTED = "client disconnected"
TIMEOUT_EXCEEDED = "timeout exceeded"
REASONER_LOST = "reasoner lost"


class JobIncludeDict(TypedDict, total=False):
    """Which expansions ``get``, ``list`` and ``wait`` should fetch."""

    details: bool
    events: bool
    artifacts: bool
    problems: bool
    raw: bool


INCLUDE_KEYS: tuple[str, ...] = ("details", "events", "artifacts", "problems", "raw")


@dataclass(frozen=True)
class Job:
    """A job (or Logic transaction) in the common schema every backend returns."""

    id: str
    reasoner_type: str
    state: str
    name: str
    model: str | None
    created_by: str
    created_on: datetime
    finished_at: datetime | None
    duration: int | None
    abort_reason: str | None

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass(frozen=True)
class JobExpanded(Job):
    """A job with the expansions asked for by ``include=``; the others are ``None``."""

    details: dict[str, Any] | None = None
    events: list[dict[str, Any]] | None = None
    artifacts: list[dict[str, Any]] | None = None
    problems: list[dict[str, Any]] | None = None
    raw: dict[str, Any] | None = None


@dataclass(frozen=True)
class JobEvents:
    """One page of a job's event stream. ``continuation_token`` is ``None`` once complete."""

    events: list[dict[str, Any]]
    continuation_token: str | None


OperationStatus = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]


@dataclass(frozen=True)
class Operation:
    """A normalised view of a job's progress."""

    id: str
    status: OperationStatus
    error: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def done(self) -> bool:
        return self.status in ("SUCCEEDED", "FAILED", "CANCELLED")


@dataclass(frozen=True)
class Reasoner:
    """A named pool of worker slots of one type."""

    reasoner_type: str
    name: str
    size: int
    state: str
    settings: dict[str, Any]
    created_by: str
    created_on: datetime


def operation_from_job(job: Job) -> Operation:
    """Map a job's state onto the normalised operation statuses."""
    raw = {"state": job.state, "abort_reason": job.abort_reason, "reasoner_type": job.reasoner_type}
    match job.state:
        case "CREATED" | "PENDING":
            return Operation(job.id, "PENDING", None, raw)
        case "RUNNING":
            return Operation(job.id, "RUNNING", None, raw)
        case "COMPLETED":
            return Operation(job.id, "SUCCEEDED", None, raw)
        case "CANCELED":
            return Operation(job.id, "CANCELLED", job.abort_reason or "canceled", raw)
        case _:
            return Operation(job.id, "FAILED", job.abort_reason or job.state.lower(), raw)


# -- validation --------------------------------------------------------------------------------


def normalize_reasoner_type(value: object) -> str:
    """Return the public label for a reasoner type spelling, or raise naming the accepted ones."""
    if isinstance(value, str):
        label = _TYPE_ALIASES.get(value.strip().lower())
        if label is not None:
            return label
    aliases = ", ".join(INTERNAL_ALIASES.values())
    raise JobInvalidRequestError(
        f"unknown reasoner type {value!r}; accepted: {', '.join(REASONER_TYPES)} "
        f"(or the aliases {aliases}; any case)"
    )


def normalize_state(value: object) -> str:
    if isinstance(value, str) and value.strip().upper() in STATES:
        return value.strip().upper()
    raise JobInvalidRequestError(f"unknown state {value!r}; states are: {', '.join(STATES)}")


def _encodable(value: str) -> bool:
    """Text every store can hold: valid UTF-8 (no lone surrogates) and no NUL."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def check_job_id(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise JobInvalidRequestError(f"job_id must be a non-empty string, got {value!r}")
    if len(value) > 200 or not _encodable(value):
        raise JobInvalidRequestError(
            "job_id must be at most 200 characters of valid text (no NUL, no lone surrogates)"
        )
    return value


def check_reasoner_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise JobInvalidRequestError(f"reasoner_name must be a non-empty string, got {value!r}")
    if (
        len(value) > 100
        or any(c in value for c in "/\\")
        or not _encodable(value)
        or value != value.strip()
    ):
        raise JobInvalidRequestError(
            f"invalid reasoner_name {value!r}: at most 100 characters, no slashes, NUL "
            "or surrounding spaces"
        )
    return value


def check_payload(value: object) -> str:
    """Validate a payload and return its JSON text."""
    if not isinstance(value, dict):
        raise JobInvalidRequestError(
            f"payload must be a dict (a JSON object), got {type(value).__name__}"
        )
    if _depth(value, _MAX_DEPTH + 1) > _MAX_DEPTH:
        raise JobInvalidRequestError(f"payload nests deeper than {_MAX_DEPTH} levels")
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise JobInvalidRequestError(f"payload is not JSON-serialisable: {exc}") from exc
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # lone surrogates have no UTF-8 form: keep them as JSON escapes, which round-trip
        text = json.dumps(value, allow_nan=False)
    return text


_MAX_MINUTES = 366 * 24 * 60
_MAX_DEPTH = 100


def _depth(value: object, limit: int) -> int:
    """Nesting depth of a JSON value, counting no further than ``limit``."""
    if limit <= 0 or not isinstance(value, dict | list):
        return 0
    items = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(item, limit - 1) for item in items), default=0)


def check_timeout_mins(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _MAX_MINUTES:
        raise JobInvalidRequestError(
            f"timeout_mins must be an integer from 1 to {_MAX_MINUTES} (a year), got {value!r}"
        )
    return value


def check_positive_seconds(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise JobInvalidRequestError(f"{name} must be a number > 0, got {value!r}")
    return float(value)


def check_include(include: object) -> frozenset[str]:
    """Validate ``include=`` and return the set of expansions asked for."""
    if include is None:
        return frozenset()
    if not isinstance(include, dict):
        raise JobInvalidRequestError(
            f"include must be a dict with keys {', '.join(INCLUDE_KEYS)}, got {include!r}"
        )
    wanted = set()
    for key, flag in include.items():
        if key not in INCLUDE_KEYS:
            raise JobInvalidRequestError(
                f"unknown include key {key!r}; allowed keys: {', '.join(INCLUDE_KEYS)}"
            )
        if not isinstance(flag, bool):
            raise JobInvalidRequestError(f"include[{key!r}] must be a bool, got {flag!r}")
        if flag:
            wanted.add(key)
    return frozenset(wanted)


_MAX_ROWS = 2**62  # beyond any store, and within every database's integer range


def check_limit_offset(limit: object, offset: object) -> tuple[int | None, int]:
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit < _MAX_ROWS
    ):
        raise JobInvalidRequestError(f"limit must be an integer >= 0 or None, got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < _MAX_ROWS:
        raise JobInvalidRequestError(f"offset must be an integer >= 0, got {offset!r}")
    return limit, offset


def check_text(name: str, value: object) -> str | None:
    """An optional string filter: no NUL (no database stores it), at most 1000 characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise JobInvalidRequestError(f"{name} must be a string or None, got {value!r}")
    if not _encodable(value) or len(value) > 1000:
        raise JobInvalidRequestError(
            f"{name} must be at most 1000 characters of valid text (no NUL, no lone surrogates)"
        )
    return value


def check_stream(value: object) -> str:
    if value not in STREAMS:
        raise JobInvalidRequestError(
            f"unknown event stream {value!r}; streams are: {', '.join(STREAMS)}"
        )
    assert isinstance(value, str)
    return value
