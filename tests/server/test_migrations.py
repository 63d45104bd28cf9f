"""The Alembic migrations create exactly the schema the models declare (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from otaudit.server.db import Base, import_table_modules, init_db, make_engine


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    init_db(engine)  # idempotent
    import_table_modules()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == [], "models changed without a migration: " + repr(diff)[:2000]


def test_postgresql_compresses_observation_payloads_with_lz4(postgres_url: str) -> None:
    from otaudit.observation import utcnow
    from otaudit.server import store
    from otaudit.server.db import session_factory

    from support.observations import make_observation

    engine = make_engine(postgres_url)
    with engine.connect() as conn:
        if not conn.exec_driver_sql(
                "SELECT current_setting('server_version_num')::int >= 140000 AND 'lz4' = "
                "ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'").scalar():
            pytest.skip("this PostgreSQL has no lz4 (before 14, or built without it)")
    init_db(engine)
    obs = make_observation(facts={f"identity.note_{i}": "x" * 40 for i in range(200)})
    with session_factory(engine).begin() as session:
        store.store_observations(session, [obs], utcnow())
    with engine.connect() as conn:
        setting = conn.exec_driver_sql(
            "SELECT attcompression FROM pg_attribute WHERE attrelid = 'observations'::regclass "
            "AND attname = 'payload'").scalar()
        used = conn.exec_driver_sql(
            "SELECT pg_column_compression(payload) FROM observations").scalar()
    engine.dispose()
    assert (setting, used) == ("l", "lz4")
