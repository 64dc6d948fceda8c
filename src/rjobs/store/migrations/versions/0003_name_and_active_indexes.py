"""List by reasoner name (case-insensitive) and only_active, measured on a million jobs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ACTIVE = sa.text("state IN ('CREATED', 'PENDING', 'RUNNING')")


def upgrade() -> None:
    op.create_index(
        "ix_jobs_creator_name",
        "jobs",
        ["created_by", sa.text("lower(reasoner_name)"), "created_on", "id"],
    )
    op.create_index(
        "ix_jobs_active",
        "jobs",
        ["created_by", "created_on", "id"],
        sqlite_where=_ACTIVE,
        postgresql_where=_ACTIVE,
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_active", table_name="jobs")
    op.drop_index("ix_jobs_creator_name", table_name="jobs")
