"""The routes of SPEC section 5, a thin layer over :class:`rjobs._sql_gateway.SqlJobsGateway`.

Each request acts as the principal its bearer token names (see :mod:`rjobs.server.gate`); the
gateway applies the visibility rules. Blocking store work runs in worker threads under a
per-request time limit; long-polls (``wait_s``) use their own pool of threads so that waiting
clients never starve the others.

rjobs extensions beyond the specification, none of which changes a specified shape:

* ``include=details,events,artifacts,problems,raw`` on job and transaction reads and lists adds
  those keys to each object;
* the job routes also serve Logic jobs (``LOGIC``); ``GET /v1alpha1/jobs`` lists Prescriptive and
  Predictive jobs unless ``type`` (repeatable, or comma-separated) says otherwise;
* ``job_id`` and ``offset`` on lists; ``all_users=true`` on cancels (Logic, admins);
* artifacts and problems of every job under ``/v1alpha1/jobs/{type}/{id}/...``;
* ``Idempotency-Key`` on creates, and ``Prefer: return=representation`` on ``POST /v1alpha1/jobs``
  to get the created job back with its id;
* ``abort_detached`` on creates, and ``payload`` (the whole Logic payload as JSON text) on
  transactions; ``keepalive=true`` on the reads of the client that waits for such a job.

Long-polls answer as soon as the job is terminal (or a new event exists), and after ``wait_s``
at the latest, which is capped at ``ServerSettings.max_wait_s``: a client asking for longer gets
its answer at the cap and asks again.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import pathlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import APIRouter, Header, Path, Query, Request
from starlette.responses import FileResponse, Response

from rjobs._errors import (
    JobInvalidRequestError,
    JobNotFoundError,
    JobPermissionError,
)
from rjobs._gateway import CreateRequest, ListRequest
from rjobs._models import (
    INCLUDE_KEYS,
    REASONER_TYPES,
    Job,
    check_include,
    check_job_id,
    check_payload,
    check_reasoner_name,
    check_stream,
    normalize_reasoner_type,
    normalize_state,
)
from rjobs._sql_gateway import Principal, SqlJobsGateway
from rjobs._wire import events_to_wire, job_to_wire, reasoner_to_wire, txn_to_wire
from rjobs.server import schemas as s
from rjobs.server.errors import JSONResponse, RequestTimeout
from rjobs.server.gate import decode_segment
from rjobs.server.metrics import Metrics
from rjobs.store.store import Store

logger = logging.getLogger(__name__)

T = TypeVar("T")

TypePath = Annotated[
    str,
    Path(
        description="SOLVER, ML or LOGIC; the public labels are accepted too, in any case",
        json_schema_extra={"enum": ["SOLVER", "ML", "LOGIC"]},
    ),
]
StreamPath = Annotated[str, Path(json_schema_extra={"enum": ["progress", "log"]})]

MAX_OFFSET = 1_000_000_000
MAX_IDEMPOTENCY_KEY = 200
JOB_TYPES_DEFAULT = ("Prescriptive", "Predictive")


@dataclass(frozen=True)
class ServerSettings:
    """Limits of one server; the defaults are the documented ones."""

    max_body_bytes: int = 16 * 1024 * 1024
    max_list_limit: int = 1000
    max_wait_s: float = 60.0
    request_timeout_s: float = 30.0
    long_poll_threads: int = 256


class Api:
    """What the routes share: the store, the limits, the metrics and the long-poll threads."""

    def __init__(self, store: Store, settings: ServerSettings) -> None:
        self.store = store
        self.settings = settings
        self.metrics = Metrics(store)
        self._long_polls: anyio.CapacityLimiter | None = None

    def gateway(self, request: Request) -> SqlJobsGateway:
        principal = request.state.principal
        assert isinstance(principal, Principal)
        return SqlJobsGateway(self.store, principal)

    async def run(self, fn: Callable[..., T], *args: Any, wait_s: float = 0.0) -> T:
        """Run blocking store work in a thread, within the per-request time limit."""
        limiter = None
        if wait_s > 0:
            if self._long_polls is None:
                self._long_polls = anyio.CapacityLimiter(self.settings.long_poll_threads)
            limiter = self._long_polls
        limit = self.settings.request_timeout_s + wait_s
        try:
            with anyio.fail_after(limit):
                return await anyio.to_thread.run_sync(
                    functools.partial(fn, *args), abandon_on_cancel=True, limiter=limiter
                )
        except TimeoutError as exc:
            raise RequestTimeout(f"the request did not finish within {limit:g} s") from exc


# -- parameters ----------------------------------------------------------------------------------


def _clean(value: str, what: str) -> str:
    """Refuse strings no store column can hold (NUL, lone surrogates)."""
    if "\x00" in value:
        raise JobInvalidRequestError(f"{what} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise JobInvalidRequestError(f"{what} must be valid Unicode text") from exc
    return value


def path_type(raw: str) -> str:
    return normalize_reasoner_type(decode_segment(raw, "reasoner type"))


def path_job_id(raw: str) -> str:
    job_id = check_job_id(decode_segment(raw, "job id"))
    if "\x00" in job_id:  # no job has one, and PostgreSQL cannot even compare it
        raise JobNotFoundError(f"job {job_id!r} not found")
    return job_id


def path_name(raw: str) -> str:
    return check_reasoner_name(_clean(decode_segment(raw, "reasoner name"), "reasoner name"))


def include_param(values: list[str]) -> frozenset[str]:
    keys = [k.strip() for v in values for k in v.split(",") if k.strip()]
    return check_include(dict.fromkeys(keys, True))


def types_param(values: list[str], default: tuple[str, ...]) -> tuple[str, ...]:
    wanted = {normalize_reasoner_type(k.strip()) for v in values for k in v.split(",") if k.strip()}
    if not wanted:
        return default
    return tuple(label for label in REASONER_TYPES if label in wanted)


def wait_param(value: float | None, settings: ServerSettings) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value) or value < 0:
        raise JobInvalidRequestError(f"wait_s must be a number >= 0, got {value!r}")
    return min(value, settings.max_wait_s)


def idempotency_param(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_IDEMPOTENCY_KEY or not value.isprintable():
        raise JobInvalidRequestError(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters"
        )
    return _clean(value, "Idempotency-Key")


def payload_param(text: str) -> tuple[dict[str, Any], str]:
    """Parse a payload sent as JSON text; returns it with the canonical text the store keeps."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise JobInvalidRequestError(f"payload is not valid JSON text: {exc}") from exc
    if not isinstance(value, dict):
        raise JobInvalidRequestError(
            f"payload must be the JSON text of an object, got {type(value).__name__}"
        )
    return value, check_payload(value)


def _inputs(body: s.TransactionCreateBody) -> dict[str, Any]:
    if body.inputs is not None and body.v1_inputs is not None:
        raise JobInvalidRequestError("give inputs or v1_inputs, not both")
    if body.v1_inputs is None:
        return dict(body.inputs or {})
    if isinstance(body.v1_inputs, dict):
        return dict(body.v1_inputs)
    inputs: dict[str, Any] = {}
    for item in body.v1_inputs:
        name = item.get("name")
        if not isinstance(name, str) or "value" not in item:
            raise JobInvalidRequestError(
                "v1_inputs must be an object, or a list of {'name': ..., 'value': ...}"
            )
        inputs[name] = item["value"]
    return inputs


def txn_payload(body: s.TransactionCreateBody) -> tuple[dict[str, Any], str]:
    fields = ("dbname", "query", "inputs", "v1_inputs")
    if body.payload is not None:
        given = [f for f in fields if getattr(body, f) is not None]
        if given:
            raise JobInvalidRequestError(
                f"give the transaction fields or payload, not both (also got {', '.join(given)})"
            )
        return payload_param(body.payload)
    if body.dbname is None or body.query is None:
        raise JobInvalidRequestError("a transaction needs dbname and query (or payload)")
    payload = {
        "dbname": _clean(body.dbname, "dbname"),
        "query": body.query,
        "readonly": body.readonly,
        "inputs": _inputs(body),
        "language": body.language,
    }
    return payload, check_payload(payload)


def long_poll(
    gw: SqlJobsGateway,
    label: str,
    job_id: str,
    wait_s: float,
    include: frozenset[str],
    keepalive: bool,
) -> Job | None:
    """The job once it is terminal, or after ``wait_s`` (the gateway waits in shorter slices).

    ``keepalive`` counts only from the job's creator: another user's poll (an admin's) never
    keeps an abort-detached transaction alive.
    """
    if keepalive:
        seen = gw.get_job(label, job_id, frozenset())
        if seen is None:
            return None
        keepalive = seen.created_by == gw.principal.user
    deadline = time.monotonic() + wait_s
    while True:
        remaining = max(0.0, deadline - time.monotonic())
        job = gw.wait_job(label, job_id, remaining, include, keepalive=keepalive)
        if job is None or job.is_terminal or time.monotonic() >= deadline:
            return job


# -- route helpers -------------------------------------------------------------------------------

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": s.ErrorBody, "description": "Invalid request"},
    401: {"model": s.ErrorBody, "description": "Missing or unknown token"},
    403: {"model": s.ErrorBody, "description": "Not allowed"},
    404: {"model": s.ErrorBody, "description": "Unknown job (or not yours)"},
    413: {"model": s.ErrorBody, "description": "Body over the limit"},
    500: {"model": s.ErrorBody, "description": "Server or store failure"},
    503: {"model": s.ErrorBody, "description": "Not ready to accept jobs"},
    504: {"model": s.ErrorBody, "description": "Request over its time limit"},
}


def _responses(model: type[Any] | None, media: str = "application/json") -> dict[int | str, Any]:
    out: dict[int | str, Any] = dict(_ERRORS)
    if model is not None:
        out[200] = {"model": model, "description": "OK"}
    else:
        out[200] = {"description": "OK", "content": {media: {}}}
    return out


