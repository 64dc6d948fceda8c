"""The asynchronous client: ``connect()`` and what it returns, the twin of :mod:`rjobs._client`.

Every method has the sync client's name, parameters, defaults and validation, and is a
coroutine. Over ``http`` it is native (httpx.AsyncClient); over ``embedded`` and ``sql`` each call
runs the sync gateway in a worker thread, so an event loop never blocks on the store.

    async with rjobs.connect() as client:
        op = await client.jobs.create("Prescriptive", "default", payload)
        job = await op          # same as await op.wait()
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from rjobs._client import settled
from rjobs._errors import (
    JobInvalidRequestError,
    JobNotFoundError,
    JobNotReadyError,
)
from rjobs._gateway import CreateRequest, JobsGatewaySync, ListRequest, ReasonersGatewaySync
from rjobs._models import (
    Job,
    JobEvents,
    JobIncludeDict,
    Operation,
    Reasoner,
    check_include,
    check_job_id,
    check_payload,
    check_positive_seconds,
    check_reasoner_name,
    normalize_reasoner_type,
    operation_from_job,
)
from rjobs._requests import (
    artifact_request,
    cancel_request,
    create_request,
    events_request,
    list_request,
)

if TYPE_CHECKING:
    from rjobs._config import Config


class JobsGateway(Protocol):
    """The operations :class:`JobsClient` builds on (the async twin of ``JobsGatewaySync``)."""

    async def create_job(self, request: CreateRequest) -> Job: ...

    async def get_job(
        self, reasoner_type: str, job_id: str, include: frozenset[str]
    ) -> Job | None: ...

    async def wait_job(
        self,
        reasoner_type: str,
        job_id: str,
        wait_s: float,
        include: frozenset[str],
        *,
        keepalive: bool = False,
    ) -> Job | None:
        """Return the job once it is terminal, or after ``wait_s`` seconds, whichever is first.

        ``keepalive`` marks a poll of the client that created an abort-detached transaction.
        """
        ...

    async def list_jobs(self, request: ListRequest, include: frozenset[str]) -> list[Job]: ...

    async def get_events(
        self, reasoner_type: str, job_id: str, continuation_token: str, stream_name: str
    ) -> JobEvents: ...

    async def cancel_job(self, reasoner_type: str, job_id: str, all_users: bool) -> None: ...

    async def read_artifact(self, reasoner_type: str, job_id: str, name: str) -> bytes: ...

    async def close(self) -> None: ...


class ReasonersGateway(Protocol):
    """The operations :class:`ReasonersClient` builds on."""

    async def list_reasoners(self, reasoner_type: str | None) -> list[Reasoner]: ...

    async def get_reasoner(self, reasoner_type: str, name: str) -> Reasoner | None: ...

    async def create_reasoner(
        self, reasoner_type: str, name: str, size: int, settings: dict[str, Any]
    ) -> Reasoner: ...

    async def delete_reasoner(self, reasoner_type: str, name: str) -> None: ...

    async def set_reasoner_state(self, reasoner_type: str, name: str, state: str) -> Reasoner: ...


class SyncGatewayInThreads:
    """An async gateway that runs each call of a sync gateway in a worker thread."""

    def __init__(self, jobs: JobsGatewaySync, reasoners: ReasonersGatewaySync) -> None:
        self._jobs = jobs
        self._reasoners = reasoners

    async def create_job(self, request: CreateRequest) -> Job:
        return await asyncio.to_thread(self._jobs.create_job, request)

    async def get_job(self, reasoner_type: str, job_id: str, include: frozenset[str]) -> Job | None:
        return await asyncio.to_thread(self._jobs.get_job, reasoner_type, job_id, include)

    async def wait_job(
        self,
        reasoner_type: str,
        job_id: str,
        wait_s: float,
        include: frozenset[str],
        *,
        keepalive: bool = False,
    ) -> Job | None:
        return await asyncio.to_thread(
            functools.partial(self._jobs.wait_job, keepalive=keepalive),
            reasoner_type,
            job_id,
            wait_s,
            include,
        )

    async def list_jobs(self, request: ListRequest, include: frozenset[str]) -> list[Job]:
        return await asyncio.to_thread(self._jobs.list_jobs, request, include)

    async def get_events(
        self, reasoner_type: str, job_id: str, continuation_token: str, stream_name: str
    ) -> JobEvents:
        return await asyncio.to_thread(
            self._jobs.get_events, reasoner_type, job_id, continuation_token, stream_name
        )

    async def cancel_job(self, reasoner_type: str, job_id: str, all_users: bool) -> None:
        await asyncio.to_thread(self._jobs.cancel_job, reasoner_type, job_id, all_users)

    async def read_artifact(self, reasoner_type: str, job_id: str, name: str) -> bytes:
        return await asyncio.to_thread(self._jobs.read_artifact, reasoner_type, job_id, name)

    async def close(self) -> None:
        await asyncio.to_thread(self._jobs.close)

    async def list_reasoners(self, reasoner_type: str | None) -> list[Reasoner]:
        return await asyncio.to_thread(self._reasoners.list_reasoners, reasoner_type)

    async def get_reasoner(self, reasoner_type: str, name: str) -> Reasoner | None:
        return await asyncio.to_thread(self._reasoners.get_reasoner, reasoner_type, name)

    async def create_reasoner(
        self, reasoner_type: str, name: str, size: int, settings: dict[str, Any]
    ) -> Reasoner:
        return await asyncio.to_thread(
            self._reasoners.create_reasoner, reasoner_type, name, size, settings
        )

    async def delete_reasoner(self, reasoner_type: str, name: str) -> None:
        await asyncio.to_thread(self._reasoners.delete_reasoner, reasoner_type, name)

    async def set_reasoner_state(self, reasoner_type: str, name: str, state: str) -> Reasoner:
        return await asyncio.to_thread(
            self._reasoners.set_reasoner_state, reasoner_type, name, state
        )


async def wait_for_job(
    gateway: JobsGateway,
    reasoner_type: str,
    job_id: str,
    *,
    timeout_s: float,
    poll_interval_s: float,
    include: frozenset[str],
    keepalive: bool = False,
) -> Job:
    """Wait until the job is terminal; the async twin of :func:`rjobs._client.wait_for_job`.

    Each gateway call answers as soon as the job turns terminal; ``poll_interval_s`` only caps
    how long one call may wait, and ``timeout_s`` is the overall deadline (the last call is
    shortened to end at it).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        job = await gateway.wait_job(
            reasoner_type,
            job_id,
            max(0.0, min(poll_interval_s, remaining)),
            include,
            keepalive=keepalive,
        )
        final = settled(job, reasoner_type, job_id, timeout_s=timeout_s, deadline=deadline)
        if final is not None:
            return final


