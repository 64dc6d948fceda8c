"""Alembic environment: rjobs runs migrations programmatically on a connection it passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from rjobs.store.schema import metadata

config = context.config
connection = config.attributes.get("connection")

if connection is None:
    # `alembic -x url=...` from a shell, for maintainers
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("pass the database with: alembic -x url=postgresql://... upgrade head")
    with create_engine(url).connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
