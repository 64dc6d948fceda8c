"""Waiters are woken by notifications (SQLite: local sockets; PostgreSQL: LISTEN/NOTIFY)."""

from __future__ import annotations

import threading
import time

import psycopg

import rjobs
from rjobs.store.store import Store, channel_for_job

T = "Prescriptive"


def test_wait_is_woken_by_the_store_not_by_polling(
    sql_client: rjobs.ClientSync,
    start_worker,  # type: ignore[no-untyped-def]
) -> None:
    sql_client.reasoners.create(T, "n", size=1)
    start_worker(reasoners=[(T, "n")])
    sql_client.jobs.create(T, "n", {"probe": {}}).wait(timeout_s=30)  # warm up
    lags = []
    for _ in range(5):
        op = sql_client.jobs.create(T, "n", {"probe": {"sleep_s": 0.3}})
        job = sql_client.jobs.wait(T, op.id, timeout_s=30, poll_interval_s=20)
        assert job.finished_at is not None
        lags.append(time.time() - job.finished_at.timestamp())
    # with a 20 s polling ceiling, returning at all within seconds needs a notification
    assert max(lags) < 2.0, lags


def test_notifier_delivers_between_processes_of_one_store(store: Store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    other = Store(store.url, artifact_dir=tmp_path / "b")
    try:
        with store.notifier.subscribe([channel_for_job("abc")]) as sub:
            timer = threading.Timer(0.2, other.notifier.notify, args=(channel_for_job("abc"),))
            timer.start()
            start = time.monotonic()
            assert sub.wait(10)
            assert time.monotonic() - start < 5
            assert not sub.wait(0.2)  # consumed
    finally:
        other.close()


def test_listener_reconnects_after_its_connection_is_killed(
    pg_url: str,
    pg_server: str,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    listener = Store(pg_url, artifact_dir=tmp_path / "a")
    sender = Store(pg_url, artifact_dir=tmp_path / "b")
    try:
        listener.upgrade()
        with listener.notifier.subscribe(["ping"]) as sub:
            sender.notifier.notify("ping")
            assert sub.wait(5)
            dbname = pg_url.rsplit("/", 1)[1]
            with psycopg.connect(pg_server, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND query ILIKE 'LISTEN%%'",
                    (dbname,),
                )
            # a reconnect wakes every waiter (anything sent meanwhile is unknown)
            assert sub.wait(10)
            deadline = time.monotonic() + 10
            got = False
            while time.monotonic() < deadline and not got:
                sender.notifier.notify("ping")
                got = sub.wait(0.5)
            assert got
    finally:
        listener.close()
        sender.close()
