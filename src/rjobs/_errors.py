"""The errors rjobs raises. Every one is a :class:`JobError`::

    JobError
    ├── JobInvalidRequestError      the request is wrong: bad argument, unknown type, bad payload
    ├── JobNotFoundError            no such job (or not visible to the caller)
    ├── JobNotReadyError            not available yet: unfinished job, suspended reasoner
    ├── JobTimeoutError             wait gave up at its deadline
    ├── JobServerError              the store or server failed
    ├── JobCapabilityError          the backend cannot do this
    ├── JobPermissionError          not authenticated, or not allowed
    └── JobClientDisconnectedError  a Logic transaction was aborted because its client went away

Backend errors (SQLAlchemy, httpx, ...) are converted at the gateway and chained with ``from``.
"""

from __future__ import annotations


class JobError(Exception):
    """Base of every rjobs error."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())
        self.message = str(self.args[0])


class JobInvalidRequestError(JobError):
    """The request is invalid."""


class JobNotFoundError(JobError):
    """The job does not exist."""


class JobNotReadyError(JobError):
    """Not ready: the job has not finished, or the reasoner does not accept jobs now."""


class JobTimeoutError(JobError):
    """Waiting for the job timed out."""


class JobServerError(JobError):
    """The store or server failed."""


class JobCapabilityError(JobError):
    """The backend does not support this operation."""


class JobPermissionError(JobError):
    """Not authenticated, or not allowed to do this."""


class JobClientDisconnectedError(JobError):
    """The transaction was aborted because its waiting client disconnected."""


__all__ = [
    "JobCapabilityError",
    "JobClientDisconnectedError",
    "JobError",
    "JobInvalidRequestError",
    "JobNotFoundError",
    "JobNotReadyError",
    "JobPermissionError",
    "JobServerError",
    "JobTimeoutError",
]
