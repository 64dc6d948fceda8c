"""Errors as HTTP answers: every failure is JSON ``{"message", "code"}`` with a fitting status.

========================== ====== ==================
rjobs error                status code
========================== ====== ==================
JobInvalidRequestError     400    invalid_request
(no or unknown token)      401    unauthenticated
JobPermissionError         403    forbidden
JobNotFoundError           404    not_found
(body over the limit)      413    payload_too_large
JobNotReadyError           503    not_ready
JobCapabilityError         501    not_supported
JobServerError, other      500    server_error
(request over its time)    504    timeout
========================== ====== ==================
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.responses import Response

from rjobs._errors import (
    JobCapabilityError,
    JobError,
    JobInvalidRequestError,
    JobNotFoundError,
    JobNotReadyError,
    JobPermissionError,
)

logger = logging.getLogger(__name__)


class JSONResponse(StarletteJSONResponse):
    """JSON with ASCII escapes: any string the store holds is encodable, lone surrogates too."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


class RequestTimeout(Exception):
    """A request's work did not finish within the server's per-request time limit."""


_STATUS: list[tuple[type[JobError], int, str]] = [
    (JobInvalidRequestError, 400, "invalid_request"),
    (JobPermissionError, 403, "forbidden"),
    (JobNotFoundError, 404, "not_found"),
    (JobNotReadyError, 503, "not_ready"),
    (JobCapabilityError, 501, "not_supported"),
]


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"message": message, "code": code}, status_code=status, headers=headers)


def job_error_response(exc: JobError) -> JSONResponse:
    for kind, status, code in _STATUS:
        if isinstance(exc, kind):
            return error_response(status, code, exc.message)
    logger.error("request.failed", extra={"error": exc.message})
    return error_response(500, "server_error", exc.message)


def _validation_message(exc: RequestValidationError) -> str:
    problems = []
    for error in list(exc.errors())[:5]:
        loc = [str(p) for p in error.get("loc", ())]
        where = ".".join(loc[1:] if len(loc) > 1 else loc) or "request"
        kind = loc[0] if loc else "request"
        problems.append(f"{kind} parameter {where}: {error.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(problems)


def install_error_handlers(app: FastAPI) -> None:
    async def on_job_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, JobError)
        return job_error_response(exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(400, "invalid_request", _validation_message(exc))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            message = f"no route {request.url.path}; see /openapi.json for the routes"
            return error_response(404, "not_found", message)
        if exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
            return error_response(405, "method_not_allowed", message, dict(exc.headers or {}))
        return error_response(exc.status_code, "http_error", str(exc.detail))

    async def on_timeout(request: Request, exc: Exception) -> Response:
        return error_response(504, "timeout", str(exc))

    async def on_crash(request: Request, exc: Exception) -> Response:
        logger.exception("request.crashed", extra={"path": request.url.path})
        return error_response(500, "server_error", "internal server error; see the server log")

    app.add_exception_handler(JobError, on_job_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestTimeout, on_timeout)
    app.add_exception_handler(Exception, on_crash)
