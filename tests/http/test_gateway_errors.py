"""The HTTP gateways: status codes mapped to rjobs errors, bounded retries, idempotent creates.

Failures are injected by a transport that sits between the gateway and the real server: it can
drop a response after the server has acted on the request (a lost answer), answer 502/503/504
itself, or fail to connect.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import anyio.from_thread
import httpx
import pytest
from http_support import HttpEnv, free_port

import rjobs
from rjobs import _http_gateway
from rjobs._gateway import CreateRequest
from rjobs._http_gateway import AsyncHttpJobsGateway, HttpJobsGateway
from rjobs.server.api import Api, ServerSettings
from rjobs.server.errors import RequestTimeout

T = "Prescriptive"

# fault(request, attempt) -> None to forward, an exception to raise after forwarding ("lost"),
# or a response to answer without forwarding
Fault = Callable[[httpx.Request, int], Any]


class Lost(Exception):
    """Marks a fault: forward the request, then lose the answer."""


class FaultyTransport(httpx.BaseTransport):
    def __init__(self, fault: Fault) -> None:
        self.inner = httpx.HTTPTransport()
        self.fault = fault
        self.seen: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        attempt = sum(1 for s in self.seen if s == f"{request.method} {request.url.path}")
        self.seen.append(f"{request.method} {request.url.path}")
        action = self.fault(request, attempt)
        if isinstance(action, httpx.Response):
            return action
        if isinstance(action, Exception) and not isinstance(action, Lost):
            raise action
        response = self.inner.handle_request(request)
        response.read()
        if isinstance(action, Lost):
            raise httpx.ReadError("connection reset while reading the answer", request=request)
        return response


class AsyncFaultyTransport(httpx.AsyncBaseTransport):
    def __init__(self, fault: Fault) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.fault = fault
        self.seen: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        attempt = sum(1 for s in self.seen if s == f"{request.method} {request.url.path}")
        self.seen.append(f"{request.method} {request.url.path}")
        action = self.fault(request, attempt)
        if isinstance(action, httpx.Response):
            return action
        if isinstance(action, Exception) and not isinstance(action, Lost):
            raise action
        response = await self.inner.handle_async_request(request)
        await response.aread()
        if isinstance(action, Lost):
            raise httpx.ReadError("connection reset while reading the answer", request=request)
        return response


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_http_gateway, "BACKOFF_S", 0.01)


@pytest.fixture
def user_token(http_env: HttpEnv) -> str:
    return http_env.token()


@pytest.fixture
def solver(http_env: HttpEnv) -> str:
    name = f"r-{uuid.uuid4().hex[:10]}"
    with rjobs.connect_sync(config=http_env.config(http_env.admin_token)) as admin:
        admin.reasoners.create(T, name, size=2)
    return name


@pytest.fixture
def gateway(http_env: HttpEnv, user_token: str) -> Iterator[Callable[[Fault], Any]]:
    made: list[HttpJobsGateway] = []

    def make(fault: Fault) -> tuple[HttpJobsGateway, FaultyTransport]:
        transport = FaultyTransport(fault)
        gw = HttpJobsGateway(http_env.url, user_token, timeout_s=10, transport=transport)
        made.append(gw)
        return gw, transport

    yield make
    for gw in made:
        gw.close()


def create_request(name: str, payload: dict[str, Any] | None = None) -> CreateRequest:
    import json

    payload = payload or {"probe": {"sleep_s": 0}}
    return CreateRequest(T, name, payload, json.dumps(payload))


def status(code: int, message: str | None = None) -> httpx.Response:
    if message is None:
        return httpx.Response(code, text="<html>gateway trouble</html>")
    return httpx.Response(code, json={"message": message, "code": "x"})


def test_a_lost_create_answer_is_retried_with_the_same_key_and_makes_one_job(
    gateway: Callable[[Fault], Any], solver: str
) -> None:
    def lose_first_create(request: httpx.Request, attempt: int) -> Any:
        if request.method == "POST" and attempt == 0:
            return Lost()
        return None

    gw, transport = gateway(lose_first_create)
    job = gw.create_job(create_request(solver))
    posts = [s for s in transport.seen if s.startswith("POST")]
    assert len(posts) == 2  # the server made the job on the first attempt
    listed = gw.list_jobs(rjobs._gateway.ListRequest(reasoner_types=(T,), name=solver), frozenset())
    assert [j.id for j in listed] == [job.id]


def test_creates_send_one_idempotency_key_on_every_attempt(
    gateway: Callable[[Fault], Any], solver: str
) -> None:
    keys: list[str] = []

    def record(request: httpx.Request, attempt: int) -> Any:
        if request.method == "POST":
            keys.append(request.headers["idempotency-key"])
            if attempt < 2:
                return status(502)
        return None

    gw, _ = gateway(record)
    gw.create_job(create_request(solver))
    gw.create_job(create_request(solver))
    assert len(keys) == 4 and keys[0] == keys[1] == keys[2] != keys[3]


def test_reads_retry_transient_failures_then_give_a_server_error(
    gateway: Callable[[Fault], Any],
) -> None:
    def flaky(request: httpx.Request, attempt: int) -> Any:
        return {0: status(503), 1: httpx.ConnectError("refused"), 2: status(504)}.get(attempt)

    gw, transport = gateway(flaky)
    assert gw.get_job(T, "no-such-job", frozenset()) is None
    assert len(transport.seen) == 4

    gw, transport = gateway(lambda r, a: httpx.ConnectError("refused", request=r))
    with pytest.raises(rjobs.JobServerError, match="ConnectError") as info:
        gw.get_job(T, "x", frozenset())
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert len(transport.seen) == _http_gateway.RETRIES + 1

    gw, transport = gateway(lambda r, a: status(502))
    with pytest.raises(rjobs.JobServerError, match="502"):
        gw.list_reasoners(None)
    assert len(transport.seen) == _http_gateway.RETRIES + 1


def test_non_idempotent_requests_are_never_resent(gateway: Callable[[Fault], Any]) -> None:
    gw, transport = gateway(lambda r, a: Lost() if r.method == "POST" else None)
    with pytest.raises(rjobs.JobServerError, match="ReadError"):
        gw.create_reasoner(T, f"r-{uuid.uuid4().hex[:8]}", 1, {})
    assert len(transport.seen) == 1


def test_not_ready_is_answered_at_once_without_retrying(
    gateway: Callable[[Fault], Any], http_env: HttpEnv, solver: str
) -> None:
    with rjobs.connect_sync(config=http_env.config(http_env.admin_token)) as admin:
        admin.reasoners.suspend(T, solver)
    gw, transport = gateway(lambda r, a: None)
    with pytest.raises(rjobs.JobNotReadyError, match="not ready to accept jobs"):
        gw.create_job(create_request(solver))
    assert len(transport.seen) == 1


@pytest.mark.parametrize(
    ("answer", "error", "text"),
    [
        (status(400, "limit is wrong"), rjobs.JobInvalidRequestError, "limit is wrong"),
        (status(401, "who are you"), rjobs.JobPermissionError, "who are you"),
        (status(403, "not yours"), rjobs.JobPermissionError, "not yours"),
        (status(404, "gone"), rjobs.JobNotFoundError, "gone"),
        (status(409, "conflict"), rjobs.JobInvalidRequestError, "conflict"),
        (status(413, "too big"), rjobs.JobInvalidRequestError, "too big"),
        (status(500, "boom"), rjobs.JobServerError, "boom"),
        (status(501, "cannot"), rjobs.JobCapabilityError, "cannot"),
        (status(503, "maintenance"), rjobs.JobServerError, "maintenance"),
        (status(500), rjobs.JobServerError, "gateway trouble"),
        (httpx.Response(200, text="not json"), rjobs.JobServerError, "unexpected answer"),
        (httpx.Response(200, json={"jobs": "nope"}), rjobs.JobServerError, "unexpected answer"),
    ],
)
def test_each_answer_maps_to_its_rjobs_error(
    gateway: Callable[[Fault], Any], answer: httpx.Response, error: type[Exception], text: str
) -> None:
    gw, _ = gateway(lambda r, a: answer)
    with pytest.raises(error, match=text) as info:
        gw.list_jobs(rjobs._gateway.ListRequest(reasoner_types=(T,)), frozenset())
    assert isinstance(info.value.__cause__, httpx.HTTPError | ValueError | KeyError)


def test_get_and_wait_give_none_for_404_and_the_others_raise(
    gateway: Callable[[Fault], Any],
) -> None:
    gw, _ = gateway(lambda r, a: None)
    assert gw.get_job(T, "nope", frozenset()) is None
    assert gw.wait_job(T, "nope", 0.1, frozenset()) is None
    assert gw.get_reasoner(T, "nope") is None
    for call in (
        lambda: gw.get_events(T, "nope", "", "progress"),
        lambda: gw.cancel_job(T, "nope", False),
        lambda: gw.read_artifact(T, "nope", "x"),
    ):
        with pytest.raises(rjobs.JobNotFoundError):
            call()
    with pytest.raises(rjobs.JobPermissionError, match="admin"):  # a user's token
        gw.delete_reasoner(T, "nope")


def test_an_unreachable_server_is_a_server_error_and_connecting_costs_nothing() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    config = rjobs.Config(backend="http", base_url=url, token="t", request_timeout_s=2)
    with rjobs.connect_sync(config=config) as client:  # no network call yet
        with pytest.raises(rjobs.JobServerError, match=r"127\.0\.0\.1") as info:
            client.jobs.get(T, "x")
        assert isinstance(info.value.__cause__, httpx.ConnectError)
    with pytest.raises(rjobs.JobInvalidRequestError, match="base_url"):
        rjobs.connect_sync(config=rjobs.Config(backend="http"))


def test_the_async_gateway_retries_a_lost_create_the_same_way(
    http_env: HttpEnv,
    user_token: str,
    solver: str,
    portal: anyio.from_thread.BlockingPortal,
) -> None:
    def lose_first_create(request: httpx.Request, attempt: int) -> Any:
        return Lost() if request.method == "POST" and attempt == 0 else None

    transport = AsyncFaultyTransport(lose_first_create)

    async def go() -> list[str]:
        gw = AsyncHttpJobsGateway(http_env.url, user_token, transport=transport)
        try:
            job = await gw.create_job(create_request(solver))
            listed = await gw.list_jobs(
                rjobs._gateway.ListRequest(reasoner_types=(T,), name=solver), frozenset()
            )
            assert [j.id for j in listed] == [job.id]
            with pytest.raises(rjobs.JobNotFoundError):
                await gw.cancel_job(T, "nope", False)
            return [s for s in transport.seen if s == "POST /v1alpha1/jobs"]
        finally:
            await gw.close()

    assert len(portal.call(go)) == 2


def test_a_server_that_never_answers_times_out_per_request() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        gw = HttpJobsGateway(url, "t", timeout_s=0.2)
        start = time.monotonic()
        with pytest.raises(rjobs.JobServerError, match="timed out") as info:
            gw.get_job(T, "x", frozenset())
        gw.close()
    assert isinstance(info.value.__cause__, httpx.TimeoutException)
    assert time.monotonic() - start < 5  # (RETRIES + 1) attempts of 0.2 s, plus backoff


def test_server_work_over_its_time_limit_is_cut_off(http_env: HttpEnv) -> None:
    api = Api(http_env.store, ServerSettings(request_timeout_s=0.1))

    async def slow() -> None:
        await api.run(time.sleep, 2)

    start = time.monotonic()
    with pytest.raises(RequestTimeout, match=r"0\.1 s"):
        anyio.run(slow)
    assert time.monotonic() - start < 1
