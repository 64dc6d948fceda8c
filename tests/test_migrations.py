"""Running every migration yields exactly the declared schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from rjobs.store import schema
from rjobs.store.store import Store


def _describe(engine: sa.Engine) -> dict[str, object]:
    inspector = sa.inspect(engine)
    tables: dict[str, object] = {}
    for name in sorted(inspector.get_table_names()):
        if name == "alembic_version":
            continue
        columns = {
            c["name"]: (type(c["type"]).__name__.lower(), bool(c["nullable"]))
            for c in inspector.get_columns(name)
        }
        indexes = {
            i["name"]: (tuple(i["column_names"]), bool(i["unique"]))
            for i in inspector.get_indexes(name)
        }
        pk = tuple(inspector.get_pk_constraint(name)["constrained_columns"])
        fks = sorted(
            (tuple(f["constrained_columns"]), f["referred_table"])
            for f in inspector.get_foreign_keys(name)
        )
        tables[name] = {"columns": columns, "indexes": indexes, "pk": pk, "fks": fks}
    if engine.dialect.name == "sqlite":
        # SQLAlchemy does not reflect SQLite's expression indexes: compare their SQL instead
        with engine.connect() as conn:
            tables["sqlite_index_sql"] = sorted(
                str(row[0])
                for row in conn.execute(
                    sa.text(
                        "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                    )
                )
            )
    return tables


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_migrations_yield_the_declared_schema(store_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    migrated = Store(store_url, artifact_dir=tmp_path / "a")
    migrated.upgrade()
    assert migrated.current_revision() is not None
    after_migrations = _describe(migrated.engine)
    migrated.close()

    # the same database, emptied, then built straight from the SQLAlchemy metadata
    engine = sa.create_engine(migrated.engine.url)
    with engine.begin() as conn:
        schema.metadata.drop_all(conn)
        conn.execute(sa.text("DROP TABLE alembic_version"))
    with engine.begin() as conn:
        schema.metadata.create_all(conn)
    declared = _describe(engine)
    engine.dispose()

    tables = set(after_migrations) - {"sqlite_index_sql"}
    assert tables == {t.name for t in schema.metadata.sorted_tables}
    assert after_migrations == declared


def test_upgrade_is_idempotent_and_cheap(store_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for _ in range(2):
        store = Store(store_url, artifact_dir=tmp_path / "a")
        store.upgrade()
        assert store.current_revision() == "0003"
        store.close()
