"""Request bodies (validated here) and response shapes (documented in ``/openapi.json``).

Bodies are parsed from the raw bytes whatever the request's content type says, because existing
clients of this API send JSON labelled ``application/x-www-form-urlencoded``. Models are strict:
``"5"`` is not an integer and ``1`` is not a boolean. Unknown keys are ignored.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rjobs._errors import JobInvalidRequestError

M = TypeVar("M", bound=BaseModel)

MAX_TIMEOUT_MINS = 366 * 24 * 60
"""A job may be given at most a year (the store keeps milliseconds in a 64-bit integer)."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class JobCreateBody(_Body):
    """``POST /v1alpha1/jobs``. ``payload`` is the job's payload as JSON text (an object)."""

    job_type: str = Field(description="SOLVER or ML (Prescriptive, Predictive; LOGIC too)")
    worker_name: str = Field(description="The reasoner's name")
    payload: str = Field(description="The payload: JSON text of an object")
    timeout_mins: int | None = Field(default=None, ge=1, le=MAX_TIMEOUT_MINS)
    abort_detached: bool = Field(
        default=False, description="rjobs extension: abort when the client stops polling"
    )


class TransactionCreateBody(_Body):
    """``POST /v1alpha1/transactions``: a Logic job.

    Either the transaction fields (``dbname``, ``query``, ...) or, as an rjobs extension, the
    whole Logic payload as JSON text in ``payload``.
    """

    engine_name: str
    dbname: str | None = None
    query: str | None = None
    readonly: bool = True
    inputs: dict[str, Any] | None = None
    v1_inputs: dict[str, Any] | list[dict[str, Any]] | None = None
    language: str = "sql"
    timeout_mins: int | None = Field(default=None, ge=1, le=MAX_TIMEOUT_MINS)
    abort_detached: bool = False
    payload: str | None = Field(default=None, description="rjobs extension: the payload as JSON")


class ReasonerCreateBody(_Body):
    """``POST /v1alpha1/reasoners``."""

    type: str
    name: str
    size: int = Field(default=1, ge=1, le=256)
    settings: dict[str, Any] = Field(default_factory=dict)


def parse_body(raw: bytes, model: type[M]) -> M:
    """Validate a JSON body, turning every problem into a 400 that names the field."""
    if not raw.strip():
        raise JobInvalidRequestError("the request body is empty; send a JSON object")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False)[:5]:
            where = ".".join(str(p) for p in error["loc"]) or "body"
            problems.append(f"{where}: {error['msg']}")
        raise JobInvalidRequestError("invalid request body: " + "; ".join(problems)) from exc


# -- response shapes (documentation only; the routes build JSON themselves) ---------------------


class ErrorBody(BaseModel):
    message: str = Field(description="What was wrong, and what is allowed")
    code: str = Field(description="A stable machine-readable error code")


class _Expansions(BaseModel):
    details: dict[str, Any] | None = Field(default=None, description="with include=details")
    events: list[dict[str, Any]] | None = Field(default=None, description="with include=events")
    artifacts: list[dict[str, Any]] | None = Field(
        default=None, description="with include=artifacts"
    )
    problems: list[dict[str, Any]] | None = Field(default=None, description="with include=problems")
    raw: dict[str, Any] | None = Field(default=None, description="with include=raw")


class JobObject(_Expansions):
    id: str
    type: str = Field(description="SOLVER, ML (or LOGIC)")
    state: str
    worker_name: str
    created_by: str
    created_on: str = Field(json_schema_extra={"format": "date-time"})
    finished_at: str | None = Field(json_schema_extra={"format": "date-time"})
    duration: int | None = Field(description="milliseconds")
    payload: str = Field(description="JSON text")
    timeout_ms: int | None
    abort_reason: str | None
    database_name: str | None = Field(default=None, description="LOGIC jobs only")
    read_only: bool | None = Field(default=None, description="LOGIC jobs only")


class TransactionObject(_Expansions):
    id: str
    database_name: str | None
    engine_name: str
    state: str
    abort_reason: str | None
    read_only: bool | None
    created_by: str
    created_on: str = Field(json_schema_extra={"format": "date-time"})
    finished_at: str | None = Field(json_schema_extra={"format": "date-time"})
    duration: int | None


class JobCreated(BaseModel):
    id: str
    job: JobObject | None = Field(
        default=None, description="with the header Prefer: return=representation"
    )


class JobResponse(BaseModel):
    job: JobObject


class JobList(BaseModel):
    jobs: list[JobObject]


class TransactionResponse(BaseModel):
    transaction: TransactionObject


class TransactionList(BaseModel):
    transactions: list[TransactionObject]


class EventPage(BaseModel):
    events: list[dict[str, Any]]
    continuation_token: str | None


class ArtifactInfo(BaseModel):
    filename: str
    content_type: str
    size: int
    sha256: str


class ArtifactList(BaseModel):
    results: list[ArtifactInfo]


class ProblemList(BaseModel):
    problems: list[dict[str, Any]]


class ReasonerObject(BaseModel):
    type: str
    name: str
    size: int
    state: str
    settings: dict[str, Any]
    created_by: str
    created_on: str = Field(json_schema_extra={"format": "date-time"})


class ReasonerResponse(BaseModel):
    reasoner: ReasonerObject


class ReasonerList(BaseModel):
    reasoners: list[ReasonerObject]


class Deleted(BaseModel):
    deleted: bool


class Health(BaseModel):
    status: str
