"""Notifications over PostgreSQL LISTEN/NOTIFY, for stores shared by many hosts.

One listening connection per process, on a background thread, feeds the same in-process hub as
:class:`rjobs.store.notify.LocalNotifier`. When the connection drops (a restarted database,
``pg_terminate_backend``), the thread reconnects with backoff; meanwhile waiters simply fall back
to their polling ceiling, so a lost notification costs latency, never correctness.
"""

from __future__ import annotations

import contextlib
import logging
import threading

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from rjobs.store.notify import HubNotifier, _Hub

logger = logging.getLogger(__name__)

PG_CHANNEL = "rjobs"


def _libpq_url(engine: Engine) -> str:
    url = engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class PgNotifier(HubNotifier):
    """LISTEN/NOTIFY on one PostgreSQL channel; the payload names the rjobs channel."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dsn = _libpq_url(engine)
        self._hub = _Hub()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self.connected = threading.Event()

    def notify(self, channel: str) -> None:
        self._hub.bump(channel)
        with self._engine.connect() as conn:
            conn.execute(sa.select(sa.func.pg_notify(PG_CHANNEL, channel)))
            conn.commit()

    def _ensure_listening(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._listen, name="rjobs-listen", daemon=True)
            self._thread.start()
        # give the first LISTEN a moment, so a notify right after subscribing is not missed
        self.connected.wait(2.0)

    def _listen(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as conn:
                    self._conn = conn
                    conn.execute(f"LISTEN {PG_CHANNEL}")
                    self.connected.set()
                    backoff = 0.1
                    # anything sent while we were away is unknown: wake every waiter to re-read
                    self._hub.bump_all()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._hub.bump(note.payload)
            except psycopg.Error as exc:
                self.connected.clear()
                if self._stop.is_set():
                    return
                logger.warning("notify.listen_lost", extra={"error": str(exc), "retry_s": backoff})
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self._conn = None

    def close(self) -> None:
        self._stop.set()
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(psycopg.Error, AttributeError):
                conn.cancel_safe()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=3)
