"""The public surface: exported names and the reference signatures of JobsClientSync."""

from __future__ import annotations

import inspect

import rjobs

EXPECTED_EXPORTS = {
    "Client",
    "ClientSync",
    "Config",
    "Job",
    "JobCapabilityError",
    "JobClientDisconnectedError",
    "JobError",
    "JobEvents",
    "JobExpanded",
    "JobIncludeDict",
    "JobInvalidRequestError",
    "JobNotFoundError",
    "JobNotReadyError",
    "JobOperation",
    "JobOperationSync",
    "JobPermissionError",
    "JobServerError",
    "JobTimeoutError",
    "JobsClient",
    "JobsClientSync",
    "JobsGateway",
    "JobsGatewaySync",
    "Operation",
    "Reasoner",
    "ReasonersClient",
    "ReasonersClientSync",
    "ReasonersGateway",
    "ReasonersGatewaySync",
    "__version__",
    "connect",
    "connect_sync",
}

# The reference text's signatures, parameter for parameter (extensions come after, keyword-only).
REFERENCE = {
    "close": "(self) -> None",
    "get": "(self, reasoner_type: str, job_id: str, *, include: JobIncludeDict | None = None)"
    " -> Job | None",
    "create": "(self, reasoner_type: str, reasoner_name: str, payload: dict[str, Any], *, "
    "timeout_mins: int | None = None) -> JobOperationSync",
    "create_ready": "(self, reasoner_type: str, reasoner_name: str, payload: dict[str, Any], *, "
    "timeout_mins: int | None = None, timeout_s: float = 900, poll_interval_s: float = 0.5, "
    "include: JobIncludeDict | None = None) -> Job",
    "list": "(self, reasoner_type: str | None = None, *, job_id: str | None = None, "
    "state: str | None = None, name: str | None = None, created_by: str | None = None, "
    "only_active: bool = False, all_users: bool = False, limit: int | None = None, "
    "include: JobIncludeDict | None = None",
    "get_events": "(self, reasoner_type: str, job_id: str, continuation_token: str = '', *, "
    "stream_name: str = 'progress') -> JobEvents",
    "cancel": "(self, reasoner_type: str, job_id: str, *, all_users: bool = False) -> None",
    "wait": "(self, reasoner_type: str, job_id: str, *, timeout_s: float = 900, "
    "poll_interval_s: float = 0.5, include: JobIncludeDict | None = None) -> Job",
    "get_operation": "(self, reasoner_type: str, job_id: str) -> Operation",
}


def test_all_exports_exactly_the_intended_names() -> None:
    assert set(rjobs.__all__) == EXPECTED_EXPORTS
    for name in rjobs.__all__:
        assert hasattr(rjobs, name)


def _render(fn: object) -> str:
    """A signature as the reference writes it (annotations are source strings here)."""
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    parts = []
    star = False
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        text = p.name
        if p.annotation is not inspect.Parameter.empty:
            text += f": {p.annotation}"
        if p.default is not inspect.Parameter.empty:
            text += f" = {p.default!r}"
        parts.append(text)
    return f"({', '.join(parts)}) -> {sig.return_annotation}"


def test_jobs_client_methods_match_the_reference_signatures() -> None:
    for method, expected in REFERENCE.items():
        actual = _render(getattr(rjobs.JobsClientSync, method))
        assert actual.startswith(expected), f"{method}: {actual}"


def test_list_extension_offset_is_keyword_only_and_last() -> None:
    params = list(inspect.signature(rjobs.JobsClientSync.list).parameters.values())
    assert params[-1].name == "offset"
    assert params[-1].kind is inspect.Parameter.KEYWORD_ONLY
    assert params[-1].default == 0


def test_constructor_takes_a_gateway_and_keyword_only_config() -> None:
    assert _render(rjobs.JobsClientSync.__init__) == (
        "(self, gateway: JobsGatewaySync, *, config: Config | None = None) -> None"
    )


def test_operation_wait_defaults() -> None:
    sig = inspect.signature(rjobs.JobOperationSync.wait)
    assert sig.parameters["timeout_s"].default == 900
    assert sig.parameters["poll_interval_s"].default == 0.5
    assert sig.parameters["include"].default is None


def test_every_error_is_a_job_error() -> None:
    for name in rjobs.__all__:
        obj = getattr(rjobs, name)
        if isinstance(obj, type) and name.endswith("Error"):
            assert issubclass(obj, rjobs.JobError)


def test_models_are_frozen_dataclasses() -> None:
    import dataclasses

    for cls in (rjobs.Job, rjobs.JobExpanded, rjobs.JobEvents, rjobs.Operation):
        assert dataclasses.is_dataclass(cls)
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    job_fields = [f.name for f in dataclasses.fields(rjobs.Job)]
    assert job_fields == [
        "id",
        "reasoner_type",
        "state",
        "name",
        "model",
        "created_by",
        "created_on",
        "finished_at",
        "duration",
        "abort_reason",
    ]
    expanded = [f.name for f in dataclasses.fields(rjobs.JobExpanded)][len(job_fields) :]
    assert expanded == ["details", "events", "artifacts", "problems", "raw"]


def test_creating_a_client_makes_no_connection(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "never-touched"
    config = rjobs.Config(backend="embedded", data_dir=data_dir)
    with rjobs.connect_sync(config=config) as client:
        assert client.jobs is not None
    assert not data_dir.exists()