class JobOperation:
    """A handle on a created job; ``await op`` waits with the defaults of :meth:`wait`."""

    def __init__(self, gateway: JobsGateway, job: Job) -> None:
        self._gateway = gateway
        self.id = job.id
        self.metadata: dict[str, str] = {"reasoner_type": job.reasoner_type, "name": job.name}
        self._final: Job | None = job if job.is_terminal else None

    @property
    def reasoner_type(self) -> str:
        return self.metadata["reasoner_type"]

    def __repr__(self) -> str:
        return f"JobOperation(id={self.id!r}, reasoner_type={self.reasoner_type!r})"

    def __await__(self) -> Generator[Any, None, Job]:
        return self.wait().__await__()

    async def wait(
        self,
        timeout_s: float = 900,
        poll_interval_s: float = 0.5,
        include: JobIncludeDict | None = None,
    ) -> Job:
        timeout = check_positive_seconds("timeout_s", timeout_s)
        interval = check_positive_seconds("poll_interval_s", poll_interval_s)
        wanted = check_include(include)
        if self._final is not None and not wanted:
            return self._final
        job = await wait_for_job(
            self._gateway,
            self.reasoner_type,
            self.id,
            timeout_s=timeout,
            poll_interval_s=interval,
            include=wanted,
        )
        self._final = job
        return job

    async def status(self) -> Operation:
        return operation_from_job(await self._current(frozenset()))

    async def is_done(self) -> bool:
        return (await self._current(frozenset())).is_terminal

    async def result(self, include: JobIncludeDict | None = None) -> Job:
        """The final job; raises :class:`JobNotReadyError` while it is still active."""
        job = await self._current(check_include(include))
        if not job.is_terminal:
            raise JobNotReadyError(
                f"{self.reasoner_type} job {self.id!r} is {job.state}, not finished yet"
            )
        return job

    async def _current(self, include: frozenset[str]) -> Job:
        if self._final is not None and not include:
            return self._final
        job = await self._gateway.get_job(self.reasoner_type, self.id, include)
        if job is None:
            raise JobNotFoundError(f"{self.reasoner_type} job {self.id!r} not found")
        if job.is_terminal:
            self._final = job
        return job