def _body_doc(model: type[Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def _detailed(include: frozenset[str]) -> frozenset[str]:
    return include | {"details"}


def _want_representation(prefer: str | None) -> bool:
    return prefer is not None and "return=representation" in prefer.replace(" ", "").lower()


def build_router(api: Api) -> APIRouter:
    router = APIRouter()
    cfg = api.settings
    limit_q = Query(None, ge=0, le=cfg.max_list_limit, description=f"At most {cfg.max_list_limit}")
    offset_q = Query(0, ge=0, le=MAX_OFFSET)
    wait_q = Query(
        None, ge=0, description=f"Long-poll up to this many seconds (capped at {cfg.max_wait_s:g})"
    )
    include_q = Query([], description=f"Comma-separated: {', '.join(INCLUDE_KEYS)}")
    keepalive_q = Query(
        False, description="The creator of an abort-detached transaction is still waiting"
    )
    types_q = Query([], alias="type", description="SOLVER, ML or LOGIC; repeat or comma-separate")

    # -- service -----------------------------------------------------------------------------

    @router.get("/healthz", responses=_responses(s.Health), tags=["service"])
    async def healthz() -> Response:
        """Liveness and store reachability; needs no token."""
        await api.run(api.store.current_revision)
        return JSONResponse({"status": "ok"})

    @router.get("/metrics", responses=_responses(None, "text/plain"), tags=["service"])
    async def metrics() -> Response:
        """Prometheus text exposition."""
        text = await api.run(api.metrics.render)
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    # -- jobs --------------------------------------------------------------------------------

    async def _create(
        request: Request,
        label: str,
        name: str,
        payload: tuple[dict[str, Any], str],
        timeout_mins: int | None,
        abort_detached: bool,
        key: str | None,
    ) -> Job:
        if label == "Logic":
            dbname = payload[0].get("dbname")
            if dbname is not None and not isinstance(dbname, str):
                raise JobInvalidRequestError(f"dbname must be a string, got {dbname!r}")
            if dbname is not None:
                _clean(dbname, "dbname")
        gw = api.gateway(request)
        create = CreateRequest(
            reasoner_type=label,
            reasoner_name=name,
            payload=payload[0],
            payload_json=payload[1],
            timeout_ms=None if timeout_mins is None else timeout_mins * 60_000,
            abort_detached=abort_detached,
            idempotency_key=key,
        )
        job = await api.run(gw.create_job, create)
        detailed = await api.run(gw.get_job, label, job.id, frozenset({"details"}))
        if detailed is None:  # removed in between (gc): report what was created
            raise JobNotFoundError(f"{label} job {job.id!r} was created but is gone")
        return detailed

    @router.post(
        "/v1alpha1/jobs",
        responses=_responses(s.JobCreated),
        openapi_extra=_body_doc(s.JobCreateBody),
        tags=["jobs"],
    )
    async def create_job(
        request: Request,
        idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
        prefer: str | None = Header(None),
    ) -> Response:
        """Queue a job; ``payload`` is JSON text. Answers ``{"id"}``."""
        body = s.parse_body(await request.body(), s.JobCreateBody)
        label = normalize_reasoner_type(body.job_type)
        name = check_reasoner_name(_clean(body.worker_name, "worker_name"))
        payload = payload_param(body.payload)
        key = idempotency_param(idempotency_key)
        job = await _create(
            request, label, name, payload, body.timeout_mins, body.abort_detached, key
        )
        content: dict[str, Any] = {"id": job.id}
        if _want_representation(prefer):
            content["job"] = job_to_wire(job)
        return JSONResponse(content)

    def _list_request(
        types: tuple[str, ...],
        job_id: str | None,
        state: str | None,
        name: str | None,
        created_by: str | None,
        only_active: bool,
        all_users: bool,
        limit: int | None,
        offset: int,
    ) -> ListRequest:
        return ListRequest(
            reasoner_types=types,
            job_id=None if job_id is None else check_job_id(job_id),
            state=None if state is None else normalize_state(state),
            name=name,
            created_by=created_by,
            only_active=only_active,
            all_users=all_users,
            limit=cfg.max_list_limit if limit is None else limit,
            offset=offset,
        )

    @router.get("/v1alpha1/jobs", responses=_responses(s.JobList), tags=["jobs"])
    async def list_jobs(
        request: Request,
        types: list[str] = types_q,
        state: str | None = None,
        name: str | None = None,
        created_by: str | None = None,
        only_active: bool = False,
        all_users: bool = False,
        limit: int | None = limit_q,
        offset: int = offset_q,
        job_id: str | None = None,
        include: list[str] = include_q,
    ) -> Response:
        """The caller's jobs (everyone's with ``all_users``, admins), newest first."""
        wanted = include_param(include)
        query = _list_request(
            types_param(types, JOB_TYPES_DEFAULT),
            job_id,
            state,
            name,
            created_by,
            only_active,
            all_users,
            limit,
            offset,
        )
        gw = api.gateway(request)
        jobs = await api.run(gw.list_jobs, query, _detailed(wanted))
        return JSONResponse({"jobs": [job_to_wire(j, wanted) for j in jobs]})

    async def _read(
        request: Request,
        label: str,
        job_id: str,
        wait: float | None,
        wanted: frozenset[str],
        keepalive: bool = False,
    ) -> Job:
        gw = api.gateway(request)
        if wait is None and not keepalive:
            job = await api.run(gw.get_job, label, job_id, _detailed(wanted))
        else:
            wait = wait or 0.0
            include = _detailed(wanted)
            job = await api.run(long_poll, gw, label, job_id, wait, include, keepalive, wait_s=wait)
        if job is None:
            raise JobNotFoundError(f"{label} job {job_id!r} not found")
        return job

    @router.get("/v1alpha1/jobs/{type}/{id}", responses=_responses(s.JobResponse), tags=["jobs"])
    async def get_job(
        request: Request,
        type: TypePath,
        id: str,
        wait_s: float | None = wait_q,
        include: list[str] = include_q,
        keepalive: bool = keepalive_q,
    ) -> Response:
        """One job; with ``wait_s`` the answer comes once it is terminal, or after that long."""
        label, job_id = path_type(type), path_job_id(id)
        wanted = include_param(include)
        job = await _read(request, label, job_id, wait_param(wait_s, cfg), wanted, keepalive)
        return JSONResponse({"job": job_to_wire(job, wanted)})

    async def _events(
        request: Request, label: str, job_id: str, stream: str, token: str, wait: float | None
    ) -> Response:
        gw = api.gateway(request)
        wait = wait or 0.0
        page = await api.run(gw.get_events, label, job_id, token, stream, wait, wait_s=wait)
        return JSONResponse(events_to_wire(page))

    @router.get(
        "/v1alpha1/jobs/{type}/{id}/events/{stream}",
        responses=_responses(s.EventPage),
        tags=["jobs"],
    )
    async def job_events(
        request: Request,
        type: TypePath,
        id: str,
        stream: StreamPath,
        continuation_token: str = "",
        wait_s: float | None = wait_q,
    ) -> Response:
        """Events after the token; ``continuation_token`` is null once the stream is complete."""
        label, job_id = path_type(type), path_job_id(id)
        stream_name = check_stream(decode_segment(stream, "stream"))
        return await _events(
            request, label, job_id, stream_name, continuation_token, wait_param(wait_s, cfg)
        )

    async def _cancel(request: Request, label: str, job_id: str, all_users: bool) -> Job:
        if all_users and label != "Logic":
            raise JobInvalidRequestError(
                f"cancel with all_users=true is supported only for Logic transactions, not {label}"
            )
        gw = api.gateway(request)
        await api.run(gw.cancel_job, label, job_id, all_users)
        return await _read(request, label, job_id, None, frozenset())

    @router.post(
        "/v1alpha1/jobs/{type}/{id}/cancel", responses=_responses(s.JobResponse), tags=["jobs"]
    )
    async def cancel_job(
        request: Request, type: TypePath, id: str, all_users: bool = False
    ) -> Response:
        """Cancel a job (nothing happens to a finished one)."""
        label, job_id = path_type(type), path_job_id(id)
        job = await _cancel(request, label, job_id, all_users)
        return JSONResponse({"job": job_to_wire(job)})

    async def _artifacts(request: Request, label: str, job_id: str) -> Response:
        gw = api.gateway(request)
        items = await api.run(gw.list_artifacts, label, job_id)
        results = [
            {
                "filename": a["name"],
                "content_type": a["content_type"],
                "size": a["size"],
                "sha256": a["sha256"],
            }
            for a in items
        ]
        return JSONResponse({"results": results})

    async def _artifact(request: Request, label: str, job_id: str, raw_name: str) -> Response:
        name = decode_segment(raw_name, "artifact name")
        gw = api.gateway(request)
        items = await api.run(gw.list_artifacts, label, job_id)
        # matched here, among the job's own artifacts: the name never reaches a query
        info = next((a for a in items if a["name"] == name), None)
        if info is None:
            names = ", ".join(a["name"] for a in items) or "none"
            raise JobNotFoundError(f"job {job_id!r} has no artifact {name!r}; it has: {names}")
        path = await api.run(api.store.artifact_path, job_id, name)
        if path is None or not await api.run(pathlib.Path.is_file, path):
            raise JobNotFoundError(f"artifact {name!r} of job {job_id!r} is no longer stored")
        return FileResponse(path, media_type=info["content_type"])

    async def _problems(request: Request, label: str, job_id: str) -> Response:
        gw = api.gateway(request)
        problems = await api.run(gw.list_problems, label, job_id)
        return JSONResponse({"problems": problems})

    @router.get(
        "/v1alpha1/jobs/{type}/{id}/artifacts",
        responses=_responses(s.ArtifactList),
        tags=["jobs"],
    )
    async def job_artifacts(request: Request, type: TypePath, id: str) -> Response:
        """The job's artifacts (rjobs extension for every type)."""
        return await _artifacts(request, path_type(type), path_job_id(id))

    @router.get(
        "/v1alpha1/jobs/{type}/{id}/artifacts/{filename}",
        responses=_responses(None, "application/octet-stream"),
        tags=["jobs"],
    )
    async def job_artifact(request: Request, type: TypePath, id: str, filename: str) -> Response:
        """One artifact's bytes."""
        return await _artifact(request, path_type(type), path_job_id(id), filename)

    @router.get(
        "/v1alpha1/jobs/{type}/{id}/problems",
        responses=_responses(s.ProblemList),
        tags=["jobs"],
    )
    async def job_problems(request: Request, type: TypePath, id: str) -> Response:
        """The job's problems (rjobs extension for every type)."""
        return await _problems(request, path_type(type), path_job_id(id))

    # -- transactions ------------------------------------------------------------------------

    @router.post(
        "/v1alpha1/transactions",
        responses=_responses(s.TransactionResponse),
        openapi_extra=_body_doc(s.TransactionCreateBody),
        tags=["transactions"],
    )
    async def create_transaction(
        request: Request,
        idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
    ) -> Response:
        """Queue a Logic transaction."""
        body = s.parse_body(await request.body(), s.TransactionCreateBody)
        name = check_reasoner_name(_clean(body.engine_name, "engine_name"))
        payload = txn_payload(body)
        key = idempotency_param(idempotency_key)
        job = await _create(
            request, "Logic", name, payload, body.timeout_mins, body.abort_detached, key
        )
        return JSONResponse({"transaction": txn_to_wire(job)})

    @router.get(
        "/v1alpha1/transactions",
        responses=_responses(s.TransactionList),
        tags=["transactions"],
    )
    async def list_transactions(
        request: Request,
        state: str | None = None,
        engine_name: str | None = None,
        created_by: str | None = None,
        only_active: bool = False,
        all_users: bool = False,
        limit: int | None = limit_q,
        offset: int = offset_q,
        job_id: str | None = None,
        include: list[str] = include_q,
    ) -> Response:
        """The caller's transactions (everyone's with ``all_users``, admins), newest first."""
        wanted = include_param(include)
        query = _list_request(
            ("Logic",),
            job_id,
            state,
            engine_name,
            created_by,
            only_active,
            all_users,
            limit,
            offset,
        )
        gw = api.gateway(request)
        jobs = await api.run(gw.list_jobs, query, _detailed(wanted))
        return JSONResponse({"transactions": [txn_to_wire(j, wanted) for j in jobs]})

    @router.get(
        "/v1alpha1/transactions/{id}",
        responses=_responses(s.TransactionResponse),
        tags=["transactions"],
    )
    async def get_transaction(
        request: Request,
        id: str,
        wait_s: float | None = wait_q,
        include: list[str] = include_q,
        keepalive: bool = keepalive_q,
    ) -> Response:
        """One transaction; ``wait_s`` long-polls as for jobs."""
        job_id = path_job_id(id)
        wanted = include_param(include)
        job = await _read(request, "Logic", job_id, wait_param(wait_s, cfg), wanted, keepalive)
        return JSONResponse({"transaction": txn_to_wire(job, wanted)})

    @router.get(
        "/v1alpha1/transactions/{id}/events/{stream}",
        responses=_responses(s.EventPage),
        tags=["transactions"],
    )
    async def transaction_events(
        request: Request,
        id: str,
        stream: StreamPath,
        continuation_token: str = "",
        wait_s: float | None = wait_q,
    ) -> Response:
        """Events after the token, as for jobs."""
        job_id = path_job_id(id)
        stream_name = check_stream(decode_segment(stream, "stream"))
        return await _events(
            request, "Logic", job_id, stream_name, continuation_token, wait_param(wait_s, cfg)
        )

    @router.get(
        "/v1alpha1/transactions/{id}/artifacts",
        responses=_responses(s.ArtifactList),
        tags=["transactions"],
    )
    async def transaction_artifacts(request: Request, id: str) -> Response:
        """The transaction's result files."""
        return await _artifacts(request, "Logic", path_job_id(id))

    @router.get(
        "/v1alpha1/transactions/{id}/artifacts/{filename}",
        responses=_responses(None, "application/octet-stream"),
        tags=["transactions"],
    )
    async def transaction_artifact(request: Request, id: str, filename: str) -> Response:
        """One result file's bytes."""
        return await _artifact(request, "Logic", path_job_id(id), filename)

    @router.get(
        "/v1alpha1/transactions/{id}/problems",
        responses=_responses(s.ProblemList),
        tags=["transactions"],
    )
    async def transaction_problems(request: Request, id: str) -> Response:
        """The transaction's problems."""
        return await _problems(request, "Logic", path_job_id(id))

    @router.post(
        "/v1alpha1/transactions/{id}/cancel_async",
        responses=_responses(s.TransactionResponse),
        tags=["transactions"],
    )
    async def cancel_transaction(request: Request, id: str, all_users: bool = False) -> Response:
        """Cancel a transaction; admins may cancel anyone's with ``all_users=true``."""
        job = await _cancel(request, "Logic", path_job_id(id), all_users)
        return JSONResponse({"transaction": txn_to_wire(job)})

    # -- reasoners ---------------------------------------------------------------------------

    def _admin(request: Request, action: str) -> None:
        principal = request.state.principal
        if not principal.admin:
            raise JobPermissionError(f"{action} a reasoner needs the admin role")

    @router.get("/v1alpha1/reasoners", responses=_responses(s.ReasonerList), tags=["reasoners"])
    async def list_reasoners(request: Request, type: str | None = None) -> Response:
        """Reasoners, of one type or all."""
        label = None if type is None else normalize_reasoner_type(type)
        items = await api.run(api.gateway(request).list_reasoners, label)
        return JSONResponse({"reasoners": [reasoner_to_wire(r) for r in items]})

    @router.post(
        "/v1alpha1/reasoners",
        responses=_responses(s.ReasonerResponse),
        openapi_extra=_body_doc(s.ReasonerCreateBody),
        tags=["reasoners"],
    )
    async def create_reasoner(request: Request) -> Response:
        """Create a reasoner (admins)."""
        _admin(request, "creating")
        body = s.parse_body(await request.body(), s.ReasonerCreateBody)
        label = normalize_reasoner_type(body.type)
        name = check_reasoner_name(_clean(body.name, "name"))
        check_payload(body.settings)
        gw = api.gateway(request)
        created = await api.run(gw.create_reasoner, label, name, body.size, body.settings)
        return JSONResponse({"reasoner": reasoner_to_wire(created)})

    @router.get(
        "/v1alpha1/reasoners/{type}/{name}",
        responses=_responses(s.ReasonerResponse),
        tags=["reasoners"],
    )
    async def get_reasoner(request: Request, type: TypePath, name: str) -> Response:
        """One reasoner."""
        label, rname = path_type(type), path_name(name)
        found = await api.run(api.gateway(request).get_reasoner, label, rname)
        if found is None:
            raise JobNotFoundError(f"reasoner {label}/{rname} not found")
        return JSONResponse({"reasoner": reasoner_to_wire(found)})

    @router.delete(
        "/v1alpha1/reasoners/{type}/{name}",
        responses=_responses(s.Deleted),
        tags=["reasoners"],
    )
    async def delete_reasoner(request: Request, type: TypePath, name: str) -> Response:
        """Delete a reasoner without active jobs (admins)."""
        _admin(request, "deleting")
        label, rname = path_type(type), path_name(name)
        await api.run(api.gateway(request).delete_reasoner, label, rname)
        return JSONResponse({"deleted": True})

    async def _set_state(request: Request, type: str, name: str, state: str) -> Response:
        _admin(request, "suspending" if state == "SUSPENDED" else "resuming")
        label, rname = path_type(type), path_name(name)
        changed = await api.run(api.gateway(request).set_reasoner_state, label, rname, state)
        return JSONResponse({"reasoner": reasoner_to_wire(changed)})

    @router.post(
        "/v1alpha1/reasoners/{type}/{name}/suspend",
        responses=_responses(s.ReasonerResponse),
        tags=["reasoners"],
    )
    async def suspend_reasoner(request: Request, type: TypePath, name: str) -> Response:
        """Stop accepting new jobs (admins)."""
        return await _set_state(request, type, name, "SUSPENDED")

    @router.post(
        "/v1alpha1/reasoners/{type}/{name}/resume",
        responses=_responses(s.ReasonerResponse),
        tags=["reasoners"],
    )
    async def resume_reasoner(request: Request, type: TypePath, name: str) -> Response:
        """Accept jobs again (admins)."""
        return await _set_state(request, type, name, "READY")

    return router
