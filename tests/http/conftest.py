"""Fixtures of the HTTP tests: a real ``rjobs serve`` process, real workers, real stores.

One server per test session listens on a free loopback port, over a SQLite store file; a worker
thread of this process serves every reasoner of that store (its job processes are real
children). The same store also backs the ``sql`` backend. The ``embedded`` backend has its own
data directory and local supervisor.

``api`` runs a test once per backend (embedded, sql, http) and flavour (sync, async): the async
flavour drives the real async client from a blocking portal, so one test body checks both.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import anyio.from_thread
import pytest
from http_support import Api, HttpEnv, ServerProcess, _AsyncFacade

import rjobs
from rjobs._client import current_user
from rjobs.store.store import Store
from rjobs.worker.worker import WorkerSettings
from support import INSTANCES, WorkerThread, kill_supervisor


@pytest.fixture(scope="session")
def http_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpEnv]:
    root = tmp_path_factory.mktemp("http")
    data_dir = root / "data"
    store_url = f"sqlite:///{root / 'store.sqlite3'}"
    store = Store(store_url, artifact_dir=data_dir / "artifacts")
    store.upgrade()
    admin_token = store.create_token("root", admin=True)
    worker = WorkerThread(
        store,
        WorkerSettings(
            reasoners=None,
            data_dir=data_dir,
            data_roots=(INSTANCES.resolve(),),
            kill_grace_s=0.5,
            shutdown_grace_s=2.0,
            detach_grace_s=1.0,
        ),
    ).start()
    server = ServerProcess(store_url, data_dir, root / "server.log").start()
    try:
        yield HttpEnv(server, store, data_dir, admin_token)
    finally:
        server.stop()
        worker.stop()
        store.close()


@pytest.fixture(scope="session")
def portal() -> Iterator[anyio.from_thread.BlockingPortal]:
    with anyio.from_thread.start_blocking_portal() as p:
        yield p


@pytest.fixture(scope="session")
def embedded_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rjobs.Config]:
    config = rjobs.Config(
        backend="embedded",
        data_dir=tmp_path_factory.mktemp("embedded") / "data",
        data_roots=(INSTANCES.resolve(),),
        idle_timeout_s=60,
    )
    yield config
    kill_supervisor(config.data_dir)


def _config_for(backend: str, request: pytest.FixtureRequest) -> tuple[rjobs.Config, str]:
    if backend == "embedded":
        config: rjobs.Config = request.getfixturevalue("embedded_env")
        return config, current_user()
    env: HttpEnv = request.getfixturevalue("http_env")
    if backend == "sql":
        config = rjobs.Config(
            backend="sql",
            database_url=env.store.url,
            data_dir=env.data_dir,
            data_roots=(INSTANCES.resolve(),),
        )
        return config, current_user()
    user = f"u-{uuid.uuid4().hex[:10]}"
    return env.config(env.token(user)), user


@pytest.fixture(
    params=[
        "embedded-sync",
        "sql-sync",
        "http-sync",
        "embedded-async",
        "sql-async",
        "http-async",
    ]
)
def api(request: pytest.FixtureRequest) -> Iterator[Api]:
    backend, flavour = request.param.split("-")
    config, user = _config_for(backend, request)
    admin_config = config
    if backend == "http":
        env: HttpEnv = request.getfixturevalue("http_env")
        admin_config = env.config(env.admin_token)
    if flavour == "sync":
        client = rjobs.connect_sync(config=config)
        admin = rjobs.connect_sync(config=admin_config)
        try:
            yield Api(
                backend,
                flavour,
                client.jobs,
                client.reasoners,
                admin.reasoners,
                user,
                client.jobs._gateway.create_job,
            )
        finally:
            client.close()
            admin.close()
        return
    portal: anyio.from_thread.BlockingPortal = request.getfixturevalue("portal")
    aclient = rjobs.connect(config=config)
    aadmin = rjobs.connect(config=admin_config)
    try:
        yield Api(
            backend,
            flavour,
            _AsyncFacade(portal, aclient.jobs),
            _AsyncFacade(portal, aclient.reasoners),
            _AsyncFacade(portal, aadmin.reasoners),
            user,
            lambda req: portal.call(aclient.jobs._gateway.create_job, req),
        )
    finally:
        portal.call(aclient.close)
        portal.call(aadmin.close)
