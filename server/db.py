"""Database schema and engine (SQLAlchemy 2; SQLite by default, PostgreSQL in production).

Observations are append-only and unique on ``observation_id`` (a UUID the collector draws),
which makes ingest idempotent. Sites are the first key of everything else: an asset is
``(site, asset_id)``, a zone ``(site, zone_id)``, a finding ``(site, asset_id, check_id)``, so
the same asset or zone id in two sites never collides. Findings are the current evaluation
per (site, asset, check); the history of what was observed stays in ``observations``.

``observed_at`` orders an asset's observations: the sender's ``finished_at``, but never later
than the server received it, so a collector's clock cannot make an observation stay the
newest (ingest also rejects a ``finished_at`` beyond the receive time plus a tolerance).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import JSON, DateTime, Index, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from otaudit.errors import InputError, StateError, Unreachable

URL_HELP = "expected sqlite:///PATH or postgresql://USER@HOST:PORT/DATABASE"
NO_DATABASE_HINT = ("run `otaudit server init` (or `otaudit server run`) to create it, or "
                    "point --db / OTAUDIT_DATABASE_URL at the server's database")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}


class ObservationRow(Base):
    __tablename__ = "observations"

    observation_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    collector_id: Mapped[str] = mapped_column(String(64))
    asset_id: Mapped[str] = mapped_column(String(64), index=True)
    asset_kind: Mapped[str] = mapped_column(String(16))
    zone: Mapped[str] = mapped_column(String(64), index=True)
    probe: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    received_at: Mapped[datetime]
    observed_at: Mapped[datetime]  # min(finished_at, received_at): what "latest" orders by
    payload: Mapped[dict[str, Any]]
    values_digest: Mapped[str | None] = mapped_column(String(32))  # drift.compare.digest

    # "the newest observation of an endpoint" orders by all three: one index entry reads it
    __table_args__ = (Index("ix_obs_endpoint_newest", "site", "asset_id", "probe",
                            "observed_at", "received_at", "observation_id"),)


class RejectedMessage(Base):
    __tablename__ = "rejected_messages"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    received_at: Mapped[datetime]
    topic: Mapped[str] = mapped_column(Text)
    code: Mapped[str | None] = mapped_column(String(32))  # e.g. invalid, bad_signature
    reason: Mapped[str] = mapped_column(Text)
    payload_excerpt: Mapped[str] = mapped_column(Text)


class AssetRow(Base):
    __tablename__ = "assets"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    asset_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    zone: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    last_seen: Mapped[datetime]


class ZoneRow(Base):
    __tablename__ = "zones"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    zone_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    sl_t: Mapped[dict[str, Any]]


class FindingRow(Base):
    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64))
    asset_id: Mapped[str] = mapped_column(String(64))
    zone: Mapped[str] = mapped_column(String(64))
    check_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24))
    evaluated_at: Mapped[datetime]
    detail: Mapped[dict[str, Any]]

    __table_args__ = (sa.UniqueConstraint("site", "asset_id", "check_id",
                                          name="uq_finding_site_asset_check"),)


def make_engine(url: str) -> sa.Engine:
    """Engine for ``url``; SQLite gets WAL and a busy timeout so readers never block ingest."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def parse_database_url(url: str) -> sa.URL:
    """The URL as SQLAlchemy reads it; InputError for anything but SQLite or PostgreSQL."""
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        raise InputError("database URL", [f"{url!r}: {URL_HELP}"],
                         hint="--db or OTAUDIT_DATABASE_URL") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InputError("database URL", [f"{url!r}: {URL_HELP}"],
                         hint="--db or OTAUDIT_DATABASE_URL")
    return parsed


def in_memory(url: sa.URL) -> bool:
    """An in-memory SQLite database: it lives in one connection of one process."""
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def describe_database(url: sa.URL) -> str:
    """Where the database is, without credentials: a file path or host:port/name."""
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database}"


def open_database(url: str, *, create: bool = False) -> sa.Engine:
    """An engine on an existing otaudit database (``create``: make or migrate it).

    Read commands never create anything: a missing SQLite file, a database without the
    otaudit schema or with an older one is a StateError that says what to run; a server
    that cannot be reached is Unreachable with host:port.
    """
    parsed = parse_database_url(url)
    where = describe_database(parsed)
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite and not in_memory(parsed):
        from pathlib import Path

        path = Path(parsed.database)
        if create and not path.parent.is_dir():
            raise StateError(f"cannot create the database {path}: folder {path.parent} "
                             "does not exist")
        if not create and not path.is_file():
            raise StateError(f"no database at {path}", hint=NO_DATABASE_HINT)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            revision = _schema_revision(connection)
    except sa.exc.OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig or exc).strip().splitlines()[0]
        if sqlite or "does not exist" in reason:
            raise StateError(f"cannot open the database {where}: {reason}",
                             hint=None if sqlite else NO_DATABASE_HINT) from None
        raise Unreachable(f"cannot reach the database at {where}: {reason}") from None
    if create:
        init_db(engine)
        return engine
    head = _head_revision()
    if revision != head:
        engine.dispose()
        found = "no otaudit tables" if revision is None else f"schema revision {revision}"
        raise StateError(f"the database {where} has {found}; this otaudit needs {head}",
                         hint=NO_DATABASE_HINT if revision is None else
                         "run `otaudit server init` to migrate it")
    return engine


def _schema_revision(connection: sa.Connection) -> str | None:
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def import_table_modules() -> None:
    """Import the modules that declare further tables on ``Base``."""
    import importlib

    for module in _TABLE_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if not exc.name or not module.startswith(exc.name):
                raise


def alembic_config(engine: sa.Engine | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "otaudit.server:migrations")
    if engine is not None:
        config.set_main_option("sqlalchemy.url",
                               engine.url.render_as_string(hide_password=False))
    return config


def init_db(engine: sa.Engine) -> None:
    """Bring the schema to the newest migration (idempotent; creates a new database)."""
    from alembic import command

    import_table_modules()
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        # Tables of modules still without a migration (tests/test_migrations.py fails then).
        Base.metadata.create_all(connection)


# Modules that declare further tables on Base.
_TABLE_MODULES = ("otaudit.server.advisories.db", "otaudit.server.signing_state",
                  "otaudit.server.declared", "otaudit.server.drift.events",
                  "otaudit.server.alerts.deadletter", "otaudit.server.accounts")


def session_factory(engine: sa.Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def dialect_insert(session: Session) -> Any:
    """The dialect's ``insert`` construct, with ON CONFLICT support (SQLite or PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert
