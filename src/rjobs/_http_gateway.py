"""The gateways over an ``rjobs serve`` (the ``http`` backend), sync and async, on httpx.

Both classes describe every operation as a :class:`Call` built by the same functions, and differ
only in how they send it, so the paths, parameters and JSON mapping exist once.

Errors are mapped here and nowhere else: 400 (and other 4xx) → :class:`JobInvalidRequestError`
with the server's message; 404 → ``None`` where the client returns ``None`` (get, wait),
:class:`JobNotFoundError` elsewhere; 401 and 403 → :class:`JobPermissionError`; 503 "not ready to
accept jobs" → :class:`JobNotReadyError`; 501 → :class:`JobCapabilityError`; other 5xx and
transport failures → :class:`JobServerError`. httpx exceptions are chained with ``from``.

Retries: connection errors, timeouts and 502/503/504 are retried (``RETRIES`` times, exponential
backoff with jitter) for reads, for cancels and suspends (idempotent by definition), and for
creates, which carry an ``Idempotency-Key`` generated once per ``create_job`` call and sent on
every attempt, so the server answers a repeated create with the job it already made. Nothing
else is resent.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast
from urllib.parse import quote

import anyio
import httpx

from rjobs._errors import (
    JobCapabilityError,
    JobError,
    JobInvalidRequestError,
    JobNotFoundError,
    JobNotReadyError,
    JobPermissionError,
    JobServerError,
)
from rjobs._gateway import CreateRequest, ListRequest
from rjobs._models import Job, JobEvents, Reasoner
from rjobs._wire import (
    WireError,
    events_from_wire,
    job_from_wire,
    reasoner_from_wire,
    txn_from_wire,
    type_alias,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

RETRIES = 3
RETRY_STATUSES = frozenset({502, 503, 504})
BACKOFF_S = 0.2
BACKOFF_MAX_S = 2.0
LIST_PAGE = 1000
"""Jobs asked for per list request; the server's default cap on ``limit``."""
NOT_READY = "not ready to accept jobs"


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP exchange: what to send, whether it may be resent, how to read the answer."""

    method: str
    path: str
    decode: Callable[[httpx.Response], T]
    params: list[tuple[str, str]] = field(default_factory=list)
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    retry: bool = True
    none_on_404: bool = False
    extra_timeout_s: float = 0.0


def _quote(value: str) -> str:
    """One path segment, percent-encoded; dots too, so ``..`` never walks up the path."""
    return quote(value, safe="").replace(".", "%2E")


def _json(response: httpx.Response) -> Any:
    return response.json()


def _key(body: Any, key: str) -> Any:
    if not isinstance(body, dict) or key not in body:
        raise WireError(f"the response has no {key!r}")
    return body[key]


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _include(include: frozenset[str]) -> list[tuple[str, str]]:
    return [("include", ",".join(sorted(include)))] if include else []


def _timeout_mins(timeout_ms: int | None) -> int | None:
    return None if timeout_ms is None else max(1, -(-timeout_ms // 60_000))


def _job_base(reasoner_type: str, job_id: str) -> str:
    if reasoner_type == "Logic":
        return f"/v1alpha1/transactions/{_quote(job_id)}"
    return f"/v1alpha1/jobs/{type_alias(reasoner_type)}/{_quote(job_id)}"


def _decode_job(reasoner_type: str, include: frozenset[str]) -> Callable[[httpx.Response], Job]:
    if reasoner_type == "Logic":
        return lambda r: txn_from_wire(_key(_json(r), "transaction"), include)
    return lambda r: job_from_wire(_key(_json(r), "job"), include)


# -- the calls, shared by both gateways ----------------------------------------------------------


def create_call(request: CreateRequest, key: str) -> Call[Job]:
    headers = {"Idempotency-Key": key}
    common = {
        "payload": request.payload_json,
        "timeout_mins": _timeout_mins(request.timeout_ms),
        "abort_detached": request.abort_detached,
    }
    if request.reasoner_type == "Logic":
        body = {"engine_name": request.reasoner_name, **common}
        return Call(
            "POST", "/v1alpha1/transactions", _decode_job("Logic", frozenset()), [], body, headers
        )
    body = {
        "job_type": type_alias(request.reasoner_type),
        "worker_name": request.reasoner_name,
        **common,
    }
    headers["Prefer"] = "return=representation"
    return Call(
        "POST", "/v1alpha1/jobs", _decode_job(request.reasoner_type, frozenset()), [], body, headers
    )


def get_call(
    reasoner_type: str,
    job_id: str,
    include: frozenset[str],
    wait_s: float | None = None,
    keepalive: bool = False,
) -> Call[Job | None]:
    params = _include(include)
    if wait_s is not None:
        params.append(("wait_s", f"{wait_s:.3f}"))
    if keepalive:
        params.append(("keepalive", "true"))
    decode: Callable[[httpx.Response], Job | None] = _decode_job(reasoner_type, include)
    return Call(
        "GET",
        _job_base(reasoner_type, job_id),
        decode,
        params,
        none_on_404=True,
        extra_timeout_s=wait_s or 0.0,
    )


def list_call(
    request: ListRequest, include: frozenset[str], limit: int, offset: int
) -> Call[list[Job]]:
    params = [("type", ",".join(type_alias(t) for t in request.reasoner_types))]
    for key, value in (
        ("job_id", request.job_id),
        ("state", request.state),
        ("name", request.name),
        ("created_by", request.created_by),
    ):
        if value is not None:
            params.append((key, value))
    params += [
        ("only_active", _bool(request.only_active)),
        ("all_users", _bool(request.all_users)),
        ("limit", str(limit)),
        ("offset", str(offset)),
        *_include(include),
    ]

    def decode(response: httpx.Response) -> list[Job]:
        items = _key(_json(response), "jobs")
        if not isinstance(items, list):
            raise WireError("'jobs' is not a list")
        return [job_from_wire(item, include) for item in items]

    return Call("GET", "/v1alpha1/jobs", decode, params)


def events_call(
    reasoner_type: str, job_id: str, token: str, stream: str, wait_s: float
) -> Call[JobEvents]:
    params = [("continuation_token", token)]
    if wait_s > 0:
        params.append(("wait_s", f"{wait_s:.3f}"))
    return Call(
        "GET",
        f"{_job_base(reasoner_type, job_id)}/events/{_quote(stream)}",
        lambda r: events_from_wire(_json(r)),
        params,
        extra_timeout_s=wait_s,
    )


def cancel_call(reasoner_type: str, job_id: str, all_users: bool) -> Call[None]:
    suffix = "cancel_async" if reasoner_type == "Logic" else "cancel"
    params = [("all_users", "true")] if all_users else []
    return Call("POST", f"{_job_base(reasoner_type, job_id)}/{suffix}", lambda r: None, params)


def artifact_call(reasoner_type: str, job_id: str, name: str) -> Call[bytes]:
    path = f"{_job_base(reasoner_type, job_id)}/artifacts/{_quote(name)}"
    return Call("GET", path, lambda r: r.content)


def artifacts_call(reasoner_type: str, job_id: str) -> Call[list[dict[str, Any]]]:
    def decode(response: httpx.Response) -> list[dict[str, Any]]:
        items = _key(_json(response), "results")
        return [
            {
                "name": i["filename"],
                "content_type": i["content_type"],
                "size": i["size"],
                "sha256": i["sha256"],
            }
            for i in items
        ]

    return Call("GET", f"{_job_base(reasoner_type, job_id)}/artifacts", decode)


def problems_call(reasoner_type: str, job_id: str) -> Call[list[dict[str, Any]]]:
    return Call(
        "GET",
        f"{_job_base(reasoner_type, job_id)}/problems",
        lambda r: list(_key(_json(r), "problems")),
    )


def _decode_reasoner(response: httpx.Response) -> Reasoner:
    return reasoner_from_wire(_key(_json(response), "reasoner"))


def list_reasoners_call(reasoner_type: str | None) -> Call[list[Reasoner]]:
    params = [] if reasoner_type is None else [("type", type_alias(reasoner_type))]
    return Call(
        "GET",
        "/v1alpha1/reasoners",
        lambda r: [reasoner_from_wire(i) for i in _key(_json(r), "reasoners")],
        params,
    )


def _reasoner_path(reasoner_type: str, name: str) -> str:
    return f"/v1alpha1/reasoners/{type_alias(reasoner_type)}/{_quote(name)}"


def get_reasoner_call(reasoner_type: str, name: str) -> Call[Reasoner | None]:
    decode: Callable[[httpx.Response], Reasoner | None] = _decode_reasoner
    return Call("GET", _reasoner_path(reasoner_type, name), decode, none_on_404=True)


def create_reasoner_call(
    reasoner_type: str, name: str, size: int, settings: Mapping[str, Any]
) -> Call[Reasoner]:
    body = {"type": type_alias(reasoner_type), "name": name, "size": size, "settings": settings}
    return Call("POST", "/v1alpha1/reasoners", _decode_reasoner, body=body, retry=False)


def delete_reasoner_call(reasoner_type: str, name: str) -> Call[None]:
    return Call("DELETE", _reasoner_path(reasoner_type, name), lambda r: None, retry=False)


def set_state_call(reasoner_type: str, name: str, state: str) -> Call[Reasoner]:
    action = "suspend" if state == "SUSPENDED" else "resume"
    return Call("POST", f"{_reasoner_path(reasoner_type, name)}/{action}", _decode_reasoner)


# -- sending and reading answers -----------------------------------------------------------------


def _server_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    text = response.text.strip()[:300]
    return f"HTTP {response.status_code} {response.reason_phrase}" + (f": {text}" if text else "")


def _error_for(response: httpx.Response) -> JobError:
    status = response.status_code
    message = _server_message(response)
    if status in (401, 403):
        return JobPermissionError(message)
    if status == 404:
        return JobNotFoundError(message)
    if status == 503 and NOT_READY in message:
        return JobNotReadyError(message)
    if status == 501:
        return JobCapabilityError(message)
    if status >= 500:
        return JobServerError(f"the rjobs server failed: {message}")
    return JobInvalidRequestError(message)


def read_response(call: Call[T], response: httpx.Response) -> T:
    """Decode a final answer, or raise the rjobs error it stands for."""
    status = response.status_code
    if 200 <= status < 300:
        try:
            return call.decode(response)
        except (WireError, ValueError, KeyError, TypeError) as exc:
            raise JobServerError(
                f"unexpected answer from the rjobs server to {call.method} {call.path}: {exc}"
            ) from exc
    if status == 404 and call.none_on_404:
        return cast(T, None)  # such calls decode to an optional type
    error = _error_for(response)
    raise error from httpx.HTTPStatusError(
        f"{status} from {call.method} {call.path}", request=response.request, response=response
    )


def should_retry(call: Call[Any], response: httpx.Response | None, attempt: int) -> bool:
    if not call.retry or attempt >= RETRIES:
        return False
    if response is None:
        return True
    if response.status_code not in RETRY_STATUSES:
        return False
    # a reasoner that is not ready says so at once; asking again changes nothing
    return not (response.status_code == 503 and NOT_READY in _server_message(response))


def backoff(attempt: int) -> float:
    delay: float = min(BACKOFF_MAX_S, BACKOFF_S * 2**attempt)
    return delay * (0.5 + random.random() / 2)


def transport_error(call: Call[Any], base_url: str, exc: httpx.HTTPError) -> JobServerError:
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
    return JobServerError(
        f"{call.method} {call.path} to the rjobs server at {base_url} {kind}: "
        f"{type(exc).__name__}: {exc}"
    )


def _request_args(call: Call[Any], timeout_s: float) -> dict[str, Any]:
    args: dict[str, Any] = {
        "params": call.params,
        "headers": call.headers,
        "timeout": timeout_s + call.extra_timeout_s,
    }
    if call.body is not None:
        args["content"] = json.dumps(call.body, allow_nan=False).encode("ascii")
        args["headers"] = {**call.headers, "Content-Type": "application/json"}
    return args


def _client_args(base_url: str | None, token: str | None, timeout_s: float) -> dict[str, Any]:
    if not base_url:
        raise JobInvalidRequestError(
            "the http backend needs base_url (or RJOBS_BASE_URL), e.g. http://127.0.0.1:8080"
        )
    from rjobs import __version__

    headers = {"User-Agent": f"rjobs/{__version__}", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return {"base_url": base_url.rstrip("/"), "headers": headers, "timeout": timeout_s}


class HttpJobsGateway:
    """Jobs and reasoners through an ``rjobs serve``, blocking (httpx.Client)."""

    def __init__(
        self,
        base_url: str | None,
        token: str | None,
        *,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._client = httpx.Client(**_client_args(base_url, token, timeout_s), transport=transport)
        self.base_url = str(self._client.base_url)

    def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = self._client.request(
                    call.method, call.path, **_request_args(call, self._timeout_s)
                )
            except httpx.HTTPError as exc:
                if not should_retry(call, None, attempt):
                    raise transport_error(call, self.base_url, exc) from exc
                logger.warning("http.retry", extra={"path": call.path, "error": repr(exc)})
            else:
                if not should_retry(call, response, attempt):
                    return read_response(call, response)
                logger.warning(
                    "http.retry", extra={"path": call.path, "status": response.status_code}
                )
            time.sleep(backoff(attempt))
            attempt += 1

    def close(self) -> None:
        self._client.close()

    def create_job(self, request: CreateRequest) -> Job:
        key = request.idempotency_key or uuid.uuid4().hex
        return self._send(create_call(request, key))

    def get_job(self, reasoner_type: str, job_id: str, include: frozenset[str]) -> Job | None:
        return self._send(get_call(reasoner_type, job_id, include))

    def wait_job(
        self,
        reasoner_type: str,
        job_id: str,
        wait_s: float,
        include: frozenset[str],
        *,
        keepalive: bool = False,
    ) -> Job | None:
        return self._send(get_call(reasoner_type, job_id, include, wait_s, keepalive))

    def list_jobs(self, request: ListRequest, include: frozenset[str]) -> list[Job]:
        jobs: list[Job] = []
        while True:
            want = LIST_PAGE if request.limit is None else request.limit - len(jobs)
            page = self._send(
                list_call(request, include, min(want, LIST_PAGE), request.offset + len(jobs))
            )
            jobs.extend(page)
            if len(page) < LIST_PAGE or (request.limit is not None and len(jobs) >= request.limit):
                return jobs

    def get_events(
        self,
        reasoner_type: str,
        job_id: str,
        continuation_token: str,
        stream_name: str,
        wait_s: float = 0.0,
    ) -> JobEvents:
        return self._send(
            events_call(reasoner_type, job_id, continuation_token, stream_name, wait_s)
        )

    def cancel_job(self, reasoner_type: str, job_id: str, all_users: bool) -> None:
        self._send(cancel_call(reasoner_type, job_id, all_users))

    def read_artifact(self, reasoner_type: str, job_id: str, name: str) -> bytes:
        return self._send(artifact_call(reasoner_type, job_id, name))

    def list_artifacts(self, reasoner_type: str, job_id: str) -> list[dict[str, Any]]:
        return self._send(artifacts_call(reasoner_type, job_id))

    def list_problems(self, reasoner_type: str, job_id: str) -> list[dict[str, Any]]:
        return self._send(problems_call(reasoner_type, job_id))

    def list_reasoners(self, reasoner_type: str | None) -> list[Reasoner]:
        return self._send(list_reasoners_call(reasoner_type))

    def get_reasoner(self, reasoner_type: str, name: str) -> Reasoner | None:
        return self._send(get_reasoner_call(reasoner_type, name))

    def create_reasoner(
        self, reasoner_type: str, name: str, size: int, settings: Mapping[str, Any]
    ) -> Reasoner:
        return self._send(create_reasoner_call(reasoner_type, name, size, settings))

    def delete_reasoner(self, reasoner_type: str, name: str) -> None:
        self._send(delete_reasoner_call(reasoner_type, name))

    def set_reasoner_state(self, reasoner_type: str, name: str, state: str) -> Reasoner:
        return self._send(set_state_call(reasoner_type, name, state))


class AsyncHttpJobsGateway:
    """Jobs and reasoners through an ``rjobs serve``, natively async (httpx.AsyncClient)."""

    def __init__(
        self,
        base_url: str | None,
        token: str | None,
        *,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._client = httpx.AsyncClient(
            **_client_args(base_url, token, timeout_s), transport=transport
        )
        self.base_url = str(self._client.base_url)

    async def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = await self._client.request(
                    call.method, call.path, **_request_args(call, self._timeout_s)
                )
            except httpx.HTTPError as exc:
                if not should_retry(call, None, attempt):
                    raise transport_error(call, self.base_url, exc) from exc
                logger.warning("http.retry", extra={"path": call.path, "error": repr(exc)})
            else:
                if not should_retry(call, response, attempt):
                    return read_response(call, response)
                logger.warning(
                    "http.retry", extra={"path": call.path, "status": response.status_code}
                )
            await anyio.sleep(backoff(attempt))
            attempt += 1

    async def close(self) -> None:
        await self._client.aclose()

    async def create_job(self, request: CreateRequest) -> Job:
        key = request.idempotency_key or uuid.uuid4().hex
        return await self._send(create_call(request, key))

    async def get_job(self, reasoner_type: str, job_id: str, include: frozenset[str]) -> Job | None:
        return await self._send(get_call(reasoner_type, job_id, include))

    async def wait_job(
        self,
        reasoner_type: str,
        job_id: str,
        wait_s: float,
        include: frozenset[str],
        *,
        keepalive: bool = False,
    ) -> Job | None:
        return await self._send(get_call(reasoner_type, job_id, include, wait_s, keepalive))

    async def list_jobs(self, request: ListRequest, include: frozenset[str]) -> list[Job]:
        jobs: list[Job] = []
        while True:
            want = LIST_PAGE if request.limit is None else request.limit - len(jobs)
            page = await self._send(
                list_call(request, include, min(want, LIST_PAGE), request.offset + len(jobs))
            )
            jobs.extend(page)
            if len(page) < LIST_PAGE or (request.limit is not None and len(jobs) >= request.limit):
                return jobs

    async def get_events(
        self,
        reasoner_type: str,
        job_id: str,
        continuation_token: str,
        stream_name: str,
        wait_s: float = 0.0,
    ) -> JobEvents:
        return await self._send(
            events_call(reasoner_type, job_id, continuation_token, stream_name, wait_s)
        )

    async def cancel_job(self, reasoner_type: str, job_id: str, all_users: bool) -> None:
        await self._send(cancel_call(reasoner_type, job_id, all_users))

    async def read_artifact(self, reasoner_type: str, job_id: str, name: str) -> bytes:
        return await self._send(artifact_call(reasoner_type, job_id, name))

    async def list_artifacts(self, reasoner_type: str, job_id: str) -> list[dict[str, Any]]:
        return await self._send(artifacts_call(reasoner_type, job_id))

    async def list_problems(self, reasoner_type: str, job_id: str) -> list[dict[str, Any]]:
        return await self._send(problems_call(reasoner_type, job_id))

    async def list_reasoners(self, reasoner_type: str | None) -> list[Reasoner]:
        return await self._send(list_reasoners_call(reasoner_type))

    async def get_reasoner(self, reasoner_type: str, name: str) -> Reasoner | None:
        return await self._send(get_reasoner_call(reasoner_type, name))

    async def create_reasoner(
        self, reasoner_type: str, name: str, size: int, settings: Mapping[str, Any]
    ) -> Reasoner:
        return await self._send(create_reasoner_call(reasoner_type, name, size, settings))

    async def delete_reasoner(self, reasoner_type: str, name: str) -> None:
        await self._send(delete_reasoner_call(reasoner_type, name))

    async def set_reasoner_state(self, reasoner_type: str, name: str, state: str) -> Reasoner:
        return await self._send(set_state_call(reasoner_type, name, state))
