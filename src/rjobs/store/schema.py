"""The store's tables: one schema for SQLite and PostgreSQL (SQLAlchemy Core).

Alembic migrations under ``migrations/versions`` create exactly these tables and indexes; a test
checks that the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    func,
    text,
)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on both databases (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

reasoners = Table(
    "reasoners",
    metadata,
    Column("reasoner_type", String(20), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("state", String(20), nullable=False),
    Column("settings", Text, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_on", UTCDateTime, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("reasoner_type", String(20), nullable=False),
    Column("reasoner_name", String(100), nullable=False),
    Column("state", String(20), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_on", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("duration_ms", BigInteger),
    Column("abort_reason", Text),
    Column("timeout_ms", BigInteger),
    Column("payload", Text, nullable=False),
    Column("model", Text),
    Column("read_only", Boolean),
    Column("result", Text),
    Column("worker_id", String(80)),
    Column("cancel_requested_by", String(200)),
    Column("abort_detached", Boolean, nullable=False, default=False),
    Column("last_polled_at", UTCDateTime),
    Column("idempotency_key", String(200)),
    # next sequence numbers of the two event streams: bumping them in the job row serialises
    # concurrent writers of one job, so sequences stay dense and commit in order.
    Column("progress_seq", BigInteger, nullable=False, default=0),
    Column("log_seq", BigInteger, nullable=False, default=0),
)
# list: newest first (created_on desc, id desc), for one creator or all, optionally by state
Index("ix_jobs_creator_recent", jobs.c.created_by, jobs.c.created_on, jobs.c.id)
Index("ix_jobs_creator_state", jobs.c.created_by, jobs.c.state, jobs.c.created_on, jobs.c.id)
Index("ix_jobs_recent", jobs.c.created_on, jobs.c.id)
# claim and "which reasoners have queued jobs": state leads, so idle workers stay cheap
Index(
    "ix_jobs_queue",
    jobs.c.state,
    jobs.c.reasoner_type,
    jobs.c.reasoner_name,
    jobs.c.created_on,
    jobs.c.id,
)
Index("ix_jobs_finished", jobs.c.finished_at)  # gc and metrics
# list by reasoner name, matched case-insensitively
Index(
    "ix_jobs_creator_name",
    jobs.c.created_by,
    func.lower(jobs.c.reasoner_name),
    jobs.c.created_on,
    jobs.c.id,
)
# only_active: a small partial index of the active jobs; queries spell its condition literally
ACTIVE_CONDITION = text("state IN ('CREATED', 'PENDING', 'RUNNING')")
Index(
    "ix_jobs_active",
    jobs.c.created_by,
    jobs.c.created_on,
    jobs.c.id,
    sqlite_where=ACTIVE_CONDITION,
    postgresql_where=ACTIVE_CONDITION,
)
Index("ix_jobs_worker_state", jobs.c.worker_id, jobs.c.state)
Index("ix_jobs_idempotency", jobs.c.created_by, jobs.c.idempotency_key, unique=True)

job_events = Table(
    "job_events",
    metadata,
    Column("job_id", String(40), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("stream", String(20), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("ts", UTCDateTime, nullable=False),
    Column("type", String(100), nullable=False),
    Column("data", Text, nullable=False),
)

job_artifacts = Table(
    "job_artifacts",
    metadata,
    Column("job_id", String(40), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("content_type", String(100), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_on", UTCDateTime, nullable=False),
)

job_problems = Table(
    "job_problems",
    metadata,
    Column("job_id", String(40), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("severity", String(10), nullable=False),
    Column("code", String(100), nullable=False),
    Column("message", Text, nullable=False),
    Column("line", Integer),
    Column("col", Integer),
    Column("statement", Integer),
)

workers = Table(
    "workers",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("reasoner", String(200), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("role", String(20), nullable=False),
    Column("created_on", UTCDateTime, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_name", String(200), ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
    Column("created_on", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
)
