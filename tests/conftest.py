"""Shared fixtures: real stores (SQLite files, PostgreSQL), real workers, real supervisors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import rjobs
from rjobs.store.store import Store
from rjobs.worker.worker import Worker, WorkerSettings
from support import INSTANCES, TPCH, kill_supervisor


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


class WorkerThread:
    """A real worker running in a thread of the test process, on its own store."""

    def __init__(self, store: Store, settings: WorkerSettings) -> None:
        self.worker = Worker(store, settings)
        self.thread = threading.Thread(target=self.worker.run, daemon=True)

    def start(self) -> WorkerThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.worker.stop()
        self.thread.join(timeout=30)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.sqlite3'}"


@pytest.fixture
def sql_config(tmp_path: Path, sqlite_url: str) -> rjobs.Config:
    return rjobs.Config(
        backend="sql",
        data_dir=tmp_path / "data",
        database_url=sqlite_url,
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
