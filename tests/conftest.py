"""Shared fixtures: real stores (SQLite files, PostgreSQL), real workers, real supervisors."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import rjobs
from rjobs.store.store import Store
from rjobs.worker.worker import WorkerSettings
from support import INSTANCES, TPCH, WorkerThread, kill_supervisor


@pytest.fixture
def embedded_config(tmp_path: Path) -> Iterator[rjobs.Config]:
    """An embedded backend in a fresh data directory; its supervisor is stopped afterwards."""
    config = rjobs.Config(
        backend="embedded",
        data_dir=tmp_path / "rjobs-data",
        data_roots=(INSTANCES.resolve(), TPCH.resolve()),
        idle_timeout_s=20,
    )
    yield config
    kill_supervisor(config.data_dir)


@pytest.fixture
def client(embedded_config: rjobs.Config) -> Iterator[rjobs.ClientSync]:
    with rjobs.connect_sync(config=embedded_config) as c:
        yield c


PG_ADMIN_URL = os.environ.get("RJOBS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_reachable() -> bool:
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The PostgreSQL server, started if it is down; under CI=true a missing server fails."""
    if not _pg_reachable():
        start_postgres()
    if not _pg_reachable():
        message = f"PostgreSQL is unreachable at {PG_ADMIN_URL}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return PG_ADMIN_URL


def start_postgres() -> None:
    versions = sorted(Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").is_dir() else []
    for version in versions:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version.name, "main", "start"],
            check=False,
            capture_output=True,
            timeout=60,
        )
    for _ in range(50):
        if _pg_reachable():
            return
        time.sleep(0.2)


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    name = f"rjobs_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base = pg_server.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def sql_config(tmp_path: Path, store_url: str) -> rjobs.Config:
    return rjobs.Config(
        backend="sql",
        data_dir=tmp_path / "data",
        database_url=store_url,
        data_roots=(INSTANCES.resolve(),),
    )


@pytest.fixture
def store(sql_config: rjobs.Config) -> Iterator[Store]:
    s = Store(sql_config.store_url, artifact_dir=sql_config.artifact_dir)
    s.upgrade()
    yield s
    s.close()


@pytest.fixture
def start_worker(store: Store, sql_config: rjobs.Config) -> Iterator[object]:
    """Start in-process workers on the sql store: ``start_worker(reasoners=[...], slots=2)``."""
    started: list[WorkerThread] = []

    def start(**overrides: object) -> WorkerThread:
        params: dict[str, object] = {
            "reasoners": None,
            "data_dir": sql_config.data_dir,
            "data_roots": sql_config.data_roots,
            "kill_grace_s": 0.5,
            "shutdown_grace_s": 2.0,
        }
        params.update(overrides)
        wt = WorkerThread(store, WorkerSettings(**params)).start()  # type: ignore[arg-type]
        started.append(wt)
        return wt

    yield start
    for wt in started:
        wt.stop()


@pytest.fixture
def sql_client(sql_config: rjobs.Config, store: Store) -> Iterator[rjobs.ClientSync]:
    with rjobs.connect_sync(config=sql_config) as c:
        yield c
