"""The store: every read and write of jobs, events, artifacts, problems, workers and reasoners.

Rules the SQL here keeps, whatever the database:

* A job reaches one terminal state once: every terminal write is a conditional update on an active
  state (and, for a worker, on still holding the job), and its row count says who won.
* Event sequences are dense per (job, stream): the writer bumps a counter in the job row, which
  serialises writers of one job, and a reader stops at the first gap, so an event committed
  after a later one is never skipped.
* Claims are exclusive: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; an immediate (write-locking)
  transaction on SQLite.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.exc import IntegrityError

from rjobs._models import ACTIVE_STATES, REASONER_LOST, TERMINAL_STATES
from rjobs.engines.base import ArtifactInfo, ProblemInfo
from rjobs.store import schema as t
from rjobs.store.notify import LocalNotifier, Notifier
from rjobs.store.pg_notify import PG_CHANNEL, PgNotifier

logger = logging.getLogger(__name__)

_ACTIVE = tuple(sorted(ACTIVE_STATES))
_PENDING = "rjobs_notify"  # connection.info key of channels to notify after commit
_MIGRATIONS = Path(__file__).parent / "migrations"
_HEAD = "0003"


class StoreConflict(Exception):
    """A write that conflicts with existing rows (duplicate reasoner, idempotency key, ...)."""


class ReasonerMissing(Exception):
    """A job was created for a reasoner that does not exist."""


class ReasonerSuspended(Exception):
    """A job was created for a suspended reasoner."""


@dataclass(frozen=True)
class ListQuery:
    """Filters for :meth:`Store.list_jobs`; ``None`` means "any"."""

    reasoner_types: Sequence[str]
    job_id: str | None = None
    state: str | None = None
    name: str | None = None
    created_by: str | None = None
    only_active: bool = False
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True)
class RunningCheck:
    """What a worker re-reads about each job it runs: was it cancelled, is its client there."""

    id: str
    state: str
    cancel_requested_by: str | None
    abort_detached: bool
    last_polled_at: datetime | None


def utcnow() -> datetime:
    return datetime.now(UTC)


def channel_for_job(job_id: str) -> str:
    return f"job:{job_id}"


def channel_for_events(job_id: str) -> str:
    return f"events:{job_id}"


QUEUE_CHANNEL = "queue"
CANCEL_CHANNEL = "cancel"


def _sqlite_engine(url: str) -> Engine:
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @sa_event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # take transaction control from pysqlite so BEGIN IMMEDIATE can be issued for writes
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa_event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _postgres_engine(url: str) -> Engine:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return sa.create_engine(
        url,
        pool_size=10,
        max_overflow=40,
        pool_pre_ping=True,
        pool_recycle=1800,
        # a runaway statement must not hold locks forever; no rjobs statement needs long
        connect_args={
            "options": "-c statement_timeout=30000",
            "connect_timeout": 10,
            # no server-side prepared statements: PostgreSQL's generic plan for a prepared list
            # query can be many times slower than the custom plan for the actual filters
            "prepare_threshold": None,
        },
    )


class Store:
    """Access to one rjobs database and its artifact directory."""

    def __init__(
        self,
        url: str,
        *,
        artifact_dir: Path,
        notifier: Notifier | None = None,
    ) -> None:
        self.url = url
        self.artifact_dir = artifact_dir
        if url.startswith("sqlite"):
            self.engine = _sqlite_engine(url)
            self.dialect = "sqlite"
        elif url.startswith("postgres"):
            self.engine = _postgres_engine(url)
            self.dialect = "postgresql"
        else:
            raise ValueError(f"unsupported database URL {url!r}: use sqlite:/// or postgresql://")
        if notifier is None:
            if self.dialect == "postgresql":
                notifier = PgNotifier(self.engine)
            else:
                notifier = LocalNotifier(url)
        self.notifier: Notifier = notifier
        self._upgraded = False
        self._upgrade_lock = threading.Lock()

    # -- plumbing -------------------------------------------------------------------------------

    def close(self) -> None:
        self.notifier.close()
        self.engine.dispose()

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction; on SQLite it takes the write lock at BEGIN (no upgrade deadlock).

        Channels announced in it (:meth:`_announce`) are notified once it has committed.
        """
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn
            pending: list[str] = conn.info.pop(_PENDING, [])
        for channel in pending:
            try:
                self.notifier.notify(channel)
            except Exception:  # a hint only: the store already holds the truth
                logger.warning("notify.failed", extra={"channel": channel}, exc_info=True)

    def _announce(self, conn: Connection, *channels: str) -> None:
        """Notify channels when this write transaction commits (never before: a woken reader
        must find the change). PostgreSQL does this itself for a NOTIFY sent inside the
        transaction, which saves a round trip per channel."""
        if not channels:
            return
        if self.dialect == "postgresql":
            conn.execute(sa.select(*[sa.func.pg_notify(PG_CHANNEL, c) for c in channels]))
        else:
            conn.info.setdefault(_PENDING, []).extend(channels)

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def now(self) -> datetime:
        """The store's clock: every deadline and duration is measured on this one clock."""
        if self.dialect == "sqlite":
            return utcnow()
        with self.engine.connect() as conn:
            return self._now(conn)

    def _now(self, conn: Connection) -> datetime:
        if self.dialect == "sqlite":
            return utcnow()
        value = conn.execute(sa.select(sa.func.clock_timestamp())).scalar_one()
        assert isinstance(value, datetime)
        return value.astimezone(UTC)

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (cheap when it already is)."""
        with self._upgrade_lock:
            if self._upgraded:
                return
            database = self.engine.url.database
            if self.dialect == "sqlite" and database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            if self.current_revision() != _HEAD:
                self._run_migrations()
            self._upgraded = True

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
            return None if row is None else str(row[0])

    def _run_migrations(self) -> None:
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        with self._migration_lock(), self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        logger.info("store.migrated", extra={"url": self.url})

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[None]:
        # two processes upgrading one fresh database at once must not both create tables
        if self.dialect == "postgresql":
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_advisory_lock(7421001)"))
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(7421001)"))
                    conn.commit()
            return
        import fcntl

        database = self.engine.url.database or ""
        lock_path = Path(database + ".migrate.lock") if database else None
        if lock_path is None:
            yield
            return
        with open(lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- reasoners ------------------------------------------------------------------------------

    def create_reasoner(
        self,
        reasoner_type: str,
        name: str,
        *,
        size: int,
        settings: Mapping[str, Any],
        created_by: str,
        state: str = "READY",
    ) -> RowMapping:
        values = {
            "reasoner_type": reasoner_type,
            "name": name,
            "size": size,
            "state": state,
            "settings": json.dumps(dict(settings)),
            "created_by": created_by,
            "created_on": self.now(),
        }
        try:
            with self._write() as conn:
                conn.execute(t.reasoners.insert().values(**values))
                self._announce(conn, QUEUE_CHANNEL)
        except IntegrityError as exc:
            raise StoreConflict(f"reasoner {reasoner_type}/{name} already exists") from exc
        row = self.get_reasoner(reasoner_type, name)
        assert row is not None
        return row

    def get_reasoner(self, reasoner_type: str, name: str) -> RowMapping | None:
        query = t.reasoners.select().where(
            t.reasoners.c.reasoner_type == reasoner_type, t.reasoners.c.name == name
        )
        with self._read() as conn:
            return conn.execute(query).mappings().first()

    def list_reasoners(self, reasoner_type: str | None = None) -> list[RowMapping]:
        query = t.reasoners.select().order_by(t.reasoners.c.reasoner_type, t.reasoners.c.name)
        if reasoner_type is not None:
            query = query.where(t.reasoners.c.reasoner_type == reasoner_type)
        with self._read() as conn:
            return list(conn.execute(query).mappings())

    def set_reasoner_state(self, reasoner_type: str, name: str, state: str) -> bool:
        with self._write() as conn:
            done = conn.execute(
                t.reasoners.update()
                .where(t.reasoners.c.reasoner_type == reasoner_type, t.reasoners.c.name == name)
                .values(state=state)
            ).rowcount
            self._announce(conn, QUEUE_CHANNEL)
        return bool(done)

    def delete_reasoner(self, reasoner_type: str, name: str) -> bool:
        """Delete a reasoner that has no active jobs (raises StoreConflict when it has some)."""
        with self._write() as conn:
            active = conn.execute(
                sa.select(sa.func.count())
                .select_from(t.jobs)
                .where(
                    t.jobs.c.reasoner_type == reasoner_type,
                    t.jobs.c.reasoner_name == name,
                    t.jobs.c.state.in_(_ACTIVE),
                )
            ).scalar_one()
            if active:
                raise StoreConflict(
                    f"reasoner {reasoner_type}/{name} has {active} active job(s); cancel them first"
                )
            done = conn.execute(
                t.reasoners.delete().where(
                    t.reasoners.c.reasoner_type == reasoner_type, t.reasoners.c.name == name
                )
            ).rowcount
        return bool(done)

    # -- jobs -----------------------------------------------------------------------------------

    def insert_job(
        self, values: Mapping[str, Any], *, create_reasoner_size: int | None = None
    ) -> RowMapping:
        """Queue a job, in one transaction with the check of its reasoner.

        A missing reasoner raises :class:`ReasonerMissing`, unless ``create_reasoner_size`` is
        given (the embedded backend), which creates it; a suspended one raises
        :class:`ReasonerSuspended`. With an idempotency key, an existing job of that key is
        returned.
        """
        row = dict(values)
        row.setdefault("state", "PENDING")
        row.setdefault("abort_detached", False)
        row.setdefault("progress_seq", 0)
        row.setdefault("log_seq", 0)
        key = row.get("idempotency_key")
        try:
            with self._write() as conn:
                self._check_reasoner(conn, row, create_reasoner_size)
                row["created_on"] = self._now_value()
                if row.get("abort_detached"):
                    row["last_polled_at"] = row["created_on"]
                created = (
                    conn.execute(t.jobs.insert().values(**row).returning(*t.jobs.c))
                    .mappings()
                    .one()
                )
                self._announce(conn, QUEUE_CHANNEL, channel_for_job(row["id"]))
        except IntegrityError as exc:
            if key is None:
                raise
            existing = self._job_by_key(row["created_by"], key)
            if existing is None:
                raise
            same = ("payload", "reasoner_type", "reasoner_name", "timeout_ms", "abort_detached")
            if any(existing[k] != row.get(k) for k in same):
                raise StoreConflict(
                    "idempotency key was already used for a different request"
                ) from exc
            return existing
        return created

    def _check_reasoner(
        self, conn: Connection, row: Mapping[str, Any], create_size: int | None
    ) -> None:
        r = t.reasoners
        where = (r.c.reasoner_type == row["reasoner_type"], r.c.name == row["reasoner_name"])
        state = conn.execute(sa.select(r.c.state).where(*where)).scalar()
        if state == "SUSPENDED":
            raise ReasonerSuspended(f"{row['reasoner_type']}/{row['reasoner_name']}")
        if state is not None:
            return
        if create_size is None:
            raise ReasonerMissing(f"{row['reasoner_type']}/{row['reasoner_name']}")
        insert = (
            sqlite_insert(r) if self.dialect == "sqlite" else postgresql_insert(r)
        ).on_conflict_do_nothing()
        conn.execute(
            insert.values(
                reasoner_type=row["reasoner_type"],
                name=row["reasoner_name"],
                size=create_size,
                state="READY",
                settings="{}",
                created_by=row["created_by"],
                created_on=self._now_value(),
            )
        )

    def _now_value(self) -> Any:
        """The store clock as a value to write: the database's own clock on PostgreSQL."""
        return utcnow() if self.dialect == "sqlite" else sa.func.clock_timestamp()

    def _job_by_key(self, created_by: str, key: str) -> RowMapping | None:
        query = t.jobs.select().where(
            t.jobs.c.created_by == created_by, t.jobs.c.idempotency_key == key
        )
        with self._read() as conn:
            return conn.execute(query).mappings().first()

    def get_job(self, job_id: str, *, touch: bool = False) -> RowMapping | None:
        """Read one job; ``touch`` records a client poll (abort-detached transactions)."""
        if touch:
            with self._write() as conn:
                conn.execute(
                    t.jobs.update()
                    .where(t.jobs.c.id == job_id, t.jobs.c.abort_detached.is_(True))
                    .values(last_polled_at=self._now(conn))
                )
        with self._read() as conn:
            return conn.execute(t.jobs.select().where(t.jobs.c.id == job_id)).mappings().first()

    def list_jobs(self, query: ListQuery) -> list[RowMapping]:
        c = t.jobs.c
        stmt = t.jobs.select().where(c.reasoner_type.in_(list(query.reasoner_types)))
        if query.job_id is not None:
            stmt = stmt.where(c.id == query.job_id)
        if query.state is not None:
            stmt = stmt.where(c.state == query.state.upper())
        if query.name is not None:
            stmt = stmt.where(sa.func.lower(c.reasoner_name) == query.name.lower())
        if query.created_by is not None:
            stmt = stmt.where(c.created_by == query.created_by)
        if query.only_active:
            # literal, not bound: the partial index ix_jobs_active applies only then
            assert set(_ACTIVE) == {"CREATED", "PENDING", "RUNNING"}
            stmt = stmt.where(t.ACTIVE_CONDITION)
        stmt = stmt.order_by(c.created_on.desc(), c.id.desc())
        if query.offset:
            stmt = stmt.offset(query.offset)
        if query.limit is not None:
            stmt = stmt.limit(query.limit)
        with self._read() as conn:
            return list(conn.execute(stmt).mappings())

    def request_cancel(self, job_id: str, by: str) -> str | None:
        """Cancel a job: a queued one at once, a running one by flagging it for its worker.

        Returns the job's state after the request (``None`` when the job does not exist).
        """
        reason = f"canceled by {by}"
        with self._write() as conn:
            row = conn.execute(
                sa.select(t.jobs.c.state, t.jobs.c.started_at).where(t.jobs.c.id == job_id)
            ).first()
            if row is None:
                return None
            state = str(row.state)
            if state in TERMINAL_STATES:
                return state
            if state in ("CREATED", "PENDING"):
                now = self._now(conn)
                conn.execute(
                    t.jobs.update()
                    .where(t.jobs.c.id == job_id, t.jobs.c.state.in_(("CREATED", "PENDING")))
                    .values(
                        state="CANCELED",
                        abort_reason=reason,
                        finished_at=now,
                        duration_ms=0,
                        cancel_requested_by=by,
                    )
                )
                state = "CANCELED"
            else:
                conn.execute(
                    t.jobs.update()
                    .where(t.jobs.c.id == job_id, t.jobs.c.cancel_requested_by.is_(None))
                    .values(cancel_requested_by=by)
                )
            self._announce(
                conn, CANCEL_CHANNEL, channel_for_job(job_id), channel_for_events(job_id)
            )
        return state

    def claim(self, worker_id: str, wants: Mapping[tuple[str, str], int]) -> list[RowMapping]:
        """Move up to ``n`` queued jobs of each (type, name) to RUNNING for this worker."""
        claimed: list[RowMapping] = []
        for key, n in wants.items():
            if n > 0:
                claimed.extend(self._claim_one_reasoner(worker_id, key, n))
        return claimed

    def _claim_one_reasoner(
        self, worker_id: str, key: tuple[str, str], limit: int
    ) -> list[RowMapping]:
        c = t.jobs.c
        pick = (
            sa.select(c.id)
            .where(c.reasoner_type == key[0], c.reasoner_name == key[1], c.state == "PENDING")
            .order_by(c.created_on, c.id)
            .limit(limit)
        )
        if self.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        with self._write() as conn:
            ready = conn.execute(
                sa.select(t.reasoners.c.state).where(
                    t.reasoners.c.reasoner_type == key[0], t.reasoners.c.name == key[1]
                )
            ).scalar()
            if ready == "SUSPENDED":
                return []
            ids = [str(r[0]) for r in conn.execute(pick)]
            if not ids:
                return []
            rows = list(
                conn.execute(
                    t.jobs.update()
                    .where(c.id.in_(ids), c.state == "PENDING")
                    .values(state="RUNNING", started_at=self._now(conn), worker_id=worker_id)
                    .returning(*t.jobs.c)
                ).mappings()
            )
            self._announce(conn, *(channel_for_job(str(row["id"])) for row in rows))
        return rows

    def finish(
        self,
        job_id: str,
        state: str,
        *,
        result: Mapping[str, Any] | None = None,
        abort_reason: str | None = None,
        worker_id: str | None = None,
    ) -> bool:
        """Move a job to a terminal state; False when it already was terminal (or not ours)."""
        assert state in TERMINAL_STATES
        result_text = None if result is None else json.dumps(result, allow_nan=False)
        c = t.jobs.c
        with self._write() as conn:
            row = conn.execute(sa.select(c.started_at).where(c.id == job_id)).first()
            if row is None:
                return False
            now = self._now(conn)
            started = row.started_at
            duration = (
                0 if started is None else max(0, int((now - started) / timedelta(milliseconds=1)))
            )
            stmt = t.jobs.update().where(c.id == job_id, c.state.in_(_ACTIVE))
            if worker_id is not None:
                stmt = stmt.where(c.worker_id == worker_id, c.state == "RUNNING")
            done = conn.execute(
                stmt.values(
                    state=state,
                    finished_at=now,
                    duration_ms=duration,
                    result=result_text,
                    abort_reason=abort_reason,
                )
            ).rowcount
            if done:
                self._announce(conn, channel_for_job(job_id), channel_for_events(job_id))
        return bool(done)

    # -- events ---------------------------------------------------------------------------------

    def append_events(
        self, job_id: str, stream: str, events: Sequence[tuple[datetime, str, Mapping[str, Any]]]
    ) -> int:
        """Append events to a live job's stream; returns how many were written (0 if terminal)."""
        if not events:
            return 0
        counter = t.jobs.c.progress_seq if stream == "progress" else t.jobs.c.log_seq
        with self._write() as conn:
            new_last = conn.execute(
                t.jobs.update()
                .where(t.jobs.c.id == job_id, t.jobs.c.state.in_(_ACTIVE))
                .values({counter: counter + len(events)})
                .returning(counter)
            ).scalar()
            if new_last is None:
                return 0
            first = int(new_last) - len(events) + 1
            conn.execute(
                t.job_events.insert(),
                [
                    {
                        "job_id": job_id,
                        "stream": stream,
                        "seq": first + i,
                        "ts": ts,
                        "type": type_,
                        "data": json.dumps(dict(data), allow_nan=False),
                    }
                    for i, (ts, type_, data) in enumerate(events)
                ],
            )
            self._announce(conn, channel_for_events(job_id))
        return len(events)

    def read_events(self, job_id: str, stream: str, after: int, limit: int) -> list[dict[str, Any]]:
        """Events with seq > after, in order, stopping before the first gap."""
        c = t.job_events.c
        query = (
            sa.select(c.seq, c.ts, c.type, c.data)
            .where(c.job_id == job_id, c.stream == stream, c.seq > after)
            .order_by(c.seq)
            .limit(limit)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        events: list[dict[str, Any]] = []
        expected = after + 1
        for row in rows:
            if row.seq != expected:
                break  # a writer has not committed this one yet: never skip past it
            event = {"seq": int(row.seq), "ts": row.ts.isoformat(), "type": row.type}
            event.update(json.loads(row.data))
            events.append(event)
            expected += 1
        return events

    # -- artifacts and problems -----------------------------------------------------------------

    def add_artifact(self, job_id: str, info: ArtifactInfo) -> None:
        values = {
            "job_id": job_id,
            "name": info.name,
            "content_type": info.content_type,
            "size": info.size,
            "sha256": info.sha256,
            "created_on": self.now(),
        }
        with self._write() as conn:
            conn.execute(
                t.job_artifacts.delete().where(
                    t.job_artifacts.c.job_id == job_id, t.job_artifacts.c.name == info.name
                )
            )
            conn.execute(t.job_artifacts.insert().values(**values))

    def list_artifacts(self, job_id: str) -> list[dict[str, Any]]:
        c = t.job_artifacts.c
        query = (
            sa.select(c.name, c.content_type, c.size, c.sha256)
            .where(c.job_id == job_id)
            .order_by(c.name)
        )
        with self._read() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def artifact_path(self, job_id: str, name: str) -> Path | None:
        c = t.job_artifacts.c
        query = sa.select(c.name).where(c.job_id == job_id, c.name == name)
        with self._read() as conn:
            if conn.execute(query).first() is None:
                return None
        return self.artifact_dir / job_id / name

    def add_problems(self, job_id: str, problems: Iterable[ProblemInfo]) -> None:
        items = list(problems)
        if not items:
            return
        with self._write() as conn:
            start = conn.execute(
                sa.select(sa.func.count())
                .select_from(t.job_problems)
                .where(t.job_problems.c.job_id == job_id)
            ).scalar_one()
            conn.execute(
                t.job_problems.insert(),
                [
                    {
                        "job_id": job_id,
                        "idx": start + i,
                        "severity": p.severity,
                        "code": p.code,
                        "message": p.message,
                        "line": p.line,
                        "col": p.column,
                        "statement": p.statement,
                    }
                    for i, p in enumerate(items)
                ],
            )

    def list_problems(self, job_id: str) -> list[dict[str, Any]]:
        c = t.job_problems.c
        query = t.job_problems.select().where(c.job_id == job_id).order_by(c.idx)
        with self._read() as conn:
            return [
                {
                    "severity": r["severity"],
                    "code": r["code"],
                    "message": r["message"],
                    "line": r["line"],
                    "column": r["col"],
                    "statement": r["statement"],
                }
                for r in conn.execute(query).mappings()
            ]

    # -- workers --------------------------------------------------------------------------------

    def register_worker(self, worker_id: str, reasoner: str, host: str) -> None:
        now = self.now()
        with self._write() as conn:
            conn.execute(
                t.workers.insert().values(
                    id=worker_id,
                    reasoner=reasoner,
                    host=host,
                    pid=os.getpid(),
                    started_at=now,
                    heartbeat_at=now,
                )
            )

    def heartbeat(self, worker_id: str) -> bool:
        """Renew a worker's lease; False when the reaper already declared it lost."""
        with self._write() as conn:
            done = conn.execute(
                t.workers.update()
                .where(t.workers.c.id == worker_id)
                .values(heartbeat_at=self._now(conn))
            ).rowcount
        return bool(done)

    def remove_worker(self, worker_id: str) -> None:
        with self._write() as conn:
            conn.execute(t.workers.delete().where(t.workers.c.id == worker_id))

    def count_workers(self) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t.workers)).scalar_one())

    def running_checks(self, worker_id: str) -> list[RunningCheck]:
        c = t.jobs.c
        query = sa.select(
            c.id, c.state, c.cancel_requested_by, c.abort_detached, c.last_polled_at
        ).where(c.worker_id == worker_id, c.state == "RUNNING")
        with self._read() as conn:
            return [
                RunningCheck(
                    str(r.id),
                    str(r.state),
                    r.cancel_requested_by,
                    bool(r.abort_detached),
                    r.last_polled_at,
                )
                for r in conn.execute(query)
            ]

    def reap(self, lease_s: float, *, exclude: str | None = None) -> list[str]:
        """Abort the running jobs of workers whose lease expired, and forget those workers.

        Safe to run in every process at once: each abort is a conditional update.
        """
        c = t.jobs.c
        with self._write() as conn:
            cutoff = self._now(conn) - timedelta(seconds=lease_s)
            lost = [
                str(r[0])
                for r in conn.execute(
                    sa.select(t.workers.c.id).where(
                        t.workers.c.heartbeat_at < cutoff, t.workers.c.id != (exclude or "")
                    )
                )
            ]
            if lost:
                conn.execute(t.workers.delete().where(t.workers.c.id.in_(lost)))
            live = sa.select(t.workers.c.id)
            orphans = [
                str(r[0])
                for r in conn.execute(
                    sa.select(c.id).where(
                        c.state == "RUNNING",
                        sa.or_(c.worker_id.is_(None), c.worker_id.not_in(live)),
                    )
                )
            ]
        aborted = [
            job_id
            for job_id in orphans
            if self.finish(job_id, "ABORTED", abort_reason=REASONER_LOST)
        ]
        for worker_id in lost:
            logger.warning("worker.lost", extra={"worker": worker_id})
        for job_id in aborted:
            logger.warning("job.reaped", extra={"job_id": job_id, "reason": REASONER_LOST})
        return aborted

    def count_active(self) -> int:
        with self._read() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(t.jobs)
                    .where(t.jobs.c.state.in_(_ACTIVE))
                ).scalar_one()
            )

    def queued_reasoners(self) -> set[tuple[str, str]]:
        c = t.jobs.c
        with self._read() as conn:
            return {
                (str(r[0]), str(r[1]))
                for r in conn.execute(
                    sa.select(c.reasoner_type, c.reasoner_name)
                    .where(c.state == "PENDING")
                    .distinct()
                )
            }

    # -- users and tokens -----------------------------------------------------------------------

    def create_token(self, user: str, *, admin: bool = False) -> str:
        """Create (or promote) a user and return a new API token; only its hash is stored."""
        import hashlib
        import secrets

        token = "rjt_" + secrets.token_urlsafe(32)
        role = "admin" if admin else "user"
        now = self.now()
        with self._write() as conn:
            existing = conn.execute(
                sa.select(t.users.c.role).where(t.users.c.name == user)
            ).scalar()
            if existing is None:
                conn.execute(t.users.insert().values(name=user, role=role, created_on=now))
            elif admin and existing != "admin":
                conn.execute(t.users.update().where(t.users.c.name == user).values(role=role))
            conn.execute(
                t.api_tokens.insert().values(
                    token_hash=hashlib.sha256(token.encode()).hexdigest(),
                    user_name=user,
                    created_on=now,
                )
            )
        return token

    def authenticate(self, token: str) -> tuple[str, str] | None:
        """The (user, role) a token belongs to, or None."""
        import hashlib

        digest = hashlib.sha256(token.encode()).hexdigest()
        query = (
            sa.select(t.users.c.name, t.users.c.role)
            .select_from(t.api_tokens.join(t.users, t.api_tokens.c.user_name == t.users.c.name))
            .where(t.api_tokens.c.token_hash == digest)
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else (str(row.name), str(row.role))

    # -- maintenance ----------------------------------------------------------------------------

    def gc(self, older_than: timedelta) -> int:
        """Delete finished jobs older than ``older_than`` with their events, problems, artifacts."""
        import shutil

        if older_than < timedelta(0):
            raise ValueError("gc needs an age of zero or more")
        cutoff = self.now() - older_than
        c = t.jobs.c
        removed = 0
        while True:
            with self._write() as conn:
                ids = [
                    str(r[0])
                    for r in conn.execute(
                        sa.select(c.id)
                        .where(c.state.in_(tuple(TERMINAL_STATES)), c.finished_at < cutoff)
                        .limit(500)
                    )
                ]
                if not ids:
                    return removed
                for table in (t.job_events, t.job_problems, t.job_artifacts):
                    conn.execute(table.delete().where(table.c.job_id.in_(ids)))
                conn.execute(t.jobs.delete().where(c.id.in_(ids)))
            for job_id in ids:
                shutil.rmtree(self.artifact_dir / job_id, ignore_errors=True)
            removed += len(ids)
