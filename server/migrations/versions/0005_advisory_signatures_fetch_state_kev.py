"""advisory signatures, provider fetch state, CISA KEV catalogue

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 02:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("advisories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signature", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("signature_detail", sa.Text(), nullable=True))
    op.create_table(
        "advisory_fetch_state",
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("etag", sa.String(length=300), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("updated", sa.String(length=64), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("url"),
    )
    op.create_table(
        "kev_entries",
        sa.Column("cve", sa.String(length=64), nullable=False),
        sa.Column("vendor", sa.String(length=200), nullable=False),
        sa.Column("product", sa.String(length=200), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("date_added", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("ransomware", sa.String(length=16), nullable=False),
        sa.Column("required_action", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("cve"),
    )
    op.create_table(
        "kev_catalogs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("released", sa.DateTime(timezone=True), nullable=True),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("kev_catalogs")
    op.drop_table("kev_entries")
    op.drop_table("advisory_fetch_state")
    with op.batch_alter_table("advisories", schema=None) as batch_op:
        batch_op.drop_column("signature_detail")
        batch_op.drop_column("signature")
