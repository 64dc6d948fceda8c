"""Build the gateway a configuration asks for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rjobs._errors import JobInvalidRequestError

if TYPE_CHECKING:
    from rjobs._config import Config
    from rjobs._http_gateway import HttpJobsGateway
    from rjobs._sql_gateway import SqlJobsGateway


def build_gateway(config: Config) -> SqlJobsGateway | HttpJobsGateway:
    """The gateway for ``config.backend``; nothing connects until the first request."""
    from rjobs._client import current_user
    from rjobs._sql_gateway import Principal, SqlJobsGateway
    from rjobs.store.store import Store

    if config.backend == "embedded":
        from rjobs.worker.supervisor import ensure_supervisor

        store = Store(config.store_url, artifact_dir=config.artifact_dir)
        return SqlJobsGateway(
            store,
            Principal(current_user(), admin=True),
            auto_create_reasoners=True,
            ensure_workers=lambda: ensure_supervisor(config),
        )
    if config.backend == "sql":
        if not config.database_url:
            raise JobInvalidRequestError(
                "the sql backend needs database_url (or RJOBS_DATABASE_URL), e.g. "
                "postgresql://127.0.0.1:5432/rjobs or sqlite:////path/to/rjobs.sqlite3"
            )
        store = Store(config.database_url, artifact_dir=config.artifact_dir)
        return SqlJobsGateway(store, Principal(current_user(), admin=False))
    if config.backend == "http":
        from rjobs._http_gateway import HttpJobsGateway

        return HttpJobsGateway(config.base_url, config.token, timeout_s=config.request_timeout_s)
    raise JobInvalidRequestError(f"the {config.backend} backend is not available yet")
