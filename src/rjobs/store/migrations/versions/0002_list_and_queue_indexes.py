"""Indexes measured on a million jobs: list newest-first per creator and state, a state-first
queue index for claims and idle workers, and finished_at for gc and metrics.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_NEW = {
    "ix_jobs_creator_recent": ["created_by", "created_on", "id"],
    "ix_jobs_creator_state": ["created_by", "state", "created_on", "id"],
    "ix_jobs_recent": ["created_on", "id"],
    "ix_jobs_queue": ["state", "reasoner_type", "reasoner_name", "created_on", "id"],
    "ix_jobs_finished": ["finished_at"],
}
_OLD = {
    "ix_jobs_creator_created": ["created_by", "created_on"],
    "ix_jobs_created": ["created_on"],
    "ix_jobs_claim": ["reasoner_type", "reasoner_name", "state", "created_on"],
}


def upgrade() -> None:
    for name, columns in _NEW.items():
        op.create_index(name, "jobs", columns)
    for name in _OLD:
        op.drop_index(name, table_name="jobs")


def downgrade() -> None:
    for name, columns in _OLD.items():
        op.create_index(name, "jobs", columns)
    for name in _NEW:
        op.drop_index(name, table_name="jobs")
