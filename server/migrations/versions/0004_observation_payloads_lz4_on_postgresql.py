"""observation payloads compressed with lz4 on PostgreSQL

PostgreSQL compresses each payload (JSON, ~6 kB) on insert; with its default, pglz, that was
most of the server's work per stored observation in bench/ingest.py (about 80 µs against
30 µs with lz4, which also decompresses faster for evaluation). Only new values are written
with lz4. Nothing to do on SQLite, or on a PostgreSQL before 14 or built without lz4.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 16:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    return bool(bind.scalar(sa.text(
        "SELECT current_setting('server_version_num')::int >= 140000 AND 'lz4' = ANY(enumvals) "
        "FROM pg_settings WHERE name = 'default_toast_compression'")))


def upgrade() -> None:
    if _lz4_available():
        op.execute("ALTER TABLE observations ALTER COLUMN payload SET COMPRESSION lz4")


def downgrade() -> None:
    if _lz4_available():
        op.execute("ALTER TABLE observations ALTER COLUMN payload SET COMPRESSION default")
