"""The initial schema: reasoners, jobs and their events, artifacts and problems, workers, users.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rjobs.store.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reasoners",
        sa.Column("reasoner_type", sa.String(20), primary_key=True),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_on", UTCDateTime, nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("reasoner_type", sa.String(20), nullable=False),
        sa.Column("reasoner_name", sa.String(100), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_on", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("duration_ms", sa.BigInteger),
        sa.Column("abort_reason", sa.Text),
        sa.Column("timeout_ms", sa.BigInteger),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("model", sa.Text),
        sa.Column("read_only", sa.Boolean),
        sa.Column("result", sa.Text),
        sa.Column("worker_id", sa.String(80)),
        sa.Column("cancel_requested_by", sa.String(200)),
        sa.Column("abort_detached", sa.Boolean, nullable=False),
        sa.Column("last_polled_at", UTCDateTime),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Column("progress_seq", sa.BigInteger, nullable=False),
        sa.Column("log_seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_jobs_creator_created", "jobs", ["created_by", "created_on"])
    op.create_index("ix_jobs_created", "jobs", ["created_on"])
    op.create_index(
        "ix_jobs_claim", "jobs", ["reasoner_type", "reasoner_name", "state", "created_on"]
    )
    op.create_index("ix_jobs_worker_state", "jobs", ["worker_id", "state"])
    op.create_index("ix_jobs_idempotency", "jobs", ["created_by", "idempotency_key"], unique=True)
    op.create_table(
        "job_events",
        sa.Column(
            "job_id",
            sa.String(40),
            sa.ForeignKey("jobs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("stream", sa.String(20), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("ts", UTCDateTime, nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_table(
        "job_artifacts",
        sa.Column(
            "job_id",
            sa.String(40),
            sa.ForeignKey("jobs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_on", UTCDateTime, nullable=False),
    )
    op.create_table(
        "job_problems",
        sa.Column(
            "job_id",
            sa.String(40),
            sa.ForeignKey("jobs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("code", sa.String(100), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("line", sa.Integer),
        sa.Column("col", sa.Integer),
        sa.Column("statement", sa.Integer),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("reasoner", sa.String(200), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("heartbeat_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("created_on", UTCDateTime, nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "user_name",
            sa.String(200),
            sa.ForeignKey("users.name", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_on", UTCDateTime, nullable=False),
        sa.Column("last_used_at", UTCDateTime),
    )


def downgrade() -> None:
    for table in (
        "api_tokens",
        "users",
        "workers",
        "job_problems",
        "job_artifacts",
        "job_events",
        "jobs",
        "reasoners",
    ):
        op.drop_table(table)