class JobsClient:
    """Asynchronous jobs client (``connect().jobs``): the methods of ``JobsClientSync``."""

    def __init__(self, gateway: JobsGateway, *, config: Config | None = None) -> None:
        self._gateway = gateway
        self.config = config

    async def close(self) -> None:
        """Close underlying resources (best-effort)."""
        await self._gateway.close()

    async def get(
        self, reasoner_type: str, job_id: str, *, include: JobIncludeDict | None = None
    ) -> Job | None:
        """The job, or ``None`` if there is none with this type and id visible to the caller."""
        label = normalize_reasoner_type(reasoner_type)
        check_job_id(job_id)
        return await self._gateway.get_job(label, job_id, check_include(include))

    async def create(
        self,
        reasoner_type: str,
        reasoner_name: str,
        payload: dict[str, Any],
        *,
        timeout_mins: int | None = None,
    ) -> JobOperation:
        """Queue a job on the reasoner and return a handle at once."""
        request = create_request(reasoner_type, reasoner_name, payload, timeout_mins, ready=False)
        return JobOperation(self._gateway, await self._gateway.create_job(request))

    async def create_ready(
        self,
        reasoner_type: str,
        reasoner_name: str,
        payload: dict[str, Any],
        *,
        timeout_mins: int | None = None,
        timeout_s: float = 900,
        poll_interval_s: float = 0.5,
        include: JobIncludeDict | None = None,
    ) -> Job:
        """Create a job and wait until it is terminal (Logic: abort-detached, as in sync)."""
        timeout = check_positive_seconds("timeout_s", timeout_s)
        interval = check_positive_seconds("poll_interval_s", poll_interval_s)
        wanted = check_include(include)
        request = create_request(reasoner_type, reasoner_name, payload, timeout_mins, ready=True)
        job = await self._gateway.create_job(request)
        return await wait_for_job(
            self._gateway,
            job.reasoner_type,
            job.id,
            timeout_s=timeout,
            poll_interval_s=interval,
            include=wanted,
            keepalive=request.abort_detached,
        )

    async def list(
        self,
        reasoner_type: str | None = None,
        *,
        job_id: str | None = None,
        state: str | None = None,
        name: str | None = None,
        created_by: str | None = None,
        only_active: bool = False,
        all_users: bool = False,
        limit: int | None = None,
        include: JobIncludeDict | None = None,
        offset: int = 0,
    ) -> list[Job]:
        """Jobs matching every given filter, newest first (created_on desc, then id)."""
        request = list_request(
            reasoner_type,
            job_id=job_id,
            state=state,
            name=name,
            created_by=created_by,
            only_active=only_active,
            all_users=all_users,
            limit=limit,
            offset=offset,
        )
        return await self._gateway.list_jobs(request, check_include(include))

    async def get_events(
        self,
        reasoner_type: str,
        job_id: str,
        continuation_token: str = "",
        *,
        stream_name: str = "progress",
    ) -> JobEvents:
        """A page of events after ``continuation_token``; its token is ``None`` once complete."""
        args = events_request(reasoner_type, job_id, continuation_token, stream_name)
        return await self._gateway.get_events(*args)

    async def cancel(self, reasoner_type: str, job_id: str, *, all_users: bool = False) -> None:
        """Cancel a job; does nothing on a finished one. ``all_users`` is for Logic only."""
        await self._gateway.cancel_job(*cancel_request(reasoner_type, job_id, all_users))

    async def wait(
        self,
        reasoner_type: str,
        job_id: str,
        *,
        timeout_s: float = 900,
        poll_interval_s: float = 0.5,
        include: JobIncludeDict | None = None,
    ) -> Job:
        """Wait until the job is terminal and return it (see :func:`wait_for_job`)."""
        label = normalize_reasoner_type(reasoner_type)
        check_job_id(job_id)
        return await wait_for_job(
            self._gateway,
            label,
            job_id,
            timeout_s=check_positive_seconds("timeout_s", timeout_s),
            poll_interval_s=check_positive_seconds("poll_interval_s", poll_interval_s),
            include=check_include(include),
        )

    async def get_operation(self, reasoner_type: str, job_id: str) -> Operation:
        """A normalised operation status derived from the job's current state."""
        job = await self.get(reasoner_type, job_id)
        if job is None:
            raise JobNotFoundError(
                f"{normalize_reasoner_type(reasoner_type)} job {job_id!r} not found"
            )
        return operation_from_job(job)

    async def read_artifact(self, reasoner_type: str, job_id: str, name: str) -> bytes:
        """The bytes of one of the job's artifacts."""
        return await self._gateway.read_artifact(*artifact_request(reasoner_type, job_id, name))


