"""observation values digest

``observations.values_digest``: a key of the values drift detection compares
(``drift.compare.digest``), so ingest decodes a previous observation's facts only when it
changed. Rows stored before have none and are compared in full.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("observations") as batch:
        batch.add_column(sa.Column("values_digest", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("observations") as batch:
        batch.drop_column("values_digest")
