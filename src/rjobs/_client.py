"""The synchronous client: ``connect_sync()`` and what it returns."""

from __future__ import annotations

import getpass
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rjobs._errors import (
    JobClientDisconnectedError,
    JobInvalidRequestError,
    JobNotFoundError,
    JobNotReadyError,
    JobTimeoutError,
)
from rjobs._gateway import JobsGatewaySync, ReasonersGatewaySync
from rjobs._models import (
    CLIENT_DISCONNECTED,
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


def wait_for_job(
    gateway: JobsGatewaySync,
    reasoner_type: str,
    job_id: str,
    *,
    timeout_s: float,
    poll_interval_s: float,
    include: frozenset[str],
    keepalive: bool = False,
) -> Job:
    """Block until the job is terminal; shared by the client's ``wait`` and operation handles.

    The gateway answers as soon as the job turns terminal (a notification from the store or a
    server long-poll); ``poll_interval_s`` only caps how long one such call may block before the
    job is read again, so a lost notification costs at most one interval. ``timeout_s`` is the
    overall deadline: the last call is shortened to end at it, so a timeout is never late by a
    whole interval.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        job = gateway.wait_job(
            reasoner_type,
            job_id,
            max(0.0, min(poll_interval_s, remaining)),
            include,
            keepalive=keepalive,
        )
        final = settled(job, reasoner_type, job_id, timeout_s=timeout_s, deadline=deadline)
        if final is not None:
            return final


def settled(
    job: Job | None, reasoner_type: str, job_id: str, *, timeout_s: float, deadline: float
) -> Job | None:
    """One step of a wait (sync or async): the final job, ``None`` to go on, or the error."""
    if job is None:
        raise JobNotFoundError(f"{reasoner_type} job {job_id!r} not found")
    if job.is_terminal:
        if job.state == "ABORTED" and job.abort_reason == CLIENT_DISCONNECTED:
            raise JobClientDisconnectedError(
                f"{reasoner_type} transaction {job_id!r} was aborted: its client disconnected"
            )
        return job
    if time.monotonic() < deadline:
        return None
    hint = (
        f"; no worker has claimed it yet: is one serving {reasoner_type}/{job.name}?"
        if job.state == "PENDING"
        else ""
    )
    raise JobTimeoutError(
        f"{reasoner_type} job {job_id!r} did not finish within {timeout_s:g} s "
        f"(last state {job.state}{hint})"
    )


class JobOperationSync:
    """A handle on a created job. ``wait()`` blocks; the final job is cached once seen."""

    def __init__(self, gateway: JobsGatewaySync, job: Job) -> None:
        self._gateway = gateway
        self.id = job.id
        self.metadata: dict[str, str] = {"reasoner_type": job.reasoner_type, "name": job.name}
        self._final: Job | None = job if job.is_terminal else None

    @property
    def reasoner_type(self) -> str:
        return self.metadata["reasoner_type"]

    def __repr__(self) -> str:
        return f"JobOperationSync(id={self.id!r}, reasoner_type={self.reasoner_type!r})"

    def wait(
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
        job = wait_for_job(
            self._gateway,
            self.reasoner_type,
            self.id,
            timeout_s=timeout,
            poll_interval_s=interval,
            include=wanted,
        )
        self._final = job
        return job

    def status(self) -> Operation:
        return operation_from_job(self._current(frozenset()))

    def is_done(self) -> bool:
        return self._current(frozenset()).is_terminal

    def result(self, include: JobIncludeDict | None = None) -> Job:
        """The final job; raises :class:`JobNotReadyError` while it is still active."""
        wanted = check_include(include)
        job = self._current(wanted)
        if not job.is_terminal:
            raise JobNotReadyError(
                f"{self.reasoner_type} job {self.id!r} is {job.state}, not finished yet"
            )
        return job

    def _current(self, include: frozenset[str]) -> Job:
        if self._final is not None and not include:
            return self._final
        job = self._gateway.get_job(self.reasoner_type, self.id, include)
        if job is None:
            raise JobNotFoundError(f"{self.reasoner_type} job {self.id!r} not found")
        if job.is_terminal:
            self._final = job
        return job


class JobsClientSync:
    """Synchronous jobs client (the public API of ``connect_sync().jobs``)."""

    def __init__(self, gateway: JobsGatewaySync, *, config: Config | None = None) -> None:
        self._gateway = gateway
        self.config = config

    def close(self) -> None:
        """Close underlying resources (best-effort)."""
        self._gateway.close()

    def get(
        self, reasoner_type: str, job_id: str, *, include: JobIncludeDict | None = None
    ) -> Job | None:
        """The job, or ``None`` if there is none with this type and id visible to the caller."""
        label = normalize_reasoner_type(reasoner_type)
        check_job_id(job_id)
        return self._gateway.get_job(label, job_id, check_include(include))

    def create(
        self,
        reasoner_type: str,
        reasoner_name: str,
        payload: dict[str, Any],
        *,
        timeout_mins: int | None = None,
    ) -> JobOperationSync:
        """Queue a job on the reasoner and return a handle at once."""
        request = create_request(reasoner_type, reasoner_name, payload, timeout_mins, ready=False)
        return JobOperationSync(self._gateway, self._gateway.create_job(request))

    def create_ready(
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
        """Create a job and block until it is terminal.

        A Logic transaction created this way is abort-detached: if this client stops polling for
        longer than the grace period, the transaction is aborted (``client disconnected``).
        """
        timeout = check_positive_seconds("timeout_s", timeout_s)
        interval = check_positive_seconds("poll_interval_s", poll_interval_s)
        wanted = check_include(include)
        request = create_request(reasoner_type, reasoner_name, payload, timeout_mins, ready=True)
        job = self._gateway.create_job(request)
        return wait_for_job(
            self._gateway,
            job.reasoner_type,
            job.id,
            timeout_s=timeout,
            poll_interval_s=interval,
            include=wanted,
            keepalive=request.abort_detached,
        )

    def list(
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
        """Jobs matching every given filter, newest first (created_on desc, then id).

        ``reasoner_type=None`` merges all types. ``limit`` and ``offset`` page the merged result.
        """
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
        return self._gateway.list_jobs(request, check_include(include))

    def get_events(
        self,
        reasoner_type: str,
        job_id: str,
        continuation_token: str = "",
        *,
        stream_name: str = "progress",
    ) -> JobEvents:
        """A page of events after ``continuation_token``; its token is ``None`` once complete."""
        args = events_request(reasoner_type, job_id, continuation_token, stream_name)
        return self._gateway.get_events(*args)

    def cancel(self, reasoner_type: str, job_id: str, *, all_users: bool = False) -> None:
        """Cancel a job; does nothing on a finished one. ``all_users`` is for Logic only."""
        self._gateway.cancel_job(*cancel_request(reasoner_type, job_id, all_users))

    def wait(
        self,
        reasoner_type: str,
        job_id: str,
        *,
        timeout_s: float = 900,
        poll_interval_s: float = 0.5,
        include: JobIncludeDict | None = None,
    ) -> Job:
        """Block until the job is terminal and return it.

        Returns within milliseconds of the terminal transition: the backend notifies waiters.
        ``poll_interval_s`` is only the ceiling between re-reads if a notification is lost;
        ``timeout_s`` is the overall deadline, after which :class:`JobTimeoutError` is raised.
        """
        label = normalize_reasoner_type(reasoner_type)
        check_job_id(job_id)
        return wait_for_job(
            self._gateway,
            label,
            job_id,
            timeout_s=check_positive_seconds("timeout_s", timeout_s),
            poll_interval_s=check_positive_seconds("poll_interval_s", poll_interval_s),
            include=check_include(include),
        )

    def get_operation(self, reasoner_type: str, job_id: str) -> Operation:
        """A normalised operation status derived from the job's current state."""
        job = self.get(reasoner_type, job_id)
        if job is None:
            raise JobNotFoundError(
                f"{normalize_reasoner_type(reasoner_type)} job {job_id!r} not found"
            )
        return operation_from_job(job)

    def read_artifact(self, reasoner_type: str, job_id: str, name: str) -> bytes:
        """The bytes of one of the job's artifacts."""
        return self._gateway.read_artifact(*artifact_request(reasoner_type, job_id, name))


class ReasonersClientSync:
    """Manage reasoners: named pools of worker slots of one type."""

    def __init__(self, gateway: ReasonersGatewaySync) -> None:
        self._gateway = gateway

    def list(self, reasoner_type: str | None = None) -> list[Reasoner]:
        label = None if reasoner_type is None else normalize_reasoner_type(reasoner_type)
        return self._gateway.list_reasoners(label)

    def get(self, reasoner_type: str, name: str) -> Reasoner | None:
        return self._gateway.get_reasoner(
            normalize_reasoner_type(reasoner_type), check_reasoner_name(name)
        )

    def create(
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
        return self._gateway.create_reasoner(
            normalize_reasoner_type(reasoner_type), check_reasoner_name(name), size, settings or {}
        )

    def delete(self, reasoner_type: str, name: str) -> None:
        self._gateway.delete_reasoner(
            normalize_reasoner_type(reasoner_type), check_reasoner_name(name)
        )

    def suspend(self, reasoner_type: str, name: str) -> Reasoner:
        return self._gateway.set_reasoner_state(
            normalize_reasoner_type(reasoner_type), check_reasoner_name(name), "SUSPENDED"
        )

    def resume(self, reasoner_type: str, name: str) -> Reasoner:
        return self._gateway.set_reasoner_state(
            normalize_reasoner_type(reasoner_type), check_reasoner_name(name), "READY"
        )


class ClientSync:
    """The entry point: ``.jobs`` and ``.reasoners``; use as a context manager to close."""

    def __init__(
        self, jobs: JobsClientSync, reasoners: ReasonersClientSync, config: Config
    ) -> None:
        self.jobs = jobs
        self.reasoners = reasoners
        self.config = config

    def close(self) -> None:
        self.jobs.close()

    def __enter__(self) -> ClientSync:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def connect_sync(
    *,
    config: Config | None = None,
    connection_name: str | None = None,
    token: str | None = None,
) -> ClientSync:
    """Connect to rjobs. With no arguments: the configured default, else the embedded backend.

    No network call is made here; the first request connects.
    """
    from rjobs._backends import build_gateway
    from rjobs._config import Config

    if config is None:
        config = Config.load(connection_name)
    elif connection_name is not None:
        raise JobInvalidRequestError("pass either config or connection_name, not both")
    if token is not None:
        config = config.replace(token=token)
    gateway = build_gateway(config)
    return ClientSync(JobsClientSync(gateway, config=config), ReasonersClientSync(gateway), config)
