"""The gateway over the store, used by the embedded and sql backends and by ``rjobs serve``."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import SQLAlchemyError

from rjobs._errors import (
    JobError,
    JobInvalidRequestError,
    JobNotFoundError,
    JobNotReadyError,
    JobPermissionError,
    JobServerError,
)
from rjobs._gateway import CreateRequest, ListRequest
from rjobs._ids import new_job_id
from rjobs._models import (
    REASONER_STATES,
    TERMINAL_STATES,
    Job,
    JobEvents,
    JobExpanded,
    Reasoner,
)
from rjobs.store.store import (
    ListQuery,
    ReasonerMissing,
    ReasonerSuspended,
    Store,
    StoreConflict,
    channel_for_events,
    channel_for_job,
)

logger = logging.getLogger(__name__)

EVENT_PAGE_SIZE = 1000
DEFAULT_REASONER_SIZE = 2


@dataclass(frozen=True)
class Principal:
    """Who is calling: the jobs they create carry this name; admins may see everyone's."""

    user: str
    admin: bool = False


@contextmanager
def _store_errors() -> Iterator[None]:
    """Convert database errors to rjobs errors, chaining the original."""
    try:
        yield
    except JobError:
        raise
    except StoreConflict as exc:
        raise JobInvalidRequestError(str(exc)) from exc
    except ReasonerMissing as exc:
        raise JobInvalidRequestError(
            f"reasoner {exc} does not exist; create it first (rjobs reasoners create)"
        ) from exc
    except ReasonerSuspended as exc:
        raise JobNotReadyError(f"reasoner {exc} is suspended: not ready to accept jobs") from exc
    except SQLAlchemyError as exc:
        raise JobServerError(f"store error: {type(exc).__name__}: {exc}") from exc


def encode_token(job_id: str, stream: str, seq: int) -> str:
    raw = json.dumps([job_id, stream, seq], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, job_id: str, stream: str) -> int:
    """The last sequence number a continuation token points after (0 for an empty token)."""
    if token == "":
        return 0
    if len(token) > 1000:
        raise JobInvalidRequestError("malformed continuation token: longer than any token given")
    try:
        padded = token + "=" * (-len(token) % 4)
        tok_job, tok_stream, seq = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        raise JobInvalidRequestError(f"malformed continuation token {token[:100]!r}") from exc
    if tok_job != job_id or tok_stream != stream:
        raise JobInvalidRequestError(
            f"continuation token belongs to another job or stream (job {tok_job!r}, "
            f"stream {tok_stream!r}), not job {job_id!r} stream {stream!r}"
        )
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**62:
        raise JobInvalidRequestError(f"malformed continuation token {token!r}")
    return seq


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def row_to_job(row: RowMapping, include: frozenset[str], store: Store) -> Job:
    """Build the public job from a store row, fetching only the expansions asked for."""
    common = {
        "id": row["id"],
        "reasoner_type": row["reasoner_type"],
        "state": row["state"],
        "name": row["reasoner_name"],
        "model": row["model"],
        "created_by": row["created_by"],
        "created_on": row["created_on"],
        "finished_at": row["finished_at"],
        "duration": row["duration_ms"],
        "abort_reason": row["abort_reason"],
    }
    if not include:
        return Job(**common)
    extra: dict[str, Any] = {}
    if "details" in include:
        extra["details"] = {
            "model": row["model"],
            "read_only": row["read_only"],
            "payload": _loads(row["payload"]),
            "timeout_ms": row["timeout_ms"],
            "started_at": row["started_at"],
            "result": _loads(row["result"]),
        }
    if "events" in include:
        extra["events"] = _all_events(store, row["id"])
    if "artifacts" in include:
        extra["artifacts"] = store.list_artifacts(row["id"])
    if "problems" in include:
        extra["problems"] = store.list_problems(row["id"])
    if "raw" in include:
        raw = dict(row)
        for key in ("created_on", "started_at", "finished_at", "last_polled_at"):
            if raw.get(key) is not None:
                raw[key] = raw[key].isoformat()
        extra["raw"] = raw
    return JobExpanded(**common, **extra)


