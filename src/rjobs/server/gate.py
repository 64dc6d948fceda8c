"""What every request passes before a route sees it: path, token and size checks.

* **Paths are decoded once, by the route.** The ASGI server hands over a percent-decoded path, in
  which a job id ``a%2Fb`` would become two path segments. Under ``/v1alpha1/`` the router
  therefore matches on the raw path, so each segment is one parameter, and the routes decode each
  parameter exactly once (:func:`decode_segment`).
* **NUL characters** are refused in the query string: no filter value contains one, and
  PostgreSQL refuses them in text. (A job id with one is simply not found, see the routes.)
* **Authentication**: ``Authorization: Bearer <token>`` on every route but ``/healthz``; the
  principal is put in the request's state for the routes.
* **Size**: a body over the limit is answered with 413 before any route reads it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote, unquote

import anyio.to_thread

from rjobs._errors import JobInvalidRequestError
from rjobs._sql_gateway import Principal
from rjobs.server.errors import error_response
from rjobs.store.store import Store

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/healthz"})
API_PREFIX = "/v1alpha1/"
MAX_TOKEN_CHARS = 512
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


def decode_segment(raw: str, what: str) -> str:
    """Decode one percent-encoded path segment (once), as UTF-8."""
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError as exc:
        raise JobInvalidRequestError(f"{what} in the path is not valid UTF-8") from exc


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    for key, value in headers:
        if key.lower() == b"authorization":
            text = value.decode("latin-1").strip()
            scheme, _, token = text.partition(" ")
            token = token.strip()
            if scheme.lower() == "bearer" and token and len(token) <= MAX_TOKEN_CHARS:
                return token
            return None
    return None


class Gate:
    """Pure ASGI middleware applying the checks above, in that order."""

    def __init__(self, app: ASGIApp, *, store: Store, max_body_bytes: int) -> None:
        self.app = app
        self.store = store
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(API_PREFIX):
            raw = scope.get("raw_path")
            # re-quote raw non-ASCII bytes; existing %XX escapes stay as they are
            scope["path"] = (
                quote(raw, safe=_PATH_SAFE) if isinstance(raw, bytes) else quote(path, safe="/")
            )
        query = scope.get("query_string", b"")
        if "\x00" in unquote(query.decode("latin-1")):
            message = "query parameters must not contain NUL characters"
            await self._reply(scope, receive, send, 400, "invalid_request", message)
            return

        if path not in OPEN_PATHS:
            principal = await self._authenticate(scope)
            if principal is None:
                message = (
                    "missing or unknown token: send 'Authorization: Bearer <token>' "
                    "(create one with 'rjobs tokens create USER')"
                )
                await self._reply(scope, receive, send, 401, "unauthenticated", message)
                return
            scope.setdefault("state", {})["principal"] = principal

        if scope["method"] in ("POST", "PUT", "PATCH"):
            body = await self._read_body(scope, receive)
            if body is None:
                message = f"request body over the limit of {self.max_body_bytes} bytes"
                await self._reply(scope, receive, send, 413, "payload_too_large", message)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> Principal | None:
        token = bearer_token(scope.get("headers", []))
        if token is None:
            return None
        found = await anyio.to_thread.run_sync(self.store.authenticate, token)
        if found is None:
            return None
        user, role = found
        return Principal(user, admin=(role == "admin"))

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        for key, value in scope.get("headers", []):
            if key.lower() == b"content-length":
                try:
                    if int(value) > self.max_body_bytes:
                        return None
                except ValueError:
                    pass
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _reply(
        self, scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str
    ) -> None:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if status == 413:
            headers = {"Connection": "close"}
        await error_response(status, code, message, headers)(scope, receive, send)


def _replay(body: bytes, upstream: Receive) -> Receive:
    """A receive that hands over the buffered body, then waits for the real disconnect."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await upstream()

    return receive