class ReasonersClient:
    """Manage reasoners asynchronously: the methods of ``ReasonersClientSync``."""

    def __init__(self, gateway: ReasonersGateway) -> None:
        self._gateway = gateway

    async def list(self, reasoner_type: str | None = None) -> list[Reasoner]:
        label = None if reasoner_type is None else normalize_reasoner_type(reasoner_type)
        return await self._gateway.list_reasoners(label)

    async def get(self, reasoner_type: str, name: str) -> Reasoner | None:
        return await self._gateway.get_reasoner(
            normalize_reasoner_type(reasoner_type), check_reasoner_name(name)
        )

    async def create(
        self,
        reasoner_type: str,
        name: str,
        *,
        size: int = 1,
        settings: dict[str, Any] | None = None,
    ) -> Reasoner:
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 256:
            raise JobInvalidRequestError(f"size must be an integer from 1 to 256, got {size!r}")
        if settings is not None:
            check_payload(settings)
        return await self._gateway.create_reasoner(
            normalize_reasoner_type(reasoner_type), check_reasoner_name(name), size, settings or {}
        )

    async def delete(self, reasoner_type: str, name: str) -> None:
        await self._gateway.delete_reasoner(
            normalize_reasoner_type(reasoner_type), check_reasoner_name(name)
        )

    async def suspend(self, reasoner_type: str, name: str) -> Reasoner:
        return await self._gateway.set_reasoner_state(
            normalize_reasoner_type(reasoner_type), check_reasoner_name(name), "SUSPENDED"
        )

    async def resume(self, reasoner_type: str, name: str) -> Reasoner:
        return await self._gateway.set_reasoner_state(
            normalize_reasoner_type(reasoner_type), check_reasoner_name(name), "READY"
        )


class Client:
    """The async entry point: ``.jobs`` and ``.reasoners``; use ``async with`` to close."""

    def __init__(self, jobs: JobsClient, reasoners: ReasonersClient, config: Config) -> None:
        self.jobs = jobs
        self.reasoners = reasoners
        self.config = config

    async def close(self) -> None:
        await self.jobs.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class _AsyncBackend(JobsGateway, ReasonersGateway, Protocol):
    """Both gateway halves in one object, as every backend provides them."""


def build_async_gateway(config: Config) -> _AsyncBackend:
    """The async gateway for ``config.backend``; nothing connects until the first request."""
    if config.backend == "http":
        from rjobs._http_gateway import AsyncHttpJobsGateway

        return AsyncHttpJobsGateway(
            config.base_url, config.token, timeout_s=config.request_timeout_s
        )
    from rjobs._backends import build_gateway

    sync = build_gateway(config)
    return SyncGatewayInThreads(sync, sync)


def connect(
    *,
    config: Config | None = None,
    connection_name: str | None = None,
    token: str | None = None,
) -> Client:
    """Connect to rjobs from async code; the arguments are those of ``connect_sync``.

    No network call is made here; the first request connects.
    """
    from rjobs._config import Config

    if config is None:
        config = Config.load(connection_name)
    elif connection_name is not None:
        raise JobInvalidRequestError("pass either config or connection_name, not both")
    if token is not None:
        config = config.replace(token=token)
    gateway = build_async_gateway(config)
    return Client(JobsClient(gateway, config=config), ReasonersClient(gateway), config)