def _all_events(store: Store, job_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        page = store.read_events(job_id, "progress", len(events), EVENT_PAGE_SIZE)
        events.extend(page)
        if len(page) < EVENT_PAGE_SIZE:
            return events


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def row_to_reasoner(row: RowMapping) -> Reasoner:
    return Reasoner(
        reasoner_type=row["reasoner_type"],
        name=row["name"],
        size=row["size"],
        state=row["state"],
        settings=json.loads(row["settings"]),
        created_by=row["created_by"],
        created_on=row["created_on"],
    )


class SqlJobsGateway:
    """Jobs and reasoners straight from the store, on behalf of one principal.

    ``auto_create_reasoners`` is the embedded backend's rule: a job for a missing reasoner
    creates it. ``ensure_workers`` runs after each create and, at most every few seconds, while
    a caller waits on an active job: the embedded backend (re)starts its local supervisor there,
    so a supervisor that crashed is replaced by the next client that needs it.
    """

    ENSURE_EVERY_S = 2.0
    # one wait call blocks at most this long: each call records a client poll, which keeps an
    # abort-detached transaction alive, so a long poll interval must not look like a vanished client
    MAX_WAIT_S = 1.0

    def __init__(
        self,
        store: Store,
        principal: Principal,
        *,
        auto_create_reasoners: bool = False,
        ensure_workers: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.principal = principal
        self._auto_create = auto_create_reasoners
        self._ensure_workers = ensure_workers
        self._ensured_at = 0.0

    def _ready(self) -> Store:
        with _store_errors():
            self.store.upgrade()
        return self.store

    def close(self) -> None:
        self.store.close()

    # -- jobs -----------------------------------------------------------------------------------

    def create_job(self, request: CreateRequest) -> Job:
        store = self._ready()
        with _store_errors():
            payload = request.payload
            is_logic = request.reasoner_type == "Logic"
            row = store.insert_job(
                {
                    "id": new_job_id(),
                    "reasoner_type": request.reasoner_type,
                    "reasoner_name": request.reasoner_name,
                    "created_by": self.principal.user,
                    "payload": request.payload_json,
                    "timeout_ms": request.timeout_ms,
                    "model": _text_or_none(payload.get("dbname")) if is_logic else None,
                    "read_only": bool(payload.get("readonly", True)) if is_logic else None,
                    "abort_detached": request.abort_detached,
                    "idempotency_key": request.idempotency_key,
                },
                create_reasoner_size=DEFAULT_REASONER_SIZE if self._auto_create else None,
            )
        logger.info(
            "job.created",
            extra={
                "job_id": row["id"],
                "reasoner": f"{row['reasoner_type']}/{row['reasoner_name']}",
            },
        )
        self._ensure(force=True)
        return row_to_job(row, frozenset(), store)

    def _ensure(self, *, force: bool = False) -> None:
        if self._ensure_workers is None:
            return
        now = time.monotonic()
        if force or now - self._ensured_at >= self.ENSURE_EVERY_S:
            self._ensured_at = now
            self._ensure_workers()

    def _visible_row(
        self, reasoner_type: str, job_id: str, *, touch: bool = False
    ) -> RowMapping | None:
        store = self._ready()
        row = store.get_job(job_id)
        if row is None or row["reasoner_type"] != reasoner_type:
            return None
        if not self.principal.admin and row["created_by"] != self.principal.user:
            return None
        if touch and row["created_by"] == self.principal.user:
            row = store.get_job(job_id, touch=True)  # only the creator's polls keep it alive
        return row

    def get_job(self, reasoner_type: str, job_id: str, include: frozenset[str]) -> Job | None:
        with _store_errors():
            row = self._visible_row(reasoner_type, job_id)
            return None if row is None else row_to_job(row, include, self.store)

    def wait_job(
        self,
        reasoner_type: str,
        job_id: str,
        wait_s: float,
        include: frozenset[str],
        *,
        keepalive: bool = False,
    ) -> Job | None:
        with _store_errors():
            store = self._ready()
            with store.notifier.subscribe([channel_for_job(job_id)]) as sub:
                row = self._visible_row(reasoner_type, job_id, touch=keepalive)
                if row is not None and row["state"] not in TERMINAL_STATES and wait_s > 0:
                    self._ensure()
                    sub.wait(min(wait_s, self.MAX_WAIT_S))
                    row = self._visible_row(reasoner_type, job_id)
            return None if row is None else row_to_job(row, include, store)

    def list_jobs(self, request: ListRequest, include: frozenset[str]) -> list[Job]:
        created_by = request.created_by
        if request.all_users:
            if not self.principal.admin:
                raise JobPermissionError("all_users=True needs the admin role")
        elif created_by is not None and created_by != self.principal.user:
            if not self.principal.admin:
                raise JobPermissionError("listing another user's jobs needs the admin role")
        else:
            created_by = self.principal.user
        query = ListQuery(
            reasoner_types=request.reasoner_types,
            job_id=request.job_id,
            state=request.state,
            name=request.name,
            created_by=created_by,
            only_active=request.only_active,
            limit=request.limit,
            offset=request.offset,
        )
        with _store_errors():
            store = self._ready()
            return [row_to_job(row, include, store) for row in store.list_jobs(query)]

    def get_events(
        self,
        reasoner_type: str,
        job_id: str,
        continuation_token: str,
        stream_name: str,
        wait_s: float = 0.0,
    ) -> JobEvents:
        after = decode_token(continuation_token, job_id, stream_name)
        with _store_errors():
            store = self._ready()
            with store.notifier.subscribe([channel_for_events(job_id)]) as sub:
                for attempt in range(2):
                    # read the state first: once terminal, no event can follow what we read next
                    row = self._visible_row(reasoner_type, job_id)
                    if row is None:
                        raise JobNotFoundError(f"{reasoner_type} job {job_id!r} not found")
                    terminal = row["state"] in TERMINAL_STATES
                    events = store.read_events(job_id, stream_name, after, EVENT_PAGE_SIZE)
                    if events or terminal or wait_s <= 0 or attempt == 1:
                        break
                    sub.wait(wait_s)
        last = events[-1]["seq"] if events else after
        complete = terminal and len(events) < EVENT_PAGE_SIZE
        token = None if complete else encode_token(job_id, stream_name, last)
        return JobEvents(events=events, continuation_token=token)

    def cancel_job(self, reasoner_type: str, job_id: str, all_users: bool) -> None:
        with _store_errors():
            row = self._ready().get_job(job_id)
            if row is None or row["reasoner_type"] != reasoner_type:
                raise JobNotFoundError(f"{reasoner_type} job {job_id!r} not found")
            if row["created_by"] != self.principal.user:
                if not all_users:
                    raise JobNotFoundError(f"{reasoner_type} job {job_id!r} not found")
                if not self.principal.admin:
                    raise JobPermissionError(
                        "cancelling another user's transaction needs the admin role"
                    )
            state = self.store.request_cancel(job_id, self.principal.user)
        if state is None:
            raise JobNotFoundError(f"{reasoner_type} job {job_id!r} not found")
        logger.info("job.cancel_requested", extra={"job_id": job_id, "state": state})

    def read_artifact(self, reasoner_type: str, job_id: str, name: str) -> bytes:
        with _store_errors():
            if self._visible_row(reasoner_type, job_id) is None:
                raise JobNotFoundError(f"{reasoner_type} job {job_id!r} not found")
            path = self.store.artifact_path(job_id, name)
        if path is None:
            names = [a["name"] for a in self.store.list_artifacts(job_id)]
            raise JobNotFoundError(
                f"job {job_id!r} has no artifact {name!r}; it has: {', '.join(names) or 'none'}"
            )
        try:
            return path.read_bytes()
        except OSError as exc:
            raise JobServerError(
                f"artifact {name!r} of job {job_id!r} is unreadable: {exc}"
            ) from exc

    def list_artifacts(self, reasoner_type: str, job_id: str) -> list[dict[str, Any]]:
        with _store_errors():
            if self._visible_row(reasoner_type, job_id) is None:
                raise JobNotFoundError(f"{reasoner_type} job {job_id!r} not found")
            return self.store.list_artifacts(job_id)

    def list_problems(self, reasoner_type: str, job_id: str) -> list[dict[str, Any]]:
        with _store_errors():
            if self._visible_row(reasoner_type, job_id) is None:
                raise JobNotFoundError(f"{reasoner_type} job {job_id!r} not found")
            return self.store.list_problems(job_id)

    # -- reasoners ------------------------------------------------------------------------------

    def list_reasoners(self, reasoner_type: str | None) -> list[Reasoner]:
        with _store_errors():
            return [row_to_reasoner(r) for r in self._ready().list_reasoners(reasoner_type)]

    def get_reasoner(self, reasoner_type: str, name: str) -> Reasoner | None:
        with _store_errors():
            row = self._ready().get_reasoner(reasoner_type, name)
        return None if row is None else row_to_reasoner(row)

    def create_reasoner(
        self, reasoner_type: str, name: str, size: int, settings: Mapping[str, Any]
    ) -> Reasoner:
        with _store_errors():
            row = self._ready().create_reasoner(
                reasoner_type, name, size=size, settings=settings, created_by=self.principal.user
            )
        return row_to_reasoner(row)

    def delete_reasoner(self, reasoner_type: str, name: str) -> None:
        with _store_errors():
            if not self._ready().delete_reasoner(reasoner_type, name):
                raise JobNotFoundError(f"reasoner {reasoner_type}/{name} not found")

    def set_reasoner_state(self, reasoner_type: str, name: str, state: str) -> Reasoner:
        assert state in REASONER_STATES
        with _store_errors():
            if not self._ready().set_reasoner_state(reasoner_type, name, state):
                raise JobNotFoundError(f"reasoner {reasoner_type}/{name} not found")
            row = self.store.get_reasoner(reasoner_type, name)
        assert row is not None
        return row_to_reasoner(row)
