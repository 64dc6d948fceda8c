"""The transport seam: what a client needs from a backend, whatever carries it.

The clients validate and normalise arguments, then call a gateway; gateways talk to the store
(:mod:`rjobs._sql_gateway`) or to an ``rjobs serve`` (:mod:`rjobs._http_gateway`) and convert
every backend error into an rjobs error at this edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from rjobs._models import Job, JobEvents, Reasoner


@dataclass(frozen=True)
class CreateRequest:
    """A validated create: the reasoner type is a public label, the payload already JSON text."""

    reasoner_type: str
    reasoner_name: str
    payload: dict[str, Any]
    payload_json: str
    timeout_ms: int | None = None
    abort_detached: bool = False
    idempotency_key: str | None = None


@dataclass(frozen=True)
class ListRequest:
    """Validated ``list`` filters; ``reasoner_types`` holds public labels in merge order."""

    reasoner_types: tuple[str, ...]
    job_id: str | None = None
    state: str | None = None
    name: str | None = None
    created_by: str | None = None
    only_active: bool = False
    all_users: bool = False
    limit: int | None = None
    offset: int = 0


class JobsGatewaySync(Protocol):
    """The operations :class:`rjobs.JobsClientSync` builds on."""

    def create_job(self, request: CreateRequest) -> Job: ...

    def get_job(self, reasoner_type: str, job_id: str, include: frozenset[str]) -> Job | None: ...

    def wait_job(
        self,
        reasoner_type: str,
        job_id: str,
        wait_s: float,
        include: frozenset[str],
        *,
        keepalive: bool = False,
    ) -> Job | None:
        """Return the job once it is terminal, or after ``wait_s`` seconds, whichever is first.

        ``keepalive`` marks the call as a poll of the client that created an abort-detached
        transaction (``create_ready``): it keeps the transaction from being aborted.
        """
        ...

    def list_jobs(self, request: ListRequest, include: frozenset[str]) -> list[Job]: ...

    def get_events(
        self, reasoner_type: str, job_id: str, continuation_token: str, stream_name: str
    ) -> JobEvents: ...

    def cancel_job(self, reasoner_type: str, job_id: str, all_users: bool) -> None: ...

    def read_artifact(self, reasoner_type: str, job_id: str, name: str) -> bytes: ...

    def close(self) -> None: ...


class ReasonersGatewaySync(Protocol):
    """The operations :class:`rjobs.ReasonersClientSync` builds on."""

    def list_reasoners(self, reasoner_type: str | None) -> list[Reasoner]: ...

    def get_reasoner(self, reasoner_type: str, name: str) -> Reasoner | None: ...

    def create_reasoner(
        self, reasoner_type: str, name: str, size: int, settings: dict[str, Any]
    ) -> Reasoner: ...

    def delete_reasoner(self, reasoner_type: str, name: str) -> None: ...

    def set_reasoner_state(self, reasoner_type: str, name: str, state: str) -> Reasoner: ...
