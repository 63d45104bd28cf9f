"""drift events and alert dead letters

``drift_events``: what changed between two observations of an asset endpoint (site, asset,
probe, fact, kind, before/after, both observation ids as evidence); ``alert_dead_letters``:
alerts not delivered after their last attempt.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drift_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("asset_id", sa.String(length=64), nullable=False),
        sa.Column("probe", sa.String(length=32), nullable=False),
        sa.Column("fact", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("before_observation_id", sa.String(length=36), nullable=False),
        sa.Column("after_observation_id", sa.String(length=36), nullable=False),
        sa.Column("before_observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("after_observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("after_observation_id", "fact", name="uq_drift_observation_fact"),
    )
    op.create_index("ix_drift_site_detected", "drift_events", ["site", "detected_at"])
    op.create_table(
        "alert_dead_letters",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("alert_dead_letters")
    op.drop_index("ix_drift_site_detected", table_name="drift_events")
    op.drop_table("drift_events")
